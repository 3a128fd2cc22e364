/* test_nccl.c - the "nccl" collective backend on device buffers: every collective of
 * gvrt_comm.h (all dtypes through all-reduce, the in-place forms, a split group) checked
 * against closed-form expected values (the data of tests/comm/collectives), once with
 * synchronous calls and once ordered on a compute stream (gv_comm_set_stream). Written for
 * any number of ranks (one GPU each); ctest runs one rank, since NCCL refuses two ranks on
 * one GPU. Without a usable GPU it prints why and exits 77 (ctest: skipped). */
#include <cuda_runtime.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gvrt_comm.h"
#include "testutil.h"


#define CUDA_OK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); exit(1); } } while (0)

/* The stream the test's copies run on: NULL (synchronous mode) or the "compute" stream. */
static cudaStream_t copy_stream;

static void *dev(size_t bytes)
{
  void *p = NULL;
  CUDA_OK(cudaMalloc(&p, bytes));
  CUDA_OK(cudaMemset(p, 0xff, bytes)); /* garbage, so a missing write shows */
  CUDA_OK(cudaDeviceSynchronize());      /* the memset is on the legacy stream */
  return p;
}

static void up(void *d, const void *h, size_t bytes)
{
  CUDA_OK(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, copy_stream));
  if (!copy_stream) CUDA_OK(cudaDeviceSynchronize());
}

static void down(void *h, const void *d, size_t bytes)
{
  CUDA_OK(cudaMemcpyAsync(h, d, bytes, cudaMemcpyDeviceToHost, copy_stream));
  CUDA_OK(copy_stream ? cudaStreamSynchronize(copy_stream) : cudaDeviceSynchronize());
}

static float bf16_value(uint16_t h) { return (union { uint32_t u; float f; }){.u = (uint32_t)h << 16}.f; }

enum { N = 5, NMAX = 64 }; /* NMAX: ranks the host arrays have room for */

static void check_all_reduce(struct gv_comm *g)
{
  int r = gv_comm_rank(g), n = gv_comm_size(g);
  float f[N], *df = dev(sizeof f);
  for (int i = 0; i < N; i++)
    f[i] = (float)((r + 1) * (i + 1));
  up(df, f, sizeof f);
  gv_comm_all_reduce(g, df, N, GV_DTYPE_F32, GV_REDUCE_SUM);
  down(f, df, sizeof f);
  for (int i = 0; i < N; i++)
    CHECK_CLOSE(n * (n + 1) / 2.0 * (i + 1), f[i], 0, 0);

  for (int i = 0; i < N; i++)
    f[i] = (float)(r * 10 - i);
  up(df, f, sizeof f);
  gv_comm_all_reduce(g, df, N, GV_DTYPE_F32, GV_REDUCE_MAX);
  down(f, df, sizeof f);
  for (int i = 0; i < N; i++)
    CHECK_CLOSE((n - 1) * 10 - i, f[i], 0, 0);

  int32_t k[N], *dk = dev(sizeof k);
  for (int i = 0; i < N; i++)
    k[i] = r * 3 + i;
  up(dk, k, sizeof k);
  gv_comm_all_reduce(g, dk, N, GV_DTYPE_I32, GV_REDUCE_SUM);
  down(k, dk, sizeof k);
  for (int i = 0; i < N; i++)
    CHECK_EQ_INT(3 * n * (n - 1) / 2 + n * i, k[i]);

  double d[N], *dd = dev(sizeof d);
  for (int i = 0; i < N; i++)
    d[i] = 0.25 * (r + 1) + i;
  up(dd, d, sizeof d);
  gv_comm_all_reduce(g, dd, N, GV_DTYPE_F64, GV_REDUCE_SUM);
  down(d, dd, sizeof d);
  for (int i = 0; i < N; i++)
    CHECK_CLOSE(0.25 * n * (n + 1) / 2 + (double)n * i, d[i], 0, 0);

  uint16_t h[2] = {0x3f80, 0x4000}, *dh = dev(sizeof h); /* bf16 1.0 and 2.0 */
  up(dh, h, sizeof h);
  gv_comm_all_reduce(g, dh, 2, GV_DTYPE_BF16, GV_REDUCE_SUM);
  down(h, dh, sizeof h);
  CHECK_CLOSE(n * 1.0, bf16_value(h[0]), 0, 0);
  CHECK_CLOSE(n * 2.0, bf16_value(h[1]), 0, 0);
  CUDA_OK(cudaFree(df));
  CUDA_OK(cudaFree(dk));
  CUDA_OK(cudaFree(dd));
  CUDA_OK(cudaFree(dh));
}

/* Out of place, then gvrt's in-place form (in == out, the block lands at the start). */
static void check_reduce_scatter(struct gv_comm *g)
{
  int r = gv_comm_rank(g), n = gv_comm_size(g);
  size_t bytes = sizeof(float) * N * (size_t)n;
  float in[N * NMAX], out[N];
  float *din = dev(bytes), *dout = dev(sizeof out);
  for (int j = 0; j < n * N; j++)
    in[j] = (float)(r * 1000 + j);                  /* block b, element i: r*1000 + b*N + i */
  for (int inplace = 0; inplace < 2; inplace++) {
    up(din, in, bytes);
    gv_comm_reduce_scatter(g, inplace ? din : dout, din, N, GV_DTYPE_F32);
    down(out, inplace ? din : dout, sizeof out);
    for (int i = 0; i < N; i++)                     /* sum over ranks q of q*1000 + r*N + i */
      CHECK_CLOSE(1000.0 * n * (n - 1) / 2 + (double)n * (r * N + i), out[i], 0, 0);
  }
  CUDA_OK(cudaFree(din));
  CUDA_OK(cudaFree(dout));
}

/* Out of place (bf16 too), then in place (in is this rank's block of out). */
static void check_all_gather(struct gv_comm *g)
{
  int r = gv_comm_rank(g), n = gv_comm_size(g);
  size_t bytes = sizeof(float) * N * (size_t)n;
  float mine[N], out[N * NMAX];
  float *dmine = dev(sizeof mine), *dout = dev(bytes);
  for (int i = 0; i < N; i++)
    mine[i] = (float)(r * 10 + i);
  for (int inplace = 0; inplace < 2; inplace++) {
    float *src = inplace ? dout + (size_t)r * N : dmine;
    CUDA_OK(cudaMemsetAsync(dout, 0xff, bytes, copy_stream));
    up(src, mine, sizeof mine);
    gv_comm_all_gather(g, dout, src, N, GV_DTYPE_F32);
    down(out, dout, bytes);
    for (int q = 0; q < n; q++)
      for (int i = 0; i < N; i++)
        CHECK_CLOSE(q * 10 + i, out[q * N + i], 0, 0);
  }
  uint16_t h = (uint16_t)(0x3f80 + r), hs[NMAX], *dh = dev(sizeof h), *dhs = dev(sizeof h * (size_t)n);
  up(dh, &h, sizeof h);
  gv_comm_all_gather(g, dhs, dh, 1, GV_DTYPE_BF16);
  down(hs, dhs, sizeof h * (size_t)n);
  for (int q = 0; q < n; q++)
    CHECK_EQ_INT(0x3f80 + q, hs[q]);
  CUDA_OK(cudaFree(dmine));
  CUDA_OK(cudaFree(dout));
  CUDA_OK(cudaFree(dh));
  CUDA_OK(cudaFree(dhs));
}

static void check_all_to_all(struct gv_comm *g)
{
  int r = gv_comm_rank(g), n = gv_comm_size(g);
  size_t bytes = sizeof(float) * N * (size_t)n;
  float in[N * NMAX], out[N * NMAX];
  float *din = dev(bytes), *dout = dev(bytes);
  for (int q = 0; q < n; q++)                       /* block q goes to rank q: value r*100 + q */
    for (int i = 0; i < N; i++)
      in[q * N + i] = (float)(r * 100 + q + i);
  up(din, in, bytes);
  gv_comm_all_to_all(g, dout, din, N, GV_DTYPE_F32);
  down(out, dout, bytes);
  for (int q = 0; q < n; q++)                       /* block q came from rank q */
    for (int i = 0; i < N; i++)
      CHECK_CLOSE(q * 100 + r + i, out[q * N + i], 0, 0);
  CUDA_OK(cudaFree(din));
  CUDA_OK(cudaFree(dout));
}

static void check_broadcast_p2p(struct gv_comm *g)
{
  int r = gv_comm_rank(g), n = gv_comm_size(g);
  int next = (r + 1) % n, prev = (r + n - 1) % n, root = n - 1;
  int32_t v = r == root ? 4242 : -1, *dv = dev(sizeof v);
  up(dv, &v, sizeof v);
  gv_comm_broadcast(g, dv, 1, GV_DTYPE_I32, root);
  down(&v, dv, sizeof v);
  CHECK_EQ_INT(4242, v);

  /* ring in one step (with one rank: a message to itself) */
  int32_t s[2] = {r * 7, r * 7 + 1}, got[2] = {-1, -1}, *ds = dev(sizeof s), *dg = dev(sizeof got);
  up(ds, s, sizeof s);
  gv_comm_sendrecv(g, ds, 2, next, dg, 2, prev, GV_DTYPE_I32, 5);
  down(got, dg, sizeof got);
  CHECK_EQ_INT(prev * 7, got[0]);
  CHECK_EQ_INT(prev * 7 + 1, got[1]);

  if (n > 1) { /* plain send/recv: even ranks send first (a lone send to self would block) */
    int32_t back = -1;
    if (r % 2 == 0) {
      gv_comm_send(g, ds, 1, GV_DTYPE_I32, next, 3);
      gv_comm_recv(g, dg, 1, GV_DTYPE_I32, prev, 3);
    } else {
      gv_comm_recv(g, dg, 1, GV_DTYPE_I32, prev, 3);
      gv_comm_send(g, ds, 1, GV_DTYPE_I32, next, 3);
    }
    down(&back, dg, sizeof back);
    CHECK_EQ_INT(prev * 7, back);
  }
  gv_comm_barrier(g);
  CUDA_OK(cudaFree(dv));
  CUDA_OK(cudaFree(ds));
  CUDA_OK(cudaFree(dg));
}

static void check_group(struct gv_comm *g)
{
  check_all_reduce(g);
  check_reduce_scatter(g);
  check_all_gather(g);
  check_all_to_all(g);
  check_broadcast_p2p(g);
}

int main(int argc, char **argv)
{
  char why[256];
  MPI_Init(&argc, &argv);   /* first, so that a skip is a clean exit under mpirun too */
  if (!gv_backend_available("cuda", why, sizeof why)) {
    printf("test_nccl: skipped: no usable GPU (%s)\n", why);
    MPI_Finalize();
    return 77;
  }
  struct gv_comm *w = gv_comm_init_world(&argc, &argv, "nccl");
  int n = gv_comm_size(w);
  if (n > NMAX) {
    printf("test_nccl: skipped: more than %d ranks\n", NMAX);
    gv_comm_free_world(&w);
    return 77;
  }

  /* 1. synchronous calls, on the world and on a split group (all one colour: the same
   * ranks, another communicator) */
  int colors[NMAX] = {0};
  struct gv_comm *g = gv_comm_partition(w, colors);
  CHECK(gv_comm_partition(w, colors) == g);
  CHECK_EQ_INT(1, gv_comm_groups_created(w));
  CHECK_EQ_INT(n, gv_comm_size(g));
  check_group(w);
  check_group(g);

  /* 2. ordered on a compute stream: copies queued there, no host sync in between */
  CUDA_OK(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking));
  gv_comm_set_stream(w, copy_stream);
  check_group(w);
  check_group(g);
  gv_comm_set_stream(w, NULL);
  CUDA_OK(cudaStreamSynchronize(copy_stream));
  CUDA_OK(cudaStreamDestroy(copy_stream));
  copy_stream = NULL;

  int failed = tu_failures;
  gv_comm_free_world(&w);
  if (failed)
    fprintf(stderr, "test_nccl: %d failures on this rank\n", failed);
  return tu_report("test_nccl");
}
