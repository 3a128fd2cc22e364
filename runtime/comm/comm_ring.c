/* comm_ring.c - ring attention over a context-parallel group (gvrt_comm.h): causal
 * attention of a zigzag-split sequence, key/value blocks passed around the ring with
 * non-blocking send/receive that overlaps the next block's transfer with the current
 * block's compute, partial results merged by log-sum-exp; the backward passes dK/dV around
 * with their block. Every kernel is a backend op, so the same code runs on cpu (mpi) and
 * cuda (nccl, whose transfers run on the communication stream beside the compute stream).
 *
 * At ring step s rank r holds the block of rank src = r - s (mod P): chunks src and
 * 2P-1-src. Step 0 is causal attention of the local rows; for src < r every local query
 * sees the whole first chunk and nothing of the second; for src > r only the second half
 * of the queries (chunk 2P-1-r) sees keys, all of them. */
#include "comm/comm_impl.h"

enum { TAG_KV = 7301, TAG_DKV = 7302 };

/* The shapes of one call and its scratch carved into 64-byte aligned pieces. */
struct ring {
  struct gv_comm *c;
  struct gv_backend *be;
  int64_t B, T, H, KV, D, half, n; /* n: elements of k (or v) */
  int r, P;
  float *kv[2], *acc[2], *din, *rows, *lse;
};

static size_t round16(int64_t n) { return ((size_t)n + 15) / 16 * 16; }

static struct ring ring_make(struct gv_comm *c, struct gv_backend *be, const struct gv_tensor *q,
                             const struct gv_tensor *k, void *scratch, int bwd)
{
  struct ring g = {c, be, q->shape[0], q->shape[1], q->shape[2], k->shape[2], q->shape[3], q->shape[1] / 2, 0,
                   gv_comm_rank(c), gv_comm_size(c), {0}, {0}, 0, 0, 0};
  g.n = g.B * g.T * g.KV * g.D;
  GV_CHECK(q->ndim == 4 && k->ndim == 4 && k->shape[1] == g.T && g.T % 2 == 0 && q->dtype == GV_DTYPE_F32,
           "ring attention: q and k must be f32 [B,T,H,D] and [B,T,KV,D] with an even T (two zigzag chunks)");
  GV_CHECK(scratch != NULL, "ring attention: no scratch");
  float *p = scratch;
  size_t kvn = round16(2 * g.n);
  g.kv[0] = p;
  g.kv[1] = p + kvn;
  p += 2 * kvn;
  if (bwd) {
    g.acc[0] = p;
    g.acc[1] = p + kvn;
    g.din = p + 2 * kvn;
    p += 3 * kvn;
  } else {
    g.rows = p;
    p += round16(g.T * g.H * g.D);
  }
  g.lse = p;
  return g;
}

static struct gv_tensor t4(float *p, int64_t a, int64_t b, int64_t c, int64_t d)
{
  return gv_tensor_4d(p, GV_DTYPE_F32, a, b, c, d);
}
static struct gv_tensor t3(float *p, int64_t a, int64_t b, int64_t c)
{
  int64_t s[3] = {a, b, c};
  return gv_tensor_make(p, GV_DTYPE_F32, 3, s);
}
static struct gv_tensor t1(float *p, int64_t n) { return gv_tensor_make(p, GV_DTYPE_F32, 1, &n); }

/* Query rows [first, first + count) of batch b of a [B,T,X,D] tensor, as [1,count,X,D]. */
static struct gv_tensor part(const struct gv_tensor *t, int64_t b, int64_t first, int64_t count)
{
  int64_t X = t->shape[2], D = t->shape[3];
  return t4((float *)t->data + (b * t->shape[1] + first) * X * D, 1, count, X, D);
}

/* The same rows of a ring block (k or v part of kv, laid out [B,T,KV,D]). */
static struct gv_tensor block_part(const struct ring *g, float *base, int64_t b, int64_t first, int64_t count)
{
  return t4(base + (b * g->T + first) * g->KV * g->D, 1, count, g->KV, g->D);
}

/* The block's copy of this rank's k and v, the first to go around. */
static void load_own(const struct ring *g, const struct gv_tensor *k, const struct gv_tensor *v)
{
  struct gv_tensor dk = t1(g->kv[0], g->n), dv = t1(g->kv[0] + g->n, g->n);
  struct gv_tensor sk = t1(k->data, g->n), sv = t1(v->data, g->n);
  gv_copy(g->be, &dk, &sk);
  gv_copy(g->be, &dv, &sv);
}

static struct gv_comm_request *pass_on(const struct ring *g, float *send, float *recv, int tag)
{
  return gv_comm_isendrecv(g->c, send, (size_t)(2 * g->n), (g->r + 1) % g->P, recv, (size_t)(2 * g->n),
                           (g->r + g->P - 1) % g->P, GV_DTYPE_F32, tag);
}

/* Step s > 0 of the forward: the block of rank src against this rank's queries, merged. */
static void fwd_block(const struct ring *g, int src, float *kv, struct gv_tensor *o, struct gv_tensor *lse,
                      const struct gv_tensor *q)
{
  int early = src < g->r; /* all queries see the block's first chunk; else the late queries see it all */
  int64_t q0 = early ? 0 : g->half, qn = early ? g->T : g->half, kn = early ? g->half : g->T;
  for (int64_t b = 0; b < g->B; b++) {
    struct gv_tensor qb = part(q, b, q0, qn), kb = block_part(g, kv, b, 0, kn), vb = block_part(g, kv + g->n, b, 0, kn);
    struct gv_tensor ob = t4(g->rows, 1, qn, g->H, g->D), lb = t3(g->lse, 1, g->H, qn);
    gv_attention_fwd(g->be, &ob, &lb, &qb, &kb, &vb, 0);
    struct gv_tensor ot = part(o, b, q0, qn), lt = t3((float *)lse->data + b * g->H * g->T + q0, 1, g->H, g->T);
    gv_attention_merge(g->be, &ot, &lt, &ob, &lb);
  }
}

void gv_ring_attention_fwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                           const struct gv_tensor *q, const struct gv_tensor *k, const struct gv_tensor *v,
                           void *scratch)
{
  if (gv_comm_size(c) == 1) {
    gv_attention_fwd(be, o, lse, q, k, v, 1);
    return;
  }
  struct ring g = ring_make(c, be, q, k, scratch, 0);
  load_own(&g, k, v);
  int cur = 0;
  for (int s = 0; s < g.P; s++) {
    struct gv_comm_request *req = s < g.P - 1 ? pass_on(&g, g.kv[cur], g.kv[1 - cur], TAG_KV) : NULL;
    if (s == 0)
      gv_attention_fwd(be, o, lse, q, k, v, 1);
    else
      fwd_block(&g, (g.r - s + g.P) % g.P, g.kv[cur], o, lse, q);
    gv_comm_wait(c, req);
    cur = 1 - cur;
  }
}

/* Step s > 0 of the backward: the block of rank src, its dK/dV into acc (zeroed), dq added. */
static void bwd_block(const struct ring *g, int src, float *kv, float *acc, struct gv_tensor *dq,
                      const struct gv_tensor *dout, const struct gv_tensor *q, const struct gv_tensor *o,
                      const struct gv_tensor *lse)
{
  int early = src < g->r;
  int64_t q0 = early ? 0 : g->half, qn = early ? g->T : g->half, kn = early ? g->half : g->T;
  for (int64_t b = 0; b < g->B; b++) {
    struct gv_tensor qb = part(q, b, q0, qn), ob = part(o, b, q0, qn), dob = part(dout, b, q0, qn),
                     dqb = part(dq, b, q0, qn);
    struct gv_tensor kb = block_part(g, kv, b, 0, kn), vb = block_part(g, kv + g->n, b, 0, kn);
    struct gv_tensor dkb = block_part(g, acc, b, 0, kn), dvb = block_part(g, acc + g->n, b, 0, kn);
    float *lrow = (float *)lse->data + b * g->H * g->T;
    if (!early) { /* the late queries' lse, contiguous */
      gv_copy2d(g->be, g->lse, qn, lrow + q0, g->T, g->H, qn, GV_DTYPE_F32);
      lrow = g->lse;
    }
    struct gv_tensor lb = t3(lrow, 1, g->H, qn);
    gv_attention_bwd(g->be, &dqb, &dkb, &dvb, &dob, &qb, &kb, &vb, &ob, &lb, 0, GV_ACC_DX);
  }
}

void gv_ring_attention_bwd(struct gv_comm *c, struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                           struct gv_tensor *dv, const struct gv_tensor *dout, const struct gv_tensor *q,
                           const struct gv_tensor *k, const struct gv_tensor *v, const struct gv_tensor *o,
                           const struct gv_tensor *lse, void *scratch, int flags)
{
  if (gv_comm_size(c) == 1) {
    gv_attention_bwd(be, dq, dk, dv, dout, q, k, v, o, lse, 1, flags);
    return;
  }
  struct ring g = ring_make(c, be, q, k, scratch, 1);
  load_own(&g, k, v);
  struct gv_comm_request *dreq = NULL;
  int cur = 0;
  for (int s = 0; s < g.P; s++) {
    struct gv_comm_request *req = s < g.P - 1 ? pass_on(&g, g.kv[cur], g.kv[1 - cur], TAG_KV) : NULL;
    float *acc = g.acc[s % 2];
    struct gv_tensor all = t1(acc, 2 * g.n);
    gv_fill(be, &all, 0.0f);
    if (s == 0) {
      struct gv_tensor dk0 = t4(acc, g.B, g.T, g.KV, g.D), dv0 = t4(acc + g.n, g.B, g.T, g.KV, g.D);
      /* dq per the caller's flags; dk0, dv0 are zero, so either way they get this step's part */
      gv_attention_bwd(be, dq, &dk0, &dv0, dout, q, k, v, o, lse, 1, flags & GV_ACC_DX);
    } else {
      bwd_block(&g, (g.r - s + g.P) % g.P, g.kv[cur], acc, dq, dout, q, o, lse);
      gv_comm_wait(c, dreq); /* the block's dK/dV from the ranks before */
      struct gv_tensor in = t1(g.din, 2 * g.n);
      gv_axpy(be, &all, 1.0f, &in);
    }
    dreq = pass_on(&g, acc, g.din, TAG_DKV);
    gv_comm_wait(c, req);
    cur = 1 - cur;
  }
  gv_comm_wait(c, dreq); /* this rank's own block, home after going round */
  struct gv_tensor hk = t1(g.din, g.n), hv = t1(g.din + g.n, g.n), ok = t1(dk->data, g.n), ov = t1(dv->data, g.n);
  if (flags & GV_ACC_DX) {
    gv_axpy(be, &ok, 1.0f, &hk);
    gv_axpy(be, &ov, 1.0f, &hv);
  } else {
    gv_copy(be, &ok, &hk);
    gv_copy(be, &ov, &hv);
  }
}
