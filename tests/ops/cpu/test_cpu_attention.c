/* test_cpu_attention.c - attention forward (o and lse) against an fp64 naive softmax
 * reference and its backward (dq, dk, dv) against central finite differences of that
 * reference: causal and bidirectional, MHA and GQA, S == T and S > T (causal offset),
 * sequence lengths that are not a multiple of the kernel's 64-row query tile, and the
 * accumulate flag. Tolerances: forward 2e-5 + 1e-4 |ref| (fp32 dot products of D terms and
 * a softmax over <= 80 keys), backward 2e-4 + 2e-3 |ref| (products of two such sums). */
#include <math.h>
#include <stdlib.h>

#include "opcheck.h"

#define F32 GV_DTYPE_F32

struct attn_ctx { int64_t B, T, S, H, KV, D; int causal; };

static int64_t qi(const struct attn_ctx *c, int64_t b, int64_t t, int64_t h, int64_t d)
{
  return ((b * c->T + t) * c->H + h) * c->D + d;
}
static int64_t ki(const struct attn_ctx *c, int64_t b, int64_t s, int64_t h, int64_t d)
{
  return ((b * c->S + s) * c->KV + h) * c->D + d;
}

/* o = softmax(q k^T / sqrt(D) + mask) v per (b, h); lse_out optional. */
static void ref_attn_lse(const struct attn_ctx *c, double *const *in, double *out, double *lse)
{
  double *sc = malloc((size_t)c->S * sizeof *sc);
  for (int64_t b = 0; b < c->B; b++)
    for (int64_t h = 0; h < c->H; h++) {
      int64_t kh = h / (c->H / c->KV);
      for (int64_t t = 0; t < c->T; t++) {
        int64_t lim = c->causal ? t + c->S - c->T + 1 : c->S;
        double mx = -INFINITY, z = 0.0;
        for (int64_t s = 0; s < lim; s++) {
          double dot = 0.0;
          for (int64_t d = 0; d < c->D; d++) dot += in[0][qi(c, b, t, h, d)] * in[1][ki(c, b, s, kh, d)];
          sc[s] = dot / sqrt((double)c->D);
          mx = fmax(mx, sc[s]);
        }
        for (int64_t s = 0; s < lim; s++) z += exp(sc[s] - mx);
        for (int64_t d = 0; d < c->D; d++) {
          double acc = 0.0;
          for (int64_t s = 0; s < lim; s++) acc += exp(sc[s] - mx) / z * in[2][ki(c, b, s, kh, d)];
          out[qi(c, b, t, h, d)] = acc;
        }
        if (lse) lse[(b * c->H + h) * c->T + t] = mx + log(z);
      }
    }
  free(sc);
}

static void ref_attn(const struct refop *op, double *const *in, double *out)
{
  ref_attn_lse(op->ctx, in, out, NULL);
}

static void run_case(struct gv_backend *be, uint64_t *seed, struct attn_ctx c, const char *name)
{
  int64_t nq = c.B * c.T * c.H * c.D, nk = c.B * c.S * c.KV * c.D, nl = c.B * c.H * c.T;
  struct refop op = {3, {nq, nk, nk}, nq, ref_attn, &c};
  float *q = calloc((size_t)nq, 4), *k = calloc((size_t)nk, 4), *v = calloc((size_t)nk, 4),
        *o = calloc((size_t)nq, 4), *lse = calloc((size_t)nl, 4), *r = calloc((size_t)nq, 4),
        *dq = calloc((size_t)nq, 4), *dk = calloc((size_t)nk, 4), *dv = calloc((size_t)nk, 4);
  char what[96];
  oc_fill(q, NULL, nq, seed, -1.5, 1.5);
  oc_fill(k, NULL, nk, seed, -1.5, 1.5);
  oc_fill(v, NULL, nk, seed, -1, 1);
  oc_fill(r, NULL, nq, seed, -1, 1);
  double *in[3] = {oc_dup(q, nq), oc_dup(k, nk), oc_dup(v, nk)}, *rd = oc_dup(r, nq);
  double *lse_ref = malloc((size_t)nl * sizeof *lse_ref), *o_ref = malloc((size_t)nq * sizeof *o_ref);
  struct gv_tensor tq = gv_tensor_4d(q, F32, c.B, c.T, c.H, c.D), tk = gv_tensor_4d(k, F32, c.B, c.S, c.KV, c.D),
                   tv = gv_tensor_4d(v, F32, c.B, c.S, c.KV, c.D), to = gv_tensor_4d(o, F32, c.B, c.T, c.H, c.D),
                   tl = gv_tensor_4d(lse, F32, c.B, c.H, c.T, 0), tr = gv_tensor_4d(r, F32, c.B, c.T, c.H, c.D),
                   tdq = gv_tensor_4d(dq, F32, c.B, c.T, c.H, c.D), tdk = gv_tensor_4d(dk, F32, c.B, c.S, c.KV, c.D),
                   tdv = gv_tensor_4d(dv, F32, c.B, c.S, c.KV, c.D);
  gv_attention_fwd(be, &to, &tl, &tq, &tk, &tv, c.causal);
  snprintf(what, sizeof what, "%s o", name);
  oc_check_fwd(what, &op, in, o, 2e-5, 1e-4);
  ref_attn_lse(&c, in, o_ref, lse_ref);
  snprintf(what, sizeof what, "%s lse", name);
  oc_check(what, lse, lse_ref, nl, 2e-5, 1e-5);
  gv_attention_bwd(be, &tdq, &tdk, &tdv, &tr, &tq, &tk, &tv, &to, &tl, c.causal, 0);
  const char *gn[3] = {"dq", "dk", "dv"};
  float *gp[3] = {dq, dk, dv};
  for (int i = 0; i < 3; i++) {
    snprintf(what, sizeof what, "%s %s", name, gn[i]);
    oc_check_grad(what, &op, in, rd, i, gp[i], 2e-4, 2e-3);
  }
  /* accumulate: a second backward with GV_ACC_DX doubles every gradient */
  gv_attention_bwd(be, &tdq, &tdk, &tdv, &tr, &tq, &tk, &tv, &to, &tl, c.causal, GV_ACC_DX);
  for (int i = 0; i < 3; i++) {
    double *g = malloc((size_t)op.n[i] * sizeof *g);
    oc_fd_grad(&op, in, rd, i, g);
    for (int64_t j = 0; j < op.n[i]; j++) g[j] *= 2.0;
    snprintf(what, sizeof what, "%s %s accumulated x2", name, gn[i]);
    oc_check(what, gp[i], g, op.n[i], 4e-4, 2e-3);
    free(g);
  }
  for (int i = 0; i < 3; i++) free(in[i]);
  free(rd), free(lse_ref), free(o_ref), free(q), free(k), free(v), free(o), free(lse), free(r),
      free(dq), free(dk), free(dv);
}

int main(void)
{
  struct gv_backend be;
  uint64_t seed = 7;
  oc_backend(&be, 80);
  /*                       B  T   S   H KV D  causal */
  run_case(&be, &seed, (struct attn_ctx){2, 6, 6, 2, 2, 4, 1}, "mha causal");
  run_case(&be, &seed, (struct attn_ctx){2, 6, 6, 2, 2, 4, 0}, "mha bidirectional");
  run_case(&be, &seed, (struct attn_ctx){1, 5, 5, 4, 2, 8, 1}, "gqa causal");
  run_case(&be, &seed, (struct attn_ctx){1, 5, 5, 4, 1, 8, 0}, "mqa bidirectional");
  run_case(&be, &seed, (struct attn_ctx){1, 3, 7, 2, 1, 4, 1}, "gqa causal S>T");
  run_case(&be, &seed, (struct attn_ctx){1, 70, 70, 2, 1, 4, 1}, "gqa causal 2 tiles");
  run_case(&be, &seed, (struct attn_ctx){1, 66, 80, 1, 1, 4, 0}, "bidirectional 2 tiles S>T");
  oc_backend_free(&be);
  return tu_report("test_cpu_attention");
}
