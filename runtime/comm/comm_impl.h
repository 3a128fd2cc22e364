/* comm_impl.h - what a collective backend implements (one const table per backend, like
 * the kernel backends), and the group struct shared by comm.c and the backends. */
#ifndef GV_COMM_IMPL_H
#define GV_COMM_IMPL_H

#include "gvrt_comm.h"

struct gv_comm_ops {
  const char *name;
  /* world: initialise the library; returns the world impl and sets rank/size */
  void *(*init_world)(int *argc, char ***argv, int *rank, int *size);
  void (*finalize)(void *world_impl);
  void (*abort_job)(void *world_impl, int code);
  /* collective over the world: the group of ranks sharing this rank's colour */
  void *(*split)(void *world_impl, int color, int key, int *rank, int *size);
  void (*free_group)(void *impl);
  void (*all_reduce)(void *impl, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op);
  void (*reduce_scatter)(void *impl, void *out, const void *in, size_t n, enum gv_dtype t);
  void (*all_gather)(void *impl, void *out, const void *in, size_t n, enum gv_dtype t);
  void (*all_to_all)(void *impl, void *out, const void *in, size_t n, enum gv_dtype t);
  /* variable counts: send[j] elements to rank j (packed in rank order in `in`), recv[j]
   * from rank j (packed in rank order in `out`) */
  void (*all_to_all_v)(void *impl, void *out, const size_t *recv, const void *in, const size_t *send,
                       enum gv_dtype t);
  void (*broadcast)(void *impl, void *buf, size_t n, enum gv_dtype t, int root);
  void (*send)(void *impl, const void *buf, size_t n, enum gv_dtype t, int peer, int tag);
  void (*recv)(void *impl, void *buf, size_t n, enum gv_dtype t, int peer, int tag);
  void (*sendrecv)(void *impl, const void *sbuf, size_t sn, int dst, void *rbuf, size_t rn, int src,
                   enum gv_dtype t, int tag);
  void (*barrier)(void *impl);
  /* optional (NULL: the blocking all_reduce runs and the request is already complete): a
   * non-blocking all-reduce returning the backend's request, completed by wait */
  void *(*iall_reduce)(void *impl, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op);
  void (*wait)(void *request);
  /* optional (NULL: the blocking sendrecv runs and the request is already complete): a
   * non-blocking send to dst and receive from src, completed together by wait (ring
   * attention overlaps its block transfers with compute through it) */
  void *(*isendrecv)(void *impl, const void *sbuf, size_t sn, int dst, void *rbuf, size_t rn, int src,
                     enum gv_dtype t, int tag);
  /* optional (NULL: nothing to order): see gv_comm_set_stream */
  void (*set_stream)(void *world_impl, void *compute_stream);
  /* 1: buffers are device memory, so comm.c never copies them itself (the backend runs
   * groups of one too); 0: host memory */
  int device_buffers;
  /* optional (NULL: all_reduce and broadcast take host buffers already): the same
   * collectives on small host buffers, for a backend whose buffers are device memory */
  void (*all_reduce_host)(void *impl, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op);
  void (*broadcast_host)(void *impl, void *buf, size_t n, enum gv_dtype t, int root);
  /* optional (NULL: 0): this rank's index among the world's ranks on its node (may be
   * collective over the world) */
  int (*local_rank)(void *world_impl);
};

struct gv_comm_cache;

struct gv_comm {
  const struct gv_comm_ops *ops;
  void *impl;
  int rank, size;
  int *world_ranks;               /* group rank -> world rank */
  struct gv_comm *world;          /* NULL for the world itself */
  struct gv_comm_cache *cache;    /* world only: groups made so far, by partition */
  struct gv_backend *be;          /* world only: whose memory the buffers are (gv_comm_set_backend) */
  int staged;                     /* world only: a host backend with device buffers: copy through host */
  void *host[2];                  /* world only: the staging buffers (grown on demand) */
  size_t host_bytes[2];
};

extern const struct gv_comm_ops gv_comm_self_ops;
#ifdef GV_HAVE_MPI
extern const struct gv_comm_ops gv_comm_mpi_ops;
#endif
#if defined(GV_HAVE_NCCL) && defined(GV_HAVE_MPI)
extern const struct gv_comm_ops gv_comm_nccl_ops;
#endif

#endif
