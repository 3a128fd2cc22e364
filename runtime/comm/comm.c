/* comm.c - the collective interface: backend choice, groups cached by partition, the
 * rank layout of a plan, and thin dispatch to the backend table (comm_impl.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_impl.h"

/* A cached group: the canonical partition it was made from and this rank's group. */
struct gv_comm_entry { int *canon; struct gv_comm *group; };
struct gv_comm_cache { struct gv_comm_entry *items; int n, cap; };

static void *xcalloc(size_t n, size_t size)
{
  void *p = calloc(n ? n : 1, size);
  if (!p) {
    fprintf(stderr, "gvrt: out of host memory (%zu bytes)\n", n * size);
    abort();
  }
  return p;
}

/* ---- rank layout ---- */

static int layout_check(const struct gv_layout *l, char *why, size_t why_len)
{
  if (l->world < 1 || l->pp < 1 || l->tp < 1) {
    snprintf(why, why_len, "degrees must be positive (world %d, pp %d, tp %d)", l->world, l->pp, l->tp);
    return -1;
  }
  if (l->world % l->pp) {
    snprintf(why, why_len, "world size %d is not divisible by pp=%d", l->world, l->pp);
    return -1;
  }
  if ((l->world / l->pp) % l->tp) {
    snprintf(why, why_len, "the %d ranks of a pipeline stage are not divisible by tp=%d", l->world / l->pp, l->tp);
    return -1;
  }
  return 0;
}

void gv_layout_coords(const struct gv_layout *l, int rank, int *stage, int *tp_idx, int *dp_idx)
{
  int per_stage = l->world / l->pp, dp = per_stage / l->tp, r = rank % per_stage;
  *stage = rank / per_stage;
  if (l->tp_consec || l->tp == 1 || dp == 1) {
    *tp_idx = r % l->tp;
    *dp_idx = r / l->tp;
  } else {
    *tp_idx = r / dp;
    *dp_idx = r % dp;
  }
}

int gv_layout_colors(const struct gv_layout *l, enum gv_group_kind kind, int *colors, char *why, size_t why_len)
{
  if (layout_check(l, why, why_len))
    return -1;
  int per_stage = l->world / l->pp, dp = per_stage / l->tp;
  for (int r = 0; r < l->world; r++) {
    int s, t, d;
    gv_layout_coords(l, r, &s, &t, &d);
    switch (kind) {
    case GV_GROUP_TP: colors[r] = s * dp + d; break;
    case GV_GROUP_DP: colors[r] = s * l->tp + t; break;
    case GV_GROUP_STAGE: colors[r] = s; break;
    case GV_GROUP_PP: colors[r] = r % per_stage; break;
    case GV_GROUP_WORLD: colors[r] = 0; break;
    }
  }
  return 0;
}

/* ---- world and groups ---- */

/* NULL: $GV_COMM if set ("mpi", "nccl" or "self"), else mpi when built with it. */
static const struct gv_comm_ops *find_backend(const char *name)
{
  if (!name && getenv("GV_COMM") && *getenv("GV_COMM"))
    name = getenv("GV_COMM");
  if (!name || !strcmp(name, "mpi")) {
#ifdef GV_HAVE_MPI
    return &gv_comm_mpi_ops;
#else
    if (name) {
      fprintf(stderr, "gvrt: error: the mpi collective backend is not part of this build\n");
      exit(1);
    }
    return &gv_comm_self_ops;
#endif
  }
  if (!strcmp(name, "self"))
    return &gv_comm_self_ops;
  if (!strcmp(name, "nccl")) {
#if defined(GV_HAVE_NCCL) && defined(GV_HAVE_MPI)
    return &gv_comm_nccl_ops;
#else
    fprintf(stderr, "gvrt: error: the nccl collective backend is not part of this build (needs CUDA, NCCL and MPI)\n");
    exit(1);
#endif
  }
  fprintf(stderr, "gvrt: error: unknown collective backend '%s' (mpi, nccl, self)\n", name);
  exit(1);
}

struct gv_comm *gv_comm_init_world(int *argc, char ***argv, const char *backend)
{
  struct gv_comm *w = xcalloc(1, sizeof *w);
  w->ops = find_backend(backend);
  w->impl = w->ops->init_world(argc, argv, &w->rank, &w->size);
  w->world_ranks = xcalloc((size_t)w->size, sizeof(int));
  for (int i = 0; i < w->size; i++)
    w->world_ranks[i] = i;
  w->cache = xcalloc(1, sizeof *w->cache);
  return w;
}

static void free_group(struct gv_comm *g)
{
  g->ops->free_group(g->impl);
  free(g->world_ranks);
  free(g);
}

void gv_comm_free_world(struct gv_comm **world)
{
  struct gv_comm *w = *world;
  if (!w)
    return;
  for (int i = 0; i < w->cache->n; i++) {
    free_group(w->cache->items[i].group);
    free(w->cache->items[i].canon);
  }
  free(w->cache->items);
  free(w->cache);
  w->ops->finalize(w->impl);
  free(w->host[0]);
  free(w->host[1]);
  free(w->world_ranks);
  free(w);
  *world = NULL;
}

/* Renumber colours by first occurrence, so equal partitions compare equal. */
static void canonical(const int *colors, int n, int *canon)
{
  for (int i = 0; i < n; i++) {
    canon[i] = i;
    for (int j = 0; j < i; j++)
      if (colors[j] == colors[i]) {
        canon[i] = canon[j];
        break;
      }
  }
}

struct gv_comm *gv_comm_partition(struct gv_comm *w, const int *colors)
{
  int n = w->size;
  int *canon = xcalloc((size_t)n, sizeof(int));
  canonical(colors, n, canon);
  for (int i = 0; i < w->cache->n; i++)
    if (!memcmp(w->cache->items[i].canon, canon, sizeof(int) * (size_t)n)) {
      free(canon);
      return w->cache->items[i].group;
    }
  struct gv_comm *g = xcalloc(1, sizeof *g);
  g->ops = w->ops;
  g->world = w;
  g->impl = w->ops->split(w->impl, canon[w->rank], w->rank, &g->rank, &g->size);
  g->world_ranks = xcalloc((size_t)g->size, sizeof(int));
  for (int r = 0, k = 0; r < n; r++)
    if (canon[r] == canon[w->rank])
      g->world_ranks[k++] = r;
  if (w->cache->n == w->cache->cap) {
    w->cache->cap = w->cache->cap ? 2 * w->cache->cap : 8;
    w->cache->items = realloc(w->cache->items, sizeof *w->cache->items * (size_t)w->cache->cap);
    if (!w->cache->items)
      abort();
  }
  w->cache->items[w->cache->n++] = (struct gv_comm_entry){canon, g};
  return g;
}

struct gv_comm *gv_comm_layout_group(struct gv_comm *w, const struct gv_layout *l, enum gv_group_kind kind)
{
  char why[160];
  int *colors = xcalloc((size_t)w->size, sizeof(int));
  if (l->world != w->size) {
    fprintf(stderr, "gvrt: error: the plan is for %d ranks but the job has %d\n", l->world, w->size);
    w->ops->abort_job(w->impl, 1);
  }
  if (gv_layout_colors(l, kind, colors, why, sizeof why)) {
    fprintf(stderr, "gvrt: error: impossible layout: %s\n", why);
    w->ops->abort_job(w->impl, 1);
  }
  struct gv_comm *g = gv_comm_partition(w, colors);
  free(colors);
  return g;
}

int gv_comm_rank(const struct gv_comm *c) { return c->rank; }
int gv_comm_size(const struct gv_comm *c) { return c->size; }
int gv_comm_world_rank_of(const struct gv_comm *c, int group_rank) { return c->world_ranks[group_rank]; }
int gv_comm_groups_created(const struct gv_comm *w) { return w->cache ? w->cache->n : 0; }

void gv_comm_set_backend(struct gv_comm *c, struct gv_backend *be)
{
  struct gv_comm *w = c->world ? c->world : c;
  const char *force = getenv("GV_COMM_STAGE"); /* testing: stage host memory too */
  w->be = be;
  w->staged = be && !w->ops->device_buffers && (gv_backend_stream(be) != NULL || (force && *force == '1'));
  if (w->staged)
    gv_log(GV_LOG_DEBUG, "%s collectives on %s memory: staged through host buffers", w->ops->name, be->ops->name);
}

/* ---- host staging: a host collective backend (mpi) on device buffers (several ranks on
 * one GPU, for testing) copies each buffer to a host buffer of the world and back ---- */

static struct gv_comm *staging(struct gv_comm *c)
{
  struct gv_comm *w = c->world ? c->world : c;
  return w->staged ? w : NULL;
}

static void *host_buf(struct gv_comm *w, int k, size_t bytes)
{
  if (w->host_bytes[k] < bytes) {
    free(w->host[k]);
    w->host[k] = malloc(bytes);
    GV_CHECK(w->host[k] != NULL, "out of host memory for %zu staging bytes", bytes);
    w->host_bytes[k] = bytes;
  }
  return w->host[k];
}

static void *to_host(struct gv_comm *w, int k, const void *dev, size_t bytes)
{
  void *h = host_buf(w, k, bytes);
  gv_dev_memcpy(w->be, h, dev, bytes, GV_COPY_D2H);
  return h;
}

static void to_dev(struct gv_comm *w, void *dev, const void *host, size_t bytes)
{
  gv_dev_memcpy(w->be, dev, host, bytes, GV_COPY_H2D);
}

void gv_comm_set_stream(struct gv_comm *c, void *compute_stream)
{
  struct gv_comm *w = c->world ? c->world : c;   /* a group stands for its world */
  if (w->ops->set_stream)
    w->ops->set_stream(w->impl, compute_stream);
}

/* ---- dispatch ---- */

void gv_comm_all_reduce(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op)
{
  struct gv_comm *w = staging(c);
  size_t b = n * gv_dtype_size(t);
  if (c->size <= 1 || !n)
    return;
  if (w) {
    void *h = to_host(w, 0, buf, b);
    c->ops->all_reduce(c->impl, h, n, t, op);
    to_dev(w, buf, h, b);
  } else {
    c->ops->all_reduce(c->impl, buf, n, t, op);
  }
}

struct gv_comm_request *gv_comm_iall_reduce(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op)
{
  if (c->size <= 1 || !n)
    return NULL;
  if (staging(c)) { /* staged: blocking (the host copy must come back) */
    gv_comm_all_reduce(c, buf, n, t, op);
    return NULL;
  }
  if (!c->ops->iall_reduce) {
    c->ops->all_reduce(c->impl, buf, n, t, op);
    return NULL;
  }
  return c->ops->iall_reduce(c->impl, buf, n, t, op);
}

struct gv_comm_request *gv_comm_isendrecv(struct gv_comm *c, const void *sbuf, size_t sn, int dst, void *rbuf,
                                          size_t rn, int src, enum gv_dtype t, int tag)
{
  if (staging(c) || !c->ops->isendrecv) { /* staged buffers must come back: blocking */
    gv_comm_sendrecv(c, sbuf, sn, dst, rbuf, rn, src, t, tag);
    return NULL;
  }
  return c->ops->isendrecv(c->impl, sbuf, sn, dst, rbuf, rn, src, t, tag);
}

void gv_comm_wait(struct gv_comm *c, struct gv_comm_request *req)
{
  if (req)
    c->ops->wait(req);
}

/* In a group of one, reduce-scatter, all-gather and all-to-all are all a copy: memmove,
 * or the kernel backend's copy when one was set (its memory may be a device's); a device
 * collective backend copies its own buffers. */
static int alone(struct gv_comm *c, void *out, const void *in, size_t n, enum gv_dtype t)
{
  if (c->size != 1 || c->ops->device_buffers)
    return 0;
  struct gv_backend *be = (c->world ? c->world : c)->be;
  if (out != in && be)
    gv_dev_memcpy(be, out, in, n * gv_dtype_size(t), GV_COPY_D2D);
  else if (out != in)
    memmove(out, in, n * gv_dtype_size(t));
  return 1;
}

void gv_comm_reduce_scatter(struct gv_comm *c, void *out, const void *in, size_t n, enum gv_dtype t)
{
  struct gv_comm *w = staging(c);
  size_t b = n * gv_dtype_size(t);
  if (alone(c, out, in, n, t))
    return;
  if (w) { /* in place on the host copy: this rank's block lands at its start */
    void *h = to_host(w, 0, in, b * (size_t)c->size);
    c->ops->reduce_scatter(c->impl, h, h, n, t);
    to_dev(w, out, h, b);
  } else {
    c->ops->reduce_scatter(c->impl, out, in, n, t);
  }
}

void gv_comm_all_gather(struct gv_comm *c, void *out, const void *in, size_t n, enum gv_dtype t)
{
  struct gv_comm *w = staging(c);
  size_t b = n * gv_dtype_size(t);
  if (alone(c, out, in, n, t))
    return;
  if (w) {
    void *hin = to_host(w, 0, in, b), *hout = host_buf(w, 1, b * (size_t)c->size);
    c->ops->all_gather(c->impl, hout, hin, n, t);
    to_dev(w, out, hout, b * (size_t)c->size);
  } else {
    c->ops->all_gather(c->impl, out, in, n, t);
  }
}

void gv_comm_all_to_all(struct gv_comm *c, void *out, const void *in, size_t n, enum gv_dtype t)
{
  struct gv_comm *w = staging(c);
  size_t b = n * gv_dtype_size(t) * (size_t)c->size;
  if (alone(c, out, in, n, t))
    return;
  if (w) {
    void *hin = to_host(w, 0, in, b), *hout = host_buf(w, 1, b);
    c->ops->all_to_all(c->impl, hout, hin, n, t);
    to_dev(w, out, hout, b);
  } else {
    c->ops->all_to_all(c->impl, out, in, n, t);
  }
}

void gv_comm_all_to_all_v(struct gv_comm *c, void *out, const size_t *recv, const void *in, const size_t *send,
                          enum gv_dtype t)
{
  struct gv_comm *w = staging(c);
  size_t nin = 0, nout = 0, es = gv_dtype_size(t);
  for (int j = 0; j < c->size; j++) {
    nin += send[j];
    nout += recv[j];
  }
  GV_CHECK(c->size > 1 || nin == nout, "all_to_all_v: a group of one sends %zu elements and receives %zu", nin, nout);
  GV_CHECK(out != in || !nin, "all_to_all_v: out and in must be different buffers");
  if (alone(c, out, in, nin, t))
    return;
  if (w) {
    void *hin = to_host(w, 0, in, nin * es), *hout = host_buf(w, 1, nout * es);
    c->ops->all_to_all_v(c->impl, hout, recv, hin, send, t);
    to_dev(w, out, hout, nout * es);
  } else {
    c->ops->all_to_all_v(c->impl, out, recv, in, send, t);
  }
}

void gv_comm_broadcast(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, int root)
{
  struct gv_comm *w = staging(c);
  size_t b = n * gv_dtype_size(t);
  if (c->size <= 1)
    return;
  if (w) {
    void *h = to_host(w, 0, buf, b);
    c->ops->broadcast(c->impl, h, n, t, root);
    to_dev(w, buf, h, b);
  } else {
    c->ops->broadcast(c->impl, buf, n, t, root);
  }
}

void gv_comm_send(struct gv_comm *c, const void *buf, size_t n, enum gv_dtype t, int peer, int tag)
{
  struct gv_comm *w = staging(c);
  c->ops->send(c->impl, w ? to_host(w, 0, buf, n * gv_dtype_size(t)) : buf, n, t, peer, tag);
}

void gv_comm_recv(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, int peer, int tag)
{
  struct gv_comm *w = staging(c);
  size_t b = n * gv_dtype_size(t);
  void *h = w ? host_buf(w, 0, b) : buf;
  c->ops->recv(c->impl, h, n, t, peer, tag);
  if (w)
    to_dev(w, buf, h, b);
}

void gv_comm_sendrecv(struct gv_comm *c, const void *sbuf, size_t sn, int dst, void *rbuf, size_t rn, int src,
                      enum gv_dtype t, int tag)
{
  struct gv_comm *w = staging(c);
  size_t sz = gv_dtype_size(t);
  if (!w) {
    c->ops->sendrecv(c->impl, sbuf, sn, dst, rbuf, rn, src, t, tag);
    return;
  }
  const void *hs = to_host(w, 0, sbuf, sn * sz);
  void *hr = host_buf(w, 1, rn * sz);
  c->ops->sendrecv(c->impl, hs, sn, dst, hr, rn, src, t, tag);
  to_dev(w, rbuf, hr, rn * sz);
}

void gv_comm_barrier(struct gv_comm *c)
{
  if (c->size > 1)
    c->ops->barrier(c->impl);
}

/* ---- host buffers (small values) whatever the backend ---- */

void gv_comm_all_reduce_host(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, enum gv_reduce op)
{
  if (c->size > 1 && n)
    (c->ops->all_reduce_host ? c->ops->all_reduce_host : c->ops->all_reduce)(c->impl, buf, n, t, op);
}

void gv_comm_broadcast_host(struct gv_comm *c, void *buf, size_t n, enum gv_dtype t, int root)
{
  if (c->size > 1)
    (c->ops->broadcast_host ? c->ops->broadcast_host : c->ops->broadcast)(c->impl, buf, n, t, root);
}

int gv_comm_device_buffers(const struct gv_comm *c) { return c->ops->device_buffers; }
const char *gv_comm_backend_name(const struct gv_comm *c) { return c->ops->name; }

int gv_comm_local_rank(struct gv_comm *world)
{
  struct gv_comm *w = world->world ? world->world : world;
  return w->ops->local_rank ? w->ops->local_rank(w->impl) : 0;
}
