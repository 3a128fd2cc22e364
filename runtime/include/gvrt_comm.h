/* gvrt_comm.h - collectives behind one interface, and the rank layout of a plan.
 *
 * A struct gv_comm is a group of ranks with a backend: "mpi" (CPU ranks; host buffers),
 * "nccl" (GPU ranks; device buffers, bootstrapped over MPI; see gv_comm_set_stream) or
 * "self" (a world of one, no MPI needed).
 * Groups are made from a partition of the world (every rank passes the same array of
 * colours, one per world rank) and cached by that partition, so all layers with the same
 * layout share one communicator, never one per layer.
 *
 * Rank layout (Galvatron's): the pipeline degree is global and stage s owns the contiguous
 * world ranks [s*W/pp, (s+1)*W/pp). Inside a stage a layer splits those ranks into
 * tp x dp: tp_consec = 1 puts a tp group on adjacent ranks (offset r: tp index r % tp,
 * dp index r / tp); tp_consec = 0 strides it by dp (tp index r / dp, dp index r % dp).
 * Ulysses sequence-parallel groups are laid out as tp groups. */
#ifndef GVRT_COMM_H
#define GVRT_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "gvrt.h"

#ifdef __cplusplus
extern "C" {
#endif

enum gv_reduce { GV_REDUCE_SUM, GV_REDUCE_MAX };

/* Groups a rank belongs to under a layer's layout. */
enum gv_group_kind {
  GV_GROUP_TP,      /* tensor (or Ulysses sequence) parallel group */
  GV_GROUP_DP,      /* data parallel group: same tp index, same stage */
  GV_GROUP_STAGE,   /* every rank of the stage (tp x dp) */
  GV_GROUP_PP,      /* the pipeline line: same offset in every stage */
  GV_GROUP_WORLD,
};

struct gv_layout { int world, pp, tp, tp_consec; };

/* Colour of every world rank for a group kind; colours[] has world entries. Returns 0,
 * or -1 when the layout is impossible (the message says which constraint fails). */
GV_API int gv_layout_colors(const struct gv_layout *l, enum gv_group_kind kind, int *colors,
                            char *why, size_t why_len);
/* Coordinates of a world rank. */
GV_API void gv_layout_coords(const struct gv_layout *l, int rank, int *stage, int *tp_idx, int *dp_idx);

struct gv_comm;

/* Initialise the world: backend "mpi", "nccl" (when built with NCCL and MPI) or "self"
 * (NULL: $GV_COMM, else mpi when built). Registers the job-wide abort with gv_fatal.
 * nccl selects GPU (local rank % device count) with cudaSetDevice before anything else;
 * its communicators' device memory is not part of the memory plan (not counted yet). */
GV_API struct gv_comm *gv_comm_init_world(int *argc, char ***argv, const char *backend);
/* Finalise: frees every group made from the world, then the world; sets *world to NULL. */
GV_API void gv_comm_free_world(struct gv_comm **world);
/* This rank's group of a partition (collective over the world; cached by partition). */
GV_API struct gv_comm *gv_comm_partition(struct gv_comm *world, const int *colors);
GV_API struct gv_comm *gv_comm_layout_group(struct gv_comm *world, const struct gv_layout *l,
                                            enum gv_group_kind kind);
GV_API int gv_comm_rank(const struct gv_comm *c);
GV_API int gv_comm_size(const struct gv_comm *c);
GV_API int gv_comm_world_rank_of(const struct gv_comm *c, int group_rank);
GV_API int gv_comm_groups_created(const struct gv_comm *world); /* distinct communicators */

/* Stream ordering (nccl; a no-op for mpi and self). Collectives of every group of this
 * world run on one communication stream of the backend. With compute_stream set (a
 * cudaStream_t), each collective first waits for the work queued so far on compute_stream
 * and compute_stream then waits for the collective: calls return at once and results are
 * ready for kernels queued later on compute_stream (the host syncs that stream to read
 * them). With NULL (the default) each call waits for the whole device before it starts
 * and returns when its result is in place, like the host backends. */
GV_API void gv_comm_set_stream(struct gv_comm *world, void *compute_stream);
/* The kernel backend whose memory the buffers are (NULL, the default: host memory). A
 * host collective backend (mpi, self) copies through it in a group of one, and when the
 * backend's memory is a device's (it has a stream) stages every collective through host
 * buffers of the world (copy out, collective, copy back), so several ranks can share one
 * GPU under GV_COMM=mpi; GV_COMM_STAGE=1 stages host memory too (testing). It must outlive
 * the calls (reset to NULL before freeing it). */
GV_API void gv_comm_set_backend(struct gv_comm *world, struct gv_backend *be);

/* Collectives over a group; counts are elements of the given dtype. In-place where noted. */
GV_API void gv_comm_all_reduce(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op);
/* in: n * size elements; out: this rank's n-element block of the sum (in == out: in place,
 * the block lands at the start of the buffer). */
GV_API void gv_comm_reduce_scatter(struct gv_comm *c, void *out, const void *in, size_t n, enum gv_dtype t);
/* in: n elements; out: n * size elements in group-rank order (in place when in is this
 * rank's block of out). */
GV_API void gv_comm_all_gather(struct gv_comm *c, void *out, const void *in, size_t n, enum gv_dtype t);
/* in: size blocks of n elements (block j goes to rank j); out: block j came from rank j. */
GV_API void gv_comm_all_to_all(struct gv_comm *c, void *out, const void *in, size_t n, enum gv_dtype t);
/* Variable counts (an MoE's token dispatch): in holds send[j] elements for rank j, packed in
 * rank order; out receives recv[j] elements from rank j, packed in rank order (recv[j] must be
 * what rank j sends here: exchange the counts first, e.g. with gv_comm_all_to_all of one
 * element each). in and out must not overlap. */
GV_API void gv_comm_all_to_all_v(struct gv_comm *c, void *out, const size_t *recv, const void *in,
                                 const size_t *send, enum gv_dtype t);
GV_API void gv_comm_broadcast(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, int root);
GV_API void gv_comm_send(struct gv_comm *c, const void *buf, size_t n, enum gv_dtype t, int peer, int tag);
GV_API void gv_comm_recv(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, int peer, int tag);
/* Send to one peer and receive from another in one step (no ordering deadlock). */
GV_API void gv_comm_sendrecv(struct gv_comm *c, const void *sbuf, size_t sn, int dst, void *rbuf, size_t rn, int src,
                             enum gv_dtype t, int tag);
GV_API void gv_comm_barrier(struct gv_comm *c);
/* A non-blocking all-reduce (gradient reduction overlapped with backward): buf must not be
 * touched until gv_comm_wait returns. Returns NULL when the backend completed it at once
 * (a group of one, or a backend without non-blocking collectives); gv_comm_wait(NULL) is
 * a no-op. */
struct gv_comm_request;
GV_API struct gv_comm_request *gv_comm_iall_reduce(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t,
                                                   enum gv_reduce op);
GV_API void gv_comm_wait(struct gv_comm *c, struct gv_comm_request *req);
/* A non-blocking gv_comm_sendrecv: neither buffer may be touched until gv_comm_wait returns.
 * NULL when it completed at once (staged device buffers, a backend without it). mpi:
 * MPI_Isend + MPI_Irecv; nccl: grouped ncclSend/ncclRecv on the communication stream, the
 * wait ordering the compute stream after them (gv_comm_set_stream) or blocking the host. */
GV_API struct gv_comm_request *gv_comm_isendrecv(struct gv_comm *c, const void *sbuf, size_t sn, int dst, void *rbuf,
                                                 size_t rn, int src, enum gv_dtype t, int tag);

/* Host-memory forms of all_reduce and broadcast, for small host values (a loss, a squared
 * norm, a sampled token): buf is host memory whatever the backend. mpi and self: exactly
 * gv_comm_all_reduce / gv_comm_broadcast; nccl: MPI over the group's bootstrap
 * communicator (no device copy; the values are on the host already). F32, I32, F64. */
GV_API void gv_comm_all_reduce_host(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op);
GV_API void gv_comm_broadcast_host(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, int root);
/* 1 when the backend's collective buffers are device memory (nccl), 0 when host (mpi, self). */
GV_API int gv_comm_device_buffers(const struct gv_comm *c);
/* "mpi", "nccl" or "self". */
GV_API const char *gv_comm_backend_name(const struct gv_comm *c);
/* This rank's index among the world's ranks on its node (MPI_Comm_split_type for mpi and
 * nccl, 0 for self): a process drives GPU (local rank % device count). Collective over the
 * world: every rank calls it. */
GV_API int gv_comm_local_rank(struct gv_comm *world);

/* ---- ring attention (context parallelism) ----
 * Causal self-attention of a sequence split over the group c (the cp group) in Galvatron's
 * zigzag layout: the sequence is cut into 2P chunks of T/2 rows (P = group size) and group
 * rank r holds chunks r and 2P-1-r, in that order, as its T local rows, so every rank does
 * the same causal work. Key/value blocks go around the ring (to rank r+1, from r-1) with
 * gv_comm_isendrecv, the next block's transfer overlapping the current block's compute;
 * partial results merge by their log-sum-exp (gv_attention_merge). q, o, dq, dout
 * [B,T,H,D]; k, v, dk, dv [B,T,KV,D]; lse f32 [B,H,T] (the rows' lse over all keys, kept
 * for the backward); f32. The backward recomputes each block's probabilities from the
 * saved lse and o and passes dK/dV around the ring with their block, home after P steps;
 * dq, dk and dv follow GV_ACC_DX. With P = 1 both are gv_attention_fwd/bwd (causal).
 * scratch: device memory of gv_ring_attention_scratch_bytes (the plan's). */
static inline size_t gv_ring_attention_scratch_bytes(int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D, int bwd)
{
  size_t kv = ((size_t)(2 * B * T * KV * D) + 15) / 16 * 16, rows = ((size_t)(T * H * D) + 15) / 16 * 16,
         lse = ((size_t)(H * T) + 15) / 16 * 16;
  return sizeof(float) * (bwd ? 5 * kv + lse : 2 * kv + rows + lse);
}
/* Expert parallelism (comm_ep.c): a mixture-of-experts grouped linear (gvrt.h's routing
 * contract) whose E experts are spread over group c, rank j holding experts [j E/P, (j+1)
 * E/P) as w [E/P, N, K]. x [M k, K] and y [M k, N] are this rank's routed rows (idx i32 [M,
 * k], global ids); the rows go to the ranks holding their experts with all-to-all of variable
 * counts (the counts exchanged first) and the outputs come back. The backward returns dx
 * (GV_ACC_DX: added) and this rank's experts' dw (GV_ACC_DW: added), from every rank's rows
 * routed to them. scratch: device memory of gv_ep_grouped_scratch_bytes (the plan's; rows =
 * M k, es the value's element size). */
static inline size_t gv_ep_grouped_scratch_bytes(int64_t rows, int64_t K, int64_t N, int64_t ep, size_t es)
{
  size_t region = ((size_t)(rows * ep) * (size_t)(K > N ? K : N) * es + 63) / 64 * 64;
  return 3 * region + ((size_t)(rows * ep) * 4 + 63) / 64 * 64;
}
GV_API void gv_ep_grouped_fwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                              const struct gv_tensor *w, const struct gv_tensor *idx, int64_t experts, void *scratch);
GV_API void gv_ep_grouped_bwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                              const struct gv_tensor *dy, const struct gv_tensor *x, const struct gv_tensor *w,
                              const struct gv_tensor *idx, int64_t experts, void *scratch, int flags);
/* A SwiGLU expert MLP y = down(silu(gate(x)) * up(x)) over the ep group with one dispatch of
 * x's rows and one combine of y's (the backward: x and dy dispatched, the hidden values
 * recomputed there, dx combined once); the same results as gv_ep_grouped_fwd/bwd per linear
 * with the activation on the routed rows. wg, wu [E/P, F, D], wd [E/P, N, F]; dx: d(gate) +
 * d(up) (GV_ACC_DX: added); dwg, dwu, dwd (GV_ACC_DW: added). scratch:
 * gv_ep_mlp_scratch_bytes(M k, D, max(F, N), ep, es). */
#define GV_EP_MLP_REGIONS 7
static inline size_t gv_ep_mlp_scratch_bytes(int64_t rows, int64_t D, int64_t F, int64_t ep, size_t es)
{
  size_t region = ((size_t)(rows * ep) * (size_t)(D > F ? D : F) * es + 63) / 64 * 64;
  return GV_EP_MLP_REGIONS * region + ((size_t)(rows * ep) * 4 + 63) / 64 * 64;
}
GV_API void gv_ep_mlp_fwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                          const struct gv_tensor *wg, const struct gv_tensor *wu, const struct gv_tensor *wd,
                          const struct gv_tensor *idx, int64_t experts, void *scratch);
GV_API void gv_ep_mlp_bwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dwg,
                          struct gv_tensor *dwu, struct gv_tensor *dwd, const struct gv_tensor *dy,
                          const struct gv_tensor *x, const struct gv_tensor *wg, const struct gv_tensor *wu,
                          const struct gv_tensor *wd, const struct gv_tensor *idx, int64_t experts, void *scratch,
                          int flags);
GV_API void gv_ring_attention_fwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                                  const struct gv_tensor *q, const struct gv_tensor *k, const struct gv_tensor *v,
                                  void *scratch);
GV_API void gv_ring_attention_bwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                                  struct gv_tensor *dv, const struct gv_tensor *dout, const struct gv_tensor *q,
                                  const struct gv_tensor *k, const struct gv_tensor *v, const struct gv_tensor *o,
                                  const struct gv_tensor *lse, void *scratch, int flags);
/* Global position of local row i (0 <= i < T) of group rank r of P in the zigzag layout. */
static inline int64_t gv_zigzag_pos(int64_t i, int64_t T, int r, int P)
{
  int64_t c = T / 2;
  return i < c ? (int64_t)r * c + i : (int64_t)(2 * P - 1 - r) * c + (i - c);
}

#ifdef __cplusplus
}
#endif

#endif
