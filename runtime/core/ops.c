/* ops.c - the checked entry points generated code calls: each checks shapes and dtypes once,
 * for every backend, then calls through the backend's table. A mismatch is fatal and the
 * message prints the shapes involved. Kernels may therefore assume consistent shapes. */
#include <math.h>

#include "gvrt.h"

#define SHAPE_MAX 96

/* ---- shape helpers ---- */

static int64_t last_dim(const struct gv_tensor *t) { return t->shape[t->ndim - 1]; }
static int64_t rows_of(const struct gv_tensor *t)
{
  int64_t c = last_dim(t);
  return c ? gv_tensor_numel(t) / c : 0;
}

static int same_shape(const struct gv_tensor *a, const struct gv_tensor *b)
{
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

static void need_same(const char *op, const char *na, const struct gv_tensor *a, const char *nb,
                      const struct gv_tensor *b)
{
  char sa[SHAPE_MAX], sb[SHAPE_MAX];
  if (!a || !b) return;
  GV_CHECK(same_shape(a, b), "%s: %s %s and %s %s differ", op, na, gv_tensor_str(a, sa, SHAPE_MAX),
           nb, gv_tensor_str(b, sb, SHAPE_MAX));
}

static void need_float(const char *op, const char *name, const struct gv_tensor *t)
{
  GV_CHECK(!t || t->dtype == GV_DTYPE_F32 || t->dtype == GV_DTYPE_BF16,
           "%s: %s must be f32 or bf16, is %s", op, name, gv_dtype_name(t->dtype));
}

static void need_vec(const char *op, const char *name, const struct gv_tensor *t, int64_t n)
{
  char s[SHAPE_MAX];
  if (!t) return;
  GV_CHECK(gv_tensor_numel(t) == n, "%s: %s %s must have %lld elements", op, name,
           gv_tensor_str(t, s, SHAPE_MAX), (long long)n);
}

static void need_last(const char *op, const char *name, const struct gv_tensor *t, int64_t n)
{
  char s[SHAPE_MAX];
  if (!t) return;
  GV_CHECK(last_dim(t) == n, "%s: %s %s must end in %lld", op, name, gv_tensor_str(t, s, SHAPE_MAX),
           (long long)n);
}

static void need_ids(const char *op, const struct gv_tensor *ids, int64_t n)
{
  if (!ids) return;
  GV_CHECK(ids->dtype == GV_DTYPE_I32, "%s: ids/targets must be i32, are %s", op,
           gv_dtype_name(ids->dtype));
  need_vec(op, "ids", ids, n);
}

/* Operands that may not be NULL (optional ones are documented in gvrt.h). */
static void need_given(const char *op, int ok)
{
  GV_CHECK(ok, "%s: a required tensor is NULL", op);
}

/* ---- linear ---- */

static void check_linear(const char *op, const struct gv_tensor *y, const struct gv_tensor *x,
                         const struct gv_tensor *w, const struct gv_tensor *b)
{
  char sx[SHAPE_MAX], sw[SHAPE_MAX], sy[SHAPE_MAX];
  need_given(op, y && x && w);
  GV_CHECK(w->ndim == 2 && last_dim(x) == w->shape[1] && last_dim(y) == w->shape[0] &&
               rows_of(x) == rows_of(y),
           "%s: x %s, w %s, y %s do not fit y = x w^T", op, gv_tensor_str(x, sx, SHAPE_MAX),
           gv_tensor_str(w, sw, SHAPE_MAX), gv_tensor_str(y, sy, SHAPE_MAX));
  need_vec(op, "bias", b, w->shape[0]);
  need_float(op, "x", x);
  need_float(op, "w", w);
  need_float(op, "y", y);
}

void gv_linear_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                   const struct gv_tensor *w, const struct gv_tensor *b)
{
  check_linear("linear_fwd", y, x, w, b);
  be->ops->linear_fwd(be, y, x, w, b);
}

void gv_linear_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                   struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                   const struct gv_tensor *w, int flags)
{
  check_linear("linear_bwd", dy, x, w, db);
  need_same("linear_bwd", "dx", dx, "x", x);
  need_same("linear_bwd", "dw", dw, "w", w);
  be->ops->linear_bwd(be, dx, dw, db, dy, x, w, flags);
}

/* ---- embedding ---- */

static void check_embedding(const char *op, const struct gv_tensor *y, const struct gv_tensor *ids,
                            const struct gv_tensor *table)
{
  char s[SHAPE_MAX];
  need_given(op, y && table);
  GV_CHECK(table->ndim == 2, "%s: table %s must be [V, C]", op, gv_tensor_str(table, s, SHAPE_MAX));
  need_last(op, "y", y, table->shape[1]);
  GV_CHECK(ids || y->ndim >= 3, "%s: positions need y as [B, T, C], got %s", op,
           gv_tensor_str(y, s, SHAPE_MAX));
  need_ids(op, ids, rows_of(y));
}

void gv_embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                      const struct gv_tensor *table, int64_t pos_offset, int accumulate)
{
  check_embedding("embedding_fwd", y, ids, table);
  be->ops->embedding_fwd(be, y, ids, table, pos_offset, accumulate);
}

void gv_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable, const struct gv_tensor *dy,
                      const struct gv_tensor *ids, int64_t pos_offset, int flags)
{
  check_embedding("embedding_bwd", dy, ids, dtable);
  be->ops->embedding_bwd(be, dtable, dy, ids, pos_offset, flags);
}

/* ---- norms ---- */

static void check_norm(const char *op, const struct gv_tensor *y, const struct gv_tensor *x,
                       const struct gv_tensor *w, const struct gv_tensor *b,
                       const struct gv_tensor *mean, const struct gv_tensor *rstd)
{
  need_given(op, y && x && w && rstd);
  need_same(op, "y", y, "x", x);
  need_vec(op, "weight", w, last_dim(x));
  need_vec(op, "bias", b, last_dim(x));
  need_vec(op, "mean", mean, rows_of(x));
  need_vec(op, "rstd", rstd, rows_of(x));
  need_float(op, "x", x);
}

void gv_layernorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *mean,
                      struct gv_tensor *rstd, const struct gv_tensor *x, const struct gv_tensor *w,
                      const struct gv_tensor *b, float eps)
{
  need_given("layernorm_fwd", mean != NULL);             /* b may be NULL: no bias */
  check_norm("layernorm_fwd", y, x, w, b, mean, rstd);
  be->ops->layernorm_fwd(be, y, mean, rstd, x, w, b, eps);
}

void gv_layernorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                      struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                      const struct gv_tensor *w, const struct gv_tensor *mean,
                      const struct gv_tensor *rstd, int flags)
{
  need_given("layernorm_bwd", mean != NULL);
  check_norm("layernorm_bwd", dy, x, w, db, mean, rstd);
  need_same("layernorm_bwd", "dx", dx, "x", x);
  need_same("layernorm_bwd", "dw", dw, "w", w);
  be->ops->layernorm_bwd(be, dx, dw, db, dy, x, w, mean, rstd, flags);
}

void gv_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *rstd,
                    const struct gv_tensor *x, const struct gv_tensor *w, float eps)
{
  check_norm("rmsnorm_fwd", y, x, w, NULL, NULL, rstd);
  be->ops->rmsnorm_fwd(be, y, rstd, x, w, eps);
}

void gv_rmsnorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                    const struct gv_tensor *dy, const struct gv_tensor *x, const struct gv_tensor *w,
                    const struct gv_tensor *rstd, int flags)
{
  check_norm("rmsnorm_bwd", dy, x, w, NULL, NULL, rstd);
  need_same("rmsnorm_bwd", "dx", dx, "x", x);
  need_same("rmsnorm_bwd", "dw", dw, "w", w);
  be->ops->rmsnorm_bwd(be, dx, dw, dy, x, w, rstd, flags);
}

/* ---- elementwise ---- */

/* a is required; b, c, d are compared when given. */
static void check_ew(const char *op, const struct gv_tensor *a, const struct gv_tensor *b,
                     const struct gv_tensor *c, const struct gv_tensor *d)
{
  need_given(op, a != NULL);
  need_same(op, "operand", b, "operand", a);
  need_same(op, "operand", c, "operand", a);
  need_same(op, "operand", d, "operand", a);
  need_float(op, "operand", a);
}

void gv_linear_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *pre, const struct gv_tensor *x,
                        const struct gv_tensor *w, const struct gv_tensor *b)
{
  need_given("linear_gelu_fwd", y && pre);
  check_linear("linear_gelu_fwd", pre, x, w, b);
  need_same("linear_gelu_fwd", "y", y, "pre", pre);
  be->ops->linear_gelu_fwd(be, y, pre, x, w, b);
}

void gv_linear_dgelu_bwd(struct gv_backend *be, struct gv_tensor *dpre, struct gv_tensor *dw, struct gv_tensor *db,
                         const struct gv_tensor *dy, const struct gv_tensor *x, const struct gv_tensor *w,
                         const struct gv_tensor *pre, int flags)
{
  need_given("linear_dgelu_bwd", dpre && pre);
  check_linear("linear_dgelu_bwd", dy, x, w, db);
  need_same("linear_dgelu_bwd", "dpre", dpre, "x", x);
  need_same("linear_dgelu_bwd", "pre", pre, "x", x);
  need_same("linear_dgelu_bwd", "dw", dw, "w", w);
  be->ops->linear_dgelu_bwd(be, dpre, dw, db, dy, x, w, pre, flags & GV_ACC_DW);
}

void gv_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, int tanh_form)
{
  need_given("gelu_fwd", y && x);
  check_ew("gelu_fwd", y, x, NULL, NULL);
  be->ops->gelu_fwd(be, y, x, tanh_form);
}

void gv_gelu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                 const struct gv_tensor *x, int tanh_form, int flags)
{
  need_given("gelu_bwd", dx && dy && x);
  check_ew("gelu_bwd", dx, dy, x, NULL);
  be->ops->gelu_bwd(be, dx, dy, x, tanh_form, flags);
}

/* The dispatchers of an activation y = f(x) without options: NAME_fwd and NAME_bwd. */
#define GV_UNARY_OPS(NAME)                                                                         \
  void gv_##NAME##_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x)     \
  {                                                                                                \
    need_given(#NAME "_fwd", y && x);                                                              \
    check_ew(#NAME "_fwd", y, x, NULL, NULL);                                                      \
    be->ops->NAME##_fwd(be, y, x);                                                                 \
  }                                                                                                \
  void gv_##NAME##_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,   \
                       const struct gv_tensor *x, int flags)                                       \
  {                                                                                                \
    need_given(#NAME "_bwd", dx && dy && x);                                                       \
    check_ew(#NAME "_bwd", dx, dy, x, NULL);                                                       \
    be->ops->NAME##_bwd(be, dx, dy, x, flags);                                                     \
  }
GV_UNARY_OPS(silu)
GV_UNARY_OPS(relu)

void gv_swiglu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *gate,
                   const struct gv_tensor *up)
{
  need_given("swiglu_fwd", y && gate && up);
  check_ew("swiglu_fwd", y, gate, up, NULL);
  be->ops->swiglu_fwd(be, y, gate, up);
}

void gv_swiglu_bwd(struct gv_backend *be, struct gv_tensor *dgate, struct gv_tensor *dup,
                   const struct gv_tensor *dy, const struct gv_tensor *gate,
                   const struct gv_tensor *up, int flags)
{
  need_given("swiglu_bwd", dy && gate && up);
  check_ew("swiglu_bwd", dy, gate, up, dgate);
  check_ew("swiglu_bwd", dy, dup, NULL, NULL);
  be->ops->swiglu_bwd(be, dgate, dup, dy, gate, up, flags);
}

void gv_mul_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                const struct gv_tensor *b)
{
  need_given("mul_fwd", y && a && b);
  check_ew("mul_fwd", y, a, b, NULL);
  be->ops->mul_fwd(be, y, a, b);
}

void gv_mul_bwd(struct gv_backend *be, struct gv_tensor *da, struct gv_tensor *db,
                const struct gv_tensor *dy, const struct gv_tensor *a, const struct gv_tensor *b,
                int flags)
{
  need_given("mul_bwd", dy && a && b);
  check_ew("mul_bwd", dy, a, b, da);
  check_ew("mul_bwd", dy, db, NULL, NULL);
  be->ops->mul_bwd(be, da, db, dy, a, b, flags);
}

/* The residual stream h must survive the norm: y may not share its memory. */
static void check_add_norm(const char *op, const struct gv_tensor *h, const struct gv_tensor *y,
                           const struct gv_tensor *a, const struct gv_tensor *b)
{
  need_given(op, h && y && a && b);
  check_ew(op, h, a, b, NULL);
  GV_CHECK(h->data != y->data, "%s: y must not alias the residual sum h", op);
}

void gv_add_layernorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *mean,
                          struct gv_tensor *rstd, const struct gv_tensor *a, const struct gv_tensor *b,
                          const struct gv_tensor *w, const struct gv_tensor *bias, float eps)
{
  check_add_norm("add_layernorm_fwd", h, y, a, b);
  need_given("add_layernorm_fwd", mean != NULL);
  check_norm("add_layernorm_fwd", y, h, w, bias, mean, rstd);
  be->ops->add_layernorm_fwd(be, h, y, mean, rstd, a, b, w, bias, eps);
}

void gv_add_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *rstd,
                        const struct gv_tensor *a, const struct gv_tensor *b, const struct gv_tensor *w, float eps)
{
  check_add_norm("add_rmsnorm_fwd", h, y, a, b);
  check_norm("add_rmsnorm_fwd", y, h, w, NULL, NULL, rstd);
  be->ops->add_rmsnorm_fwd(be, h, y, rstd, a, b, w, eps);
}

void gv_add_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                const struct gv_tensor *b)
{
  need_given("add_fwd", y && a && b);
  check_ew("add_fwd", y, a, b, NULL);
  be->ops->add_fwd(be, y, a, b);
}

/* ---- affine, softmax, column copies ---- */

void gv_affine(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float alpha, float beta,
               int flags)
{
  need_given("affine", y && x);
  check_ew("affine", y, x, NULL, NULL);
  be->ops->affine(be, y, x, alpha, beta, flags);
}

void gv_softmax_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x)
{
  need_given("softmax_fwd", y && x);
  check_ew("softmax_fwd", y, x, NULL, NULL);
  be->ops->softmax_fwd(be, y, x);
}

void gv_softmax_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                    const struct gv_tensor *y, int flags)
{
  need_given("softmax_bwd", dx && dy && y);
  check_ew("softmax_bwd", dx, dy, y, NULL);
  GV_CHECK(dx->data != y->data, "softmax_bwd: dx may not alias y");
  be->ops->softmax_bwd(be, dx, dy, y, flags);
}

void gv_copy_cols(struct gv_backend *be, struct gv_tensor *dst, int64_t dst_col, const struct gv_tensor *src,
                  int64_t src_col, int64_t n, int flags)
{
  char sd[SHAPE_MAX], ss[SHAPE_MAX];
  need_given("copy_cols", dst && src);
  need_float("copy_cols", "dst", dst);
  GV_CHECK(rows_of(dst) == rows_of(src) && dst->dtype == src->dtype && dst->data != src->data,
           "copy_cols: dst %s and src %s need the same rows and dtype and distinct memory",
           gv_tensor_str(dst, sd, SHAPE_MAX), gv_tensor_str(src, ss, SHAPE_MAX));
  GV_CHECK(n >= 0 && dst_col >= 0 && src_col >= 0 && dst_col + n <= last_dim(dst) && src_col + n <= last_dim(src),
           "copy_cols: columns %lld..%lld of src %s into %lld.. of dst %s are out of range", (long long)src_col,
           (long long)(src_col + n), gv_tensor_str(src, ss, SHAPE_MAX), (long long)dst_col,
           gv_tensor_str(dst, sd, SHAPE_MAX));
  be->ops->copy_cols(be, dst, dst_col, src, src_col, n, flags);
}

void gv_patchify(struct gv_backend *be, struct gv_tensor *rows, struct gv_tensor *img, int64_t patch, int inverse)
{
  char sr[SHAPE_MAX], si[SHAPE_MAX];
  need_given("patchify", rows && img);
  need_float("patchify", "img", img);
  int64_t p = patch, B = img->shape[0], C = img->shape[1], H = img->shape[2], W = img->shape[3];
  GV_CHECK(p > 0 && img->ndim == 4 && rows->ndim == 3 && H % p == 0 && W % p == 0 && rows->shape[0] == B &&
               rows->shape[1] == (H / p) * (W / p) && rows->shape[2] == C * p * p && rows->dtype == img->dtype &&
               rows->data != img->data,
           "patchify: rows %s are not the %lld x %lld patches of images %s (same dtype, distinct memory)",
           gv_tensor_str(rows, sr, SHAPE_MAX), (long long)p, (long long)p, gv_tensor_str(img, si, SHAPE_MAX));
  if (gv_tensor_numel(img))
    be->ops->patchify(be, rows, img, patch, inverse);
}

/* ---- rope ---- */

/* Checks the operands and returns the rotated width (rot_dim, or D when 0). */
static int64_t check_rope(const char *op, const struct gv_tensor *y, const struct gv_tensor *x, int64_t rot_dim)
{
  char s[SHAPE_MAX];
  need_given(op, y && x);
  GV_CHECK(x->ndim == 4 && x->shape[3] % 2 == 0, "%s: x %s must be [B, T, H, D] with D even", op,
           gv_tensor_str(x, s, SHAPE_MAX));
  check_ew(op, y, x, NULL, NULL);
  int64_t rot = rot_dim ? rot_dim : x->shape[3];
  GV_CHECK(rot > 0 && rot % 2 == 0 && rot <= x->shape[3], "%s: rot_dim %lld must be even, positive and at most D = %lld",
           op, (long long)rot_dim, (long long)x->shape[3]);
  return rot;
}

void gv_rope_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float base,
                 int64_t rot_dim, int64_t pos_offset)
{
  int64_t rot = check_rope("rope_fwd", y, x, rot_dim);
  be->ops->rope_fwd(be, y, x, base, rot, pos_offset);
}

void gv_rope_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                 float base, int64_t rot_dim, int64_t pos_offset, int flags)
{
  int64_t rot = check_rope("rope_bwd", dx, dy, rot_dim);
  be->ops->rope_bwd(be, dx, dy, base, rot, pos_offset, flags);
}

/* ---- attention ---- */

static void check_attention(const char *op, const struct gv_tensor *o, const struct gv_tensor *lse,
                            const struct gv_tensor *q, const struct gv_tensor *k,
                            const struct gv_tensor *v, int causal)
{
  char sq[SHAPE_MAX], sk[SHAPE_MAX];
  need_given(op, o && lse && q && k && v);
  GV_CHECK(q->ndim == 4 && k->ndim == 4 && k->shape[0] == q->shape[0] &&
               k->shape[3] == q->shape[3] && k->shape[2] > 0 && q->shape[2] % k->shape[2] == 0,
           "%s: q %s and k %s must be [B,T,H,D] and [B,S,KV,D] with H %% KV == 0", op,
           gv_tensor_str(q, sq, SHAPE_MAX), gv_tensor_str(k, sk, SHAPE_MAX));
  GV_CHECK(!causal || k->shape[1] >= q->shape[1], "%s: causal attention needs S >= T (q %s, k %s)",
           op, gv_tensor_str(q, sq, SHAPE_MAX), gv_tensor_str(k, sk, SHAPE_MAX));
  need_same(op, "v", v, "k", k);
  need_same(op, "o", o, "q", q);
  need_vec(op, "lse", lse, q->shape[0] * q->shape[1] * q->shape[2]);
  need_float(op, "q", q);
}

/* The bias (and its gradient) of an attention: [T, S, Hb] in q's dtype, heads h0.. h0 + H - 1;
 * the key padding ids i32 [B, S]. */
static void check_attn_opts(const char *op, const struct gv_tensor *q, const struct gv_tensor *k,
                            const struct gv_attn_opts *x)
{
  const struct gv_tensor *t[2] = {x ? x->bias : NULL, x ? x->dbias : NULL};
  for (int i = 0; i < 2; i++)
    GV_CHECK(!t[i] || (t[i]->ndim == 3 && t[i]->shape[0] == q->shape[1] && t[i]->shape[1] == k->shape[1] &&
                       x->h0 >= 0 && t[i]->shape[2] >= x->h0 + q->shape[2] && t[i]->dtype == q->dtype),
             "%s: the %s must be [T, S, >= h0 + H] = [%lld, %lld, >= %lld] in q's dtype", op, i ? "dbias" : "bias",
             (long long)q->shape[1], (long long)k->shape[1], (long long)(x->h0 + q->shape[2]));
  const struct gv_tensor *m = x ? x->key_ids : NULL;
  GV_CHECK(!m || (m->ndim == 2 && m->shape[0] == q->shape[0] && m->shape[1] == k->shape[1] &&
                  m->dtype == GV_DTYPE_I32),
           "%s: the key padding ids must be i32 [B, S] = [%lld, %lld]", op, (long long)q->shape[0],
           (long long)k->shape[1]);
}

void gv_attention_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                      const struct gv_tensor *q, const struct gv_tensor *k, const struct gv_tensor *v,
                      int causal)
{
  gv_attention_opts_fwd(be, o, lse, q, k, v, causal, NULL);
}

void gv_attention_opts_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                           const struct gv_tensor *q, const struct gv_tensor *k, const struct gv_tensor *v,
                           int causal, const struct gv_attn_opts *x)
{
  check_attention("attention_fwd", o, lse, q, k, v, causal);
  check_attn_opts("attention_fwd", q, k, x);
  be->ops->attention_fwd(be, o, lse, q, k, v, causal, x);
}

void gv_attention_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                      struct gv_tensor *dv, const struct gv_tensor *dout, const struct gv_tensor *q,
                      const struct gv_tensor *k, const struct gv_tensor *v, const struct gv_tensor *o,
                      const struct gv_tensor *lse, int causal, int flags)
{
  gv_attention_opts_bwd(be, dq, dk, dv, dout, q, k, v, o, lse, causal, flags, NULL);
}

void gv_attention_opts_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                           struct gv_tensor *dv, const struct gv_tensor *dout, const struct gv_tensor *q,
                           const struct gv_tensor *k, const struct gv_tensor *v, const struct gv_tensor *o,
                           const struct gv_tensor *lse, int causal, int flags, const struct gv_attn_opts *x)
{
  need_given("attention_bwd", dq && dk && dv && dout);
  check_attn_opts("attention_bwd", q, k, x);
  check_attention("attention_bwd", o, lse, q, k, v, causal);
  need_same("attention_bwd", "dout", dout, "q", q);
  need_same("attention_bwd", "dq", dq, "q", q);
  need_same("attention_bwd", "dk", dk, "k", k);
  need_same("attention_bwd", "dv", dv, "v", v);
  be->ops->attention_bwd(be, dq, dk, dv, dout, q, k, v, o, lse, causal, flags, x);
}

void gv_attention_merge(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                        const struct gv_tensor *ob, const struct gv_tensor *lseb)
{
  char so[SHAPE_MAX], sl[SHAPE_MAX];
  need_given("attention_merge", o && lse && ob && lseb);
  need_same("attention_merge", "o", o, "ob", ob);
  GV_CHECK(o->ndim == 4 && o->shape[0] == 1 && o->dtype == GV_DTYPE_F32 && lse->ndim == 3 && lse->shape[0] == 1 &&
               lse->shape[1] == o->shape[2] && lse->shape[2] >= o->shape[1] && lse->dtype == GV_DTYPE_F32,
           "attention_merge: o %s must be f32 [1,R,H,D] and lse %s f32 [1,H,L] with L >= R", gv_tensor_str(o, so, SHAPE_MAX),
           gv_tensor_str(lse, sl, SHAPE_MAX));
  need_vec("attention_merge", "lseb", lseb, o->shape[1] * o->shape[2]);
  be->ops->attention_merge(be, o, lse, ob, lseb);
}

/* ---- dropout ---- */

void gv_dropout_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float p,
                    uint64_t seed, uint64_t offset)
{
  GV_CHECK(p >= 0.0f && p < 1.0f, "dropout_fwd: p = %g not in [0, 1)", (double)p);
  need_given("dropout_fwd", y && x);
  check_ew("dropout_fwd", y, x, NULL, NULL);
  be->ops->dropout_fwd(be, y, x, p, seed, offset);
}

void gv_dropout_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy, float p,
                    uint64_t seed, uint64_t offset, int flags)
{
  GV_CHECK(p >= 0.0f && p < 1.0f, "dropout_bwd: p = %g not in [0, 1)", (double)p);
  need_given("dropout_bwd", dx && dy);
  check_ew("dropout_bwd", dx, dy, NULL, NULL);
  be->ops->dropout_bwd(be, dx, dy, p, seed, offset, flags);
}

/* ---- cross-entropy ---- */

static void check_xent(const char *op, const struct gv_tensor *lse, const struct gv_tensor *logits,
                       const struct gv_tensor *targets)
{
  need_given(op, lse && logits && targets);
  need_float(op, "logits", logits);
  need_ids(op, targets, rows_of(logits));
  need_vec(op, "lse", lse, rows_of(logits));
}

void gv_xent_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                 const struct gv_tensor *logits, const struct gv_tensor *targets, float scale)
{
  need_given("xent_fwd", loss != NULL);
  check_xent("xent_fwd", lse, logits, targets);
  need_vec("xent_fwd", "loss", loss, 1);
  be->ops->xent_fwd(be, loss, lse, logits, targets, scale);
}

void gv_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits, const struct gv_tensor *logits,
                 const struct gv_tensor *lse, const struct gv_tensor *targets, float scale)
{
  need_given("xent_bwd", dlogits != NULL);
  check_xent("xent_bwd", lse, logits, targets);
  need_same("xent_bwd", "dlogits", dlogits, "logits", logits);
  be->ops->xent_bwd(be, dlogits, logits, lse, targets, scale);
}

/* ---- vocabulary parallelism ---- */

void gv_embedding_shard_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                            const struct gv_tensor *table, int64_t lo)
{
  need_given("embedding_shard_fwd", ids != NULL);
  check_embedding("embedding_shard_fwd", y, ids, table);
  GV_CHECK(lo >= 0, "embedding_shard_fwd: block start %lld is negative", (long long)lo);
  be->ops->embedding_shard_fwd(be, y, ids, table, lo);
}

void gv_embedding_shard_bwd(struct gv_backend *be, struct gv_tensor *dtable, const struct gv_tensor *dy,
                            const struct gv_tensor *ids, int64_t lo, int flags)
{
  need_given("embedding_shard_bwd", ids != NULL);
  check_embedding("embedding_shard_bwd", dy, ids, dtable);
  GV_CHECK(lo >= 0, "embedding_shard_bwd: block start %lld is negative", (long long)lo);
  be->ops->embedding_shard_bwd(be, dtable, dy, ids, lo, flags);
}

void gv_xent_shard_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                       struct gv_tensor *part, const struct gv_tensor *logits,
                       const struct gv_tensor *targets, int64_t lo, float scale, int stage)
{
  GV_CHECK(stage == GV_XSHARD_MAX || stage == GV_XSHARD_SUMEXP || stage == GV_XSHARD_LOSS,
           "xent_shard_fwd: unknown stage %d", stage);
  GV_CHECK(lo >= 0, "xent_shard_fwd: block start %lld is negative", (long long)lo);
  check_xent("xent_shard_fwd", lse, logits, targets);
  GV_CHECK(lse->dtype == GV_DTYPE_F32, "xent_shard_fwd: lse must be f32, is %s", gv_dtype_name(lse->dtype));
  if (stage != GV_XSHARD_MAX) {
    need_given("xent_shard_fwd", part != NULL);
    need_vec("xent_shard_fwd", "part", part, rows_of(logits));
    GV_CHECK(part->dtype == GV_DTYPE_F32, "xent_shard_fwd: part must be f32, is %s",
             gv_dtype_name(part->dtype));
  }
  if (stage == GV_XSHARD_LOSS) {
    need_given("xent_shard_fwd", loss != NULL);
    need_vec("xent_shard_fwd", "loss", loss, 1);
    GV_CHECK(loss->dtype == GV_DTYPE_F32, "xent_shard_fwd: loss must be f32, is %s",
             gv_dtype_name(loss->dtype));
  }
  be->ops->xent_shard_fwd(be, loss, lse, part, logits, targets, lo, scale, stage);
}

void gv_xent_shard_bwd(struct gv_backend *be, struct gv_tensor *dlogits, const struct gv_tensor *logits,
                       const struct gv_tensor *lse, const struct gv_tensor *targets, int64_t lo,
                       float scale)
{
  need_given("xent_shard_bwd", dlogits != NULL);
  GV_CHECK(lo >= 0, "xent_shard_bwd: block start %lld is negative", (long long)lo);
  check_xent("xent_shard_bwd", lse, logits, targets);
  need_same("xent_shard_bwd", "dlogits", dlogits, "logits", logits);
  be->ops->xent_shard_bwd(be, dlogits, logits, lse, targets, lo, scale);
}

/* ---- reductions and copies ---- */

void gv_copy2d(struct gv_backend *be, void *dst, int64_t dst_ld, const void *src, int64_t src_ld,
               int64_t rows, int64_t cols, enum gv_dtype dtype)
{
  GV_CHECK(rows >= 0 && cols >= 0 && cols <= dst_ld && cols <= src_ld,
           "copy2d: %lld x %lld elements do not fit row strides dst %lld, src %lld", (long long)rows,
           (long long)cols, (long long)dst_ld, (long long)src_ld);
  if (rows == 0 || cols == 0) return;
  need_given("copy2d", dst && src);
  be->ops->copy2d(be, dst, dst_ld, src, src_ld, rows, cols, dtype);
}

double gv_sumsq(struct gv_backend *be, const struct gv_tensor *x)
{
  need_float("sumsq", "x", x);
  return be->ops->sumsq(be, x);
}

double gv_sumsq_multi(struct gv_backend *be, const struct gv_tensor *xs, int count)
{
  need_given("sumsq_multi", xs || count == 0);
  for (int i = 0; i < count; i++)
    need_float("sumsq_multi", "x", &xs[i]);
  return be->ops->sumsq_multi(be, xs, count);
}

void gv_fill(struct gv_backend *be, struct gv_tensor *x, float value)
{
  need_float("fill", "x", x);
  be->ops->fill(be, x, value);
}

void gv_copy(struct gv_backend *be, struct gv_tensor *dst, const struct gv_tensor *src)
{
  char sa[SHAPE_MAX], sb[SHAPE_MAX];
  GV_CHECK(gv_tensor_numel(dst) == gv_tensor_numel(src), "copy: dst %s and src %s differ in size",
           gv_tensor_str(dst, sa, SHAPE_MAX), gv_tensor_str(src, sb, SHAPE_MAX));
  GV_CHECK(dst->dtype == src->dtype || (dst->dtype != GV_DTYPE_I32 && src->dtype != GV_DTYPE_I32),
           "copy: cannot convert %s to %s", gv_dtype_name(src->dtype), gv_dtype_name(dst->dtype));
  be->ops->copy(be, dst, src);
}

void gv_axpy(struct gv_backend *be, struct gv_tensor *y, float alpha, const struct gv_tensor *x)
{
  check_ew("axpy", y, x, NULL, NULL);
  be->ops->axpy(be, y, alpha, x);
}

void gv_scale(struct gv_backend *be, struct gv_tensor *x, float alpha)
{
  need_float("scale", "x", x);
  be->ops->scale(be, x, alpha);
}

/* ---- optimizer ---- */

void gv_adamw(struct gv_backend *be, const struct gv_adamw *opt, struct gv_tensor *p,
              const struct gv_tensor *g, struct gv_tensor *m, struct gv_tensor *v, int t, float lr,
              int decay)
{
  need_given("adamw", opt && p && g && m && v);
  GV_CHECK(p->dtype == GV_DTYPE_F32 && m->dtype == GV_DTYPE_F32 && v->dtype == GV_DTYPE_F32,
           "adamw: p, m, v must be f32 (are %s, %s, %s)", gv_dtype_name(p->dtype),
           gv_dtype_name(m->dtype), gv_dtype_name(v->dtype));
  need_float("adamw", "g", g);
  int64_t n = gv_tensor_numel(p);
  need_vec("adamw", "g", g, n);
  need_vec("adamw", "m", m, n);
  need_vec("adamw", "v", v, n);
  GV_CHECK(t >= 1, "adamw: the step t is 1-based, got %d", t);
  struct gv_adamw_tensor one = {p->data, g->data, m->data, v->data, NULL, n, decay};
  be->ops->adamw_multi(be, opt, &one, 1, g->dtype, t, lr, 1.0f);
}

void gv_adamw_multi(struct gv_backend *be, const struct gv_adamw *opt, const struct gv_adamw_tensor *ts, int nt,
                    enum gv_dtype gdt, int t, float lr, float gscale)
{
  need_given("adamw_multi", opt && (ts || nt == 0));
  GV_CHECK(gdt == GV_DTYPE_F32 || gdt == GV_DTYPE_BF16, "adamw_multi: gradients must be f32 or bf16, are %s",
           gv_dtype_name(gdt));
  GV_CHECK(t >= 1, "adamw_multi: the step t is 1-based, got %d", t);
  for (int i = 0; i < nt; i++)
    GV_CHECK(ts[i].n >= 0 && (ts[i].n == 0 || (ts[i].p && ts[i].g && ts[i].m && ts[i].v)),
             "adamw_multi: tensor %d of %d has %lld elements and a NULL p, g, m or v", i, nt, (long long)ts[i].n);
  if (nt > 0)
    be->ops->adamw_multi(be, opt, ts, nt, gdt, t, lr, gscale);
}

/* ---- mixture of experts ---- */

/* idx: i32 [M, k] for M token rows (k = its last dim, >= 1). */
static int64_t need_routes(const char *op, const struct gv_tensor *idx, int64_t M)
{
  char s[SHAPE_MAX];
  need_given(op, idx != NULL);
  GV_CHECK(idx->dtype == GV_DTYPE_I32, "%s: idx must be i32, is %s", op, gv_dtype_name(idx->dtype));
  GV_CHECK(last_dim(idx) >= 1 && rows_of(idx) == M, "%s: idx %s must be [%lld, k] with k >= 1", op,
           gv_tensor_str(idx, s, SHAPE_MAX), (long long)M);
  return last_dim(idx);
}

/* A float [rows, cols] operand (any leading shape), when given. */
static void need_rows(const char *op, const char *name, const struct gv_tensor *t, int64_t rows, int64_t cols)
{
  char s[SHAPE_MAX];
  if (!t) return;
  need_float(op, name, t);
  GV_CHECK(rows_of(t) == rows && last_dim(t) == cols, "%s: %s %s must be [%lld, %lld]", op, name,
           gv_tensor_str(t, s, SHAPE_MAX), (long long)rows, (long long)cols);
}

void gv_topk(struct gv_backend *be, struct gv_tensor *idx, const struct gv_tensor *x)
{
  need_given("topk", x != NULL);
  int64_t k = need_routes("topk", idx, rows_of(x));
  need_float("topk", "x", x);
  GV_CHECK(k <= last_dim(x), "topk: k = %lld is above the %lld columns of x", (long long)k, (long long)last_dim(x));
  be->ops->topk(be, idx, x);
}

void gv_take_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, const struct gv_tensor *idx)
{
  need_given("take_fwd", y && x);
  int64_t k = need_routes("take_fwd", idx, rows_of(x));
  need_rows("take_fwd", "y", y, rows_of(x), k);
  need_float("take_fwd", "x", x);
  be->ops->take_fwd(be, y, x, idx);
}

void gv_take_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy, const struct gv_tensor *idx,
                 int flags)
{
  need_given("take_bwd", dx && dy);
  int64_t k = need_routes("take_bwd", idx, rows_of(dx));
  need_rows("take_bwd", "dy", dy, rows_of(dx), k);
  need_float("take_bwd", "dx", dx);
  be->ops->take_bwd(be, dx, dy, idx, flags);
}

void gv_moe_permute_fwd(struct gv_backend *be, struct gv_tensor *xp, const struct gv_tensor *x,
                        const struct gv_tensor *idx, int64_t experts)
{
  need_given("moe_permute_fwd", xp && x && experts >= 1);
  int64_t k = need_routes("moe_permute_fwd", idx, rows_of(x));
  need_float("moe_permute_fwd", "x", x);
  need_rows("moe_permute_fwd", "xp", xp, rows_of(x) * k, last_dim(x));
  be->ops->moe_permute_fwd(be, xp, x, idx, experts);
}

void gv_moe_permute_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dxp,
                        const struct gv_tensor *idx, int64_t experts, int flags)
{
  need_given("moe_permute_bwd", dx && dxp && experts >= 1);
  int64_t k = need_routes("moe_permute_bwd", idx, rows_of(dx));
  need_float("moe_permute_bwd", "dx", dx);
  need_rows("moe_permute_bwd", "dxp", dxp, rows_of(dx) * k, last_dim(dx));
  be->ops->moe_permute_bwd(be, dx, dxp, idx, experts, flags);
}

/* x [R, K], y [R, N], w [E, N, K], R = the rows of idx times k. */
static void check_grouped(const char *op, const struct gv_tensor *y, const struct gv_tensor *x,
                          const struct gv_tensor *w, const struct gv_tensor *idx)
{
  char sw[SHAPE_MAX];
  need_given(op, y && x && w && idx);
  GV_CHECK(w->ndim == 3, "%s: w %s must be [experts, out, in]", op, gv_tensor_str(w, sw, SHAPE_MAX));
  need_float(op, "w", w);
  int64_t R = gv_tensor_numel(idx);
  need_routes(op, idx, rows_of(idx));
  need_rows(op, "x", x, R, w->shape[2]);
  need_rows(op, "y", y, R, w->shape[1]);
}

void gv_moe_grouped_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                        const struct gv_tensor *w, const struct gv_tensor *idx)
{
  check_grouped("moe_grouped_fwd", y, x, w, idx);
  be->ops->moe_grouped_fwd(be, y, x, w, idx);
}

void gv_moe_grouped_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw, const struct gv_tensor *dy,
                        const struct gv_tensor *x, const struct gv_tensor *w, const struct gv_tensor *idx, int flags)
{
  check_grouped("moe_grouped_bwd", dy, x, w, idx);
  need_same("moe_grouped_bwd", "dx", dx, "x", x);
  need_same("moe_grouped_bwd", "dw", dw, "w", w);
  be->ops->moe_grouped_bwd(be, dx, dw, dy, x, w, idx, flags);
}

void gv_moe_unpermute_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *yp,
                          const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t experts)
{
  need_given("moe_unpermute_fwd", y && yp && gates && experts >= 1);
  int64_t k = need_routes("moe_unpermute_fwd", idx, rows_of(y));
  need_rows("moe_unpermute_fwd", "y", y, rows_of(y), last_dim(y));
  need_rows("moe_unpermute_fwd", "yp", yp, rows_of(y) * k, last_dim(y));
  need_rows("moe_unpermute_fwd", "gates", gates, rows_of(y), k);
  be->ops->moe_unpermute_fwd(be, y, yp, gates, idx, experts);
}

void gv_moe_unpermute_bwd(struct gv_backend *be, struct gv_tensor *dyp, struct gv_tensor *dgates,
                          const struct gv_tensor *dy, const struct gv_tensor *yp, const struct gv_tensor *gates,
                          const struct gv_tensor *idx, int64_t experts, int flags)
{
  need_given("moe_unpermute_bwd", dy && yp && gates && experts >= 1);
  int64_t k = need_routes("moe_unpermute_bwd", idx, rows_of(dy));
  need_rows("moe_unpermute_bwd", "dy", dy, rows_of(dy), last_dim(dy));
  need_rows("moe_unpermute_bwd", "yp", yp, rows_of(dy) * k, last_dim(dy));
  need_rows("moe_unpermute_bwd", "dyp", dyp, rows_of(dy) * k, last_dim(dy));
  need_rows("moe_unpermute_bwd", "gates", gates, rows_of(dy), k);
  need_rows("moe_unpermute_bwd", "dgates", dgates, rows_of(dy), k);
  be->ops->moe_unpermute_bwd(be, dyp, dgates, dy, yp, gates, idx, experts, flags);
}

void gv_moe_aux_fwd(struct gv_backend *be, struct gv_tensor *loss, const struct gv_tensor *probs,
                    const struct gv_tensor *idx, float scale)
{
  need_given("moe_aux_fwd", loss && probs);
  need_routes("moe_aux_fwd", idx, rows_of(probs));
  need_float("moe_aux_fwd", "probs", probs);
  GV_CHECK(loss->dtype == GV_DTYPE_F32 && gv_tensor_numel(loss) == 1, "moe_aux_fwd: loss must be one f32");
  be->ops->moe_aux_fwd(be, loss, probs, idx, scale);
}

void gv_moe_aux_bwd(struct gv_backend *be, struct gv_tensor *dprobs, const struct gv_tensor *idx, float scale,
                    int flags)
{
  need_given("moe_aux_bwd", dprobs != NULL);
  need_routes("moe_aux_bwd", idx, rows_of(dprobs));
  need_float("moe_aux_bwd", "dprobs", dprobs);
  be->ops->moe_aux_bwd(be, dprobs, idx, scale, flags);
}

/* Hugging Face's T5 _relative_position_bucket of rel = key - query, in its float32 arithmetic. */
int32_t gv_rel_position_bucket(int64_t rel, int64_t buckets, int64_t max_distance, int bidirectional)
{
  int64_t nb = buckets, ret = 0;
  if (bidirectional) {
    nb /= 2;
    ret += rel > 0 ? nb : 0;
    rel = rel < 0 ? -rel : rel;
  } else {
    rel = rel < 0 ? -rel : 0;
  }
  int64_t exact = nb / 2;
  if (rel < exact)
    return (int32_t)(ret + rel);
  float f = logf((float)rel / (float)exact) / (float)log((double)max_distance / (double)exact) * (float)(nb - exact);
  int64_t large = exact + (int64_t)f;
  return (int32_t)(ret + (large < nb - 1 ? large : nb - 1));
}
