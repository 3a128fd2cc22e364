/* test_cpu_ops.c - every non-attention CPU op, forward against an fp64 naive reference and
 * backward against central finite differences of that reference (opcheck.h), plus the
 * accumulate flags, dropout's counter-based mask, bf16 copies and sumsq.
 * Tolerances (atol + rtol |ref|): forward 1e-5 + 1e-4 (fp32 rounding of sums of <= 64
 * terms of O(1) values is ~1e-6); backward 1e-4 + 1e-3 (the fp32 kernel's gradient chains
 * two or three such sums, e.g. the norm's mean(g*xhat) correction). */
#include <math.h>
#include <stdlib.h>

#include "cpu/cpu.h"
#include "opcheck.h"

#define F32 GV_DTYPE_F32
enum { B = 2, T = 5, C = 12, V = 9 };
static const double FA = 1e-5, FR = 1e-4, BA = 1e-4, BR_ = 1e-3;

static float *fnew(int64_t n) { return calloc((size_t)n, sizeof(float)); }

/* ---- linear ---- */

struct lin_ctx { int64_t M, K, N; };

static void ref_linear(const struct refop *op, double *const *in, double *out)
{
  const struct lin_ctx *c = op->ctx;
  for (int64_t i = 0; i < c->M; i++)
    for (int64_t j = 0; j < c->N; j++) {
      double s = in[2][j];
      for (int64_t k = 0; k < c->K; k++) s += in[0][i * c->K + k] * in[1][j * c->K + k];
      out[i * c->N + j] = s;
    }
}

static void test_linear(struct gv_backend *be, uint64_t *seed)
{
  struct lin_ctx c = {B * T, C, 7};
  struct refop op = {3, {c.M * c.K, c.N * c.K, c.N}, c.M * c.N, ref_linear, &c};
  float *x = fnew(op.n[0]), *w = fnew(op.n[1]), *b = fnew(op.n[2]), *y = fnew(op.nout),
        *r = fnew(op.nout), *dx = fnew(op.n[0]), *dw = fnew(op.n[1]), *db = fnew(op.n[2]);
  oc_fill(x, NULL, op.n[0], seed, -1, 1);
  oc_fill(w, NULL, op.n[1], seed, -1, 1);
  oc_fill(b, NULL, op.n[2], seed, -1, 1);
  oc_fill(r, NULL, op.nout, seed, -1, 1);
  double *in[3] = {oc_dup(x, op.n[0]), oc_dup(w, op.n[1]), oc_dup(b, op.n[2])}, *rd = oc_dup(r, op.nout);
  struct gv_tensor tx = gv_tensor_4d(x, F32, B, T, C, 0), tw = gv_tensor_4d(w, F32, c.N, C, 0, 0),
                   tb = gv_tensor_4d(b, F32, c.N, 0, 0, 0), ty = gv_tensor_4d(y, F32, B, T, c.N, 0),
                   tr = gv_tensor_4d(r, F32, B, T, c.N, 0), tdx = gv_tensor_4d(dx, F32, B, T, C, 0),
                   tdw = gv_tensor_4d(dw, F32, c.N, C, 0, 0), tdb = gv_tensor_4d(db, F32, c.N, 0, 0, 0);
  gv_linear_fwd(be, &ty, &tx, &tw, &tb);
  oc_check_fwd("linear y", &op, in, y, FA, FR);
  gv_linear_bwd(be, &tdx, &tdw, &tdb, &tr, &tx, &tw, 0);
  oc_check_grad("linear dx", &op, in, rd, 0, dx, BA, BR_);
  oc_check_grad("linear dw", &op, in, rd, 1, dw, BA, BR_);
  oc_check_grad("linear db", &op, in, rd, 2, db, BA, BR_);
  /* GV_ACC_DW twice more: dw, db become three times the gradient; dx is overwritten. */
  gv_linear_bwd(be, &tdx, &tdw, &tdb, &tr, &tx, &tw, GV_ACC_DW);
  gv_linear_bwd(be, &tdx, &tdw, &tdb, &tr, &tx, &tw, GV_ACC_DW | GV_ACC_DX);
  double *g = malloc((size_t)op.n[2] * sizeof *g);
  oc_fd_grad(&op, in, rd, 2, g);
  for (int64_t i = 0; i < op.n[2]; i++) g[i] *= 3.0;
  oc_check("linear db accumulated x3", db, g, op.n[2], 3 * BA, BR_);
  free(g);
  g = malloc((size_t)op.n[0] * sizeof *g);
  oc_fd_grad(&op, in, rd, 0, g);
  for (int64_t i = 0; i < op.n[0]; i++) g[i] *= 2.0;
  oc_check("linear dx accumulated x2", dx, g, op.n[0], 2 * BA, BR_);
  free(g);
  /* no bias */
  gv_linear_fwd(be, &ty, &tx, &tw, NULL);
  for (int64_t j = 0; j < c.N; j++) in[2][j] = 0;
  oc_check_fwd("linear y (no bias)", &op, in, y, FA, FR);
  for (int i = 0; i < 3; i++) free(in[i]);
  free(rd), free(x), free(w), free(b), free(y), free(r), free(dx), free(dw), free(db);
}

/* ---- embedding (tokens + learned positions accumulated into one output) ---- */

struct emb_ctx { const int32_t *ids; };

static void ref_embedding(const struct refop *op, double *const *in, double *out)
{
  const struct emb_ctx *c = op->ctx;
  for (int64_t r = 0; r < B * T; r++)
    for (int64_t k = 0; k < C; k++)
      out[r * C + k] = in[0][c->ids[r] * C + k] + in[1][(3 + r % T) * C + k];
}

static void test_embedding(struct gv_backend *be, uint64_t *seed)
{
  enum { P = 10 };
  int32_t ids[B * T] = {1, 4, 4, 0, 8, 2, 2, 2, 7, 1};
  struct emb_ctx c = {ids};
  struct refop op = {2, {V * C, P * C}, B * T * C, ref_embedding, &c};
  float *tok = fnew(V * C), *pos = fnew(P * C), *y = fnew(op.nout), *r = fnew(op.nout),
        *dtok = fnew(V * C), *dpos = fnew(P * C);
  oc_fill(tok, NULL, V * C, seed, -1, 1);
  oc_fill(pos, NULL, P * C, seed, -1, 1);
  oc_fill(r, NULL, op.nout, seed, -1, 1);
  double *in[2] = {oc_dup(tok, V * C), oc_dup(pos, P * C)}, *rd = oc_dup(r, op.nout);
  struct gv_tensor tt = gv_tensor_4d(tok, F32, V, C, 0, 0), tp = gv_tensor_4d(pos, F32, P, C, 0, 0),
                   ty = gv_tensor_4d(y, F32, B, T, C, 0), tr = gv_tensor_4d(r, F32, B, T, C, 0),
                   ti = gv_tensor_4d(ids, GV_DTYPE_I32, B, T, 0, 0),
                   tdt = gv_tensor_4d(dtok, F32, V, C, 0, 0), tdp = gv_tensor_4d(dpos, F32, P, C, 0, 0);
  gv_embedding_fwd(be, &ty, &ti, &tt, 0, 0);
  gv_embedding_fwd(be, &ty, NULL, &tp, 3, 1);
  oc_check_fwd("embedding y", &op, in, y, FA, FR);
  gv_embedding_bwd(be, &tdt, &tr, &ti, 0, 0);
  gv_embedding_bwd(be, &tdp, &tr, NULL, 3, 0);
  oc_check_grad("embedding dtable", &op, in, rd, 0, dtok, BA, BR_);
  oc_check_grad("pos_embedding dtable", &op, in, rd, 1, dpos, BA, BR_);
  gv_embedding_bwd(be, &tdt, &tr, &ti, 0, GV_ACC_DW);
  oc_check_grad_times("embedding dtable accumulated x2", &op, in, rd, 0, dtok, 2, BA, BR_);
  free(in[0]), free(in[1]), free(rd), free(tok), free(pos), free(y), free(r), free(dtok), free(dpos);
}

/* ---- layernorm / rmsnorm ---- */

struct norm_ctx { int rms; double eps; };

static void ref_norm(const struct refop *op, double *const *in, double *out)
{
  const struct norm_ctx *c = op->ctx;
  for (int64_t i = 0; i < B * T; i++) {
    const double *x = in[0] + i * C;
    double mu = 0, var = 0;
    if (!c->rms) {
      for (int k = 0; k < C; k++) mu += x[k] / C;
    }
    for (int k = 0; k < C; k++) var += (x[k] - mu) * (x[k] - mu) / C;
    for (int k = 0; k < C; k++)
      out[i * C + k] = (x[k] - mu) / sqrt(var + c->eps) * in[1][k] + (c->rms ? 0.0 : in[2][k]);
  }
}

static void test_norm(struct gv_backend *be, uint64_t *seed, int rms)
{
  struct norm_ctx c = {rms, 1e-5};
  struct refop op = {rms ? 2 : 3, {B * T * C, C, C}, B * T * C, ref_norm, &c};
  float *x = fnew(op.nout), *w = fnew(C), *b = fnew(C), *y = fnew(op.nout), *r = fnew(op.nout),
        *dx = fnew(op.nout), *dw = fnew(C), *db = fnew(C), *mean = fnew(B * T), *rstd = fnew(B * T);
  oc_fill(x, NULL, op.nout, seed, -2, 3);
  oc_fill(w, NULL, C, seed, 0.5, 1.5);
  oc_fill(b, NULL, C, seed, -1, 1);
  oc_fill(r, NULL, op.nout, seed, -1, 1);
  double *in[3] = {oc_dup(x, op.nout), oc_dup(w, C), oc_dup(b, C)}, *rd = oc_dup(r, op.nout);
  struct gv_tensor tx = gv_tensor_4d(x, F32, B, T, C, 0), tw = gv_tensor_4d(w, F32, C, 0, 0, 0),
                   tb = gv_tensor_4d(b, F32, C, 0, 0, 0), ty = gv_tensor_4d(y, F32, B, T, C, 0),
                   tr = gv_tensor_4d(r, F32, B, T, C, 0), tdx = gv_tensor_4d(dx, F32, B, T, C, 0),
                   tdw = gv_tensor_4d(dw, F32, C, 0, 0, 0), tdb = gv_tensor_4d(db, F32, C, 0, 0, 0),
                   tm = gv_tensor_4d(mean, F32, B, T, 0, 0), ts = gv_tensor_4d(rstd, F32, B, T, 0, 0);
  if (rms) {
    gv_rmsnorm_fwd(be, &ty, &ts, &tx, &tw, 1e-5f);
    oc_check_fwd("rmsnorm y", &op, in, y, FA, FR);
    gv_rmsnorm_bwd(be, &tdx, &tdw, &tr, &tx, &tw, &ts, 0);
    oc_check_grad("rmsnorm dx", &op, in, rd, 0, dx, BA, BR_);
    oc_check_grad("rmsnorm dw", &op, in, rd, 1, dw, BA, BR_);
    gv_rmsnorm_bwd(be, &tdx, &tdw, &tr, &tx, &tw, &ts, GV_ACC_DX | GV_ACC_DW);
    oc_check_grad_times("rmsnorm dx accumulated x2", &op, in, rd, 0, dx, 2, BA, BR_);
    oc_check_grad_times("rmsnorm dw accumulated x2", &op, in, rd, 1, dw, 2, BA, BR_);
  } else {
    gv_layernorm_fwd(be, &ty, &tm, &ts, &tx, &tw, &tb, 1e-5f);
    oc_check_fwd("layernorm y", &op, in, y, FA, FR);
    gv_layernorm_bwd(be, &tdx, &tdw, &tdb, &tr, &tx, &tw, &tm, &ts, 0);
    oc_check_grad("layernorm dx", &op, in, rd, 0, dx, BA, BR_);
    oc_check_grad("layernorm dw", &op, in, rd, 1, dw, BA, BR_);
    oc_check_grad("layernorm db", &op, in, rd, 2, db, BA, BR_);
    gv_layernorm_bwd(be, &tdx, &tdw, &tdb, &tr, &tx, &tw, &tm, &ts, GV_ACC_DX | GV_ACC_DW);
    oc_check_grad_times("layernorm dx accumulated x2", &op, in, rd, 0, dx, 2, BA, BR_);
    oc_check_grad_times("layernorm dw accumulated x2", &op, in, rd, 1, dw, 2, BA, BR_);
    oc_check_grad_times("layernorm db accumulated x2", &op, in, rd, 2, db, 2, BA, BR_);
  }
  for (int i = 0; i < 3; i++) free(in[i]);
  free(rd), free(x), free(w), free(b), free(y), free(r), free(dx), free(dw), free(db), free(mean),
      free(rstd);
}

/* ---- elementwise: gelu (tanh, erf), silu, relu, affine (1.7 x - 0.3), swiglu, mul, add ---- */

enum ew_kind { EW_GELU_TANH, EW_GELU_ERF, EW_SILU, EW_RELU, EW_AFFINE, EW_SWIGLU, EW_MUL, EW_ADD };
struct ew_ctx { enum ew_kind kind; int64_t n; };

static double ref_silu(double a) { return a / (1.0 + exp(-a)); }

static void ref_ew(const struct refop *op, double *const *in, double *out)
{
  const struct ew_ctx *c = op->ctx;
  for (int64_t i = 0; i < c->n; i++) {
    double a = in[0][i], b = op->nin > 1 ? in[1][i] : 0.0;
    switch (c->kind) {
    case EW_GELU_TANH: out[i] = 0.5 * a * (1 + tanh(sqrt(2 / M_PI) * (a + 0.044715 * a * a * a))); break;
    case EW_GELU_ERF: out[i] = 0.5 * a * (1 + erf(a / sqrt(2.0))); break;
    case EW_SILU: out[i] = ref_silu(a); break;
    case EW_RELU: out[i] = a > 0 ? a : 0; break;
    case EW_AFFINE: out[i] = 1.7 * a - 0.3; break;
    case EW_SWIGLU: out[i] = ref_silu(a) * b; break;
    case EW_MUL: out[i] = a * b; break;
    case EW_ADD: out[i] = a + b; break;
    }
  }
}

static void ew_bwd(struct gv_backend *be, enum ew_kind kind, struct gv_tensor *da,
                   struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *a,
                   const struct gv_tensor *b, int flags)
{
  switch (kind) {
  case EW_GELU_TANH: case EW_GELU_ERF: gv_gelu_bwd(be, da, dy, a, kind == EW_GELU_TANH, flags); break;
  case EW_SILU: gv_silu_bwd(be, da, dy, a, flags); break;
  case EW_RELU: gv_relu_bwd(be, da, dy, a, flags); break;
  case EW_AFFINE: gv_affine(be, da, dy, 1.7f, 0.0f, flags); break;
  case EW_SWIGLU: gv_swiglu_bwd(be, da, db, dy, a, b, flags); break;
  case EW_MUL: gv_mul_bwd(be, da, db, dy, a, b, flags); break;
  case EW_ADD: break;
  }
}

static void test_ew(struct gv_backend *be, uint64_t *seed, enum ew_kind kind, const char *name)
{
  enum { N = B * T * C };
  int binary = kind >= EW_SWIGLU;
  struct ew_ctx c = {kind, N};
  struct refop op = {binary ? 2 : 1, {N, N}, N, ref_ew, &c};
  float *a = fnew(N), *b = fnew(N), *y = fnew(N), *r = fnew(N), *da = fnew(N), *db = fnew(N);
  char what[64];
  oc_fill(a, NULL, N, seed, -4, 4);
  oc_fill(b, NULL, N, seed, -2, 2);
  oc_fill(r, NULL, N, seed, -1, 1);
  double *in[2] = {oc_dup(a, N), oc_dup(b, N)}, *rd = oc_dup(r, N);
  struct gv_tensor ta = gv_tensor_4d(a, F32, B, T, C, 0), tb = gv_tensor_4d(b, F32, B, T, C, 0),
                   ty = gv_tensor_4d(y, F32, B, T, C, 0), tr = gv_tensor_4d(r, F32, B, T, C, 0),
                   tda = gv_tensor_4d(da, F32, B, T, C, 0), tdb = gv_tensor_4d(db, F32, B, T, C, 0);
  switch (kind) {
  case EW_GELU_TANH: case EW_GELU_ERF: gv_gelu_fwd(be, &ty, &ta, kind == EW_GELU_TANH); break;
  case EW_SILU: gv_silu_fwd(be, &ty, &ta); break;
  case EW_RELU: gv_relu_fwd(be, &ty, &ta); break;
  case EW_AFFINE: gv_affine(be, &ty, &ta, 1.7f, -0.3f, 0); break;
  case EW_SWIGLU: gv_swiglu_fwd(be, &ty, &ta, &tb); break;
  case EW_MUL: gv_mul_fwd(be, &ty, &ta, &tb); break;
  case EW_ADD: gv_add_fwd(be, &ty, &ta, &tb); break;
  }
  ew_bwd(be, kind, &tda, &tdb, &tr, &ta, &tb, 0);
  snprintf(what, sizeof what, "%s y", name);
  oc_check_fwd(what, &op, in, y, FA, FR);
  for (int pass = 1; pass <= 2 && kind != EW_ADD; pass++) {
    if (pass == 2)                               /* again with GV_ACC_DX: twice the gradient */
      ew_bwd(be, kind, &tda, &tdb, &tr, &ta, &tb, GV_ACC_DX);
    snprintf(what, sizeof what, "%s da%s", name, pass == 2 ? " accumulated x2" : "");
    oc_check_grad_times(what, &op, in, rd, 0, da, pass, BA, BR_);
    if (binary) {
      snprintf(what, sizeof what, "%s db%s", name, pass == 2 ? " accumulated x2" : "");
      oc_check_grad_times(what, &op, in, rd, 1, db, pass, BA, BR_);
    }
  }
  free(in[0]), free(in[1]), free(rd), free(a), free(b), free(y), free(r), free(da), free(db);
}

/* swiglu is bit for bit silu then mul (either operand order) and, backward, mul_bwd then
 * silu_bwd, written and with the gate's gradient accumulated: the compiler fuses the pairs. */
static void test_swiglu_parts(struct gv_backend *be, uint64_t *seed)
{
  enum { N = 4099 };
  float *g = fnew(N), *u = fnew(N), *dy = fnew(N), *s = fnew(N), *ds = fnew(N), *y1 = fnew(N), *y2 = fnew(N),
        *dg1 = fnew(N), *dg2 = fnew(N), *du1 = fnew(N), *du2 = fnew(N);
  oc_fill(g, NULL, N, seed, -8, 8);
  oc_fill(u, NULL, N, seed, -2, 2);
  oc_fill(dy, NULL, N, seed, -1, 1);
  struct gv_tensor tg = gv_tensor_4d(g, F32, N, 0, 0, 0), tu = gv_tensor_4d(u, F32, N, 0, 0, 0),
                   tdy = gv_tensor_4d(dy, F32, N, 0, 0, 0), ts = gv_tensor_4d(s, F32, N, 0, 0, 0),
                   tds = gv_tensor_4d(ds, F32, N, 0, 0, 0), ty1 = gv_tensor_4d(y1, F32, N, 0, 0, 0),
                   ty2 = gv_tensor_4d(y2, F32, N, 0, 0, 0), tdg1 = gv_tensor_4d(dg1, F32, N, 0, 0, 0),
                   tdg2 = gv_tensor_4d(dg2, F32, N, 0, 0, 0), tdu1 = gv_tensor_4d(du1, F32, N, 0, 0, 0),
                   tdu2 = gv_tensor_4d(du2, F32, N, 0, 0, 0);
  gv_swiglu_fwd(be, &ty1, &tg, &tu);
  gv_silu_fwd(be, &ts, &tg);
  gv_mul_fwd(be, &ty2, &ts, &tu);
  CHECK(!memcmp(y1, y2, sizeof(float) * N));
  gv_mul_fwd(be, &ty2, &tu, &ts);
  CHECK(!memcmp(y1, y2, sizeof(float) * N));
  gv_swiglu_bwd(be, &tdg1, &tdu1, &tdy, &tg, &tu, 0);
  gv_mul_bwd(be, &tds, &tdu2, &tdy, &ts, &tu, 0);
  gv_silu_bwd(be, &tdg2, &tds, &tg, 0);
  CHECK(!memcmp(dg1, dg2, sizeof(float) * N));
  CHECK(!memcmp(du1, du2, sizeof(float) * N));
  gv_mul_bwd(be, &tdu2, &tds, &tdy, &tu, &ts, 0);            /* mul(up, silu(gate)) */
  CHECK(!memcmp(du1, du2, sizeof(float) * N));
  oc_fill(dg1, NULL, N, seed, -3, 3);                       /* accumulated into an earlier gradient */
  memcpy(dg2, dg1, sizeof(float) * N);
  gv_swiglu_bwd(be, &tdg1, NULL, &tdy, &tg, &tu, GV_ACC_DX);
  gv_silu_bwd(be, &tdg2, &tds, &tg, GV_ACC_DX);
  CHECK(!memcmp(dg1, dg2, sizeof(float) * N));
  free(g), free(u), free(dy), free(s), free(ds), free(y1), free(y2), free(dg1), free(dg2), free(du1), free(du2);
}

/* ---- softmax over the last dimension (rows of C) ---- */

static void ref_softmax(const struct refop *op, double *const *in, double *out)
{
  for (int64_t r = 0; r < op->nout / C; r++) {
    const double *x = in[0] + r * C;
    double mx = x[0], s = 0.0;
    for (int64_t j = 1; j < C; j++) mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < C; j++) s += exp(x[j] - mx);
    for (int64_t j = 0; j < C; j++) out[r * C + j] = exp(x[j] - mx) / s;
  }
}

static void test_softmax(struct gv_backend *be, uint64_t *seed)
{
  enum { N = B * T * C };
  struct refop op = {1, {N}, N, ref_softmax, NULL};
  float *x = fnew(N), *y = fnew(N), *r = fnew(N), *dx = fnew(N);
  oc_fill(x, NULL, N, seed, -4, 4);
  oc_fill(r, NULL, N, seed, -1, 1);
  double *in[1] = {oc_dup(x, N)}, *rd = oc_dup(r, N);
  struct gv_tensor tx = gv_tensor_4d(x, F32, B, T, C, 0), ty = gv_tensor_4d(y, F32, B, T, C, 0),
                   tr = gv_tensor_4d(r, F32, B, T, C, 0), tdx = gv_tensor_4d(dx, F32, B, T, C, 0);
  gv_softmax_fwd(be, &ty, &tx);
  oc_check_fwd("softmax y", &op, in, y, FA, FR);
  gv_softmax_bwd(be, &tdx, &tr, &ty, 0);
  oc_check_grad("softmax dx", &op, in, rd, 0, dx, BA, BR_);
  gv_softmax_bwd(be, &tdx, &tr, &ty, GV_ACC_DX);
  oc_check_grad_times("softmax dx accumulated x2", &op, in, rd, 0, dx, 2, BA, BR_);
  gv_softmax_bwd(be, &tr, &tr, &ty, 0);           /* dx aliasing dy gives the same */
  oc_check_grad("softmax dx (dx = dy)", &op, in, rd, 0, r, BA, BR_);
  gv_softmax_fwd(be, &tx, &tx);                   /* in place */
  oc_check_fwd("softmax y (in place)", &op, in, x, FA, FR);
  free(in[0]), free(rd), free(x), free(y), free(r), free(dx);
}

/* ---- slice and concat on the last dimension (column copies) ---- */

enum { SL0 = 3, SLN = 5, CB = 7 }; /* slice columns 3..7 of C; concat [.., C] and [.., CB] */

static void ref_slice(const struct refop *op, double *const *in, double *out)
{
  for (int64_t r = 0; r < op->nout / SLN; r++)
    for (int64_t j = 0; j < SLN; j++) out[r * SLN + j] = in[0][r * C + SL0 + j];
}

static void ref_concat(const struct refop *op, double *const *in, double *out)
{
  for (int64_t r = 0; r < op->nout / (C + CB); r++)
    for (int64_t j = 0; j < C + CB; j++)
      out[r * (C + CB) + j] = j < C ? in[0][r * C + j] : in[1][r * CB + j - C];
}

static void test_cols(struct gv_backend *be, uint64_t *seed)
{
  enum { M = B * T };
  struct refop sl = {1, {M * C}, M * SLN, ref_slice, NULL}, cat = {2, {M * C, M * CB}, M * (C + CB), ref_concat, NULL};
  float *a = fnew(M * C), *b = fnew(M * CB), *y = fnew(M * (C + CB)), *r = fnew(M * (C + CB)), *da = fnew(M * C),
        *db = fnew(M * CB);
  oc_fill(a, NULL, M * C, seed, -1, 1);
  oc_fill(b, NULL, M * CB, seed, -1, 1);
  oc_fill(r, NULL, M * (C + CB), seed, -1, 1);
  double *in[2] = {oc_dup(a, M * C), oc_dup(b, M * CB)}, *rd = oc_dup(r, M * (C + CB));
  struct gv_tensor ta = gv_tensor_4d(a, F32, M, C, 0, 0), tb = gv_tensor_4d(b, F32, M, CB, 0, 0),
                   tys = gv_tensor_4d(y, F32, M, SLN, 0, 0), trs = gv_tensor_4d(r, F32, M, SLN, 0, 0),
                   tyc = gv_tensor_4d(y, F32, M, C + CB, 0, 0), trc = gv_tensor_4d(r, F32, M, C + CB, 0, 0),
                   tda = gv_tensor_4d(da, F32, M, C, 0, 0), tdb = gv_tensor_4d(db, F32, M, CB, 0, 0);
  /* slice: y = a[:, 3:8]; da = 0 outside, dy inside (fill, then accumulate) */
  gv_copy_cols(be, &tys, 0, &ta, SL0, SLN, 0);
  oc_check_fwd("slice y", &sl, in, y, FA, FR);
  gv_fill(be, &tda, 0.0f);
  gv_copy_cols(be, &tda, SL0, &trs, 0, SLN, GV_ACC_DX);
  oc_check_grad("slice dx", &sl, in, rd, 0, da, BA, BR_);
  /* concat: y = [a, b]; da, db the two column blocks of dy (then accumulated: twice) */
  gv_copy_cols(be, &tyc, 0, &ta, 0, C, 0);
  gv_copy_cols(be, &tyc, C, &tb, 0, CB, 0);
  oc_check_fwd("concat y", &cat, in, y, FA, FR);
  for (int pass = 1; pass <= 2; pass++) {
    int f = pass == 2 ? GV_ACC_DX : 0;
    gv_copy_cols(be, &tda, 0, &trc, 0, C, f);
    gv_copy_cols(be, &tdb, 0, &trc, C, CB, f);
    oc_check_grad_times(pass == 2 ? "concat da accumulated x2" : "concat da", &cat, in, rd, 0, da, pass, BA, BR_);
    oc_check_grad_times(pass == 2 ? "concat db accumulated x2" : "concat db", &cat, in, rd, 1, db, pass, BA, BR_);
  }
  free(in[0]), free(in[1]), free(rd), free(a), free(b), free(y), free(r), free(da), free(db);
}

/* ---- rope (HF rotate_half), with a position offset; on all RD dims of a head, or the
 * first rot of them (GPT-NeoX's partial rotary: the rest pass through) ---- */

enum { RH = 3, RD = 8 };
static void ref_rope(const struct refop *op, double *const *in, double *out)
{
  const double *x = in[0];
  int64_t rot = *(const int64_t *)op->ctx;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < RH; h++) {
        int64_t o = ((b * T + t) * RH + h) * RD;
        for (int64_t i = 0; i < rot / 2; i++) {
          double ang = (double)(t + 2) * pow(10000.0, -2.0 * (double)i / (double)rot);
          double x1 = x[o + i], x2 = x[o + i + rot / 2];
          out[o + i] = x1 * cos(ang) - x2 * sin(ang);
          out[o + i + rot / 2] = x2 * cos(ang) + x1 * sin(ang);
        }
        for (int64_t j = rot; j < RD; j++)
          out[o + j] = x[o + j];
      }
}

static void test_rope(struct gv_backend *be, uint64_t *seed, int64_t rot)
{
  enum { N = B * T * RH * RD };
  struct refop op = {1, {N}, N, ref_rope, &rot};
  float *x = fnew(N), *y = fnew(N), *r = fnew(N), *dx = fnew(N);
  oc_fill(x, NULL, N, seed, -1, 1);
  oc_fill(r, NULL, N, seed, -1, 1);
  double *in[1] = {oc_dup(x, N)}, *rd = oc_dup(r, N);
  struct gv_tensor tx = gv_tensor_4d(x, F32, B, T, RH, RD), ty = gv_tensor_4d(y, F32, B, T, RH, RD),
                   tr = gv_tensor_4d(r, F32, B, T, RH, RD), tdx = gv_tensor_4d(dx, F32, B, T, RH, RD);
  int64_t arg = rot == RD ? 0 : rot; /* 0: the whole head */
  gv_rope_fwd(be, &ty, &tx, 10000.0f, arg, 2);
  oc_check_fwd(rot == RD ? "rope y" : "rope y (partial)", &op, in, y, FA, FR);
  gv_rope_bwd(be, &tdx, &tr, 10000.0f, arg, 2, 0);
  oc_check_grad(rot == RD ? "rope dx" : "rope dx (partial)", &op, in, rd, 0, dx, BA, BR_);
  gv_rope_bwd(be, &tdx, &tr, 10000.0f, arg, 2, GV_ACC_DX);
  oc_check_grad_times("rope dx accumulated x2", &op, in, rd, 0, dx, 2, BA, BR_);
  gv_rope_fwd(be, &tx, &tx, 10000.0f, arg, 2);       /* in place gives the same */
  oc_check_fwd("rope y (in place)", &op, in, x, FA, FR);
  free(in[0]), free(rd), free(x), free(y), free(r), free(dx);
}

/* ---- cross-entropy (one ignored target, scale = 1/valid) ---- */

struct xent_ctx { const int32_t *t; double scale; };

static void ref_xent(const struct refop *op, double *const *in, double *out)
{
  const struct xent_ctx *c = op->ctx;
  double s = 0.0;
  for (int64_t i = 0; i < B * T; i++) {
    const double *l = in[0] + i * V;
    double z = 0.0;
    if (c->t[i] < 0) continue;
    for (int j = 0; j < V; j++) z += exp(l[j]);
    s += log(z) - l[c->t[i]];
  }
  out[0] = s * c->scale;
}

static void test_xent(struct gv_backend *be, uint64_t *seed)
{
  int32_t tg[B * T] = {3, 0, 8, -100, 5, 5, 1, 2, 7, 4};
  struct xent_ctx c = {tg, 1.0 / 9.0};
  struct refop op = {1, {B * T * V}, 1, ref_xent, &c};
  float *l = fnew(B * T * V), *dl = fnew(B * T * V), *lse = fnew(B * T), loss = 0;
  oc_fill(l, NULL, B * T * V, seed, -3, 3);
  l[7] = 40.0f;                                 /* a large logit: lse must not overflow */
  double *in[1] = {oc_dup(l, B * T * V)}, rd = 1.0;
  struct gv_tensor tl = gv_tensor_4d(l, F32, B, T, V, 0), tdl = gv_tensor_4d(dl, F32, B, T, V, 0),
                   ts = gv_tensor_4d(lse, F32, B, T, 0, 0), tloss = gv_tensor_4d(&loss, F32, 1, 0, 0, 0),
                   tt = gv_tensor_4d(tg, GV_DTYPE_I32, B, T, 0, 0);
  gv_xent_fwd(be, &tloss, &ts, &tl, &tt, (float)c.scale);
  oc_check_fwd("xent loss", &op, in, &loss, FA, FR);
  gv_xent_bwd(be, &tdl, &tl, &ts, &tt, (float)c.scale);
  oc_check_grad("xent dlogits", &op, in, &rd, 0, dl, BA, BR_);
  gv_xent_bwd(be, &tl, &tl, &ts, &tt, (float)c.scale);   /* in place over the logits */
  oc_check_grad("xent dlogits (in place)", &op, in, &rd, 0, l, BA, BR_);
  free(in[0]), free(l), free(dl), free(lse);
}

/* ---- dropout, copies, reductions ---- */

static void test_dropout(struct gv_backend *be, uint64_t *seed)
{
  enum { N = 4099 };
  float *x = fnew(N), *y = fnew(N), *y2 = fnew(N), *dx = fnew(N), *ones = fnew(N);
  oc_fill(x, NULL, N, seed, 0.5, 1.5);
  for (int i = 0; i < N; i++) ones[i] = 1.0f;
  struct gv_tensor tx = gv_tensor_4d(x, F32, N, 0, 0, 0), ty = gv_tensor_4d(y, F32, N, 0, 0, 0),
                   tdx = gv_tensor_4d(dx, F32, N, 0, 0, 0), t1 = gv_tensor_4d(ones, F32, N, 0, 0, 0);
  gv_dropout_fwd(be, &ty, &tx, 0.0f, 7, 0);
  CHECK(!memcmp(x, y, sizeof(float) * N));                  /* p = 0 is the identity */
  gv_dropout_fwd(be, &ty, &tx, 0.25f, 7, 13);
  int kept = 0, ok = 1;
  for (int i = 0; i < N; i++) {
    kept += y[i] != 0.0f;
    ok &= y[i] == 0.0f || fabsf(y[i] - x[i] / 0.75f) <= 1e-6f * fabsf(y[i]);
  }
  CHECK(ok);
  CHECK(fabs(kept / (double)N - 0.75) < 0.03);             /* 4 sigma of a binomial(4099, .75) */
  gv_dropout_bwd(be, &tdx, &t1, 0.25f, 7, 13, 0);           /* same mask regenerated */
  ok = 1;
  for (int i = 0; i < N; i++) ok &= (dx[i] != 0.0f) == (y[i] != 0.0f);
  CHECK(ok);
  /* shardable: two halves with offsets 13 and 13 + 2000 reproduce the whole */
  struct gv_tensor xa = gv_tensor_view(&tx, 0, 2000), xb = gv_tensor_view(&tx, 2000, N - 2000);
  struct gv_tensor ya = gv_tensor_4d(y2, F32, 2000, 0, 0, 0), yb = gv_tensor_4d(y2 + 2000, F32, N - 2000, 0, 0, 0);
  gv_dropout_fwd(be, &ya, &xa, 0.25f, 7, 13);
  gv_dropout_fwd(be, &yb, &xb, 0.25f, 7, 13 + 2000);
  CHECK(!memcmp(y, y2, sizeof(float) * N));
  gv_dropout_fwd(be, &ya, &xa, 0.25f, 8, 13);               /* another seed, another mask */
  CHECK(memcmp(y, y2, sizeof(float) * 2000) != 0);
  free(x), free(y), free(y2), free(dx), free(ones);
}

static void test_copy_reduce(struct gv_backend *be)
{
  float f[5] = {1.0f, -2.5f, 3.14159265f, 1e-3f, 65504.0f}, back[5], sq = 0;
  uint16_t h[5];
  struct gv_tensor tf = gv_tensor_4d(f, F32, 5, 0, 0, 0), th = gv_tensor_4d(h, GV_DTYPE_BF16, 5, 0, 0, 0),
                   tb = gv_tensor_4d(back, F32, 5, 0, 0, 0);
  gv_copy(be, &th, &tf);
  gv_copy(be, &tb, &th);
  CHECK_EQ_INT(0x3f80, h[0]);
  CHECK_EQ_INT(0x4049, h[2]);                               /* pi rounds to 3.140625 */
  for (int i = 0; i < 5; i++) CHECK_CLOSE(f[i], back[i], 0, 1.0 / 256);  /* 8-bit mantissa */
  for (int i = 0; i < 5; i++) sq += f[i] * f[i];
  CHECK_CLOSE(sq, gv_sumsq(be, &tf), 0, 1e-6);
  gv_scale(be, &tb, 2.0f);
  gv_axpy(be, &tb, -1.0f, &tb);
  gv_fill(be, &tf, 0.5f);
  CHECK(back[1] == 0.0f && f[4] == 0.5f);
}

/* cpu_expf within 3e-7 relative (2 ulp) of exp over the unclamped range; cpu_tanhf within
 * 2e-7 absolute (it computes 1 - 2/(e^2x + 1), so near 0 its error is absolute). */
static void test_fast_math(void)
{
  double worst_e = 0.0, worst_t = 0.0;
  for (double x = -87.0; x <= 88.0; x += 0.001) {
    double e = fabs(cpu_expf((float)x) / exp((float)x) - 1.0);
    worst_e = e > worst_e ? e : worst_e;
  }
  for (double x = -12.0; x <= 12.0; x += 0.0003) {
    double t = fabs(cpu_tanhf((float)x) - tanh((float)x));
    worst_t = t > worst_t ? t : worst_t;
  }
  CHECK(worst_e <= 3e-7);
  CHECK(worst_t <= 2e-7);
  CHECK(cpu_expf(-INFINITY) < 1e-37f && cpu_tanhf(100.0f) == 1.0f && cpu_tanhf(-100.0f) == -1.0f);
}

int main(void)
{
  struct gv_backend be;
  uint64_t seed = 42;
  oc_backend(&be, 16);
  test_linear(&be, &seed);
  test_embedding(&be, &seed);
  test_norm(&be, &seed, 0);
  test_norm(&be, &seed, 1);
  test_ew(&be, &seed, EW_GELU_TANH, "gelu(tanh)");
  test_ew(&be, &seed, EW_GELU_ERF, "gelu(erf)");
  test_ew(&be, &seed, EW_SILU, "silu");
  test_ew(&be, &seed, EW_RELU, "relu");
  test_ew(&be, &seed, EW_AFFINE, "affine");
  test_ew(&be, &seed, EW_SWIGLU, "swiglu");
  test_swiglu_parts(&be, &seed);
  test_ew(&be, &seed, EW_MUL, "mul");
  test_ew(&be, &seed, EW_ADD, "add");
  test_softmax(&be, &seed);
  test_cols(&be, &seed);
  test_rope(&be, &seed, RD);
  test_rope(&be, &seed, 4);
  test_xent(&be, &seed);
  test_dropout(&be, &seed);
  test_copy_reduce(&be);
  test_fast_math();
  oc_backend_free(&be);
  CHECK_EQ_INT(0, be.allocated_bytes);
  return tu_report("test_cpu_ops");
}
