/* bench_ring.c - how much of ring attention's transfer the compute hides, on CPU ranks
 * (mpirun -n P bench_ring [T] [H] [D] [reps]): one causal self-attention of T tokens, H heads
 * of D, split over the P ranks (zigzag). Three timings per rank, medians over reps:
 *   ring      gv_ring_attention_fwd + bwd (the transfers overlapped with the blocks' compute);
 *   compute   the same kernels on the same block shapes with no transfer (local K/V);
 *   transfer  the same transfers with no compute (each non-blocking exchange waited at once).
 * and, through MPI's profiling interface (MPI_Waitall is wrapped here), the time the ring
 * spent waiting for its transfers. hidden = 1 - waited / transfer, clamped to [0, 1]: the
 * share of the transfer that did not add to the step (by the difference of the timings,
 * 1 - (ring - compute) / transfer, too; that one is noisier, the compute being much longer
 * than the transfer). Rank 0 prints one line; the slowest rank's numbers count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "comm/mpi_testutil.h"

/* Time spent in MPI_Waitall since the last reset (the ring's waits for its transfers). */
static struct { double waited; } wait_clock;

int MPI_Waitall(int count, MPI_Request reqs[], MPI_Status statuses[])
{
  double t0 = MPI_Wtime();
  int rc = PMPI_Waitall(count, reqs, statuses);
  wait_clock.waited += MPI_Wtime() - t0;
  return rc;
}

static int cmp_d(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return v[n / 2];
}

/* The ring's kernels on the block shapes of every step, K/V local (no transfer). */
static void compute_only(struct gv_backend *be, int r, int P, struct gv_tensor *q, struct gv_tensor *k,
                         struct gv_tensor *v, struct gv_tensor *o, struct gv_tensor *lse, struct gv_tensor *dq,
                         struct gv_tensor *dk, struct gv_tensor *dv, float *ob, float *lb)
{
  int64_t T = q->shape[1], H = q->shape[2], D = q->shape[3], c = T / 2;
  gv_attention_fwd(be, o, lse, q, k, v, 1);
  for (int s = 1; s < P; s++) {
    int early = (r - s + P) % P < r;
    int64_t q0 = early ? 0 : c, qn = early ? T : c, kn = early ? c : T;
    struct gv_tensor qb = gv_tensor_4d((float *)q->data + q0 * H * D, GV_DTYPE_F32, 1, qn, H, D),
                     kb = gv_tensor_4d(k->data, GV_DTYPE_F32, 1, kn, H, D), vb = gv_tensor_4d(v->data, GV_DTYPE_F32, 1, kn, H, D),
                     obt = gv_tensor_4d(ob, GV_DTYPE_F32, 1, qn, H, D), lbt = gv_tensor_4d(lb, GV_DTYPE_F32, 1, H, qn, 0),
                     ot = gv_tensor_4d((float *)o->data + q0 * H * D, GV_DTYPE_F32, 1, qn, H, D),
                     lt = gv_tensor_4d((float *)lse->data + q0, GV_DTYPE_F32, 1, H, T, 0);
    gv_attention_fwd(be, &obt, &lbt, &qb, &kb, &vb, 0);
    gv_attention_merge(be, &ot, &lt, &obt, &lbt);
  }
  gv_attention_bwd(be, dq, dk, dv, o, q, k, v, o, lse, 1, 0);
  for (int s = 1; s < P; s++) {
    int early = (r - s + P) % P < r;
    int64_t q0 = early ? 0 : c, qn = early ? T : c, kn = early ? c : T;
    struct gv_tensor qb = gv_tensor_4d((float *)q->data + q0 * H * D, GV_DTYPE_F32, 1, qn, H, D),
                     kb = gv_tensor_4d(k->data, GV_DTYPE_F32, 1, kn, H, D), vb = gv_tensor_4d(v->data, GV_DTYPE_F32, 1, kn, H, D),
                     ot = gv_tensor_4d((float *)o->data + q0 * H * D, GV_DTYPE_F32, 1, qn, H, D),
                     dqb = gv_tensor_4d((float *)dq->data + q0 * H * D, GV_DTYPE_F32, 1, qn, H, D),
                     dkb = gv_tensor_4d(dk->data, GV_DTYPE_F32, 1, kn, H, D), dvb = gv_tensor_4d(dv->data, GV_DTYPE_F32, 1, kn, H, D),
                     lt = gv_tensor_4d(lb, GV_DTYPE_F32, 1, H, qn, 0);
    gv_attention_bwd(be, &dqb, &dkb, &dvb, &ot, &qb, &kb, &vb, &ot, &lt, 0, GV_ACC_DX);
  }
}

/* The ring's exchanges with nothing to hide them: forward P-1 K/V blocks, backward P-1 K/V
 * blocks and P dK/dV blocks. */
static void transfer_only(struct gv_comm *w, float *a, float *b, size_t n)
{
  int r = gv_comm_rank(w), P = gv_comm_size(w);
  for (int i = 0; i < 3 * P - 2; i++)
    gv_comm_wait(w, gv_comm_isendrecv(w, a, n, (r + 1) % P, b, n, (r + P - 1) % P, GV_DTYPE_F32, 9));
}

int main(int argc, char **argv)
{
  struct gv_comm *w = gv_comm_init_world(&argc, &argv, "mpi");
  int r = gv_comm_rank(w), P = gv_comm_size(w);
  int64_t Tg = argc > 1 ? atoll(argv[1]) : 8192, H = argc > 2 ? atoll(argv[2]) : 8, D = argc > 3 ? atoll(argv[3]) : 64;
  int reps = argc > 4 ? atoi(argv[4]) : 5;
  if (Tg % (2 * P)) {
    if (!r) fprintf(stderr, "bench_ring: T=%lld is not divisible by 2 x %d\n", (long long)Tg, P);
    gv_comm_free_world(&w);
    return 2;
  }
  int64_t T = Tg / P, n = T * H * D;
  struct gv_backend be;
  gv_backend_init(&be, "cpu", 0);
  size_t ws = gv_backend_workspace_bytes(&be, 1, T, T, H, H, D);
  void *work = malloc(ws);
  gv_backend_set_workspace(&be, work, ws);
  float *q = mt_fill_rand(n, 1), *k = mt_fill_rand(n, 2), *v = mt_fill_rand(n, 3), *o = calloc((size_t)n, 4), *lse = calloc((size_t)(H * T), 4);
  float *dq = calloc((size_t)n, 4), *dk = calloc((size_t)n, 4), *dv = calloc((size_t)n, 4), *ob = calloc((size_t)n, 4),
        *lb = calloc((size_t)(H * T), 4);
  void *scratch = malloc(gv_ring_attention_scratch_bytes(1, T, H, H, D, 1));
  float *xa = calloc((size_t)(2 * n), 4), *xb = calloc((size_t)(2 * n), 4);
  struct gv_tensor tq = gv_tensor_4d(q, GV_DTYPE_F32, 1, T, H, D), tk = gv_tensor_4d(k, GV_DTYPE_F32, 1, T, H, D),
                   tv = gv_tensor_4d(v, GV_DTYPE_F32, 1, T, H, D), to = gv_tensor_4d(o, GV_DTYPE_F32, 1, T, H, D),
                   tl = gv_tensor_4d(lse, GV_DTYPE_F32, 1, H, T, 0), tdq = gv_tensor_4d(dq, GV_DTYPE_F32, 1, T, H, D),
                   tdk = gv_tensor_4d(dk, GV_DTYPE_F32, 1, T, H, D), tdv = gv_tensor_4d(dv, GV_DTYPE_F32, 1, T, H, D);
  double *t_ring = calloc((size_t)reps, sizeof(double)), *t_comp = calloc((size_t)reps, sizeof(double)),
         *t_xfer = calloc((size_t)reps, sizeof(double)), *t_wait = calloc((size_t)reps, sizeof(double));
  for (int i = 0; i < reps + 1; i++) { /* the first round warms up and is not counted */
    gv_comm_barrier(w);
    wait_clock.waited = 0;
    double t0 = MPI_Wtime();
    gv_ring_attention_fwd(w, &be, &to, &tl, &tq, &tk, &tv, scratch);
    gv_ring_attention_bwd(w, &be, &tdq, &tdk, &tdv, &to, &tq, &tk, &tv, &to, &tl, scratch, 0);
    double t1 = MPI_Wtime(), waited = wait_clock.waited;
    gv_comm_barrier(w);
    double t2 = MPI_Wtime();
    compute_only(&be, r, P, &tq, &tk, &tv, &to, &tl, &tdq, &tdk, &tdv, ob, lb);
    double t3 = MPI_Wtime();
    gv_comm_barrier(w);
    double t4 = MPI_Wtime();
    if (P > 1)
      transfer_only(w, xa, xb, (size_t)(2 * n));
    double t5 = MPI_Wtime();
    if (i) {
      t_ring[i - 1] = t1 - t0;
      t_comp[i - 1] = t3 - t2;
      t_xfer[i - 1] = t5 - t4;
      t_wait[i - 1] = waited;
    }
  }
  double m[4] = {median(t_ring, reps), median(t_comp, reps), median(t_xfer, reps), median(t_wait, reps)};
  gv_comm_all_reduce(w, m, 4, GV_DTYPE_F64, GV_REDUCE_MAX);
  double hidden = P > 1 && m[2] > 0 ? 1.0 - m[3] / m[2] : 1.0, by_diff = P > 1 && m[2] > 0 ? 1.0 - (m[0] - m[1]) / m[2] : 1.0;
  hidden = hidden < 0 ? 0 : hidden > 1 ? 1 : hidden;
  by_diff = by_diff < 0 ? 0 : by_diff > 1 ? 1 : by_diff;
  if (!r)
    printf("ring attention T=%lld H=%lld D=%lld cp=%d: fwd+bwd %.1f ms (waiting %.1f ms), compute alone %.1f ms, "
           "transfer alone %.1f ms (%.1f MiB per block): hidden %.0f%% (by the difference %.0f%%)\n", (long long)Tg,
           (long long)H, (long long)D, P, 1e3 * m[0], 1e3 * m[3], 1e3 * m[1], 1e3 * m[2], 8.0 * (double)n / 1048576.0,
           100 * hidden, 100 * by_diff);
  gv_backend_set_workspace(&be, NULL, 0);
  gv_backend_free(&be);
  float *all[] = {q, k, v, o, lse, dq, dk, dv, ob, lb, xa, xb};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
  free(scratch);
  free(work);
  free(t_ring);
  free(t_comp);
  free(t_xfer);
  free(t_wait);
  gv_comm_free_world(&w);
  return 0;
}
