/* comm_self.c - the collective backend of a world of one rank (no MPI): every group has
 * one member, so collectives are copies (done in comm.c) and p2p is an error. */
#include <stdio.h>
#include <stdlib.h>

#include "comm/comm_impl.h"

static void *self_init(int *argc, char ***argv, int *rank, int *size)
{
  *rank = 0;
  *size = 1;
  return NULL;
}

static void self_finalize(void *impl) {}
static void self_abort(void *impl, int code) { exit(code ? code : 1); }

static void *self_split(void *impl, int color, int key, int *rank, int *size)
{
  *rank = 0;
  *size = 1;
  return NULL;
}

static void self_free(void *impl) {}

static void self_p2p(void *impl, const void *buf, size_t n, enum gv_dtype t, int peer, int tag)
{
  fprintf(stderr, "gvrt: error: point-to-point transfer to rank %d in a world of one rank\n", peer);
  exit(1);
}

static void self_recv(void *impl, void *buf, size_t n, enum gv_dtype t, int peer, int tag)
{
  self_p2p(impl, buf, n, t, peer, tag);
}

static void self_sendrecv(void *impl, const void *sbuf, size_t sn, int dst, void *rbuf, size_t rn, int src,
                          enum gv_dtype t, int tag)
{
  self_p2p(impl, sbuf, sn, t, dst, tag);
}

static void self_barrier(void *impl) {}

const struct gv_comm_ops gv_comm_self_ops = {
  .name = "self", .init_world = self_init, .finalize = self_finalize, .abort_job = self_abort,
  .split = self_split, .free_group = self_free, .send = self_p2p, .recv = self_recv,
  .sendrecv = self_sendrecv, .barrier = self_barrier,
  /* collectives of a one-rank group never reach the backend (comm.c short-cuts them) */
};
