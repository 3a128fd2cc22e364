/* test_cuda_gemm_attn.c - the CUDA backend's linear, attention and cross-entropy against the
 * CPU backend (the reference semantics) on the same random inputs, f32 and bf16: linear with
 * and without bias, backward with NULL outputs and the GV_ACC_DX / GV_ACC_DW flags, x at an
 * odd offset (a row view: the cuBLASLt algorithm must honour the pointer's alignment) and b
 * one element into its buffer (cuBLASLt's bias epilogue refuses a bf16 bias at 2 bytes);
 * attention causal and bidirectional, MHA / GQA / MQA, T != S, head dims 32..128 and tails that are
 * not a multiple of the 64-row tiles, backward with and without GV_ACC_DX, a key padding mask
 * (T != S: an encoder-decoder's cross-attention; a whole key tile padded); cross-entropy
 * with ignored targets, loss, lse and dlogits (also aliasing the logits).
 * bf16 inputs are rounded to bf16 once and the CPU computes in f32 on the same values.
 * The fused linear + GELU entries against the CPU's parts (cuBLASLt GELU epilogues).
 * Pass: |gpu - cpu| <= rtol (|cpu| + max|cpu|) per tensor, rtol 1e-4 for f32 (GEMMs run in
 * true fp32, never TF32) and 2e-2 for bf16 (outputs are stored in bf16).
 * Without a usable GPU it prints "skipping: <why>" and exits 77 (ctest skip). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt.h"
#include "testutil.h"
#include "cuda_testutil.h"


#define F32 GV_DTYPE_F32
#define BF16 GV_DTYPE_BF16
#define I32 GV_DTYPE_I32

static struct gv_backend cpu, gpu;
static uint64_t seed = 12345;

static double uniform(double lo, double hi)
{
  seed = seed * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (double)(seed >> 11) * 0x1p-53;
}

/* One operand on both backends: c is f32 on the CPU, g has dtype dt on the GPU. */
struct buf {
  struct gv_tensor c, g;
  int64_t n;
};

static struct buf mk(enum gv_dtype dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
  struct buf b;
  b.c = gv_tensor_4d(NULL, dt == I32 ? I32 : F32, d0, d1, d2, d3);
  b.n = gv_tensor_numel(&b.c);
  b.c.data = gv_dev_alloc(&cpu, (size_t)b.n * 4);
  b.g = gv_tensor_4d(gv_dev_alloc(&gpu, (size_t)b.n * gv_dtype_size(dt)), dt, d0, d1, d2, d3);
  return b;
}

/* c -> g (bf16 rounding on the way) */
static void upload(struct buf *b)
{
  size_t es = gv_dtype_size(b->g.dtype);
  void *h = malloc((size_t)b->n * es);
  if (b->g.dtype == BF16)
    for (int64_t i = 0; i < b->n; i++) ((uint16_t *)h)[i] = gv_bf16_from_float(((float *)b->c.data)[i]);
  else
    memcpy(h, b->c.data, (size_t)b->n * es);
  gv_dev_memcpy(&gpu, b->g.data, h, (size_t)b->n * es, GV_COPY_H2D);
  free(h);
}

/* Random values in [lo, hi), representable in g's dtype, on both sides. */
static struct buf mk_rand(enum gv_dtype dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3, double lo, double hi)
{
  struct buf b = mk(dt, d0, d1, d2, d3);
  float *c = b.c.data;
  for (int64_t i = 0; i < b.n; i++) {
    c[i] = (float)uniform(lo, hi);
    if (dt == BF16) c[i] = gv_bf16_to_float(gv_bf16_from_float(c[i]));
  }
  upload(&b);
  return b;
}

static float *download(const struct gv_tensor *g)
{
  int64_t n = gv_tensor_numel(g);
  size_t es = gv_dtype_size(g->dtype);
  void *h = malloc((size_t)n * es);
  float *f = malloc((size_t)n * sizeof *f);
  gv_dev_memcpy(&gpu, h, g->data, (size_t)n * es, GV_COPY_D2H);
  for (int64_t i = 0; i < n; i++)
    f[i] = g->dtype == BF16 ? gv_bf16_to_float(((uint16_t *)h)[i]) : ((float *)h)[i];
  free(h);
  return f;
}

static void drop(struct buf *b)
{
  gv_dev_free(&cpu, &b->c.data, (size_t)b->n * 4);
  gv_dev_free(&gpu, &b->g.data, (size_t)b->n * gv_dtype_size(b->g.dtype));
}

static double rtol_of(enum gv_dtype dt) { return dt == BF16 ? 2e-2 : 1e-4; }

/* gpu g vs cpu c: |g - c| <= rtol (|c| + max|c|) */
static void cmp(const char *what, const struct buf *b, double rtol)
{
  const float *c = b->c.data;
  float *g = download(&b->g);
  double mx = 0.0, worst = 0.0;
  int64_t bad = 0, at = 0;
  for (int64_t i = 0; i < b->n; i++) mx = fmax(mx, fabs(c[i]));
  for (int64_t i = 0; i < b->n; i++) {
    double err = fabs((double)g[i] - c[i]), lim = rtol * (fabs(c[i]) + mx);
    if (!(err <= lim)) bad++;
    if (!(err / lim <= worst)) worst = err / lim, at = i;
  }
  tu_checks++;
  if (bad) {
    tu_failures++;
    fprintf(stderr, "FAIL %s: %lld of %lld beyond rtol %g (worst [%lld] gpu %.9g cpu %.9g)\n", what,
            (long long)bad, (long long)b->n, rtol, (long long)at, g[at], c[at]);
  } else {
    printf("  ok %-44s worst %.3f of the tolerance\n", what, worst);
  }
  free(g);
}

/* cmp of output `out` of case `name`. */
static void check(const char *name, const char *out, const struct buf *b, double rtol)
{
  char what[200];
  snprintf(what, sizeof what, "%s %s", name, out);
  cmp(what, b, rtol);
}

/* ---- linear ---- */

/* shift: x is rows [1, M+1) of an (M+1, K) buffer, so its pointer is only K-element aligned,
 * and b is elements [1, N+1) of an (N+1) buffer (below the 16 bytes of the bias epilogue). */
static void linear_case(enum gv_dtype dt, int64_t M, int64_t N, int64_t K, int bias, int flags,
                        int with_dx, int shift)
{
  char name[128];
  snprintf(name, sizeof name, "linear %s M%lld N%lld K%lld%s flags %d%s%s", gv_dtype_name(dt), (long long)M,
           (long long)N, (long long)K, bias ? " bias" : "", flags, with_dx ? "" : " dx=NULL",
           shift ? " x+1row b+1" : "");
  double rt = rtol_of(dt);
  struct buf xs = mk_rand(dt, M + shift, K, 0, 0, -1, 1), x = xs, w = mk_rand(dt, N, K, 0, 0, -1, 1),
             bs = mk_rand(dt, N + shift, 0, 0, 0, -1, 1), b = bs, y = mk_rand(dt, M, N, 0, 0, -1, 1),
             dy = mk_rand(dt, M, N, 0, 0, -1, 1), dx = mk_rand(dt, M, K, 0, 0, -1, 1),
             dw = mk_rand(dt, N, K, 0, 0, -1, 1), db = mk_rand(dt, N, 0, 0, 0, -1, 1);
  x.c = gv_tensor_view(&xs.c, shift, M), x.g = gv_tensor_view(&xs.g, shift, M), x.n = M * K;
  b.c = gv_tensor_view(&bs.c, shift, N), b.g = gv_tensor_view(&bs.g, shift, N), b.n = N;
  gv_linear_fwd(&cpu, &y.c, &x.c, &w.c, bias ? &b.c : NULL);
  gv_linear_fwd(&gpu, &y.g, &x.g, &w.g, bias ? &b.g : NULL);
  check(name, "y", &y, rt);
  gv_linear_bwd(&cpu, with_dx ? &dx.c : NULL, &dw.c, bias ? &db.c : NULL, &dy.c, &x.c, &w.c, flags);
  gv_linear_bwd(&gpu, with_dx ? &dx.g : NULL, &dw.g, bias ? &db.g : NULL, &dy.g, &x.g, &w.g, flags);
  check(name, "dx", &dx, rt);        /* NULL dx: both keep the initial values */
  check(name, "dw", &dw, rt);
  check(name, "db", &db, rt);
  drop(&xs), drop(&w), drop(&bs), drop(&y), drop(&dy), drop(&dx), drop(&dw), drop(&db);
}

/* The fused linear + tanh GELU (cuBLASLt GELU_AUX(_BIAS) and DGELU epilogues where they
 * apply, N and K multiples of 8; the parts otherwise) against the CPU's parts. The GELU
 * inside cuBLASLt is its own tanh approximation: same bounds as the other ops. */
static void linear_gelu_case(enum gv_dtype dt, int64_t M, int64_t N, int64_t K, int bias, int flags)
{
  char name[128];
  snprintf(name, sizeof name, "linear+gelu %s M%lld N%lld K%lld%s flags %d", gv_dtype_name(dt), (long long)M,
           (long long)N, (long long)K, bias ? " bias" : "", flags);
  double rt = rtol_of(dt);
  struct buf x = mk_rand(dt, M, K, 0, 0, -1, 1), w = mk_rand(dt, N, K, 0, 0, -1, 1), b = mk_rand(dt, N, 0, 0, 0, -1, 1),
             y = mk(dt, M, N, 0, 0), pre = mk(dt, M, N, 0, 0), dy = mk_rand(dt, M, N, 0, 0, -1, 1),
             pk = mk_rand(dt, M, K, 0, 0, -2, 2), dpre = mk_rand(dt, M, K, 0, 0, -1, 1),
             dw = mk_rand(dt, N, K, 0, 0, -1, 1), db = mk_rand(dt, N, 0, 0, 0, -1, 1);
  gv_linear_gelu_fwd(&cpu, &y.c, &pre.c, &x.c, &w.c, bias ? &b.c : NULL);
  gv_linear_gelu_fwd(&gpu, &y.g, &pre.g, &x.g, &w.g, bias ? &b.g : NULL);
  check(name, "y", &y, rt);
  check(name, "pre", &pre, rt);
  gv_linear_dgelu_bwd(&cpu, &dpre.c, &dw.c, bias ? &db.c : NULL, &dy.c, &x.c, &w.c, &pk.c, flags);
  gv_linear_dgelu_bwd(&gpu, &dpre.g, &dw.g, bias ? &db.g : NULL, &dy.g, &x.g, &w.g, &pk.g, flags);
  check(name, "dpre", &dpre, rt);
  check(name, "dw", &dw, rt);
  check(name, "db", &db, rt);
  drop(&x), drop(&w), drop(&b), drop(&y), drop(&pre), drop(&dy), drop(&pk), drop(&dpre), drop(&dw), drop(&db);
}

/* ---- attention ---- */

struct attn_case {
  int64_t B, T, S, H, KV, D;
  int causal;
  int pad;            /* a key padding mask: key 1 and sample b's last b S / 2 + 3 keys padded */
};

static void attention_case(enum gv_dtype dt, struct attn_case a, int flags)
{
  char name[128];
  snprintf(name, sizeof name, "attn %s B%lld T%lld S%lld H%lld KV%lld D%lld %s flags %d", gv_dtype_name(dt),
           (long long)a.B, (long long)a.T, (long long)a.S, (long long)a.H, (long long)a.KV, (long long)a.D,
           a.causal ? "causal" : "full", flags);
  if (a.pad)
    strncat(name, " key padding", sizeof name - strlen(name) - 1);
  double rt = rtol_of(dt);
  struct buf q = mk_rand(dt, a.B, a.T, a.H, a.D, -2, 2), k = mk_rand(dt, a.B, a.S, a.KV, a.D, -2, 2),
             v = mk_rand(dt, a.B, a.S, a.KV, a.D, -1, 1), o = mk(dt, a.B, a.T, a.H, a.D),
             lse = mk(F32, a.B, a.H, a.T, 0), dout = mk_rand(dt, a.B, a.T, a.H, a.D, -1, 1),
             dq = mk_rand(dt, a.B, a.T, a.H, a.D, -1, 1), dk = mk_rand(dt, a.B, a.S, a.KV, a.D, -1, 1),
             dv = mk_rand(dt, a.B, a.S, a.KV, a.D, -1, 1), ids = mk(I32, a.B, a.S, 0, 0);
  int32_t *id = ids.c.data;
  for (int64_t b = 0; b < a.B; b++)
    for (int64_t j = 0; j < a.S; j++) id[b * a.S + j] = j == 1 || j >= a.S - (b * (a.S / 2) + 3) ? 0 : 5;
  upload(&ids);
  struct gv_attn_opts xc = {.key_ids = a.pad ? &ids.c : NULL}, xg = {.key_ids = a.pad ? &ids.g : NULL};
  gv_attention_opts_fwd(&cpu, &o.c, &lse.c, &q.c, &k.c, &v.c, a.causal, &xc);
  gv_attention_opts_fwd(&gpu, &o.g, &lse.g, &q.g, &k.g, &v.g, a.causal, &xg);
  check(name, "o", &o, rt);
  check(name, "lse", &lse, dt == BF16 ? 1e-3 : 1e-5);
  gv_attention_opts_bwd(&cpu, &dq.c, &dk.c, &dv.c, &dout.c, &q.c, &k.c, &v.c, &o.c, &lse.c, a.causal, flags, &xc);
  gv_attention_opts_bwd(&gpu, &dq.g, &dk.g, &dv.g, &dout.g, &q.g, &k.g, &v.g, &o.g, &lse.g, a.causal, flags, &xg);
  check(name, "dq", &dq, rt);
  check(name, "dk", &dk, rt);
  check(name, "dv", &dv, rt);
  drop(&q), drop(&k), drop(&v), drop(&o), drop(&lse), drop(&dout), drop(&dq), drop(&dk), drop(&dv), drop(&ids);
}

/* ---- cross-entropy ---- */

static void xent_case(enum gv_dtype dt, int64_t M, int64_t V, int alias)
{
  char name[128];
  snprintf(name, sizeof name, "xent %s M%lld V%lld%s", gv_dtype_name(dt), (long long)M, (long long)V,
           alias ? " dlogits=logits" : "");
  double rt = rtol_of(dt);
  float scale = 1.0f / (float)M;
  struct buf logits = mk_rand(dt, M, V, 0, 0, -8, 8), t = mk(I32, M, 0, 0, 0), lse = mk(F32, M, 0, 0, 0),
             loss = mk(F32, 1, 0, 0, 0), dl = mk(dt, M, V, 0, 0);
  int32_t *ids = t.c.data;
  for (int64_t i = 0; i < M; i++) ids[i] = i % 5 == 3 ? -1 : (int32_t)(uniform(0, 1) * (double)V);
  upload(&t);
  gv_xent_fwd(&cpu, &loss.c, &lse.c, &logits.c, &t.c, scale);
  gv_xent_fwd(&gpu, &loss.g, &lse.g, &logits.g, &t.g, scale);
  check(name, "loss", &loss, 1e-5);
  check(name, "lse", &lse, 1e-5);
  struct buf *out = alias ? &logits : &dl;
  gv_xent_bwd(&cpu, &out->c, &logits.c, &lse.c, &t.c, scale);
  gv_xent_bwd(&gpu, &out->g, &logits.g, &lse.g, &t.g, scale);
  check(name, "dlogits", out, rt);
  drop(&logits), drop(&t), drop(&lse), drop(&loss), drop(&dl);
}

/* ---- main ---- */

static void workspace(struct gv_backend *be, int64_t T, int64_t S, int64_t H, int64_t D)
{
  size_t n = gv_backend_workspace_bytes(be, 2, T, S, H, H, D);
  gv_backend_set_workspace(be, gv_dev_alloc(be, n), n);
}

static void workspace_free(struct gv_backend *be)
{
  gv_dev_free(be, &be->workspace, be->workspace_bytes);
  gv_backend_set_workspace(be, NULL, 0);
}

int main(void)
{
  if (tu_cuda_begin(&cpu, &gpu))
    return 77;
  workspace(&cpu, 200, 200, 8, 128);
  workspace(&gpu, 200, 200, 8, 128);   /* covers every case below (B <= 2, H <= 8) */

  const enum gv_dtype dts[2] = {F32, BF16};
  for (int i = 0; i < 2; i++) {
    enum gv_dtype dt = dts[i];
    linear_case(dt, 37, 53, 29, 1, 0, 1, 0);
    linear_case(dt, 37, 53, 29, 1, GV_ACC_DX | GV_ACC_DW, 1, 1);
    linear_case(dt, 128, 96, 64, 0, 0, 0, 0);
    linear_case(dt, 200, 256, 384, 1, GV_ACC_DW, 1, 0);
    linear_case(dt, 64, 128, 72, 1, 0, 1, 1);
    linear_case(dt, 1, 7, 3, 0, GV_ACC_DX, 1, 0);
    linear_gelu_case(dt, 64, 256, 64, 1, 0);          /* the epilogues */
    linear_gelu_case(dt, 200, 128, 96, 0, GV_ACC_DW);
    linear_gelu_case(dt, 37, 53, 29, 1, GV_ACC_DW);   /* N, K not multiples of 8: the parts */

    /*                                    B    T    S  H KV    D causal pad */
    attention_case(dt, (struct attn_case){2,  70,  70, 4, 4,  64, 1, 0}, 0);
    attention_case(dt, (struct attn_case){2,  70,  70, 4, 4,  64, 0, 0}, GV_ACC_DX);
    attention_case(dt, (struct attn_case){1,  50, 130, 4, 2,  32, 1, 0}, 0);
    attention_case(dt, (struct attn_case){2,  65,  33, 6, 2, 128, 0, 0}, 0);
    attention_case(dt, (struct attn_case){1, 129, 129, 2, 1,  80, 1, 0}, GV_ACC_DX);
    attention_case(dt, (struct attn_case){1,   3, 200, 8, 8,  16, 1, 0}, 0);
    attention_case(dt, (struct attn_case){2, 200, 200, 8, 4, 128, 1, 0}, GV_ACC_DX);
    attention_case(dt, (struct attn_case){2,  70, 150, 4, 4,  64, 0, 1}, 0);   /* key padding */
    attention_case(dt, (struct attn_case){2,  33,  90, 4, 2,  32, 0, 1}, GV_ACC_DX);
    attention_case(dt, (struct attn_case){2,  90,  90, 4, 4,  64, 1, 1}, 0);

    xent_case(dt, 37, 1000, 0);
    xent_case(dt, 64, 5003, 1);
    xent_case(dt, 3, 70000, 0);
  }
  workspace_free(&gpu);
  workspace_free(&cpu);
  gv_backend_free(&gpu);
  gv_backend_free(&cpu);
  return tu_report("test_cuda_gemm_attn");
}
