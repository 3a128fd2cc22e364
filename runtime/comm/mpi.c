/* mpi.c - the MPI collective backend (CPU ranks, host buffers). Communicators use
 * MPI_ERRORS_RETURN so that every failure comes back through GV_MPI_CHECK, whose fatal path
 * prints the call with the rank and aborts the whole job: no peer is left blocked. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_impl.h"

static MPI_Datatype mpi_type(enum gv_dtype t)
{
  switch (t) {
  case GV_DTYPE_F32: return MPI_FLOAT;
  case GV_DTYPE_I32: return MPI_INT32_T;
  case GV_DTYPE_F64: return MPI_DOUBLE;
  case GV_DTYPE_BF16: return MPI_UINT16_T; /* moved as bits; reductions convert (see below) */
  }
  return MPI_BYTE;
}

static MPI_Comm *comm_of(void *impl) { return impl; }

static void *mpi_init(int *argc, char ***argv, int *rank, int *size)
{
  int inited = 0;
  GV_MPI_CHECK(MPI_Initialized(&inited));
  if (!inited)
    GV_MPI_CHECK(MPI_Init(argc, argv));
  MPI_Comm *w = malloc(sizeof *w);
  GV_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, w));
  GV_MPI_CHECK(MPI_Comm_set_errhandler(*w, MPI_ERRORS_RETURN));
  GV_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  GV_MPI_CHECK(MPI_Comm_rank(*w, rank));
  GV_MPI_CHECK(MPI_Comm_size(*w, size));
  return w;
}

static void mpi_finalize(void *impl)
{
  MPI_Comm *w = comm_of(impl);
  GV_MPI_CHECK(MPI_Comm_free(w));
  free(w);
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin)
    MPI_Finalize();
}

static void mpi_abort(void *impl, int code)
{
  MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
  exit(code ? code : 1);
}

static void *mpi_split(void *impl, int color, int key, int *rank, int *size)
{
  MPI_Comm *g = malloc(sizeof *g);
  GV_MPI_CHECK(MPI_Comm_split(*comm_of(impl), color, key, g));
  GV_MPI_CHECK(MPI_Comm_set_errhandler(*g, MPI_ERRORS_RETURN));
  GV_MPI_CHECK(MPI_Comm_rank(*g, rank));
  GV_MPI_CHECK(MPI_Comm_size(*g, size));
  return g;
}

static void mpi_free_group(void *impl)
{
  MPI_Comm *g = comm_of(impl);
  GV_MPI_CHECK(MPI_Comm_free(g));
  free(g);
}

/* bf16 sums: widen to fp32, reduce, narrow with round-to-nearest-even. */
static float bf16_to_f32(uint16_t h)
{
  union { uint32_t u; float f; } v = {.u = (uint32_t)h << 16};
  return v.f;
}

static uint16_t f32_to_bf16(float f)
{
  union { uint32_t u; float f; } v = {.f = f};
  uint32_t rounding = 0x7fffu + ((v.u >> 16) & 1u);
  return (uint16_t)((v.u + rounding) >> 16);
}

static void mpi_all_reduce(void *impl, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op)
{
  MPI_Op mop = op == GV_REDUCE_MAX ? MPI_MAX : MPI_SUM;
  if (t != GV_DTYPE_BF16) {
    GV_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(t), mop, *comm_of(impl)));
    return;
  }
  float *tmp = malloc(n * sizeof *tmp);
  uint16_t *h = buf;
  for (size_t i = 0; i < n; i++)
    tmp[i] = bf16_to_f32(h[i]);
  GV_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, tmp, (int)n, MPI_FLOAT, mop, *comm_of(impl)));
  for (size_t i = 0; i < n; i++)
    h[i] = f32_to_bf16(tmp[i]);
  free(tmp);
}

static void mpi_reduce_scatter(void *impl, void *out, const void *in, size_t n, enum gv_dtype t)
{
  if (t == GV_DTYPE_BF16) { /* rare path: all-reduce a copy, keep our block */
    int rank, size;
    MPI_Comm_rank(*comm_of(impl), &rank);
    MPI_Comm_size(*comm_of(impl), &size);
    uint16_t *tmp = malloc(n * (size_t)size * 2);
    memcpy(tmp, in, n * (size_t)size * 2);
    mpi_all_reduce(impl, tmp, n * (size_t)size, t, GV_REDUCE_SUM);
    memcpy(out, tmp + n * (size_t)rank, n * 2);
    free(tmp);
    return;
  }
  GV_MPI_CHECK(MPI_Reduce_scatter_block(in == out ? MPI_IN_PLACE : in, out, (int)n, mpi_type(t), MPI_SUM,
                                     *comm_of(impl)));
}

static void mpi_all_gather(void *impl, void *out, const void *in, size_t n, enum gv_dtype t)
{
  int rank;
  GV_MPI_CHECK(MPI_Comm_rank(*comm_of(impl), &rank));
  const void *send = (const char *)in == (const char *)out + (size_t)rank * n * gv_dtype_size(t) ? MPI_IN_PLACE : in;
  GV_MPI_CHECK(MPI_Allgather(send, (int)n, mpi_type(t), out, (int)n, mpi_type(t), *comm_of(impl)));
}

static void mpi_all_to_all(void *impl, void *out, const void *in, size_t n, enum gv_dtype t)
{
  GV_MPI_CHECK(MPI_Alltoall(in, (int)n, mpi_type(t), out, (int)n, mpi_type(t), *comm_of(impl)));
}

/* MPI's counts and displacements are ints: a larger exchange is refused, naming it. */
static int *mpi_counts(const size_t *n, int size, int *displ, const char *what)
{
  int *c = malloc(sizeof(int) * (size_t)size);
  GV_CHECK(c != NULL, "mpi all_to_all_v: out of memory");
  size_t at = 0;
  for (int j = 0; j < size; j++) {
    GV_CHECK(n[j] <= INT_MAX && at <= INT_MAX, "mpi all_to_all_v: %s %zu elements at %zu for rank %d exceed "
             "MPI's int counts", what, n[j], at, j);
    c[j] = (int)n[j];
    displ[j] = (int)at;
    at += n[j];
  }
  return c;
}

static void mpi_all_to_all_v(void *impl, void *out, const size_t *recv, const void *in, const size_t *send,
                             enum gv_dtype t)
{
  int size;
  GV_MPI_CHECK(MPI_Comm_size(*comm_of(impl), &size));
  int *sd = malloc(sizeof(int) * (size_t)size), *rd = malloc(sizeof(int) * (size_t)size);
  GV_CHECK(sd && rd, "mpi all_to_all_v: out of memory");
  int *sc = mpi_counts(send, size, sd, "send"), *rc = mpi_counts(recv, size, rd, "receive");
  GV_MPI_CHECK(MPI_Alltoallv(in, sc, sd, mpi_type(t), out, rc, rd, mpi_type(t), *comm_of(impl)));
  free(sc);
  free(rc);
  free(sd);
  free(rd);
}

static void mpi_broadcast(void *impl, void *buf, size_t n, enum gv_dtype t, int root)
{
  GV_MPI_CHECK(MPI_Bcast(buf, (int)n, mpi_type(t), root, *comm_of(impl)));
}

static void mpi_send(void *impl, const void *buf, size_t n, enum gv_dtype t, int peer, int tag)
{
  GV_MPI_CHECK(MPI_Send(buf, (int)n, mpi_type(t), peer, tag, *comm_of(impl)));
}

static void mpi_recv(void *impl, void *buf, size_t n, enum gv_dtype t, int peer, int tag)
{
  GV_MPI_CHECK(MPI_Recv(buf, (int)n, mpi_type(t), peer, tag, *comm_of(impl), MPI_STATUS_IGNORE));
}

static void mpi_sendrecv(void *impl, const void *sbuf, size_t sn, int dst, void *rbuf, size_t rn, int src,
                         enum gv_dtype t, int tag)
{
  GV_MPI_CHECK(MPI_Sendrecv(sbuf, (int)sn, mpi_type(t), dst, tag, rbuf, (int)rn, mpi_type(t), src, tag, *comm_of(impl),
                         MPI_STATUS_IGNORE));
}

static void mpi_barrier(void *impl)
{
  GV_MPI_CHECK(MPI_Barrier(*comm_of(impl)));
}

/* A non-blocking operation: one or two MPI requests, completed together by mpi_wait. */
struct mpi_request {
  int n;
  MPI_Request r[2];
};

static struct mpi_request *new_request(void)
{
  struct mpi_request *req = calloc(1, sizeof *req);
  GV_CHECK(req != NULL, "out of host memory");
  return req;
}

/* Non-blocking all-reduce (f32/f64/i32; bf16 goes through the blocking path's conversion). */
static void *mpi_iall_reduce(void *impl, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op)
{
  if (t == GV_DTYPE_BF16) {
    mpi_all_reduce(impl, buf, n, t, op);
    return NULL;
  }
  struct mpi_request *req = new_request();
  req->n = 1;
  GV_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(t), op == GV_REDUCE_MAX ? MPI_MAX : MPI_SUM,
                              *comm_of(impl), &req->r[0]));
  return req;
}

/* Non-blocking send to dst and receive from src (the receive posted first). */
static void *mpi_isendrecv(void *impl, const void *sbuf, size_t sn, int dst, void *rbuf, size_t rn, int src,
                           enum gv_dtype t, int tag)
{
  struct mpi_request *req = new_request();
  req->n = 2;
  GV_MPI_CHECK(MPI_Irecv(rbuf, (int)rn, mpi_type(t), src, tag, *comm_of(impl), &req->r[0]));
  GV_MPI_CHECK(MPI_Isend(sbuf, (int)sn, mpi_type(t), dst, tag, *comm_of(impl), &req->r[1]));
  return req;
}

static void mpi_wait(void *request)
{
  struct mpi_request *req = request;
  GV_MPI_CHECK(MPI_Waitall(req->n, req->r, MPI_STATUSES_IGNORE));
  free(req);
}

/* Index among the world's ranks sharing this node's memory (collective). */
static int mpi_local_rank(void *impl)
{
  MPI_Comm node;
  int rank = 0, local = 0;
  GV_MPI_CHECK(MPI_Comm_rank(*comm_of(impl), &rank));
  GV_MPI_CHECK(MPI_Comm_split_type(*comm_of(impl), MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
  GV_MPI_CHECK(MPI_Comm_rank(node, &local));
  GV_MPI_CHECK(MPI_Comm_free(&node));
  return local;
}

const struct gv_comm_ops gv_comm_mpi_ops = {
  .name = "mpi", .init_world = mpi_init, .finalize = mpi_finalize, .abort_job = mpi_abort,
  .split = mpi_split, .free_group = mpi_free_group, .all_reduce = mpi_all_reduce,
  .reduce_scatter = mpi_reduce_scatter, .all_gather = mpi_all_gather, .all_to_all = mpi_all_to_all,
  .all_to_all_v = mpi_all_to_all_v,
  .broadcast = mpi_broadcast, .send = mpi_send, .recv = mpi_recv, .sendrecv = mpi_sendrecv,
  .barrier = mpi_barrier, .iall_reduce = mpi_iall_reduce, .wait = mpi_wait,
  .isendrecv = mpi_isendrecv, .local_rank = mpi_local_rank,
};
