/* bf16.c - bf16 tensors on the CPU backend, by emulation: bf16 storage, fp32 compute.
 * Every table entry that takes float tensors points to a wrapper here. A call with no bf16
 * operand goes straight to the f32 kernel (same pointers, no conversion, not a bit changed).
 * Otherwise every float operand must be bf16 (the statistics mean/rstd/lse/part/loss stay
 * f32; ids/targets are i32), each bf16 input is widened into an f32 scratch buffer, each
 * bf16 output gets one, the f32 kernel runs on f32 views of the scratch (same shapes), and
 * each output is narrowed back ONCE with gv_bf16_from_float (round to nearest even). So a
 * bf16 result is "fp32 math on the bf16 inputs, one rounding".
 * An output the call accumulates into (GV_ACC_DX/GV_ACC_DW, embedding_fwd's accumulate) gets
 * a zeroed scratch instead and is stored as round(float(old) + fp32 result), the CUDA
 * semantics, whatever order the kernel adds its partial sums in (embedding_bwd's repeated
 * ids, attention's dk/dv over query tiles). Operands that alias (rope/norm y == x,
 * xent dlogits == logits, the dx == dy forms a kernel allows) share one scratch buffer, so the
 * kernel sees the same aliasing; an accumulated output that aliases an input is widened from
 * its contents and the kernel adds into it (one add per element in those elementwise forms).
 * These results are the reference for the CUDA backend's bf16 (docs/runtime.md).
 * The scratch is host memory owned by the backend instance (struct gv_cpu, be->impl), grown
 * on demand and reused across calls: a documented exception to "kernels never allocate"
 * (cpu device memory is host memory, and this is the emulation path, not a fast path). */
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"

/* ---- the backend's scratch ---- */

/* At least `floats` floats of scratch (64-byte aligned, never NULL); old contents are not
 * kept. */
static float *scratch(struct gv_backend *be, size_t floats)
{
  struct gv_cpu *st = be->impl;
  GV_CHECK(st != NULL, "cpu backend: bf16 op on a backend that was not initialised");
  if (!st->scratch || floats > st->scratch_floats) {
    size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
    bytes = bytes ? bytes : 64;
    free(st->scratch);
    st->scratch = aligned_alloc(64, bytes);
    GV_CHECK(st->scratch != NULL, "cpu backend: cannot allocate %zu bytes of bf16 scratch", bytes);
    st->scratch_floats = bytes / sizeof(float);
  }
  return st->scratch;
}

/* ---- one wrapped call: its operands, staged into f32 scratch and narrowed back ---- */

/* BF_READ: widened in; BF_WRITE: narrowed out; BF_ACC (with BF_WRITE): zeroed in, added to
 * the old contents out, unless it aliases an input (then BF_READ wins); BF_STAT: f32. */
enum { BF_READ = 1, BF_WRITE = 2, BF_ACC = 4, BF_STAT = 8, BF_MAX_ARGS = 12, BF_ALIGN = 16 /* floats */ };

struct bf_arg {
  const char *name;
  const struct gv_tensor *t;        /* the caller's tensor (NULL: an omitted operand) */
  const struct gv_tensor **in;      /* the wrapper's parameter to point at the view ... */
  struct gv_tensor **out;           /* ... (one of the two; neither for statistics) */
  int role;                         /* BF_* */
  int owner;                        /* the argument whose scratch it uses (itself, or an alias) */
  struct gv_tensor view;            /* f32 over the scratch, the caller's shape */
};

struct bf_call {
  struct gv_backend *be;
  const char *op;
  int n, staged;
  struct bf_arg a[BF_MAX_ARGS];
};

static void bf_begin(struct bf_call *c, struct gv_backend *be, const char *op)
{
  c->be = be;
  c->op = op;
  c->n = c->staged = 0;
}

static void bf_add(struct bf_call *c, const char *name, const struct gv_tensor *t,
                   const struct gv_tensor **in, struct gv_tensor **out, int role)
{
  GV_CHECK(c->n < BF_MAX_ARGS, "cpu bf16 %s: too many operands", c->op);
  struct bf_arg *a = &c->a[c->n++];
  a->name = name;
  a->t = t;
  a->in = in;
  a->out = out;
  a->role = role;
  a->owner = c->n - 1;
}

/* An input; an output (acc: the call adds into its old contents); an f32 statistic. */
static void bf_in(struct bf_call *c, const char *name, const struct gv_tensor **t)
{
  bf_add(c, name, *t, t, NULL, BF_READ);
}
static void bf_out(struct bf_call *c, const char *name, struct gv_tensor **t, int acc)
{
  bf_add(c, name, *t, NULL, t, BF_WRITE | (acc ? BF_ACC : 0));
}
/* An operand updated in place from its own value (scale's x, axpy's y): widened, narrowed. */
static void bf_inout(struct bf_call *c, const char *name, struct gv_tensor **t)
{
  bf_add(c, name, *t, NULL, t, BF_READ | BF_WRITE);
}
static void bf_stat(struct bf_call *c, const char *name, const struct gv_tensor *t)
{
  bf_add(c, name, t, NULL, NULL, BF_STAT);
}

/* Fatal unless every float operand is bf16 and every statistic f32; returns the name of a
 * bf16 operand, or NULL when there is none (the f32 path). */
static const char *bf_check(const struct bf_call *c)
{
  const char *bf = NULL;
  for (int i = 0; i < c->n && !bf; i++)
    if (c->a[i].t && c->a[i].t->dtype == GV_DTYPE_BF16) bf = c->a[i].name;
  for (int i = 0; bf && i < c->n; i++) {
    const struct bf_arg *a = &c->a[i];
    if (!a->t) continue;
    if (a->role == BF_STAT)
      GV_CHECK(a->t->dtype == GV_DTYPE_F32, "%s: %s must be f32 (statistics stay f32), is %s", c->op,
               a->name, gv_dtype_name(a->t->dtype));
    else
      GV_CHECK(a->t->dtype == GV_DTYPE_BF16, "%s: %s is %s but %s is bf16 (all float operands of one call "
               "share a dtype)", c->op, a->name, gv_dtype_name(a->t->dtype), bf);
  }
  return bf;
}

/* Operands with the same data share the first one's scratch; the owner takes both roles. */
static void bf_alias(struct bf_call *c)
{
  for (int i = 0; i < c->n; i++) {
    struct bf_arg *a = &c->a[i];
    if (!a->t || a->role == BF_STAT) continue;
    for (int j = 0; j < i; j++) {
      struct bf_arg *o = &c->a[j];
      if (!o->t || o->role == BF_STAT || o->t->data != a->t->data) continue;
      GV_CHECK(gv_tensor_numel(o->t) == gv_tensor_numel(a->t),
               "%s: %s and %s share memory but differ in size", c->op, o->name, a->name);
      a->owner = j;
      o->role |= a->role;
      break;
    }
  }
}

/* Redirects the wrapper's parameters to f32 views of the scratch and widens what is read.
 * Nothing happens when no operand is bf16. */
static void bf_stage(struct bf_call *c)
{
  if (!bf_check(c)) return;
  bf_alias(c);
  size_t total = 0, off[BF_MAX_ARGS] = {0};
  for (int i = 0; i < c->n; i++) {
    const struct bf_arg *a = &c->a[i];
    if (!a->t || a->role == BF_STAT || a->owner != i) continue;
    off[i] = total;
    total += ((size_t)gv_tensor_numel(a->t) + BF_ALIGN - 1) / BF_ALIGN * BF_ALIGN;
  }
  float *buf = scratch(c->be, total);
  for (int i = 0; i < c->n; i++) {
    struct bf_arg *a = &c->a[i];
    if (!a->t || a->role == BF_STAT) continue;
    a->view = gv_tensor_make(buf + off[a->owner], GV_DTYPE_F32, a->t->ndim, a->t->shape);
    if (a->owner == i && (a->role & BF_READ))
      gv_cpu_bf16_widen(a->view.data, a->t->data, gv_tensor_numel(a->t));
    else if (a->owner == i && (a->role & BF_ACC))
      memset(a->view.data, 0, sizeof(float) * (size_t)gv_tensor_numel(a->t));
    if (a->in) *a->in = &a->view;
    else *a->out = &a->view;
  }
  c->staged = 1;
}

/* Rounds every written scratch buffer back into its bf16 tensor, once. */
static void bf_finish(struct bf_call *c)
{
  for (int i = 0; c->staged && i < c->n; i++) {
    const struct bf_arg *a = &c->a[i];
    if (a->t && a->owner == i && (a->role & BF_WRITE))
      gv_cpu_bf16_narrow(a->t->data, a->view.data, gv_tensor_numel(a->t),
                         (a->role & BF_ACC) && !(a->role & BF_READ));
  }
}

/* ---- the wrappers: operands, stage, the f32 kernel, finish ---- */

void gv_cpu_bf16_linear_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                            const struct gv_tensor *w, const struct gv_tensor *b)
{
  struct bf_call c;
  bf_begin(&c, be, "linear_fwd");
  bf_out(&c, "y", &y, 0);
  bf_in(&c, "x", &x);
  bf_in(&c, "w", &w);
  bf_in(&c, "b", &b);
  bf_stage(&c);
  gv_cpu_linear_fwd(be, y, x, w, b);
  bf_finish(&c);
}

void gv_cpu_bf16_linear_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                            struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                            const struct gv_tensor *w, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "linear_bwd");
  bf_out(&c, "dx", &dx, flags & GV_ACC_DX);
  bf_out(&c, "dw", &dw, flags & GV_ACC_DW);
  bf_out(&c, "db", &db, flags & GV_ACC_DW);
  bf_in(&c, "dy", &dy);
  bf_in(&c, "x", &x);
  bf_in(&c, "w", &w);
  bf_stage(&c);
  gv_cpu_linear_bwd(be, dx, dw, db, dy, x, w, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                               const struct gv_tensor *table, int64_t pos_offset, int accumulate)
{
  struct bf_call c;
  bf_begin(&c, be, "embedding_fwd");
  bf_out(&c, "y", &y, accumulate);
  bf_in(&c, "table", &table);
  bf_stage(&c);
  gv_cpu_embedding_fwd(be, y, ids, table, pos_offset, accumulate);
  bf_finish(&c);
}

void gv_cpu_bf16_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                               const struct gv_tensor *dy, const struct gv_tensor *ids,
                               int64_t pos_offset, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "embedding_bwd");
  bf_out(&c, "dtable", &dtable, flags & GV_ACC_DW);
  bf_in(&c, "dy", &dy);
  bf_stage(&c);
  gv_cpu_embedding_bwd(be, dtable, dy, ids, pos_offset, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_embedding_shard_fwd(struct gv_backend *be, struct gv_tensor *y,
                                     const struct gv_tensor *ids, const struct gv_tensor *table,
                                     int64_t lo)
{
  struct bf_call c;
  bf_begin(&c, be, "embedding_shard_fwd");
  bf_out(&c, "y", &y, 0);
  bf_in(&c, "table", &table);
  bf_stage(&c);
  gv_cpu_embedding_shard_fwd(be, y, ids, table, lo);
  bf_finish(&c);
}

void gv_cpu_bf16_embedding_shard_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                                     const struct gv_tensor *dy, const struct gv_tensor *ids,
                                     int64_t lo, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "embedding_shard_bwd");
  bf_out(&c, "dtable", &dtable, flags & GV_ACC_DW);
  bf_in(&c, "dy", &dy);
  bf_stage(&c);
  gv_cpu_embedding_shard_bwd(be, dtable, dy, ids, lo, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_layernorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *mean,
                               struct gv_tensor *rstd, const struct gv_tensor *x,
                               const struct gv_tensor *w, const struct gv_tensor *b, float eps)
{
  struct bf_call c;
  bf_begin(&c, be, "layernorm_fwd");
  bf_out(&c, "y", &y, 0);
  bf_stat(&c, "mean", mean);
  bf_stat(&c, "rstd", rstd);
  bf_in(&c, "x", &x);
  bf_in(&c, "w", &w);
  bf_in(&c, "b", &b);
  bf_stage(&c);
  gv_cpu_layernorm_fwd(be, y, mean, rstd, x, w, b, eps);
  bf_finish(&c);
}

void gv_cpu_bf16_layernorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                               struct gv_tensor *db, const struct gv_tensor *dy,
                               const struct gv_tensor *x, const struct gv_tensor *w,
                               const struct gv_tensor *mean, const struct gv_tensor *rstd, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "layernorm_bwd");
  bf_out(&c, "dx", &dx, flags & GV_ACC_DX);
  bf_out(&c, "dw", &dw, flags & GV_ACC_DW);
  bf_out(&c, "db", &db, flags & GV_ACC_DW);
  bf_in(&c, "dy", &dy);
  bf_in(&c, "x", &x);
  bf_in(&c, "w", &w);
  bf_stat(&c, "mean", mean);
  bf_stat(&c, "rstd", rstd);
  bf_stage(&c);
  gv_cpu_layernorm_bwd(be, dx, dw, db, dy, x, w, mean, rstd, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *rstd,
                             const struct gv_tensor *x, const struct gv_tensor *w, float eps)
{
  struct bf_call c;
  bf_begin(&c, be, "rmsnorm_fwd");
  bf_out(&c, "y", &y, 0);
  bf_stat(&c, "rstd", rstd);
  bf_in(&c, "x", &x);
  bf_in(&c, "w", &w);
  bf_stage(&c);
  gv_cpu_rmsnorm_fwd(be, y, rstd, x, w, eps);
  bf_finish(&c);
}

void gv_cpu_bf16_rmsnorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                             const struct gv_tensor *dy, const struct gv_tensor *x,
                             const struct gv_tensor *w, const struct gv_tensor *rstd, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "rmsnorm_bwd");
  bf_out(&c, "dx", &dx, flags & GV_ACC_DX);
  bf_out(&c, "dw", &dw, flags & GV_ACC_DW);
  bf_in(&c, "dy", &dy);
  bf_in(&c, "x", &x);
  bf_in(&c, "w", &w);
  bf_stat(&c, "rstd", rstd);
  bf_stage(&c);
  gv_cpu_rmsnorm_bwd(be, dx, dw, dy, x, w, rstd, flags);
  bf_finish(&c);
}

/* The one-input elementwise forms: y = f(x), and dx (+)= dy * f'(x). */
static void bf_unary(struct bf_call *c, struct gv_tensor **y, const struct gv_tensor **x)
{
  bf_out(c, "y", y, 0);
  bf_in(c, "x", x);
  bf_stage(c);
}
static void bf_unary_bwd(struct bf_call *c, struct gv_tensor **dx, const struct gv_tensor **dy,
                         const struct gv_tensor **x, int flags)
{
  bf_out(c, "dx", dx, flags & GV_ACC_DX);
  bf_in(c, "dy", dy);
  if (x) bf_in(c, "x", x);
  bf_stage(c);
}
/* The two-input forms: y = f(a, b) (swiglu: a = gate, b = up). */
static void bf_binary(struct bf_call *c, struct gv_tensor **y, const char *na, const struct gv_tensor **a,
                      const char *nb, const struct gv_tensor **b)
{
  bf_out(c, "y", y, 0);
  bf_in(c, na, a);
  bf_in(c, nb, b);
  bf_stage(c);
}
static void bf_binary_bwd(struct bf_call *c, const char *nda, struct gv_tensor **da, const char *ndb,
                          struct gv_tensor **db, const struct gv_tensor **dy, const char *na,
                          const struct gv_tensor **a, const char *nb, const struct gv_tensor **b, int flags)
{
  bf_out(c, nda, da, flags & GV_ACC_DX);
  bf_out(c, ndb, db, flags & GV_ACC_DX);
  bf_in(c, "dy", dy);
  bf_in(c, na, a);
  bf_in(c, nb, b);
  bf_stage(c);
}

void gv_cpu_bf16_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                          int tanh_form)
{
  struct bf_call c;
  bf_begin(&c, be, "gelu_fwd");
  bf_unary(&c, &y, &x);
  gv_cpu_gelu_fwd(be, y, x, tanh_form);
  bf_finish(&c);
}

void gv_cpu_bf16_gelu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                          const struct gv_tensor *x, int tanh_form, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "gelu_bwd");
  bf_unary_bwd(&c, &dx, &dy, &x, flags);
  gv_cpu_gelu_bwd(be, dx, dy, x, tanh_form, flags);
  bf_finish(&c);
}

/* The wrappers of an activation without options (NAME_fwd, NAME_bwd). */
#define BF16_UNARY(NAME)                                                                          \
  void gv_cpu_bf16_##NAME##_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x) \
  {                                                                                               \
    struct bf_call c;                                                                             \
    bf_begin(&c, be, #NAME "_fwd");                                                               \
    bf_unary(&c, &y, &x);                                                                         \
    gv_cpu_##NAME##_fwd(be, y, x);                                                                \
    bf_finish(&c);                                                                                \
  }                                                                                               \
  void gv_cpu_bf16_##NAME##_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy, \
                                const struct gv_tensor *x, int flags)                             \
  {                                                                                               \
    struct bf_call c;                                                                             \
    bf_begin(&c, be, #NAME "_bwd");                                                               \
    bf_unary_bwd(&c, &dx, &dy, &x, flags);                                                        \
    gv_cpu_##NAME##_bwd(be, dx, dy, x, flags);                                                    \
    bf_finish(&c);                                                                                \
  }
BF16_UNARY(silu)
BF16_UNARY(relu)

/* A binary op of operands A and B and its backward (the gradients dA and dB), around the
 * fp32 kernel; the names are the operands' in messages. */
#define BF16_BINARY(NAME, A, B)                                                                   \
  void gv_cpu_bf16_##NAME##_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *A, \
                                const struct gv_tensor *B)                                        \
  {                                                                                               \
    struct bf_call c;                                                                             \
    bf_begin(&c, be, #NAME "_fwd");                                                               \
    bf_binary(&c, &y, #A, &A, #B, &B);                                                            \
    gv_cpu_##NAME##_fwd(be, y, A, B);                                                             \
    bf_finish(&c);                                                                                \
  }                                                                                               \
  void gv_cpu_bf16_##NAME##_bwd(struct gv_backend *be, struct gv_tensor *d##A, struct gv_tensor *d##B, \
                                const struct gv_tensor *dy, const struct gv_tensor *A,            \
                                const struct gv_tensor *B, int flags)                             \
  {                                                                                               \
    struct bf_call c;                                                                             \
    bf_begin(&c, be, #NAME "_bwd");                                                               \
    bf_binary_bwd(&c, "d" #A, &d##A, "d" #B, &d##B, &dy, #A, &A, #B, &B, flags);                  \
    gv_cpu_##NAME##_bwd(be, d##A, d##B, dy, A, B, flags);                                         \
    bf_finish(&c);                                                                                \
  }
BF16_BINARY(swiglu, gate, up)
BF16_BINARY(mul, a, b)

void gv_cpu_bf16_add_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                         const struct gv_tensor *b)
{
  struct bf_call c;
  bf_begin(&c, be, "add_fwd");
  bf_binary(&c, &y, "a", &a, "b", &b);
  gv_cpu_add_fwd(be, y, a, b);
  bf_finish(&c);
}

void gv_cpu_bf16_affine(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float alpha,
                        float beta, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "affine");
  bf_unary_bwd(&c, &y, &x, NULL, flags);
  gv_cpu_affine(be, y, x, alpha, beta, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_softmax_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x)
{
  struct bf_call c;
  bf_begin(&c, be, "softmax_fwd");
  bf_unary(&c, &y, &x);
  gv_cpu_softmax_fwd(be, y, x);
  bf_finish(&c);
}

void gv_cpu_bf16_softmax_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                             const struct gv_tensor *y, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "softmax_bwd");
  bf_unary_bwd(&c, &dx, &dy, &y, flags);
  gv_cpu_softmax_bwd(be, dx, dy, y, flags);
  bf_finish(&c);
}

/* Without accumulation dst is read too: the columns the copy leaves alone keep their values. */
void gv_cpu_bf16_copy_cols(struct gv_backend *be, struct gv_tensor *dst, int64_t dst_col,
                           const struct gv_tensor *src, int64_t src_col, int64_t n, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "copy_cols");
  if (flags & GV_ACC_DX)
    bf_out(&c, "dst", &dst, 1);
  else
    bf_inout(&c, "dst", &dst);
  bf_in(&c, "src", &src);
  bf_stage(&c);
  gv_cpu_copy_cols(be, dst, dst_col, src, src_col, n, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_rope_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                          float base, int64_t rot_dim, int64_t pos_offset)
{
  struct bf_call c;
  bf_begin(&c, be, "rope_fwd");
  bf_unary(&c, &y, &x);
  gv_cpu_rope_fwd(be, y, x, base, rot_dim, pos_offset);
  bf_finish(&c);
}

void gv_cpu_bf16_rope_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                          float base, int64_t rot_dim, int64_t pos_offset, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "rope_bwd");
  bf_unary_bwd(&c, &dx, &dy, NULL, flags);
  gv_cpu_rope_bwd(be, dx, dy, base, rot_dim, pos_offset, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_dropout_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                             float p, uint64_t seed, uint64_t offset)
{
  struct bf_call c;
  bf_begin(&c, be, "dropout_fwd");
  bf_unary(&c, &y, &x);
  gv_cpu_dropout_fwd(be, y, x, p, seed, offset);
  bf_finish(&c);
}

void gv_cpu_bf16_dropout_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                             float p, uint64_t seed, uint64_t offset, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "dropout_bwd");
  bf_unary_bwd(&c, &dx, &dy, NULL, flags);
  gv_cpu_dropout_bwd(be, dx, dy, p, seed, offset, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_attention_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                               const struct gv_tensor *q, const struct gv_tensor *k,
                               const struct gv_tensor *v, int causal, const struct gv_attn_opts *x)
{
  struct bf_call c;
  struct gv_attn_opts xo = x ? *x : (struct gv_attn_opts){0};
  bf_begin(&c, be, "attention_fwd");
  bf_out(&c, "o", &o, 0);
  bf_stat(&c, "lse", lse);
  bf_in(&c, "q", &q);
  bf_in(&c, "k", &k);
  bf_in(&c, "v", &v);
  if (xo.bias)
    bf_in(&c, "bias", &xo.bias);
  bf_stage(&c);
  gv_cpu_attention_fwd(be, o, lse, q, k, v, causal, &xo);
  bf_finish(&c);
}

void gv_cpu_bf16_attention_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                               struct gv_tensor *dv, const struct gv_tensor *dout,
                               const struct gv_tensor *q, const struct gv_tensor *k,
                               const struct gv_tensor *v, const struct gv_tensor *o,
                               const struct gv_tensor *lse, int causal, int flags, const struct gv_attn_opts *x)
{
  struct bf_call c;
  struct gv_attn_opts xo = x ? *x : (struct gv_attn_opts){0};
  bf_begin(&c, be, "attention_bwd");
  if (xo.bias)
    bf_in(&c, "bias", &xo.bias);
  if (xo.dbias)
    bf_out(&c, "dbias", &xo.dbias, 1);
  bf_out(&c, "dq", &dq, flags & GV_ACC_DX);
  bf_out(&c, "dk", &dk, flags & GV_ACC_DX);
  bf_out(&c, "dv", &dv, flags & GV_ACC_DX);
  bf_in(&c, "dout", &dout);
  bf_in(&c, "q", &q);
  bf_in(&c, "k", &k);
  bf_in(&c, "v", &v);
  bf_in(&c, "o", &o);
  bf_stat(&c, "lse", lse);
  bf_stage(&c);
  gv_cpu_attention_bwd(be, dq, dk, dv, dout, q, k, v, o, lse, causal, flags, &xo);
  bf_finish(&c);
}

void gv_cpu_bf16_xent_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                          const struct gv_tensor *logits, const struct gv_tensor *targets, float scale)
{
  struct bf_call c;
  bf_begin(&c, be, "xent_fwd");
  bf_stat(&c, "loss", loss);
  bf_stat(&c, "lse", lse);
  bf_in(&c, "logits", &logits);
  bf_stage(&c);
  gv_cpu_xent_fwd(be, loss, lse, logits, targets, scale);
}

void gv_cpu_bf16_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                          const struct gv_tensor *logits, const struct gv_tensor *lse,
                          const struct gv_tensor *targets, float scale)
{
  struct bf_call c;
  bf_begin(&c, be, "xent_bwd");
  bf_out(&c, "dlogits", &dlogits, 0);
  bf_in(&c, "logits", &logits);
  bf_stat(&c, "lse", lse);
  bf_stage(&c);
  gv_cpu_xent_bwd(be, dlogits, logits, lse, targets, scale);
  bf_finish(&c);
}

void gv_cpu_bf16_xent_shard_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                                struct gv_tensor *part, const struct gv_tensor *logits,
                                const struct gv_tensor *targets, int64_t lo, float scale, int stage)
{
  struct bf_call c;
  bf_begin(&c, be, "xent_shard_fwd");
  bf_stat(&c, "loss", loss);
  bf_stat(&c, "lse", lse);
  bf_stat(&c, "part", part);
  bf_in(&c, "logits", &logits);
  bf_stage(&c);
  gv_cpu_xent_shard_fwd(be, loss, lse, part, logits, targets, lo, scale, stage);
}

void gv_cpu_bf16_xent_shard_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                                const struct gv_tensor *logits, const struct gv_tensor *lse,
                                const struct gv_tensor *targets, int64_t lo, float scale)
{
  struct bf_call c;
  bf_begin(&c, be, "xent_shard_bwd");
  bf_out(&c, "dlogits", &dlogits, 0);
  bf_in(&c, "logits", &logits);
  bf_stat(&c, "lse", lse);
  bf_stage(&c);
  gv_cpu_xent_shard_bwd(be, dlogits, logits, lse, targets, lo, scale);
  bf_finish(&c);
}

/* ---- reductions and in-place updates: fp32 math, one rounding per stored element ---- */

double gv_cpu_bf16_sumsq(struct gv_backend *be, const struct gv_tensor *x)
{
  struct bf_call c;
  bf_begin(&c, be, "sumsq");
  bf_in(&c, "x", &x);
  bf_stage(&c);
  return gv_cpu_sumsq(be, x);
}

/* The sums of several tensors: all f32 in one parallel region (gv_optim_sq_sum_multi, as
 * gv_cpu_sumsq is gv_optim_sq_sum), else one by one, each widened first. */
double gv_cpu_bf16_sumsq_multi(struct gv_backend *be, const struct gv_tensor *xs, int count)
{
  int all_f32 = 1;
  for (int i = 0; i < count; i++)
    all_f32 &= xs[i].dtype == GV_DTYPE_F32;
  if (!all_f32) {
    double sq = 0.0;
    for (int i = 0; i < count; i++)
      sq += gv_cpu_bf16_sumsq(be, &xs[i]);
    return sq;
  }
  const float *g[count > 0 ? count : 1];
  size_t n[count > 0 ? count : 1];
  for (int i = 0; i < count; i++) {
    g[i] = cpu_f32(&xs[i]);
    n[i] = (size_t)gv_tensor_numel(&xs[i]);
  }
  return gv_optim_sq_sum_multi(g, n, count);
}

void gv_cpu_bf16_fill(struct gv_backend *be, struct gv_tensor *x, float value)
{
  struct bf_call c;
  bf_begin(&c, be, "fill");
  bf_out(&c, "x", &x, 0);
  bf_stage(&c);
  gv_cpu_fill(be, x, value);
  bf_finish(&c);
}

void gv_cpu_bf16_axpy(struct gv_backend *be, struct gv_tensor *y, float alpha, const struct gv_tensor *x)
{
  struct bf_call c;
  bf_begin(&c, be, "axpy");
  bf_inout(&c, "y", &y);
  bf_in(&c, "x", &x);
  bf_stage(&c);
  gv_cpu_axpy(be, y, alpha, x);
  bf_finish(&c);
}

void gv_cpu_bf16_scale(struct gv_backend *be, struct gv_tensor *x, float alpha)
{
  struct bf_call c;
  bf_begin(&c, be, "scale");
  bf_inout(&c, "x", &x);
  bf_stage(&c);
  gv_cpu_scale(be, x, alpha);
  bf_finish(&c);
}

/* ---- mixture of experts (moe.c); idx stays i32 ---- */

void gv_cpu_bf16_topk(struct gv_backend *be, struct gv_tensor *idx, const struct gv_tensor *x)
{
  struct bf_call c;
  bf_begin(&c, be, "topk");
  bf_in(&c, "x", &x);
  bf_stage(&c);
  gv_cpu_topk(be, idx, x);
  bf_finish(&c);
}

void gv_cpu_bf16_take_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                          const struct gv_tensor *idx)
{
  struct bf_call c;
  bf_begin(&c, be, "take_fwd");
  bf_out(&c, "y", &y, 0);
  bf_in(&c, "x", &x);
  bf_stage(&c);
  gv_cpu_take_fwd(be, y, x, idx);
  bf_finish(&c);
}

void gv_cpu_bf16_take_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                          const struct gv_tensor *idx, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "take_bwd");
  bf_out(&c, "dx", &dx, flags & GV_ACC_DX);
  bf_in(&c, "dy", &dy);
  bf_stage(&c);
  gv_cpu_take_bwd(be, dx, dy, idx, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_moe_permute_fwd(struct gv_backend *be, struct gv_tensor *xp, const struct gv_tensor *x,
                                 const struct gv_tensor *idx, int64_t E)
{
  struct bf_call c;
  bf_begin(&c, be, "moe_permute_fwd");
  bf_out(&c, "xp", &xp, 0);
  bf_in(&c, "x", &x);
  bf_stage(&c);
  gv_cpu_moe_permute_fwd(be, xp, x, idx, E);
  bf_finish(&c);
}

void gv_cpu_bf16_moe_permute_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dxp,
                                 const struct gv_tensor *idx, int64_t E, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "moe_permute_bwd");
  bf_out(&c, "dx", &dx, flags & GV_ACC_DX);
  bf_in(&c, "dxp", &dxp);
  bf_stage(&c);
  gv_cpu_moe_permute_bwd(be, dx, dxp, idx, E, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_moe_grouped_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                                 const struct gv_tensor *w, const struct gv_tensor *idx)
{
  struct bf_call c;
  bf_begin(&c, be, "moe_grouped_fwd");
  bf_out(&c, "y", &y, 0);
  bf_in(&c, "x", &x);
  bf_in(&c, "w", &w);
  bf_stage(&c);
  gv_cpu_moe_grouped_fwd(be, y, x, w, idx);
  bf_finish(&c);
}

void gv_cpu_bf16_moe_grouped_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                                 const struct gv_tensor *dy, const struct gv_tensor *x, const struct gv_tensor *w,
                                 const struct gv_tensor *idx, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "moe_grouped_bwd");
  bf_out(&c, "dx", &dx, flags & GV_ACC_DX);
  bf_out(&c, "dw", &dw, flags & GV_ACC_DW);
  bf_in(&c, "dy", &dy);
  bf_in(&c, "x", &x);
  bf_in(&c, "w", &w);
  bf_stage(&c);
  gv_cpu_moe_grouped_bwd(be, dx, dw, dy, x, w, idx, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_moe_unpermute_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *yp,
                                   const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t E)
{
  struct bf_call c;
  bf_begin(&c, be, "moe_unpermute_fwd");
  bf_out(&c, "y", &y, 0);
  bf_in(&c, "yp", &yp);
  bf_in(&c, "gates", &gates);
  bf_stage(&c);
  gv_cpu_moe_unpermute_fwd(be, y, yp, gates, idx, E);
  bf_finish(&c);
}

void gv_cpu_bf16_moe_unpermute_bwd(struct gv_backend *be, struct gv_tensor *dyp, struct gv_tensor *dgates,
                                   const struct gv_tensor *dy, const struct gv_tensor *yp,
                                   const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t E, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "moe_unpermute_bwd");
  bf_out(&c, "dyp", &dyp, flags & GV_ACC_DX);
  bf_out(&c, "dgates", &dgates, flags & GV_ACC_DX);
  bf_in(&c, "dy", &dy);
  bf_in(&c, "yp", &yp);
  bf_in(&c, "gates", &gates);
  bf_stage(&c);
  gv_cpu_moe_unpermute_bwd(be, dyp, dgates, dy, yp, gates, idx, E, flags);
  bf_finish(&c);
}

void gv_cpu_bf16_moe_aux_fwd(struct gv_backend *be, struct gv_tensor *loss, const struct gv_tensor *probs,
                             const struct gv_tensor *idx, float scale)
{
  struct bf_call c;
  bf_begin(&c, be, "moe_aux_fwd");
  bf_stat(&c, "loss", loss);
  bf_in(&c, "probs", &probs);
  bf_stage(&c);
  gv_cpu_moe_aux_fwd(be, loss, probs, idx, scale);
  bf_finish(&c);
}

void gv_cpu_bf16_moe_aux_bwd(struct gv_backend *be, struct gv_tensor *dprobs, const struct gv_tensor *idx,
                             float scale, int flags)
{
  struct bf_call c;
  bf_begin(&c, be, "moe_aux_bwd");
  bf_out(&c, "dprobs", &dprobs, flags & GV_ACC_DX);
  bf_stage(&c);
  gv_cpu_moe_aux_bwd(be, dprobs, idx, scale, flags);
  bf_finish(&c);
}
