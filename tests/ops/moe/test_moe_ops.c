/* test_moe_ops.c - the mixture-of-experts ops of the CPU backend (f32, and bf16 through its
 * emulation) against PyTorch (tests/reference/gen_moe_fixtures.py: torch.topk, gather, a
 * stable sort by expert, one matmul per expert, Mixtral's load-balancing loss; autograd in
 * float64): top-k ids exactly, values and gradients within 1e-5 + 1e-4 |ref| (f32) or
 * 2e-2 + 2e-1 |ref| (bf16: the routed layout and the grouped GEMM); the accumulate flags add.
 *   test_moe_ops FIXTURE_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt.h"
#include "reference/fixture.h"

#define F32 GV_DTYPE_F32
#define I32 GV_DTYPE_I32
static int fails;
static struct ref_fixture fx;
static int64_t M, C, E, K, N;

static const float *rec(const char *name, int64_t n)
{
  const float *p = ref_fixture_f32(&fx, name, (size_t)n);
  if (!p) exit(1);
  return p;
}

static float *dup(const float *p, int64_t n)
{
  float *q = malloc(sizeof(float) * (size_t)n);
  memcpy(q, p, sizeof(float) * (size_t)n);
  return q;
}

static void close_to(const char *what, const float *got, const float *ref, int64_t n, double mult, double tol)
{
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs(got[i] - mult * ref[i]) - tol * (1.0 + fabs(mult * ref[i]) * 10.0);
    if (e > worst) worst = e;
    if (e > 0 && worst == e && fails < 40)
      fprintf(stderr, "FAIL %s[%lld]: %g, PyTorch %g\n", what, (long long)i, got[i], mult * ref[i]);
  }
  if (worst > 0) fails++;
  else printf("ok   %s\n", what);
}

static struct gv_tensor t2(void *p, enum gv_dtype dt, int64_t a, int64_t b) { return gv_tensor_4d(p, dt, a, b, 0, 0); }

/* Every op once (acc: its accumulate flags, the gradients already holding one copy). */
static void run_all(struct gv_backend *be, int acc, double tol)
{
  int32_t *idx = malloc(sizeof(int32_t) * (size_t)(M * K));
  const int32_t *ridx = ref_fixture_i32(&fx, "topk_idx", (size_t)(M * K));
  struct gv_tensor ti = t2(idx, I32, M, K), tl = t2((void *)rec("logits", M * E), F32, M, E);
  gv_topk(be, &ti, &tl);
  int same = ridx && !memcmp(idx, ridx, sizeof(int32_t) * (size_t)(M * K));
  printf("%s topk ids\n", same ? "ok  " : "FAIL");
  fails += !same;
  double m = acc ? 2.0 : 1.0;
  int fl = acc ? GV_ACC_DX | GV_ACC_DW : 0;

  float *v = malloc(sizeof(float) * (size_t)(M * K));
  struct gv_tensor tv = t2(v, F32, M, K);
  gv_take_fwd(be, &tv, &tl, &ti);
  close_to("take y (top-k values)", v, rec("topk_val", M * K), M * K, 1.0, tol);
  float *dl = acc ? dup(rec("take_dx", M * E), M * E) : calloc((size_t)(M * E), sizeof(float));
  struct gv_tensor tdl = t2(dl, F32, M, E), tdv = t2((void *)rec("take_dy", M * K), F32, M, K);
  gv_take_bwd(be, &tdl, &tdv, &ti, fl);
  close_to("take dx", dl, rec("take_dx", M * E), M * E, m, tol);

  float *xp = malloc(sizeof(float) * (size_t)(M * K * C));
  struct gv_tensor tx = t2((void *)rec("x", M * C), F32, M, C), txp = t2(xp, F32, M * K, C);
  gv_moe_permute_fwd(be, &txp, &tx, &ti, E);
  close_to("permute xp", xp, rec("xp", M * K * C), M * K * C, 1.0, tol);
  float *dx = acc ? dup(rec("permute_dx", M * C), M * C) : calloc((size_t)(M * C), sizeof(float));
  struct gv_tensor tdx = t2(dx, F32, M, C), tdxp = t2((void *)rec("dxp", M * K * C), F32, M * K, C);
  gv_moe_permute_bwd(be, &tdx, &tdxp, &ti, E, fl);
  close_to("permute dx", dx, rec("permute_dx", M * C), M * C, m, tol);

  float *y = malloc(sizeof(float) * (size_t)(M * K * N));
  struct gv_tensor tw = gv_tensor_4d((void *)rec("w", E * N * C), F32, E, N, C, 0), ty = t2(y, F32, M * K, N);
  gv_moe_grouped_fwd(be, &ty, &txp, &tw, &ti);
  close_to("grouped y", y, rec("grouped_y", M * K * N), M * K * N, 1.0, tol);
  float *gdx = acc ? dup(rec("grouped_dx", M * K * C), M * K * C) : calloc((size_t)(M * K * C), sizeof(float));
  float *gdw = acc ? dup(rec("grouped_dw", E * N * C), E * N * C) : malloc(sizeof(float) * (size_t)(E * N * C));
  if (!acc) /* garbage where no token went: the kernel must write zeros there */
    for (int64_t i = 0; i < E * N * C; i++) gdw[i] = 7.0f;
  struct gv_tensor tgdx = t2(gdx, F32, M * K, C), tgdw = gv_tensor_4d(gdw, F32, E, N, C, 0),
                   tgdy = t2((void *)rec("grouped_dy", M * K * N), F32, M * K, N);
  gv_moe_grouped_bwd(be, &tgdx, &tgdw, &tgdy, &txp, &tw, &ti, fl);
  close_to("grouped dx", gdx, rec("grouped_dx", M * K * C), M * K * C, m, tol);
  close_to("grouped dw (the last expert: no tokens)", gdw, rec("grouped_dw", E * N * C), E * N * C, m, tol);

  float *u = malloc(sizeof(float) * (size_t)(M * C));
  struct gv_tensor typ = t2((void *)rec("yp", M * K * C), F32, M * K, C), tg = t2((void *)rec("gates", M * K), F32, M, K),
                   tu = t2(u, F32, M, C);
  gv_moe_unpermute_fwd(be, &tu, &typ, &tg, &ti, E);
  close_to("unpermute y", u, rec("unpermute_y", M * C), M * C, 1.0, tol);
  float *dyp = acc ? dup(rec("unpermute_dyp", M * K * C), M * K * C) : calloc((size_t)(M * K * C), sizeof(float));
  float *dg = acc ? dup(rec("unpermute_dgates", M * K), M * K) : calloc((size_t)(M * K), sizeof(float));
  struct gv_tensor tdyp = t2(dyp, F32, M * K, C), tdg = t2(dg, F32, M, K),
                   tud = t2((void *)rec("unpermute_dy", M * C), F32, M, C);
  gv_moe_unpermute_bwd(be, &tdyp, &tdg, &tud, &typ, &tg, &ti, E, fl);
  close_to("unpermute dyp", dyp, rec("unpermute_dyp", M * K * C), M * K * C, m, tol);
  close_to("unpermute dgates", dg, rec("unpermute_dgates", M * K), M * K, m, tol);

  const double *scale = ref_fixture_f64(&fx, "aux_scale", 1), *aux = ref_fixture_f64(&fx, "aux_loss", 1);
  float loss = 0, want = aux ? (float)aux[0] : 0;
  struct gv_tensor tlo = gv_tensor_4d(&loss, F32, 1, 0, 0, 0), tp = t2((void *)rec("probs", M * E), F32, M, E);
  gv_moe_aux_fwd(be, &tlo, &tp, &ti, scale ? (float)scale[0] : 0);
  close_to("aux loss (Mixtral's load_balancing_loss_func)", &loss, &want, 1, 1.0, tol);
  float *dp = acc ? dup(rec("aux_dprobs", M * E), M * E) : calloc((size_t)(M * E), sizeof(float));
  struct gv_tensor tdp = t2(dp, F32, M, E);
  gv_moe_aux_bwd(be, &tdp, &ti, scale ? (float)scale[0] : 0, fl);
  close_to("aux dprobs", dp, rec("aux_dprobs", M * E), M * E, m, tol);
  free(idx), free(v), free(dl), free(xp), free(dx), free(y), free(gdx), free(gdw), free(u), free(dyp), free(dg), free(dp);
}

/* The routed layout and the grouped GEMM in bf16 (the emulation: widen, f32 kernel, round once). */
static void run_bf16(struct gv_backend *be)
{
  int64_t nx = M * C, nxp = M * K * C, nw = E * N * C, ny = M * K * N;
  uint16_t *x = malloc(2 * (size_t)nx), *xp = malloc(2 * (size_t)nxp), *w = malloc(2 * (size_t)nw), *y = malloc(2 * (size_t)ny);
  float *f = malloc(sizeof(float) * (size_t)ny);
  const float *rx = rec("x", nx), *rw = rec("w", nw);
  for (int64_t i = 0; i < nx; i++) x[i] = gv_bf16_from_float(rx[i]);
  for (int64_t i = 0; i < nw; i++) w[i] = gv_bf16_from_float(rw[i]);
  const int32_t *idx = ref_fixture_i32(&fx, "topk_idx", (size_t)(M * K));
  struct gv_tensor ti = t2((void *)idx, I32, M, K), tx = t2(x, GV_DTYPE_BF16, M, C), txp = t2(xp, GV_DTYPE_BF16, M * K, C),
                   tw = gv_tensor_4d(w, GV_DTYPE_BF16, E, N, C, 0), ty = t2(y, GV_DTYPE_BF16, M * K, N);
  gv_moe_permute_fwd(be, &txp, &tx, &ti, E);
  gv_moe_grouped_fwd(be, &ty, &txp, &tw, &ti);
  for (int64_t i = 0; i < ny; i++) f[i] = gv_bf16_to_float(y[i]);
  close_to("bf16 permute + grouped y", f, rec("grouped_y", ny), ny, 1.0, 2e-2);
  free(x), free(xp), free(w), free(y), free(f);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: test_moe_ops FIXTURE_DIR\n");
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/moe_ops.bin", argv[1]);
  if (ref_fixture_load(&fx, path)) return 1;
  M = fx.V, C = fx.C, E = fx.L, K = fx.H, N = fx.KV;
  struct gv_backend be;
  gv_backend_init(&be, "cpu", 0);
  run_all(&be, 0, 1e-5);
  run_all(&be, 1, 1e-5);
  run_bf16(&be);
  gv_backend_free(&be);
  ref_fixture_free(&fx);
  printf("%s\n", fails ? "FAILED" : "all moe ops match PyTorch");
  return fails != 0;
}
