/* nccl.c - the NCCL collective backend (GPU ranks, device buffers), bootstrapped over MPI.
 *
 * The world is MPI's (rank, size, the local rank that picks the GPU); every group, the
 * world included, is an MPI communicator (MPI_Comm_split; used for the bootstrap and the
 * barrier) plus an NCCL communicator over the same ranks: group rank 0 makes the unique
 * id, MPI_Bcast hands it to the others, ncclCommInitRank joins them. Collectives of every
 * group run on one communication stream owned by the world; gv_comm_set_stream orders it
 * with the kernel backend's compute stream through two events (see gvrt_comm.h). Every
 * NCCL, CUDA and MPI call goes through a check macro whose fatal path aborts the live
 * NCCL communicators (the gv_fatal hook) and then the MPI job; host waits poll
 * ncclCommGetAsyncError, so a broken peer ends the job instead of hanging it. Small host
 * values (gv_comm_all_reduce_host, gv_comm_broadcast_host: a loss, a norm, a token) go
 * over the group's MPI communicator instead: they never touch the device.
 *
 * Not counted by the memory plan yet: the device memory NCCL allocates per communicator
 * (buffers, proxies; NCCL_BUFFSIZE and the channel count decide it). */
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_impl.h"

#define GV_NCCL_CHECK(call) do { ncclResult_t r_ = (call); if (r_ != ncclSuccess) \
      gv_fatal(__FILE__, __LINE__, #call, "nccl", ncclGetErrorString(r_)); } while (0)
/* cuda_impl.h is C++; this is the same macro for C. */
#define NC_CUDA_CHECK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) \
      gv_fatal(__FILE__, __LINE__, #call, "cuda", cudaGetErrorString(e_)); } while (0)

struct nccl_world;

/* One group (the world's own group too): its MPI and NCCL communicators. */
struct nccl_group {
  struct nccl_world *world;
  MPI_Comm mpi;
  ncclComm_t comm;
  int rank, size;
};

struct nccl_world {
  struct nccl_group self;       /* the world group; must stay first (impl of the world) */
  int device;
  int local;                    /* index among the ranks of this node */
  cudaStream_t stream;          /* the communication stream */
  cudaStream_t compute;         /* set by gv_comm_set_stream; NULL: synchronous calls */
  cudaEvent_t compute_ready;    /* recorded on compute, waited for by stream */
  cudaEvent_t comm_done;        /* recorded on stream, waited for by compute */
  struct nccl_group **live;     /* every group with an NCCL communicator (for abort) */
  int nlive, cap;
};

static ncclDataType_t nccl_type(enum gv_dtype t)
{
  switch (t) {
  case GV_DTYPE_F32: return ncclFloat32;
  case GV_DTYPE_BF16: return ncclBfloat16;
  case GV_DTYPE_I32: return ncclInt32;
  case GV_DTYPE_F64: return ncclFloat64;
  }
  gv_fatalf(__FILE__, __LINE__, "nccl_type", "gvrt", "nccl backend: unknown dtype %d", (int)t);
}

static struct nccl_group *group_of(void *impl) { return impl; }

/* ---- live communicators and the abort path ---- */

static void live_add(struct nccl_world *w, struct nccl_group *g)
{
  if (w->nlive == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 8;
    w->live = realloc(w->live, sizeof *w->live * (size_t)w->cap);
    GV_CHECK(w->live != NULL, "out of host memory");
  }
  w->live[w->nlive++] = g;
}

static void live_remove(struct nccl_world *w, struct nccl_group *g)
{
  for (int i = 0; i < w->nlive; i++)
    if (w->live[i] == g) {
      w->live[i] = w->live[--w->nlive];
      return;
    }
}

/* No checks here: this runs on the way out of a failure (the gv_fatal hook). */
static void abort_live(struct nccl_world *w)
{
  for (int i = 0; i < w->nlive; i++)
    ncclCommAbort(w->live[i]->comm);
  w->nlive = 0;
}

static void fatal_hook(void *arg) { abort_live(arg); }

static void nccl_abort(void *impl, int code)
{
  gv_fatal_set_hook(NULL, NULL);
  abort_live(impl);
  MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
  exit(code ? code : 1);
}

/* ---- groups ---- */

/* Collective over g->mpi: rank 0 makes the id, MPI_Bcast shares it, all join. */
static void group_connect(struct nccl_world *w, struct nccl_group *g)
{
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  g->world = w;
  GV_MPI_CHECK(MPI_Comm_set_errhandler(g->mpi, MPI_ERRORS_RETURN));
  GV_MPI_CHECK(MPI_Comm_rank(g->mpi, &g->rank));
  GV_MPI_CHECK(MPI_Comm_size(g->mpi, &g->size));
  if (g->rank == 0)
    GV_NCCL_CHECK(ncclGetUniqueId(&id));
  GV_MPI_CHECK(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, g->mpi));
  NC_CUDA_CHECK(cudaSetDevice(w->device));
  GV_NCCL_CHECK(ncclCommInitRank(&g->comm, g->size, id, g->rank));
  live_add(w, g);
}

static void group_release(struct nccl_group *g)
{
  NC_CUDA_CHECK(cudaStreamSynchronize(g->world->stream));
  live_remove(g->world, g);
  GV_NCCL_CHECK(ncclCommFinalize(g->comm));
  GV_NCCL_CHECK(ncclCommDestroy(g->comm));
  GV_MPI_CHECK(MPI_Comm_free(&g->mpi));
}

/* This rank's index among the ranks of its node: the GPU it drives is that % count. */
static int local_rank(MPI_Comm world, int rank)
{
  MPI_Comm node;
  int local = 0;
  GV_MPI_CHECK(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
  GV_MPI_CHECK(MPI_Comm_rank(node, &local));
  GV_MPI_CHECK(MPI_Comm_free(&node));
  return local;
}

static void *nccl_init(int *argc, char ***argv, int *rank, int *size)
{
  int inited = 0, ndev = 0;
  GV_MPI_CHECK(MPI_Initialized(&inited));
  if (!inited)
    GV_MPI_CHECK(MPI_Init(argc, argv));
  GV_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  struct nccl_world *w = calloc(1, sizeof *w);
  GV_CHECK(w != NULL, "out of host memory");
  GV_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &w->self.mpi));
  GV_MPI_CHECK(MPI_Comm_rank(w->self.mpi, rank));
  GV_MPI_CHECK(MPI_Comm_size(w->self.mpi, size));
  gv_log_set_rank(*rank, *size);
  gv_fatal_set_hook(fatal_hook, w);
  NC_CUDA_CHECK(cudaGetDeviceCount(&ndev));
  GV_CHECK(ndev > 0, "the nccl collective backend needs a GPU on every rank");
  w->local = local_rank(w->self.mpi, *rank);
  w->device = w->local % ndev;
  NC_CUDA_CHECK(cudaSetDevice(w->device));
  NC_CUDA_CHECK(cudaStreamCreateWithFlags(&w->stream, cudaStreamNonBlocking));
  NC_CUDA_CHECK(cudaEventCreateWithFlags(&w->compute_ready, cudaEventDisableTiming));
  NC_CUDA_CHECK(cudaEventCreateWithFlags(&w->comm_done, cudaEventDisableTiming));
  group_connect(w, &w->self);
  gv_log(GV_LOG_DEBUG, "nccl backend: rank %d/%d on device %d", *rank, *size, w->device);
  return w;
}

static void nccl_finalize(void *impl)
{
  struct nccl_world *w = impl;
  group_release(&w->self);
  NC_CUDA_CHECK(cudaEventDestroy(w->compute_ready));
  NC_CUDA_CHECK(cudaEventDestroy(w->comm_done));
  NC_CUDA_CHECK(cudaStreamDestroy(w->stream));
  gv_fatal_set_hook(NULL, NULL);
  free(w->live);
  free(w);
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin)
    MPI_Finalize();
}

static void *nccl_split(void *impl, int color, int key, int *rank, int *size)
{
  struct nccl_world *w = impl;
  struct nccl_group *g = calloc(1, sizeof *g);
  GV_CHECK(g != NULL, "out of host memory");
  GV_MPI_CHECK(MPI_Comm_split(w->self.mpi, color, key, &g->mpi));
  group_connect(w, g);
  *rank = g->rank;
  *size = g->size;
  return g;
}

static void nccl_free_group(void *impl)
{
  group_release(group_of(impl));
  free(impl);
}

static void nccl_set_stream(void *impl, void *compute_stream)
{
  struct nccl_world *w = impl;
  w->compute = (cudaStream_t)compute_stream;
}

/* ---- stream ordering around every call ---- */

/* The stream a call is queued on, after the work it depends on. */
static cudaStream_t begin(struct nccl_group *g)
{
  struct nccl_world *w = g->world;
  NC_CUDA_CHECK(cudaSetDevice(w->device));
  if (w->compute) {
    NC_CUDA_CHECK(cudaEventRecord(w->compute_ready, w->compute));
    NC_CUDA_CHECK(cudaStreamWaitEvent(w->stream, w->compute_ready, 0));
  } else {
    NC_CUDA_CHECK(cudaDeviceSynchronize());
  }
  return w->stream;
}

/* Waits for the communication stream while polling g's asynchronous NCCL error (a failed
 * peer, a network error), so a broken job ends through gv_fatal instead of hanging. */
static void wait_stream(struct nccl_group *g)
{
  for (;;) {
    cudaError_t e = cudaStreamQuery(g->world->stream);
    if (e == cudaSuccess)
      return;
    if (e != cudaErrorNotReady)
      gv_fatal(__FILE__, __LINE__, "cudaStreamQuery(stream)", "cuda", cudaGetErrorString(e));
    ncclResult_t async = ncclSuccess;
    GV_NCCL_CHECK(ncclCommGetAsyncError(g->comm, &async));
    if (async != ncclSuccess)
      gv_fatal(__FILE__, __LINE__, "ncclCommGetAsyncError(comm)", "nccl", ncclGetErrorString(async));
    sched_yield();
  }
}

static void end(struct nccl_group *g)
{
  struct nccl_world *w = g->world;
  if (w->compute) {
    NC_CUDA_CHECK(cudaEventRecord(w->comm_done, w->stream));
    NC_CUDA_CHECK(cudaStreamWaitEvent(w->compute, w->comm_done, 0));
  } else {
    wait_stream(g);
  }
}

/* ---- collectives ---- */

static void nccl_all_reduce(void *impl, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op)
{
  struct nccl_group *g = group_of(impl);
  cudaStream_t s = begin(g);
  GV_NCCL_CHECK(ncclAllReduce(buf, buf, n, nccl_type(t), op == GV_REDUCE_MAX ? ncclMax : ncclSum, g->comm, s));
  end(g);
}

/* in == out is gvrt's in-place form (the block lands at the start): NCCL's in-place form
 * (out = in + rank * n), then a copy of the block to the start. */
static void nccl_reduce_scatter(void *impl, void *out, const void *in, size_t n, enum gv_dtype t)
{
  struct nccl_group *g = group_of(impl);
  size_t block = n * gv_dtype_size(t);
  cudaStream_t s = begin(g);
  if (out != in) {
    GV_NCCL_CHECK(ncclReduceScatter(in, out, n, nccl_type(t), ncclSum, g->comm, s));
  } else {
    char *mine = (char *)out + (size_t)g->rank * block;
    GV_NCCL_CHECK(ncclReduceScatter(in, mine, n, nccl_type(t), ncclSum, g->comm, s));
    if (g->rank)
      NC_CUDA_CHECK(cudaMemcpyAsync(out, mine, block, cudaMemcpyDeviceToDevice, s));
  }
  end(g);
}

/* In place when in is this rank's block of out: NCCL's own in-place form. */
static void nccl_all_gather(void *impl, void *out, const void *in, size_t n, enum gv_dtype t)
{
  struct nccl_group *g = group_of(impl);
  cudaStream_t s = begin(g);
  GV_NCCL_CHECK(ncclAllGather(in, out, n, nccl_type(t), g->comm, s));
  end(g);
}

/* One send and one receive per peer, fused into one NCCL group. */
static void nccl_all_to_all(void *impl, void *out, const void *in, size_t n, enum gv_dtype t)
{
  struct nccl_group *g = group_of(impl);
  size_t block = n * gv_dtype_size(t);
  GV_CHECK(out != in, "nccl all_to_all: out and in must be different buffers");
  cudaStream_t s = begin(g);
  GV_NCCL_CHECK(ncclGroupStart());
  for (int q = 0; q < g->size; q++) {
    GV_NCCL_CHECK(ncclSend((const char *)in + (size_t)q * block, n, nccl_type(t), q, g->comm, s));
    GV_NCCL_CHECK(ncclRecv((char *)out + (size_t)q * block, n, nccl_type(t), q, g->comm, s));
  }
  GV_NCCL_CHECK(ncclGroupEnd());
  end(g);
}

/* Variable counts: one send and one receive per peer with a nonzero count, one NCCL group. */
static void nccl_all_to_all_v(void *impl, void *out, const size_t *recv, const void *in, const size_t *send,
                              enum gv_dtype t)
{
  struct nccl_group *g = group_of(impl);
  size_t es = gv_dtype_size(t), so = 0, ro = 0;
  cudaStream_t s = begin(g);
  GV_NCCL_CHECK(ncclGroupStart());
  for (int q = 0; q < g->size; q++) {
    if (send[q])
      GV_NCCL_CHECK(ncclSend((const char *)in + so * es, send[q], nccl_type(t), q, g->comm, s));
    if (recv[q])
      GV_NCCL_CHECK(ncclRecv((char *)out + ro * es, recv[q], nccl_type(t), q, g->comm, s));
    so += send[q];
    ro += recv[q];
  }
  GV_NCCL_CHECK(ncclGroupEnd());
  end(g);
}

static void nccl_broadcast(void *impl, void *buf, size_t n, enum gv_dtype t, int root)
{
  struct nccl_group *g = group_of(impl);
  cudaStream_t s = begin(g);
  GV_NCCL_CHECK(ncclBroadcast(buf, buf, n, nccl_type(t), root, g->comm, s));
  end(g);
}

/* NCCL has no tags: messages between two ranks of a group arrive in the order sent. */
static void nccl_send(void *impl, const void *buf, size_t n, enum gv_dtype t, int peer, int tag)
{
  struct nccl_group *g = group_of(impl);
  (void)tag;
  cudaStream_t s = begin(g);
  GV_NCCL_CHECK(ncclSend(buf, n, nccl_type(t), peer, g->comm, s));
  end(g);
}

static void nccl_recv(void *impl, void *buf, size_t n, enum gv_dtype t, int peer, int tag)
{
  struct nccl_group *g = group_of(impl);
  (void)tag;
  cudaStream_t s = begin(g);
  GV_NCCL_CHECK(ncclRecv(buf, n, nccl_type(t), peer, g->comm, s));
  end(g);
}

static void nccl_sendrecv(void *impl, const void *sbuf, size_t sn, int dst, void *rbuf, size_t rn, int src,
                          enum gv_dtype t, int tag)
{
  struct nccl_group *g = group_of(impl);
  (void)tag;
  cudaStream_t s = begin(g);
  GV_NCCL_CHECK(ncclGroupStart());
  GV_NCCL_CHECK(ncclSend(sbuf, sn, nccl_type(t), dst, g->comm, s));
  GV_NCCL_CHECK(ncclRecv(rbuf, rn, nccl_type(t), src, g->comm, s));
  GV_NCCL_CHECK(ncclGroupEnd());
  end(g);
}

/* A non-blocking send and receive: queued like sendrecv, but instead of ordering the compute
 * stream after them now, an event marks their end; nccl_wait orders the compute stream after
 * that event (or waits for it on the host), so kernels queued meanwhile overlap the transfer. */
struct nccl_request {
  struct nccl_group *g;
  cudaEvent_t done;
};

static void *nccl_isendrecv(void *impl, const void *sbuf, size_t sn, int dst, void *rbuf, size_t rn, int src,
                            enum gv_dtype t, int tag)
{
  struct nccl_group *g = group_of(impl);
  struct nccl_request *req = calloc(1, sizeof *req);
  GV_CHECK(req != NULL, "out of host memory");
  (void)tag;
  req->g = g;
  cudaStream_t s = begin(g);
  GV_NCCL_CHECK(ncclGroupStart());
  GV_NCCL_CHECK(ncclSend(sbuf, sn, nccl_type(t), dst, g->comm, s));
  GV_NCCL_CHECK(ncclRecv(rbuf, rn, nccl_type(t), src, g->comm, s));
  GV_NCCL_CHECK(ncclGroupEnd());
  NC_CUDA_CHECK(cudaEventCreateWithFlags(&req->done, cudaEventDisableTiming));
  NC_CUDA_CHECK(cudaEventRecord(req->done, s));
  return req;
}

static void nccl_wait(void *request)
{
  struct nccl_request *req = request;
  struct nccl_world *w = req->g->world;
  NC_CUDA_CHECK(cudaSetDevice(w->device));
  if (w->compute)
    NC_CUDA_CHECK(cudaStreamWaitEvent(w->compute, req->done, 0));
  else
    wait_stream(req->g);
  NC_CUDA_CHECK(cudaEventDestroy(req->done));
  free(req);
}

/* A host-side barrier: this rank's queued communication is done, then MPI_Barrier. */
static void nccl_barrier(void *impl)
{
  struct nccl_group *g = group_of(impl);
  NC_CUDA_CHECK(cudaSetDevice(g->world->device));
  wait_stream(g);
  GV_MPI_CHECK(MPI_Barrier(g->mpi));
}

/* ---- host buffers: small host values over the group's MPI communicator ---- */

static MPI_Datatype host_type(enum gv_dtype t)
{
  switch (t) {
  case GV_DTYPE_F32: return MPI_FLOAT;
  case GV_DTYPE_I32: return MPI_INT32_T;
  case GV_DTYPE_F64: return MPI_DOUBLE;
  case GV_DTYPE_BF16: break;
  }
  gv_fatalf(__FILE__, __LINE__, "host_type", "gvrt", "nccl backend: host collectives take f32, i32 or f64, not %s",
            gv_dtype_name(t));
}

static void nccl_all_reduce_host(void *impl, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op)
{
  GV_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, host_type(t), op == GV_REDUCE_MAX ? MPI_MAX : MPI_SUM,
                             group_of(impl)->mpi));
}

static void nccl_broadcast_host(void *impl, void *buf, size_t n, enum gv_dtype t, int root)
{
  GV_MPI_CHECK(MPI_Bcast(buf, (int)n, host_type(t), root, group_of(impl)->mpi));
}

static int nccl_local_rank(void *impl) { return ((struct nccl_world *)impl)->local; }

const struct gv_comm_ops gv_comm_nccl_ops = {
  .name = "nccl", .init_world = nccl_init, .finalize = nccl_finalize, .abort_job = nccl_abort,
  .split = nccl_split, .free_group = nccl_free_group, .all_reduce = nccl_all_reduce,
  .reduce_scatter = nccl_reduce_scatter, .all_gather = nccl_all_gather, .all_to_all = nccl_all_to_all,
  .all_to_all_v = nccl_all_to_all_v,
  .broadcast = nccl_broadcast, .send = nccl_send, .recv = nccl_recv, .sendrecv = nccl_sendrecv,
  .isendrecv = nccl_isendrecv, .wait = nccl_wait,
  .barrier = nccl_barrier, .set_stream = nccl_set_stream, .device_buffers = 1,
  .all_reduce_host = nccl_all_reduce_host, .broadcast_host = nccl_broadcast_host, .local_rank = nccl_local_rank,
};
