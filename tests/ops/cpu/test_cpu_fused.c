/* test_cpu_fused.c - the fused entries on the cpu backend equal their parts bit for bit, in
 * f32 and bf16. The residual add + norm (gv_add_layernorm_fwd, gv_add_rmsnorm_fwd) = add_fwd
 * then the norm of the sum, with and without the norm's bias, the output allowed to alias an
 * addend. The linear + GELU (gv_linear_gelu_fwd, gv_linear_dgelu_bwd): forward = linear_fwd
 * into pre, then gelu_fwd (tanh form) of pre; backward = linear_bwd with its input gradient
 * into a buffer, then gelu_bwd of it at pre (overwriting dpre, even when flags ask GV_ACC_DX),
 * dw and db following GV_ACC_DW, with and without bias, with dw/db omitted. The cuda
 * backend's cuBLASLt epilogues are checked against these in tests/ops/cuda_gemm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt.h"
#include "testutil.h"

enum { M = 37, K = 24, N = 40 };

static struct gv_backend be;

/* n random values in [-2, 2) as a tensor of dtype t (bf16: rounded). */
static struct gv_tensor rnd(enum gv_dtype t, int64_t r, int64_t c, uint64_t *s)
{
  int64_t n = r * (c ? c : 1);
  void *p = calloc((size_t)n, gv_dtype_size(t));
  for (int64_t i = 0; i < n; i++) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    float v = (float)((double)(*s >> 11) * 0x1p-53 * 4.0 - 2.0);
    if (t == GV_DTYPE_BF16)
      ((uint16_t *)p)[i] = gv_bf16_from_float(v);
    else
      ((float *)p)[i] = v;
  }
  return gv_tensor_4d(p, t, r, c, 0, 0);
}

static struct gv_tensor twin(const struct gv_tensor *t)
{
  size_t b = gv_tensor_bytes(t);
  void *p = malloc(b);
  memcpy(p, t->data, b);
  struct gv_tensor u = *t;
  u.data = p;
  return u;
}

static int same(const struct gv_tensor *a, const struct gv_tensor *b)
{
  return !memcmp(a->data, b->data, gv_tensor_bytes(a));
}

static void check(enum gv_dtype t, int bias, int flags, int with_dw)
{
  uint64_t s = 11 + (uint64_t)(bias + 2 * flags + 4 * with_dw);
  struct gv_tensor x = rnd(t, M, K, &s), w = rnd(t, N, K, &s), b = rnd(t, N, 0, &s), y = rnd(t, M, N, &s);
  struct gv_tensor pre = rnd(t, M, N, &s), y2 = twin(&y), pre2 = twin(&pre);
  gv_linear_gelu_fwd(&be, &y, &pre, &x, &w, bias ? &b : NULL);
  gv_linear_fwd(&be, &pre2, &x, &w, bias ? &b : NULL);
  gv_gelu_fwd(&be, &y2, &pre2, 1);
  CHECK(same(&y, &y2));
  CHECK(same(&pre, &pre2));
  /* backward of a linear [M, K] -> [M, N] that reads a GELU output, the GELU input pre [M, K] */
  struct gv_tensor dy = rnd(t, M, N, &s), pk = rnd(t, M, K, &s), dpre = rnd(t, M, K, &s), dw = rnd(t, N, K, &s),
                   db = rnd(t, N, 0, &s), dpre2 = twin(&dpre), dw2 = twin(&dw), db2 = twin(&db), mid = rnd(t, M, K, &s);
  gv_linear_dgelu_bwd(&be, &dpre, with_dw ? &dw : NULL, with_dw && bias ? &db : NULL, &dy, &x, &w, &pk, flags);
  gv_linear_bwd(&be, &mid, with_dw ? &dw2 : NULL, with_dw && bias ? &db2 : NULL, &dy, &x, &w, flags & GV_ACC_DW);
  gv_gelu_bwd(&be, &dpre2, &mid, &pk, 1, 0);
  CHECK(same(&dpre, &dpre2));
  CHECK(same(&dw, &dw2));
  CHECK(same(&db, &db2));
  struct gv_tensor *all[] = {&x, &w, &b, &y, &pre, &y2, &pre2, &dy, &pk, &dpre, &dw, &db, &dpre2, &dw2, &db2, &mid};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    free(all[i]->data);
}

static void check_add_norm(enum gv_dtype t, int rms, int bias, int alias)
{
  uint64_t s = 99 + (uint64_t)(rms + 2 * bias + 4 * alias);
  struct gv_tensor a = rnd(t, M, N, &s), b = rnd(t, M, N, &s), w = rnd(t, N, 0, &s), bi = rnd(t, N, 0, &s);
  struct gv_tensor h = rnd(t, M, N, &s), y = rnd(t, M, N, &s), mean = rnd(GV_DTYPE_F32, M, 0, &s),
                   rstd = rnd(GV_DTYPE_F32, M, 0, &s);
  struct gv_tensor a2 = twin(&a), h2 = twin(&h), y2 = twin(&y), mean2 = twin(&mean), rstd2 = twin(&rstd);
  struct gv_tensor *yo = alias ? &a : &y, *yo2 = alias ? &a2 : &y2;  /* y over the first addend */
  if (rms) {
    gv_add_rmsnorm_fwd(&be, &h, yo, &rstd, &a, &b, &w, 1e-5f);
    gv_add_fwd(&be, &h2, &a2, &b);
    gv_rmsnorm_fwd(&be, yo2, &rstd2, &h2, &w, 1e-5f);
  } else {
    gv_add_layernorm_fwd(&be, &h, yo, &mean, &rstd, &a, &b, &w, bias ? &bi : NULL, 1e-5f);
    gv_add_fwd(&be, &h2, &a2, &b);
    gv_layernorm_fwd(&be, yo2, &mean2, &rstd2, &h2, &w, bias ? &bi : NULL, 1e-5f);
  }
  CHECK(same(&h, &h2));
  CHECK(same(yo, yo2));
  CHECK(same(&rstd, &rstd2));
  CHECK(same(&mean, &mean2));
  struct gv_tensor *all[] = {&a, &b, &w, &bi, &h, &y, &mean, &rstd, &a2, &h2, &y2, &mean2, &rstd2};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    free(all[i]->data);
}

int main(void)
{
  gv_backend_init(&be, "cpu", 0);
  for (int d = 0; d < 2; d++)
    for (int k = 0; k < 8; k++)
      check_add_norm(d ? GV_DTYPE_BF16 : GV_DTYPE_F32, k & 1, (k >> 1) & 1, (k >> 2) & 1);
  const enum gv_dtype dts[2] = {GV_DTYPE_F32, GV_DTYPE_BF16};
  for (int d = 0; d < 2; d++)
    for (int bias = 0; bias <= 1; bias++)
      for (int flags = 0; flags <= (GV_ACC_DX | GV_ACC_DW); flags++)
        for (int with_dw = 0; with_dw <= 1; with_dw++)
          check(dts[d], bias, flags, with_dw);
  gv_backend_free(&be);
  return tu_report("ops_cpu_fused");
}
