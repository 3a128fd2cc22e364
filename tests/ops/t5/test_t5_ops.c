/* test_t5_ops.c - T5's primitives on the CPU backend against PyTorch's (the fixture of
 * tests/reference/gen_t5_ops.py): unscaled attention (scale 1) with an additive (T,S,H)
 * position bias, non-causal and causal, its forward and its gradients dq, dk, dv and dbias
 * (the scores' gradient summed over the batch, added into dbias); the same on one head of
 * the bias (h0 = 1: a tp rank's slice of a replicated bias); Hugging
 * Face's relative position buckets, bidirectional and causal; and an encoder-decoder's
 * attention: TQ queries over SX != TQ keys with a key padding mask (keys whose id is the pad
 * id hidden), with and without the bias.
 * Usage: test_t5_ops FIXTURE */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/opcheck.h"
#include "program/tensorfile.h"

static struct gv_tf fx;

static const float *rec(const char *name, size_t n)
{
  const struct gv_tf_record *r = gv_tf_find(&fx, name);
  if (!r || r->numel != n) {
    fprintf(stderr, "fixture: record '%s' missing or not of %zu elements\n", name, n);
    exit(1);
  }
  return r->data;
}

static void check(const char *what, const float *got, const float *want, int64_t n, double atol, double rtol)
{
  double *w = malloc((size_t)n * sizeof *w);
  for (int64_t i = 0; i < n; i++) w[i] = want[i];
  oc_check(what, got, w, n, atol, rtol);
  free(w);
}

/* heads [h0, h0 + Hc) of x [R, H, D] into y [R, Hc, D] */
static void heads(float *y, const float *x, int64_t R, int64_t H, int64_t D, int64_t h0, int64_t Hc)
{
  for (int64_t r = 0; r < R; r++)
    memcpy(y + r * Hc * D, x + (r * H + h0) * D, sizeof(float) * (size_t)(Hc * D));
}

/* Attention on heads [h0, h0 + Hc) of the fixture's q, k, v, with the whole bias (head h0 + h
 * for head h of the call), against the reference's slice. */
static void run(struct gv_backend *be, int causal, int64_t h0, int64_t Hc, const char *name)
{
  const int32_t *h = fx.header;
  int64_t B = h[3], T = h[4], S = h[5], H = h[6], D = h[7], nq = B * T * Hc * D, nk = B * S * Hc * D, nb = T * S * H;
  const char *sfx = causal ? "_causal" : "";
  char key[64], what[96];
  float *q = malloc(sizeof(float) * (size_t)nq), *k = malloc(sizeof(float) * (size_t)nk),
        *v = malloc(sizeof(float) * (size_t)nk), *dout = malloc(sizeof(float) * (size_t)nq),
        *o = malloc(sizeof(float) * (size_t)nq), *lse = malloc(sizeof(float) * (size_t)(B * Hc * T)),
        *dq = malloc(sizeof(float) * (size_t)nq), *dk = malloc(sizeof(float) * (size_t)nk),
        *dv = malloc(sizeof(float) * (size_t)nk), *dbias = calloc((size_t)nb, sizeof(float)),
        *want = malloc(sizeof(float) * (size_t)(nq > nk ? nq : nk));
  heads(q, rec("q", (size_t)(B * T * H * D)), B * T, H, D, h0, Hc);
  heads(k, rec("k", (size_t)(B * S * H * D)), B * S, H, D, h0, Hc);
  heads(v, rec("v", (size_t)(B * S * H * D)), B * S, H, D, h0, Hc);
  heads(dout, rec("dout", (size_t)(B * T * H * D)), B * T, H, D, h0, Hc);
  float *bias = (float *)rec("bias", (size_t)nb);
  struct gv_tensor tq = gv_tensor_4d(q, GV_DTYPE_F32, B, T, Hc, D), tk = gv_tensor_4d(k, GV_DTYPE_F32, B, S, Hc, D),
                   tv = gv_tensor_4d(v, GV_DTYPE_F32, B, S, Hc, D), to = gv_tensor_4d(o, GV_DTYPE_F32, B, T, Hc, D),
                   tl = gv_tensor_4d(lse, GV_DTYPE_F32, B, Hc, T, 0), tdo = gv_tensor_4d(dout, GV_DTYPE_F32, B, T, Hc, D),
                   tdq = gv_tensor_4d(dq, GV_DTYPE_F32, B, T, Hc, D), tdk = gv_tensor_4d(dk, GV_DTYPE_F32, B, S, Hc, D),
                   tdv = gv_tensor_4d(dv, GV_DTYPE_F32, B, S, Hc, D), tb = gv_tensor_4d(bias, GV_DTYPE_F32, T, S, H, 0),
                   tdb = gv_tensor_4d(dbias, GV_DTYPE_F32, T, S, H, 0);
  struct gv_attn_opts x = {.scale = 1.0f, .bias = &tb, .dbias = &tdb, .h0 = h0};
  gv_attention_opts_fwd(be, &to, &tl, &tq, &tk, &tv, causal, &x);
  snprintf(key, sizeof key, "o%s", sfx);
  heads(want, rec(key, (size_t)(B * T * H * D)), B * T, H, D, h0, Hc);
  snprintf(what, sizeof what, "%s o", name);
  check(what, o, want, nq, 2e-5, 1e-4);
  gv_attention_opts_bwd(be, &tdq, &tdk, &tdv, &tdo, &tq, &tk, &tv, &to, &tl, causal, 0, &x);
  const char *gn[3] = {"dq", "dk", "dv"};
  float *got[3] = {dq, dk, dv};
  for (int i = 0; i < 3; i++) {
    int64_t rows = i ? B * S : B * T;
    snprintf(key, sizeof key, "%s%s", gn[i], sfx);
    heads(want, rec(key, (size_t)(rows * H * D)), rows, H, D, h0, Hc);
    snprintf(what, sizeof what, "%s %s", name, gn[i]);
    check(what, got[i], want, rows * Hc * D, 1e-4, 1e-3);
  }
  snprintf(key, sizeof key, "dbias%s", sfx); /* the call's heads only; the others stay 0 */
  const float *db = rec(key, (size_t)nb);
  int64_t bad = 0;
  for (int64_t e = 0; e < nb; e++) {
    int64_t hh = e % H;
    float w = hh >= h0 && hh < h0 + Hc ? db[e] : 0.0f;
    bad += !(fabsf(dbias[e] - w) <= 1e-4f + 1e-3f * fabsf(w));
  }
  snprintf(what, sizeof what, "%s dbias", name);
  tu_checks++;
  if (bad) {
    tu_failures++;
    fprintf(stderr, "%s: %lld of %lld elements differ from PyTorch\n", what, (long long)bad, (long long)nb);
  }
  free(q), free(k), free(v), free(dout), free(o), free(lse), free(dq), free(dk), free(dv), free(dbias), free(want);
}

/* TQ queries over SX keys with the bias, the padding keys (id 0) of xids masked; then every
 * key of sample 0 padded. */
static void cross(struct gv_backend *be)
{
  const int32_t *h = fx.header;
  int64_t B = h[3], H = h[6], D = h[7], TQ = h[10], SX = h[11], nq = B * TQ * H * D, nk = B * SX * H * D;
  float *o = malloc(sizeof(float) * (size_t)nq), *lse = malloc(sizeof(float) * (size_t)(B * H * TQ)),
        *dq = malloc(sizeof(float) * (size_t)nq), *dk = malloc(sizeof(float) * (size_t)nk),
        *dv = malloc(sizeof(float) * (size_t)nk), *dbias = calloc((size_t)(TQ * SX * H), sizeof(float));
  struct gv_tensor tq = gv_tensor_4d((float *)rec("xq", (size_t)nq), GV_DTYPE_F32, B, TQ, H, D),
                   tk = gv_tensor_4d((float *)rec("xk", (size_t)nk), GV_DTYPE_F32, B, SX, H, D),
                   tv = gv_tensor_4d((float *)rec("xv", (size_t)nk), GV_DTYPE_F32, B, SX, H, D),
                   tdo = gv_tensor_4d((float *)rec("xdout", (size_t)nq), GV_DTYPE_F32, B, TQ, H, D),
                   tb = gv_tensor_4d((float *)rec("xbias", (size_t)(TQ * SX * H)), GV_DTYPE_F32, TQ, SX, H, 0),
                   tids = gv_tensor_4d((float *)rec("xids", (size_t)(B * SX)), GV_DTYPE_I32, B, SX, 0, 0),
                   to = gv_tensor_4d(o, GV_DTYPE_F32, B, TQ, H, D), tl = gv_tensor_4d(lse, GV_DTYPE_F32, B, H, TQ, 0),
                   tdq = gv_tensor_4d(dq, GV_DTYPE_F32, B, TQ, H, D), tdk = gv_tensor_4d(dk, GV_DTYPE_F32, B, SX, H, D),
                   tdv = gv_tensor_4d(dv, GV_DTYPE_F32, B, SX, H, D),
                   tdb = gv_tensor_4d(dbias, GV_DTYPE_F32, TQ, SX, H, 0);
  struct gv_attn_opts x = {.scale = 1.0f, .bias = &tb, .dbias = &tdb, .key_ids = &tids, .pad_id = 0};
  gv_attention_opts_fwd(be, &to, &tl, &tq, &tk, &tv, 0, &x);
  check("cross, key padding: o", o, rec("xo", (size_t)nq), nq, 2e-5, 1e-4);
  gv_attention_opts_bwd(be, &tdq, &tdk, &tdv, &tdo, &tq, &tk, &tv, &to, &tl, 0, 0, &x);
  check("cross, key padding: dq", dq, rec("xdq", (size_t)nq), nq, 1e-4, 1e-3);
  check("cross, key padding: dk", dk, rec("xdk", (size_t)nk), nk, 1e-4, 1e-3);
  check("cross, key padding: dv", dv, rec("xdv", (size_t)nk), nk, 1e-4, 1e-3);
  check("cross, key padding: dbias", dbias, rec("xdbias", (size_t)(TQ * SX * H)), TQ * SX * H, 1e-4, 1e-3);
  /* every key of sample 0 padded: its rows give 0 and no gradient, sample 1 is unchanged */
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)(B * SX));
  memcpy(ids, rec("xids", (size_t)(B * SX)), sizeof(int32_t) * (size_t)(B * SX));
  memset(ids, 0, sizeof(int32_t) * (size_t)SX);
  tids.data = ids;
  gv_attention_opts_fwd(be, &to, &tl, &tq, &tk, &tv, 0, &x);
  gv_attention_opts_bwd(be, &tdq, &tdk, &tdv, &tdo, &tq, &tk, &tv, &to, &tl, 0, 0, &x);
  int64_t bad = 0, half = nq / B, halfk = nk / B;
  for (int64_t e = 0; e < half; e++) bad += o[e] != 0.0f || dq[e] != 0.0f;
  for (int64_t e = 0; e < halfk; e++) bad += dk[e] != 0.0f || dv[e] != 0.0f;
  tu_checks++;
  if (bad) {
    tu_failures++;
    fprintf(stderr, "cross, every key padded: %lld outputs or gradients are not 0\n", (long long)bad);
  }
  check("cross, every key of sample 0 padded: sample 1's o", o + half, rec("xo", (size_t)nq) + half, half, 2e-5, 1e-4);
  free(ids), free(o), free(lse), free(dq), free(dk), free(dv), free(dbias);
}

static void buckets(void)
{
  const int32_t *h = fx.header;
  int64_t T = h[4], nb = h[8], maxd = h[9];
  for (int bidir = 0; bidir < 2; bidir++) {
    const int32_t *want = (const int32_t *)rec(bidir ? "buckets_bidir" : "buckets_causal", (size_t)(T * T));
    int64_t bad = 0;
    for (int64_t i = 0; i < T; i++)
      for (int64_t j = 0; j < T; j++)
        bad += gv_rel_position_bucket(j - i, nb, maxd, bidir) != want[i * T + j];
    tu_checks++;
    if (bad) {
      tu_failures++;
      fprintf(stderr, "buckets (%s): %lld of %lld differ from Hugging Face's\n", bidir ? "bidirectional" : "causal",
              (long long)bad, (long long)(T * T));
    }
  }
}

int main(int argc, char **argv)
{
  char err[512];
  if (argc < 2 || gv_tf_read(&fx, argv[1], err, sizeof err)) {
    fprintf(stderr, "%s\n", argc < 2 ? "usage: test_t5_ops FIXTURE" : err);
    return 2;
  }
  struct gv_backend be;
  oc_backend(&be, 64);
  run(&be, 0, 0, fx.header[6], "bidirectional, all heads");
  run(&be, 1, 0, fx.header[6], "causal, all heads");
  run(&be, 0, 1, 1, "bidirectional, head 1 of the bias");
  run(&be, 1, 1, 2, "causal, heads 1-2 of the bias");
  buckets();
  cross(&be);
  oc_backend_free(&be);
  gv_tf_free(&fx);
  return tu_report("test_t5_ops");
}
