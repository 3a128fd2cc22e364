/* gen_ops.c - the kernel calls of generated programs (gvrt_program.h): each wraps raw
 * plan pointers and constant dims into tensors and calls the checked dispatcher of the
 * run's backend, so generated code never builds a struct. */
#include <math.h>
#include <stdlib.h>

#include "program/run.h"

static struct gv_tensor t1(void *p, enum gv_dtype t, int64_t n) { return gv_tensor_4d(p, t, n, 0, 0, 0); }
static struct gv_tensor t2(void *p, enum gv_dtype t, int64_t a, int64_t b) { return gv_tensor_4d(p, t, a, b, 0, 0); }
static struct gv_tensor t3(void *p, enum gv_dtype t, int64_t a, int64_t b, int64_t c) { return gv_tensor_4d(p, t, a, b, c, 0); }
static struct gv_tensor t4(void *p, enum gv_dtype t, int64_t a, int64_t b, int64_t c, int64_t d) { return gv_tensor_4d(p, t, a, b, c, d); }
static struct gv_backend *be_of(void *ctx) { return &((struct gv_run *)ctx)->be; }
static const enum gv_dtype F32 = GV_DTYPE_F32, I32 = GV_DTYPE_I32;
/* The dtype of the program's float values (activations, parameters, gradients: f32, or bf16
 * under mixed precision) in a function whose run is `ctx`; statistics (norm mean/rstd,
 * log-sum-exp, the loss and its scratch) are always F32. */
#define VT (((struct gv_run *)ctx)->fdt)

void gv_gen_linear_fwd(void *ctx, void *y, void *x, void *w, void *b, int64_t M, int64_t K, int64_t N)
{
  struct gv_tensor Y = t2(y, VT, M, N), X = t2(x, VT, M, K), W = t2(w, VT, N, K), B = t1(b, VT, N);
  gv_linear_fwd(be_of(ctx), &Y, &X, &W, b ? &B : NULL);
}

void gv_gen_linear_gelu_fwd(void *ctx, void *y, void *pre, void *x, void *w, void *b, int64_t M, int64_t K, int64_t N)
{
  struct gv_tensor Y = t2(y, VT, M, N), P = t2(pre, VT, M, N), X = t2(x, VT, M, K), W = t2(w, VT, N, K),
                   B = t1(b, VT, N);
  gv_linear_gelu_fwd(be_of(ctx), &Y, &P, &X, &W, b ? &B : NULL);
}

void gv_gen_linear_dgelu_bwd(void *ctx, void *dpre, void *dw, void *db, void *dy, void *x, void *w, void *pre, int64_t M,
                             int64_t K, int64_t N, int64_t flags)
{
  struct gv_tensor DP = t2(dpre, VT, M, K), DW = t2(dw, VT, N, K), DB = t1(db, VT, N), DY = t2(dy, VT, M, N),
                   X = t2(x, VT, M, K), W = t2(w, VT, N, K), P = t2(pre, VT, M, K);
  gv_linear_dgelu_bwd(be_of(ctx), &DP, dw ? &DW : NULL, db ? &DB : NULL, &DY, &X, &W, &P, (int)flags);
}

void gv_gen_linear_bwd(void *ctx, void *dx, void *dw, void *db, void *dy, void *x, void *w, int64_t M, int64_t K,
                       int64_t N, int64_t flags)
{
  struct gv_tensor DX = t2(dx, VT, M, K), DW = t2(dw, VT, N, K), DB = t1(db, VT, N), DY = t2(dy, VT, M, N),
                   X = t2(x, VT, M, K), W = t2(w, VT, N, K);
  gv_linear_bwd(be_of(ctx), dx ? &DX : NULL, dw ? &DW : NULL, db ? &DB : NULL, &DY, &X, &W, (int)flags);
}

/* Context parallelism: the position of local row `half` x T/2 of a sample (its zigzag
 * chunk's first position), and the byte offset of that half-chunk in sample b of a value
 * with `width` elements per row. Without cp: one piece at position 0. */
static int cp_pieces(const struct gv_run *r) { return r->cp > 1 ? 2 : 1; }
static int64_t cp_pos(const struct gv_run *r, int64_t T, int half)
{
  return r->cp > 1 ? (half ? 2 * r->cp - 1 - r->cp_rank : r->cp_rank) * (T / 2) : 0;
}

/* Positions (ids NULL) follow the zigzag rows under cp: one call per sample and half. */
void gv_gen_embedding_fwd(void *ctx, void *y, void *ids, void *table, int64_t M, int64_t T, int64_t V, int64_t C,
                          int64_t accumulate)
{
  struct gv_run *r = ctx;
  struct gv_tensor Y = t3(y, VT, M / T, T, C), I = t2(ids, I32, M / T, T), TB = t2(table, VT, V, C);
  if (ids || r->cp <= 1) {
    gv_embedding_fwd(be_of(ctx), &Y, ids ? &I : NULL, &TB, 0, (int)accumulate);
    return;
  }
  int64_t c = T / 2, es = (int64_t)gv_run_fsz(ctx);
  for (int64_t b = 0; b < M / T; b++)
    for (int h = 0; h < 2; h++) {
      struct gv_tensor Yp = t3((char *)y + (b * T + h * c) * C * es, VT, 1, c, C);
      gv_embedding_fwd(be_of(ctx), &Yp, NULL, &TB, cp_pos(r, T, h), (int)accumulate);
    }
}

void gv_gen_embedding_bwd(void *ctx, void *dtable, void *dy, void *ids, int64_t M, int64_t T, int64_t V, int64_t C,
                          int64_t flags)
{
  struct gv_run *r = ctx;
  struct gv_tensor DT = t2(dtable, VT, V, C), DY = t3(dy, VT, M / T, T, C), I = t2(ids, I32, M / T, T);
  if (ids || r->cp <= 1) {
    gv_embedding_bwd(be_of(ctx), &DT, &DY, ids ? &I : NULL, 0, (int)flags);
    return;
  }
  int64_t c = T / 2, es = (int64_t)gv_run_fsz(ctx);
  for (int64_t b = 0; b < M / T; b++)
    for (int h = 0; h < 2; h++) { /* every piece after the first adds */
      struct gv_tensor DYp = t3((char *)dy + (b * T + h * c) * C * es, VT, 1, c, C);
      gv_embedding_bwd(be_of(ctx), &DT, &DYp, NULL, cp_pos(r, T, h), (int)flags | (b || h ? GV_ACC_DW : 0));
    }
}

void gv_gen_layernorm_fwd(void *ctx, void *y, void *mean, void *rstd, void *x, void *w, void *b, int64_t M,
                          int64_t C, float eps)
{
  struct gv_tensor Y = t2(y, VT, M, C), MU = t1(mean, F32, M), RS = t1(rstd, F32, M), X = t2(x, VT, M, C),
                   W = t1(w, VT, C), B = t1(b, VT, C);
  gv_layernorm_fwd(be_of(ctx), &Y, &MU, &RS, &X, &W, b ? &B : NULL, eps);
}

void gv_gen_layernorm_bwd(void *ctx, void *dx, void *dw, void *db, void *dy, void *x, void *w, void *mean,
                          void *rstd, int64_t M, int64_t C, int64_t flags)
{
  struct gv_tensor DX = t2(dx, VT, M, C), DW = t1(dw, VT, C), DB = t1(db, VT, C), DY = t2(dy, VT, M, C),
                   X = t2(x, VT, M, C), W = t1(w, VT, C), MU = t1(mean, F32, M), RS = t1(rstd, F32, M);
  gv_layernorm_bwd(be_of(ctx), dx ? &DX : NULL, dw ? &DW : NULL, db ? &DB : NULL, &DY, &X, &W, &MU, &RS, (int)flags);
}

void gv_gen_add_layernorm_fwd(void *ctx, void *h, void *y, void *mean, void *rstd, void *a, void *b, void *w,
                              void *bias, int64_t M, int64_t C, float eps)
{
  struct gv_tensor H = t2(h, VT, M, C), Y = t2(y, VT, M, C), MU = t1(mean, F32, M), RS = t1(rstd, F32, M),
                   A = t2(a, VT, M, C), B = t2(b, VT, M, C), W = t1(w, VT, C), BI = t1(bias, VT, C);
  gv_add_layernorm_fwd(be_of(ctx), &H, &Y, &MU, &RS, &A, &B, &W, bias ? &BI : NULL, eps);
}

void gv_gen_add_rmsnorm_fwd(void *ctx, void *h, void *y, void *rstd, void *a, void *b, void *w, int64_t M, int64_t C,
                            float eps)
{
  struct gv_tensor H = t2(h, VT, M, C), Y = t2(y, VT, M, C), RS = t1(rstd, F32, M), A = t2(a, VT, M, C),
                   B = t2(b, VT, M, C), W = t1(w, VT, C);
  gv_add_rmsnorm_fwd(be_of(ctx), &H, &Y, &RS, &A, &B, &W, eps);
}

void gv_gen_rmsnorm_fwd(void *ctx, void *y, void *rstd, void *x, void *w, int64_t M, int64_t C, float eps)
{
  struct gv_tensor Y = t2(y, VT, M, C), RS = t1(rstd, F32, M), X = t2(x, VT, M, C), W = t1(w, VT, C);
  gv_rmsnorm_fwd(be_of(ctx), &Y, &RS, &X, &W, eps);
}

void gv_gen_rmsnorm_bwd(void *ctx, void *dx, void *dw, void *dy, void *x, void *w, void *rstd, int64_t M,
                        int64_t C, int64_t flags)
{
  struct gv_tensor DX = t2(dx, VT, M, C), DW = t1(dw, VT, C), DY = t2(dy, VT, M, C), X = t2(x, VT, M, C),
                   W = t1(w, VT, C), RS = t1(rstd, F32, M);
  gv_rmsnorm_bwd(be_of(ctx), dx ? &DX : NULL, dw ? &DW : NULL, &DY, &X, &W, &RS, (int)flags);
}

void gv_gen_gelu_fwd(void *ctx, void *y, void *x, int64_t n, int64_t tanh_form)
{
  struct gv_tensor Y = t1(y, VT, n), X = t1(x, VT, n);
  gv_gelu_fwd(be_of(ctx), &Y, &X, (int)tanh_form);
}

void gv_gen_gelu_bwd(void *ctx, void *dx, void *dy, void *x, int64_t n, int64_t tanh_form, int64_t flags)
{
  struct gv_tensor DX = t1(dx, VT, n), DY = t1(dy, VT, n), X = t1(x, VT, n);
  gv_gelu_bwd(be_of(ctx), &DX, &DY, &X, (int)tanh_form, (int)flags);
}

/* The entries of an activation without options, over n elements. */
#define GEN_UNARY(NAME)                                                               \
  void gv_gen_##NAME##_fwd(void *ctx, void *y, void *x, int64_t n)                    \
  {                                                                                   \
    struct gv_tensor Y = t1(y, VT, n), X = t1(x, VT, n);                              \
    gv_##NAME##_fwd(be_of(ctx), &Y, &X);                                              \
  }                                                                                   \
  void gv_gen_##NAME##_bwd(void *ctx, void *dx, void *dy, void *x, int64_t n, int64_t flags) \
  {                                                                                   \
    struct gv_tensor DX = t1(dx, VT, n), DY = t1(dy, VT, n), X = t1(x, VT, n);        \
    gv_##NAME##_bwd(be_of(ctx), &DX, &DY, &X, (int)flags);                            \
  }
GEN_UNARY(silu)
GEN_UNARY(relu)

/* A binary op of operands A and B and its backward (either gradient may be NULL). */
#define GEN_BINARY(NAME, A, B)                                                                              \
  void gv_gen_##NAME##_fwd(void *ctx, void *y, void *A, void *B, int64_t n)                                 \
  {                                                                                                         \
    struct gv_tensor Y = t1(y, VT, n), TA = t1(A, VT, n), TB = t1(B, VT, n);                                \
    gv_##NAME##_fwd(be_of(ctx), &Y, &TA, &TB);                                                              \
  }                                                                                                         \
  void gv_gen_##NAME##_bwd(void *ctx, void *d##A, void *d##B, void *dy, void *A, void *B, int64_t n,        \
                           int64_t flags)                                                                   \
  {                                                                                                         \
    struct gv_tensor DA = t1(d##A, VT, n), DB = t1(d##B, VT, n), DY = t1(dy, VT, n), TA = t1(A, VT, n),     \
                     TB = t1(B, VT, n);                                                                     \
    gv_##NAME##_bwd(be_of(ctx), d##A ? &DA : NULL, d##B ? &DB : NULL, &DY, &TA, &TB, (int)flags);          \
  }
GEN_BINARY(mul, a, b)
GEN_BINARY(swiglu, gate, up)

void gv_gen_add_fwd(void *ctx, void *y, void *a, void *b, int64_t n)
{
  struct gv_tensor Y = t1(y, VT, n), A = t1(a, VT, n), B = t1(b, VT, n);
  gv_add_fwd(be_of(ctx), &Y, &A, &B);
}

void gv_gen_grad(void *ctx, void *dst, void *src, int64_t n, int64_t accumulate)
{
  struct gv_tensor D = t1(dst, VT, n), S = t1(src, VT, n);
  if (accumulate)
    gv_axpy(be_of(ctx), &D, 1.0f, &S);
  else
    gv_copy(be_of(ctx), &D, &S);
}

void gv_gen_affine(void *ctx, void *y, void *x, int64_t n, float alpha, float beta, int64_t flags)
{
  struct gv_tensor Y = t1(y, VT, n), X = t1(x, VT, n);
  gv_affine(be_of(ctx), &Y, &X, alpha, beta, (int)flags);
}

void gv_gen_softmax_fwd(void *ctx, void *y, void *x, int64_t M, int64_t N)
{
  struct gv_tensor Y = t2(y, VT, M, N), X = t2(x, VT, M, N);
  gv_softmax_fwd(be_of(ctx), &Y, &X);
}

void gv_gen_softmax_bwd(void *ctx, void *dx, void *dy, void *y, int64_t M, int64_t N, int64_t flags)
{
  struct gv_tensor DX = t2(dx, VT, M, N), DY = t2(dy, VT, M, N), Y = t2(y, VT, M, N);
  gv_softmax_bwd(be_of(ctx), &DX, &DY, &Y, (int)flags);
}

void gv_gen_copy_cols(void *ctx, void *dst, void *src, int64_t M, int64_t dst_n, int64_t dst_col, int64_t src_n,
                      int64_t src_col, int64_t n, int64_t flags)
{
  struct gv_tensor D = t2(dst, VT, M, dst_n), S = t2(src, VT, M, src_n);
  gv_copy_cols(be_of(ctx), &D, dst_col, &S, src_col, n, (int)flags);
}

/* Rope over out <- in by pieces: under cp each sample's two zigzag half-chunks rotate by
 * their own global positions (one piece of all samples otherwise); bwd: the backward. */
static void rope_pieces(void *ctx, void *out, void *in, int64_t B, int64_t T, int64_t H, int64_t D, int64_t rot,
                        float base, int bwd, int flags)
{
  struct gv_run *r = ctx;
  int P = cp_pieces(r);
  int64_t c = T / P, step = c * H * D * (int64_t)gv_run_fsz(ctx);
  for (int64_t b = 0; b < (P > 1 ? B : 1); b++)
    for (int h = 0; h < P; h++) {
      int64_t at = (b * P + h) * step;
      struct gv_tensor O = t4((char *)out + at, VT, P > 1 ? 1 : B, c, H, D), I = t4((char *)in + at, VT, P > 1 ? 1 : B, c, H, D);
      if (bwd)
        gv_rope_bwd(be_of(ctx), &O, &I, base, rot, cp_pos(r, T, h), flags);
      else
        gv_rope_fwd(be_of(ctx), &O, &I, base, rot, cp_pos(r, T, h));
    }
}

void gv_gen_rope_fwd(void *ctx, void *y, void *x, int64_t B, int64_t T, int64_t H, int64_t D, int64_t rot,
                     float base)
{
  rope_pieces(ctx, y, x, B, T, H, D, rot, base, 0, 0);
}

void gv_gen_rope_bwd(void *ctx, void *dx, void *dy, int64_t B, int64_t T, int64_t H, int64_t D, int64_t rot,
                     float base, int64_t flags)
{
  rope_pieces(ctx, dx, dy, B, T, H, D, rot, base, 1, (int)flags);
}

/* The [T, T] bucket ids, made on the host and copied to ids (device memory on a GPU). */
static void rel_bucket_ids(void *ctx, void *ids, int64_t T, int64_t buckets, int64_t max_distance, int64_t bidir)
{
  int32_t *h = malloc(sizeof(int32_t) * (size_t)(T * T));
  GV_CHECK(h, "relative position bias: out of host memory for %lld bucket ids", (long long)(T * T));
  for (int64_t i = 0; i < T; i++)
    for (int64_t j = 0; j < T; j++)
      h[i * T + j] = gv_rel_position_bucket(j - i, buckets, max_distance, (int)bidir);
  gv_dev_memcpy(be_of(ctx), ids, h, sizeof(int32_t) * (size_t)(T * T), GV_COPY_H2D);
  free(h);
}

void gv_gen_rel_bias_fwd(void *ctx, void *y, void *ids, void *table, int64_t T, int64_t H, int64_t buckets,
                         int64_t max_distance, int64_t bidirectional)
{
  rel_bucket_ids(ctx, ids, T, buckets, max_distance, bidirectional);
  struct gv_tensor Y = t3(y, VT, 1, T * T, H), I = t2(ids, I32, 1, T * T), TB = t2(table, VT, buckets, H);
  gv_embedding_fwd(be_of(ctx), &Y, &I, &TB, 0, 0);
}

void gv_gen_rel_bias_bwd(void *ctx, void *dtable, void *dy, void *ids, int64_t T, int64_t H, int64_t buckets,
                         int64_t max_distance, int64_t bidirectional)
{
  rel_bucket_ids(ctx, ids, T, buckets, max_distance, bidirectional);
  struct gv_tensor DT = t2(dtable, VT, buckets, H), DY = t3(dy, VT, 1, T * T, H), I = t2(ids, I32, 1, T * T);
  gv_embedding_bwd(be_of(ctx), &DT, &DY, &I, 0, GV_ACC_DW);
}

/* ---- images (ViT) ---- */

static void patch_rows(void *ctx, void *rows, void *pixels, int64_t B, int64_t C, int64_t S, int64_t p)
{
  struct gv_tensor R = t3(rows, VT, B, (S / p) * (S / p), C * p * p), I = t4(pixels, VT, B, C, S, S);
  gv_patchify(be_of(ctx), &R, &I, p, 0);
}

void gv_gen_patch_embed_fwd(void *ctx, void *y, void *rows, void *pixels, void *w, void *b, int64_t B, int64_t C,
                            int64_t S, int64_t p, int64_t hidden)
{
  patch_rows(ctx, rows, pixels, B, C, S, p);
  gv_gen_linear_fwd(ctx, y, rows, w, b, B * (S / p) * (S / p), C * p * p, hidden);
}

void gv_gen_patch_embed_bwd(void *ctx, void *dw, void *db, void *dy, void *rows, void *pixels, void *w, int64_t B, int64_t C,
                            int64_t S, int64_t p, int64_t hidden, int64_t flags)
{
  patch_rows(ctx, rows, pixels, B, C, S, p);
  gv_gen_linear_bwd(ctx, NULL, dw, db, dy, rows, w, B * (S / p) * (S / p), C * p * p, hidden, flags);
}

void gv_gen_class_token_fwd(void *ctx, void *y, void *x, void *cls, int64_t B, int64_t N, int64_t C)
{
  struct gv_tensor Y = t2(y, VT, B, (N + 1) * C), X = t2(x, VT, B, N * C);
  gv_copy_cols(be_of(ctx), &Y, C, &X, 0, N * C, 0);
  size_t es = gv_run_fsz(ctx);
  for (int64_t b = 0; b < B; b++)
    gv_copy2d(be_of(ctx), (char *)y + es * (size_t)(b * (N + 1) * C), C, cls, C, 1, C, VT);
}

void gv_gen_class_token_bwd(void *ctx, void *dx, void *dcls, void *dy, void *scratch, int64_t B, int64_t N, int64_t C,
                            int64_t flags)
{
  struct gv_tensor DY = t2(dy, VT, B, (N + 1) * C);
  if (dx) {
    struct gv_tensor DX = t2(dx, VT, B, N * C);
    gv_copy_cols(be_of(ctx), &DX, 0, &DY, C, N * C, (int)(flags & GV_ACC_DX));
  }
  if (dcls) { /* the first rows gathered, then summed into the one row of the table's gradient */
    struct gv_tensor S = t2(scratch, VT, B, C), S3 = t3(scratch, VT, B, 1, C), DC = t2(dcls, VT, 1, C);
    gv_copy_cols(be_of(ctx), &S, 0, &DY, 0, C, 0);
    gv_embedding_bwd(be_of(ctx), &DC, &S3, NULL, 0, (int)(flags & GV_ACC_DW));
  }
}

void gv_gen_first_token_fwd(void *ctx, void *y, void *x, int64_t B, int64_t T, int64_t C)
{
  struct gv_tensor Y = t2(y, VT, B, C), X = t2(x, VT, B, T * C);
  gv_copy_cols(be_of(ctx), &Y, 0, &X, 0, C, 0);
}

void gv_gen_first_token_bwd(void *ctx, void *dx, void *dy, int64_t B, int64_t T, int64_t C, int64_t flags)
{
  struct gv_tensor DX = t2(dx, VT, B, T * C), DY = t2(dy, VT, B, C);
  if (!(flags & GV_ACC_DX))
    gv_fill(be_of(ctx), &DX, 0.0f);
  gv_copy_cols(be_of(ctx), &DX, 0, &DY, 0, C, (int)(flags & GV_ACC_DX));
}

/* This rank's first head in a bias of Hb heads (its tp slice when the call has fewer). */
static int64_t bias_h0(void *ctx, int64_t Hb, int64_t H) { return Hb > H ? (int64_t)((struct gv_run *)ctx)->tp_rank * H : 0; }

void gv_gen_cross_attention_fwd(void *ctx, void *o, void *lse, void *q, void *k, void *v, int64_t B, int64_t T,
                                int64_t S, int64_t H, int64_t KV, int64_t D, int64_t causal, float scale, void *bias,
                                int64_t Hb, void *key_ids)
{
  struct gv_tensor O = t4(o, VT, B, T, H, D), L = t3(lse, F32, B, H, T), Q = t4(q, VT, B, T, H, D),
                   K = t4(k, VT, B, S, KV, D), V = t4(v, VT, B, S, KV, D), BS = t3(bias, VT, T, S, Hb),
                   KI = t4(key_ids, I32, B, S, 0, 0);
  struct gv_attn_opts x = {.scale = scale, .bias = bias ? &BS : NULL, .h0 = bias_h0(ctx, Hb, H),
                           .key_ids = key_ids ? &KI : NULL, .pad_id = 0};
  gv_attention_opts_fwd(be_of(ctx), &O, &L, &Q, &K, &V, (int)causal, &x);
}

void gv_gen_attention_fwd(void *ctx, void *o, void *lse, void *q, void *k, void *v, int64_t B, int64_t T,
                          int64_t H, int64_t KV, int64_t D, int64_t causal, float scale, void *bias, int64_t Hb,
                          void *key_ids)
{
  gv_gen_cross_attention_fwd(ctx, o, lse, q, k, v, B, T, T, H, KV, D, causal, scale, bias, Hb, key_ids);
}

void gv_gen_cross_attention_bwd(void *ctx, void *dq, void *dk, void *dv, void *dout, void *q, void *k, void *v,
                                void *o, void *lse, int64_t B, int64_t T, int64_t S, int64_t H, int64_t KV, int64_t D,
                                int64_t causal, int64_t flags, float scale, void *bias, void *dbias, int64_t Hb,
                                void *key_ids)
{
  struct gv_tensor DQ = t4(dq, VT, B, T, H, D), DK = t4(dk, VT, B, S, KV, D), DV = t4(dv, VT, B, S, KV, D),
                   DO = t4(dout, VT, B, T, H, D), Q = t4(q, VT, B, T, H, D), K = t4(k, VT, B, S, KV, D),
                   V = t4(v, VT, B, S, KV, D), O = t4(o, VT, B, T, H, D), L = t3(lse, F32, B, H, T),
                   BS = t3(bias, VT, T, S, Hb), DBS = t3(dbias, VT, T, S, Hb), KI = t4(key_ids, I32, B, S, 0, 0);
  struct gv_attn_opts x = {.scale = scale, .bias = bias ? &BS : NULL, .dbias = dbias ? &DBS : NULL, .h0 = bias_h0(ctx, Hb, H),
                           .key_ids = key_ids ? &KI : NULL, .pad_id = 0};
  gv_attention_opts_bwd(be_of(ctx), &DQ, &DK, &DV, &DO, &Q, &K, &V, &O, &L, (int)causal, (int)flags, &x);
}

void gv_gen_attention_bwd(void *ctx, void *dq, void *dk, void *dv, void *dout, void *q, void *k, void *v, void *o,
                          void *lse, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D, int64_t causal,
                          int64_t flags, float scale, void *bias, void *dbias, int64_t Hb, void *key_ids)
{
  gv_gen_cross_attention_bwd(ctx, dq, dk, dv, dout, q, k, v, o, lse, B, T, T, H, KV, D, causal, flags, scale, bias, dbias,
                             Hb, key_ids);
}

void gv_gen_ring_attention_fwd(void *ctx, void *o, void *lse, void *q, void *k, void *v, void *scratch, int64_t B,
                               int64_t T, int64_t H, int64_t KV, int64_t D)
{
  struct gv_run *r = ctx;
  struct gv_tensor O = t4(o, VT, B, T, H, D), L = t3(lse, F32, B, H, T), Q = t4(q, VT, B, T, H, D),
                   K = t4(k, VT, B, T, KV, D), V = t4(v, VT, B, T, KV, D);
  GV_CHECK(r->cp_group != NULL, "ring attention in a program without context parallelism");
  gv_ring_attention_fwd(r->cp_group, &r->be, &O, &L, &Q, &K, &V, scratch);
}

void gv_gen_ring_attention_bwd(void *ctx, void *dq, void *dk, void *dv, void *dout, void *q, void *k, void *v,
                               void *o, void *lse, void *scratch, int64_t B, int64_t T, int64_t H, int64_t KV,
                               int64_t D, int64_t flags)
{
  struct gv_run *r = ctx;
  struct gv_tensor DQ = t4(dq, VT, B, T, H, D), DK = t4(dk, VT, B, T, KV, D), DV = t4(dv, VT, B, T, KV, D),
                   DO = t4(dout, VT, B, T, H, D), Q = t4(q, VT, B, T, H, D), K = t4(k, VT, B, T, KV, D),
                   V = t4(v, VT, B, T, KV, D), O = t4(o, VT, B, T, H, D), L = t3(lse, F32, B, H, T);
  GV_CHECK(r->cp_group != NULL, "ring attention in a program without context parallelism");
  gv_ring_attention_bwd(r->cp_group, &r->be, &DQ, &DK, &DV, &DO, &Q, &K, &V, &O, &L, scratch, (int)flags);
}

/* Dropout masks by global element index: the stream of (step, site) covers the global
 * batch's [G * L, cols_global] elements (L: seq, or an encoder-decoder's longer source); this rank's block starts at global row row0 and
 * column col0. Recompute and backward regenerate the forward's mask. A column-split value
 * is not contiguous in that space: one call per row. */
struct dropout_block { uint64_t base; int64_t row0, col0; };

static struct dropout_block dropout_block(struct gv_run *r, int64_t rows, int64_t cols, int64_t cols_global,
                                          int64_t site, int64_t row_split, int64_t group)
{
  struct dropout_block d;
  int64_t G = r->args.global_batch > 0 ? r->args.global_batch : 1, slice = 0;
  GV_CHECK(site >= 0 && site < 4096, "dropout site %lld out of range", (long long)site);
  int64_t L = r->s2s.seq > r->seq ? r->s2s.seq : r->seq; /* rows a sample spans (an encoder's source: S) */
  d.base = ((uint64_t)r->step * 4096u + (uint64_t)site) * (uint64_t)(G * L) * (uint64_t)cols_global;
  if (row_split == 1)
    slice = r->tp_rank;
  else if (row_split >= 2)
    slice = gv_comm_rank(gv_run_rows_group(r, r->tp / row_split, r->tp));
  d.row0 = (r->step_first_sample + r->cur_micro * r->micro_batch) * L + slice * rows;
  d.col0 = cols < cols_global ? (int64_t)gv_comm_rank(gv_run_tp_group(r, group)) * cols : 0;
  return d;
}

static void dropout_rows_apply(struct gv_run *r, char *out, char *in, int64_t rows, int64_t cols, int64_t cols_global,
                               float p, int64_t site, int64_t row_split, int64_t group, int backward, int flags)
{
  if (r->evaluating)
    p = 0.0f; /* evaluation and sampling: the identity */
  struct dropout_block d = dropout_block(r, rows, cols, cols_global, site, row_split, group);
  int64_t nrows = cols == cols_global ? 1 : rows, n = cols == cols_global ? rows * cols : cols;
  int64_t row_bytes = cols * (int64_t)gv_dtype_size(r->fdt);
  for (int64_t i = 0; i < nrows; i++) {
    struct gv_tensor O = t1(out + i * row_bytes, r->fdt, n), I = t1(in + i * row_bytes, r->fdt, n);
    uint64_t off = d.base + (uint64_t)(d.row0 + i) * (uint64_t)cols_global + (uint64_t)d.col0;
    if (backward)
      gv_dropout_bwd(&r->be, &O, &I, p, r->args.seed, off, flags);
    else
      gv_dropout_fwd(&r->be, &O, &I, p, r->args.seed, off);
  }
}

void gv_gen_dropout_fwd(void *ctx, void *y, void *x, int64_t rows, int64_t cols, int64_t cols_global, float p,
                        int64_t site, int64_t row_split, int64_t group)
{
  dropout_rows_apply(ctx, y, x, rows, cols, cols_global, p, site, row_split, group, 0, 0);
}

void gv_gen_dropout_bwd(void *ctx, void *dx, void *dy, int64_t rows, int64_t cols, int64_t cols_global, float p,
                        int64_t site, int64_t row_split, int64_t group, int64_t flags)
{
  dropout_rows_apply(ctx, dx, dy, rows, cols, cols_global, p, site, row_split, group, 1, (int)flags);
}

/* Vocabulary padding: columns [from, cols) of logits [M, cols] set to -inf, so that softmax
 * gives them 0 and the loss (and its gradient) is the unpadded model's: row 0's filled, then
 * copied to the other rows in doubling blocks. */
static void mask_padded(struct gv_run *r, char *logits, int64_t M, int64_t cols, int64_t from)
{
  if (from >= cols)
    return;
  from = from < 0 ? 0 : from;
  size_t es = gv_run_fsz(r);
  struct gv_tensor row0 = t1(logits + (size_t)from * es, r->fdt, cols - from);
  gv_fill(&r->be, &row0, -INFINITY);
  for (int64_t done = 1; done < M; done *= 2) {
    int64_t k = done < M - done ? done : M - done;
    gv_copy2d(&r->be, logits + (size_t)(done * cols + from) * es, cols, logits + (size_t)from * es, cols, k,
              cols - from, r->fdt);
  }
}

void gv_gen_xent_fwd(void *ctx, void *loss, void *lse, void *logits, void *targets, int64_t M, int64_t V)
{
  struct gv_run *r = ctx;
  mask_padded(r, logits, M, V, r->vocab);
  struct gv_tensor L = t1(loss, F32, 1), S = t1(lse, F32, M), X = t2(logits, VT, M, V), T = t1(targets, I32, M);
  gv_xent_fwd(&r->be, &L, &S, &X, &T, r->loss_scale);
}

void gv_gen_xent_bwd(void *ctx, void *dlogits, void *logits, void *lse, void *targets, int64_t M, int64_t V)
{
  struct gv_run *r = ctx;
  struct gv_tensor D = t2(dlogits, VT, M, V), X = t2(logits, VT, M, V), S = t1(lse, F32, M),
                   T = t1(targets, I32, M);
  gv_xent_bwd(&r->be, &D, &X, &S, &T, r->loss_scale);
}

void gv_gen_fill(void *ctx, void *x, int64_t n, float value)
{
  struct gv_tensor X = t1(x, VT, n);
  gv_fill(be_of(ctx), &X, value);
}

void gv_gen_zero(void *ctx, void *x, int64_t bytes)
{
  struct gv_tensor X = t1(x, F32, bytes / 4); /* 0.0f is all zero bits: zeros of every dtype */
  GV_CHECK(bytes % 4 == 0, "gv_gen_zero: %lld bytes is not a whole number of words", (long long)bytes);
  gv_fill(be_of(ctx), &X, 0.0f);
}

void gv_gen_linear_fwd_partial(void *ctx, void *y, void *x, void *w, void *b, int64_t M, int64_t K, int64_t N)
{
  struct gv_run *r = ctx;
  gv_gen_linear_fwd(ctx, y, x, w, r->tp_rank == 0 ? b : NULL, M, K, N);
}

void gv_gen_linear_fwd_row(void *ctx, int64_t group, void *y, void *x, void *w, void *b, int64_t M, int64_t K, int64_t N)
{
  struct gv_comm *g = gv_run_tp_group(ctx, group);
  gv_gen_linear_fwd(ctx, y, x, w, gv_comm_rank(g) == 0 ? b : NULL, M, K, N);
  gv_comm_all_reduce(g, y, (size_t)(M * N), VT, GV_REDUCE_SUM);
}

void gv_gen_rows_gather(void *ctx, int64_t small, int64_t large, void *out, void *in, int64_t n)
{
  gv_comm_all_gather(gv_run_rows_group(ctx, small, large), out, in, (size_t)n, VT);
}

void gv_gen_rows_slice(void *ctx, int64_t small, int64_t large, void *out, void *in, int64_t n)
{
  int j = gv_comm_rank(gv_run_rows_group(ctx, small, large));
  gv_gen_grad(ctx, out, (char *)in + (int64_t)j * n * (int64_t)gv_run_fsz(ctx), n, 0);
}

void gv_gen_sp_slice(void *ctx, void *out, void *in, int64_t n)
{
  struct gv_run *r = ctx;
  gv_gen_grad(ctx, out, (char *)in + (int64_t)r->tp_rank * n * (int64_t)gv_run_fsz(ctx), n, 0);
}

void gv_gen_sp_gather(void *ctx, void *out, void *in, int64_t n)
{
  struct gv_run *r = ctx;
  gv_comm_all_gather(r->tp_group, out, in, (size_t)n, VT);
}

/* vsp: this rank's rows of the tp group in pieces that stay within a sample, each at its
 * first position; the backward's pieces after the first add to dtable. */
static void sp_pos_pieces(void *ctx, void *y, void *table, int64_t M, int64_t T, int64_t V, int64_t C, int bwd,
                          int64_t flags)
{
  struct gv_run *r = ctx;
  int64_t es = (int64_t)gv_run_fsz(ctx), row = (int64_t)r->tp_rank * M;
  struct gv_tensor TB = t2(table, VT, V, C);
  for (int64_t done = 0; done < M;) {
    int64_t pos = (row + done) % T, n = T - pos < M - done ? T - pos : M - done;
    struct gv_tensor Yp = t3((char *)y + done * C * es, VT, 1, n, C);
    if (bwd)
      gv_embedding_bwd(&r->be, &TB, &Yp, NULL, pos, (int)flags | (done ? GV_ACC_DW : 0));
    else
      gv_embedding_fwd(&r->be, &Yp, NULL, &TB, pos, (int)flags);
    done += n;
  }
}

void gv_gen_sp_pos_embedding_fwd(void *ctx, void *y, void *table, int64_t M, int64_t T, int64_t V, int64_t C,
                                 int64_t accumulate)
{
  sp_pos_pieces(ctx, y, table, M, T, V, C, 0, accumulate);
}

void gv_gen_sp_pos_embedding_bwd(void *ctx, void *dtable, void *dy, int64_t M, int64_t T, int64_t V, int64_t C,
                                 int64_t flags)
{
  sp_pos_pieces(ctx, dy, dtable, M, T, V, C, 1, flags);
}

void gv_gen_sp_loss_sum(void *ctx, void *loss)
{
  struct gv_run *r = ctx;
  gv_comm_all_reduce(r->tp_group, loss, 1, F32, GV_REDUCE_SUM);
}

void gv_gen_sp_reduce_scatter(void *ctx, void *out, void *in, int64_t n, int64_t accumulate)
{
  struct gv_run *r = ctx;
  gv_comm_reduce_scatter(r->tp_group, in, in, (size_t)n, VT); /* my block of the sum lands at in[0..n) */
  gv_gen_grad(ctx, out, in, n, accumulate);
}

void gv_gen_all_reduce(void *ctx, int64_t group, void *x, int64_t n)
{
  gv_comm_all_reduce(gv_run_tp_group(ctx, group), x, (size_t)n, VT, GV_REDUCE_SUM);
}

/* The data-parallel group ZeRO-3 layer `layer` is sharded over. */
static struct gv_comm *z3_group(struct gv_run *r, int64_t layer)
{
  GV_CHECK(layer >= 0 && layer < r->nzl && r->zl[layer].dp, "layer %lld is not a ZeRO-3 layer of this stage",
           (long long)layer);
  return r->zl[layer].dp;
}

void gv_gen_zero3_gather(void *ctx, int64_t layer, void *out, void *shard, int64_t n)
{
  gv_comm_all_gather(z3_group(ctx, layer), out, shard, (size_t)n, VT);
}

void gv_gen_zero3_reduce_scatter(void *ctx, int64_t layer, void *shard, void *full, int64_t n)
{
  gv_comm_reduce_scatter(z3_group(ctx, layer), full, full, (size_t)n, VT); /* my sum lands at full[0..n) */
  gv_gen_grad(ctx, shard, full, n, 1);
}

/* Ulysses' all-to-alls: the column blocks of a rows-split [R, N] matrix are packed
 * contiguously (one strided copy per block, on the backend) so one all-to-all moves them. */
void gv_gen_ul_rows_to_heads(void *ctx, void *out, void *in, void *scratch, int64_t R, int64_t N)
{
  struct gv_run *r = ctx;
  int64_t w = N / r->tp, es = (int64_t)gv_run_fsz(ctx);
  for (int64_t j = 0; j < r->tp; j++)
    gv_copy2d(&r->be, (char *)scratch + j * R * w * es, w, (const char *)in + j * w * es, N, R, w, VT);
  gv_comm_all_to_all(r->tp_group, out, scratch, (size_t)(R * w), VT);
}

void gv_gen_ul_heads_to_rows(void *ctx, void *out, void *in, void *scratch, int64_t R, int64_t N)
{
  struct gv_run *r = ctx;
  int64_t w = N / r->tp, es = (int64_t)gv_run_fsz(ctx);
  gv_comm_all_to_all(r->tp_group, scratch, in, (size_t)(R * w), VT);
  for (int64_t i = 0; i < r->tp; i++)
    gv_copy2d(&r->be, (char *)out + i * w * es, N, (const char *)scratch + i * R * w * es, w, R, w, VT);
}

/* ---- vocabulary parallelism: this rank holds the vocabulary block [lo, lo + Vs) ---- */

static int64_t vocab_lo(struct gv_run *r, int64_t Vs) { return (int64_t)r->tp_rank * Vs; }

void gv_gen_vocab_embedding_fwd(void *ctx, void *y, void *ids, void *table, int64_t M, int64_t Vs, int64_t C)
{
  struct gv_run *r = ctx;
  struct gv_tensor Y = t2(y, VT, M, C), I = t1(ids, I32, M), TB = t2(table, VT, Vs, C);
  gv_embedding_shard_fwd(&r->be, &Y, &I, &TB, vocab_lo(r, Vs));
  gv_comm_all_reduce(r->tp_group, y, (size_t)(M * C), VT, GV_REDUCE_SUM);
}

void gv_gen_vocab_embedding_bwd(void *ctx, void *dtable, void *dy, void *ids, int64_t M, int64_t Vs, int64_t C)
{
  struct gv_run *r = ctx;
  struct gv_tensor DT = t2(dtable, VT, Vs, C), DY = t2(dy, VT, M, C), I = t1(ids, I32, M);
  gv_embedding_shard_bwd(&r->be, &DT, &DY, &I, vocab_lo(r, Vs), GV_ACC_DW);
}

/* The global row max, the sum of exponentials under it, then the loss: each stage's
 * partial values summed (or maxed) over the tp group. */
void gv_gen_vocab_xent_fwd(void *ctx, void *loss, void *lse, void *scratch, void *logits, void *targets, int64_t M,
                           int64_t Vs)
{
  struct gv_run *r = ctx;
  struct gv_tensor L = t1(loss, F32, 1), S = t1(lse, F32, M), P = t1(scratch, F32, M), X = t2(logits, VT, M, Vs),
                   T = t1(targets, I32, M);
  int64_t lo = vocab_lo(r, Vs);
  mask_padded(r, logits, M, Vs, r->vocab - lo);
  gv_xent_shard_fwd(&r->be, &L, &S, &P, &X, &T, lo, r->loss_scale, GV_XSHARD_MAX);
  gv_comm_all_reduce(r->tp_group, lse, (size_t)M, GV_DTYPE_F32, GV_REDUCE_MAX);
  gv_xent_shard_fwd(&r->be, &L, &S, &P, &X, &T, lo, r->loss_scale, GV_XSHARD_SUMEXP);
  gv_comm_all_reduce(r->tp_group, scratch, (size_t)M, GV_DTYPE_F32, GV_REDUCE_SUM);
  gv_xent_shard_fwd(&r->be, &L, &S, &P, &X, &T, lo, r->loss_scale, GV_XSHARD_LOSS);
  gv_comm_all_reduce(r->tp_group, loss, 1, GV_DTYPE_F32, GV_REDUCE_SUM);
}

void gv_gen_vocab_xent_bwd(void *ctx, void *dlogits, void *logits, void *lse, void *targets, int64_t M, int64_t Vs)
{
  struct gv_run *r = ctx;
  struct gv_tensor D = t2(dlogits, VT, M, Vs), X = t2(logits, VT, M, Vs), S = t1(lse, F32, M),
                   T = t1(targets, I32, M);
  gv_xent_shard_bwd(&r->be, &D, &X, &S, &T, vocab_lo(r, Vs), r->loss_scale);
}

/* ---- mixture of experts ---- */

void gv_gen_topk(void *ctx, void *idx, void *x, int64_t M, int64_t N, int64_t k)
{
  struct gv_tensor I = t2(idx, I32, M, k), X = t2(x, VT, M, N);
  gv_topk(be_of(ctx), &I, &X);
}

void gv_gen_take_fwd(void *ctx, void *y, void *x, void *idx, int64_t M, int64_t N, int64_t k)
{
  struct gv_tensor Y = t2(y, VT, M, k), X = t2(x, VT, M, N), I = t2(idx, I32, M, k);
  gv_take_fwd(be_of(ctx), &Y, &X, &I);
}

void gv_gen_take_bwd(void *ctx, void *dx, void *dy, void *idx, int64_t M, int64_t N, int64_t k, int64_t flags)
{
  struct gv_tensor DX = t2(dx, VT, M, N), DY = t2(dy, VT, M, k), I = t2(idx, I32, M, k);
  gv_take_bwd(be_of(ctx), &DX, &DY, &I, (int)flags);
}

void gv_gen_moe_permute_fwd(void *ctx, void *xp, void *x, void *idx, int64_t M, int64_t C, int64_t k, int64_t E)
{
  struct gv_tensor XP = t2(xp, VT, M * k, C), X = t2(x, VT, M, C), I = t2(idx, I32, M, k);
  gv_moe_permute_fwd(be_of(ctx), &XP, &X, &I, E);
}

void gv_gen_moe_permute_bwd(void *ctx, void *dx, void *dxp, void *idx, int64_t M, int64_t C, int64_t k, int64_t E,
                            int64_t flags)
{
  struct gv_tensor DX = t2(dx, VT, M, C), DXP = t2(dxp, VT, M * k, C), I = t2(idx, I32, M, k);
  gv_moe_permute_bwd(be_of(ctx), &DX, &DXP, &I, E, (int)flags);
}

void gv_gen_moe_grouped_fwd(void *ctx, void *y, void *x, void *w, void *idx, int64_t M, int64_t k, int64_t E,
                            int64_t N, int64_t K)
{
  struct gv_tensor Y = t2(y, VT, M * k, N), X = t2(x, VT, M * k, K), W = t3(w, VT, E, N, K), I = t2(idx, I32, M, k);
  gv_moe_grouped_fwd(be_of(ctx), &Y, &X, &W, &I);
}

void gv_gen_moe_grouped_bwd(void *ctx, void *dx, void *dw, void *dy, void *x, void *w, void *idx, int64_t M,
                            int64_t k, int64_t E, int64_t N, int64_t K, int64_t flags)
{
  struct gv_tensor DX = t2(dx, VT, M * k, K), DW = t3(dw, VT, E, N, K), DY = t2(dy, VT, M * k, N),
                   X = t2(x, VT, M * k, K), W = t3(w, VT, E, N, K), I = t2(idx, I32, M, k);
  gv_moe_grouped_bwd(be_of(ctx), dx ? &DX : NULL, dw ? &DW : NULL, &DY, &X, &W, &I, (int)flags);
}

void gv_gen_ep_grouped_fwd(void *ctx, void *y, void *x, void *w, void *idx, void *scratch, int64_t M, int64_t k,
                           int64_t E, int64_t N, int64_t K)
{
  struct gv_run *r = ctx;
  struct gv_tensor Y = t2(y, VT, M * k, N), X = t2(x, VT, M * k, K), W = t3(w, VT, E / r->ep, N, K),
                   I = t2(idx, I32, M, k);
  GV_CHECK(r->ep_group != NULL, "an expert-parallel grouped linear in a program without expert parallelism");
  gv_ep_grouped_fwd(r->ep_group, &r->be, &Y, &X, &W, &I, E, scratch);
}

void gv_gen_ep_grouped_bwd(void *ctx, void *dx, void *dw, void *dy, void *x, void *w, void *idx, void *scratch,
                           int64_t M, int64_t k, int64_t E, int64_t N, int64_t K, int64_t flags)
{
  struct gv_run *r = ctx;
  struct gv_tensor DX = t2(dx, VT, M * k, K), DW = t3(dw, VT, E / r->ep, N, K), DY = t2(dy, VT, M * k, N),
                   X = t2(x, VT, M * k, K), W = t3(w, VT, E / r->ep, N, K), I = t2(idx, I32, M, k);
  GV_CHECK(r->ep_group != NULL, "an expert-parallel grouped linear in a program without expert parallelism");
  gv_ep_grouped_bwd(r->ep_group, &r->be, dx ? &DX : NULL, dw ? &DW : NULL, &DY, &X, &W, &I, E, scratch, (int)flags);
}

void gv_gen_ep_mlp_fwd(void *ctx, void *y, void *x, void *wg, void *wu, void *wd, void *idx, void *scratch, int64_t M,
                       int64_t k, int64_t E, int64_t D, int64_t F, int64_t N)
{
  struct gv_run *r = ctx;
  struct gv_tensor Y = t2(y, VT, M * k, N), X = t2(x, VT, M * k, D), WG = t3(wg, VT, E / r->ep, F, D),
                   WU = t3(wu, VT, E / r->ep, F, D), WD = t3(wd, VT, E / r->ep, N, F), I = t2(idx, I32, M, k);
  GV_CHECK(r->ep_group != NULL, "an expert-parallel MLP in a program without expert parallelism");
  gv_ep_mlp_fwd(r->ep_group, &r->be, &Y, &X, &WG, &WU, &WD, &I, E, scratch);
}

void gv_gen_ep_mlp_bwd(void *ctx, void *dx, void *dwg, void *dwu, void *dwd, void *dy, void *x, void *wg, void *wu,
                       void *wd, void *idx, void *scratch, int64_t M, int64_t k, int64_t E, int64_t D, int64_t F,
                       int64_t N, int64_t flags)
{
  struct gv_run *r = ctx;
  int64_t El = E / r->ep;
  struct gv_tensor DX = t2(dx, VT, M * k, D), DWG = t3(dwg, VT, El, F, D), DWU = t3(dwu, VT, El, F, D),
                   DWD = t3(dwd, VT, El, N, F), DY = t2(dy, VT, M * k, N), X = t2(x, VT, M * k, D),
                   WG = t3(wg, VT, El, F, D), WU = t3(wu, VT, El, F, D), WD = t3(wd, VT, El, N, F), I = t2(idx, I32, M, k);
  GV_CHECK(r->ep_group != NULL && dwg && dwu && dwd, "an expert-parallel MLP in a program without expert parallelism "
           "(or without its weights' gradients)");
  gv_ep_mlp_bwd(r->ep_group, &r->be, dx ? &DX : NULL, &DWG, &DWU, &DWD, &DY, &X, &WG, &WU, &WD, &I, E, scratch,
                (int)flags);
}

void gv_gen_moe_unpermute_fwd(void *ctx, void *y, void *yp, void *gates, void *idx, int64_t M, int64_t C, int64_t k,
                              int64_t E)
{
  struct gv_tensor Y = t2(y, VT, M, C), YP = t2(yp, VT, M * k, C), G = t2(gates, VT, M, k), I = t2(idx, I32, M, k);
  gv_moe_unpermute_fwd(be_of(ctx), &Y, &YP, &G, &I, E);
}

void gv_gen_moe_unpermute_bwd(void *ctx, void *dyp, void *dgates, void *dy, void *yp, void *gates, void *idx,
                              int64_t M, int64_t C, int64_t k, int64_t E, int64_t flags)
{
  struct gv_tensor DYP = t2(dyp, VT, M * k, C), DG = t2(dgates, VT, M, k), DY = t2(dy, VT, M, C),
                   YP = t2(yp, VT, M * k, C), G = t2(gates, VT, M, k), I = t2(idx, I32, M, k);
  gv_moe_unpermute_bwd(be_of(ctx), dyp ? &DYP : NULL, dgates ? &DG : NULL, &DY, &YP, &G, &I, E, (int)flags);
}

/* coeff E / M^2 (Mixtral's mean over tokens of the counts and of the probabilities), times
 * M tokens of the run's per-token loss scale: each micro-batch's term weighs as its tokens do. */
static float aux_scale(void *ctx, int64_t M, int64_t E, float coeff)
{
  struct gv_run *r = ctx;
  return (float)((double)coeff * (double)E / ((double)M * (double)M) * (double)M * (double)r->loss_scale);
}

void gv_gen_moe_aux_fwd(void *ctx, void *loss, void *probs, void *idx, int64_t M, int64_t E, int64_t k, float coeff)
{
  struct gv_tensor L = t1(loss, F32, 1), P = t2(probs, VT, M, E), I = t2(idx, I32, M, k);
  gv_moe_aux_fwd(be_of(ctx), &L, &P, &I, aux_scale(ctx, M, E, coeff));
}

void gv_gen_moe_aux_bwd(void *ctx, void *dprobs, void *idx, int64_t M, int64_t E, int64_t k, float coeff, int64_t flags)
{
  struct gv_tensor D = t2(dprobs, VT, M, E), I = t2(idx, I32, M, k);
  gv_moe_aux_bwd(be_of(ctx), &D, &I, aux_scale(ctx, M, E, coeff), (int)flags);
}

void gv_gen_loss_add(void *ctx, void *dst, void *src)
{
  struct gv_tensor D = t1(dst, F32, 1), S = t1(src, F32, 1);
  gv_axpy(be_of(ctx), &D, 1.0f, &S);
}
