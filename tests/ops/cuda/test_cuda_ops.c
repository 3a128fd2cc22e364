/* test_cuda_ops.c - the CUDA backend's elementwise, norm, rope, embedding and reduction
 * kernels, ViT's patch cut, and the entries of Ulysses and vocabulary parallelism (copy2d, embedding_shard,
 * xent_shard: its three forward stages and backward on one vocabulary block), against the
 * CPU backend (itself checked against fp64 oracles and finite
 * differences in tests/ops/cpu). Every op runs through the checked gv_* entry points on both
 * backends with the same inputs (fixed seed), once in f32 and once in bf16; in bf16 the CPU
 * gets the bf16-rounded inputs in f32, so the only differences left are the CUDA kernel's
 * own rounding. A result passes when |cuda - cpu| <= tol * (1 + |cpu|) element-wise
 * (inputs are O(1), so tol is both the relative and the absolute bound):
 *   f32 1e-5 (different libm and summation order), norm backward 1e-4 (row and column
 *   reductions in another order), bf16 1e-2 (8-bit mantissa of the stored result; 3e-2 for
 *   the embedding backward's bf16 atomics), dropout f32 exact (same Philox mask, same single
 *   multiply), copies exact.
 * Accumulate flags (GV_ACC_DX / GV_ACC_DW) and the NULL-allowed outputs are covered.
 * Exits 77 (ctest: skipped) when no CUDA device can be used. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt.h"
#include "testutil.h"
#include "cuda_testutil.h"


static struct gv_backend cpu, cu;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static const double TOL_F32 = 1e-5, TOL_NORM_BWD = 1e-4, TOL_BF16 = 1e-2;
/* bf16 embedding backward: the CUDA kernel rounds after each of the (up to 5 here) atomic
 * adds into a table element, half a bf16 ulp of a partial sum that may exceed the final
 * sum, where the CPU rounds once. */
static const double TOL_BF16_ATOMIC = 3e-2;

/* ---- tensors on both backends ---- */

/* One tensor twice: h on the CPU backend (f32, or i32 ids), d on the CUDA backend in dtype
 * d.dtype holding the same values. */
struct pair {
  struct gv_tensor h, d;
};

static struct gv_tensor *H(struct pair *p) { return p ? &p->h : NULL; }
static struct gv_tensor *D(struct pair *p) { return p ? &p->d : NULL; }

static double urand(double lo, double hi)
{
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (double)(rng >> 11) * 0x1p-53;
}

static float round_bf16(float v) { return gv_bf16_to_float(gv_bf16_from_float(v)); }

/* Host values -> device (converted to the device dtype). */
static void upload(struct pair *p)
{
  int64_t n = gv_tensor_numel(&p->d);
  size_t bytes = gv_tensor_bytes(&p->d);
  void *tmp = malloc(bytes ? bytes : 1);
  if (p->d.dtype == GV_DTYPE_BF16) {
    for (int64_t i = 0; i < n; i++) ((uint16_t *)tmp)[i] = gv_bf16_from_float(((float *)p->h.data)[i]);
  } else {
    memcpy(tmp, p->h.data, bytes);
  }
  gv_dev_memcpy(&cu, p->d.data, tmp, bytes, GV_COPY_H2D);
  free(tmp);
}

/* Device values as f32 (malloc'd). */
static float *download(const struct pair *p)
{
  int64_t n = gv_tensor_numel(&p->d);
  size_t bytes = gv_tensor_bytes(&p->d);
  float *out = malloc((size_t)(n ? n : 1) * sizeof *out);
  void *tmp = malloc(bytes ? bytes : 1);
  gv_dev_memcpy(&cu, tmp, p->d.data, bytes, GV_COPY_D2H);
  for (int64_t i = 0; i < n; i++)
    out[i] = p->d.dtype == GV_DTYPE_BF16 ? gv_bf16_to_float(((uint16_t *)tmp)[i]) : ((float *)tmp)[i];
  free(tmp);
  return out;
}

/* Shape s (trailing 0s unused), values uniform in [lo, hi), rounded to bf16 when dt is. */
static struct pair mk(enum gv_dtype dt, const int64_t s[4], double lo, double hi)
{
  struct pair p;
  p.h = gv_tensor_4d(NULL, GV_DTYPE_F32, s[0], s[1], s[2], s[3]);
  int64_t n = gv_tensor_numel(&p.h);
  float *h = malloc((size_t)(n ? n : 1) * sizeof *h);
  for (int64_t i = 0; i < n; i++) {
    float v = (float)urand(lo, hi);
    h[i] = dt == GV_DTYPE_BF16 ? round_bf16(v) : v;
  }
  p.h.data = h;
  p.d = gv_tensor_4d(gv_dev_alloc(&cu, (size_t)n * gv_dtype_size(dt)), dt, s[0], s[1], s[2], s[3]);
  upload(&p);
  return p;
}

/* n token ids in [0, V). */
static struct pair mk_ids(int64_t n, int64_t V)
{
  struct pair p;
  int32_t *h = malloc((size_t)n * sizeof *h);
  for (int64_t i = 0; i < n; i++) h[i] = (int32_t)urand(0.0, (double)V);
  p.h = gv_tensor_4d(h, GV_DTYPE_I32, n, 0, 0, 0);
  p.d = gv_tensor_4d(gv_dev_alloc(&cu, (size_t)n * sizeof *h), GV_DTYPE_I32, n, 0, 0, 0);
  gv_dev_memcpy(&cu, p.d.data, h, (size_t)n * sizeof *h, GV_COPY_H2D);
  return p;
}

static void pair_free(struct pair *p)
{
  gv_dev_free(&cu, &p->d.data, gv_tensor_bytes(&p->d));
  free(p->h.data);
  p->h.data = NULL;
}

/* |cuda - cpu| <= tol (1 + |cpu|) everywhere (tol 0: bitwise equal values); prints the first
 * misses. Then the CPU copy takes the CUDA values, so an output that later feeds another op
 * (or accumulates) is the same input on both backends. */
static void cmp(const char *what, enum gv_dtype dt, const struct pair *p, double tol)
{
  int64_t n = gv_tensor_numel(&p->h), bad = 0;
  float *want = p->h.data, *got = download(p);
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - (double)want[i]), lim = tol * (1.0 + fabs((double)want[i]));
    if (lim > 0 && err / lim > worst) worst = err / lim;
    if (!(err <= lim) && bad++ < 3)
      fprintf(stderr, "  %s %s[%lld]: cuda %.9g cpu %.9g\n", what, gv_dtype_name(dt), (long long)i, got[i],
              want[i]);
  }
  tu_checks++;
  if (bad) {
    tu_failures++;
    fprintf(stderr, "FAIL %s (%s): %lld of %lld elements outside tol %g\n", what, gv_dtype_name(dt),
            (long long)bad, (long long)n, tol);
  } else if (getenv("GV_TEST_VERBOSE")) {
    printf("  %-34s %-4s ok (worst err/tol %.3f)\n", what, gv_dtype_name(dt), worst);
  }
  memcpy(p->h.data, got, (size_t)n * sizeof *got);
  free(got);
}

static double tol_of(enum gv_dtype dt, double f32_tol) { return dt == GV_DTYPE_BF16 ? TOL_BF16 : f32_tol; }

/* ---- activations, products, add ---- */

static void test_unary(enum gv_dtype dt)
{
  const int64_t s[4] = {3, 1001, 0, 0};
  double tol = tol_of(dt, TOL_F32);
  struct pair x = mk(dt, s, -4.0, 4.0), y = mk(dt, s, 7.0, 7.0);
  for (int form = 0; form < 2; form++) {
    gv_gelu_fwd(&cpu, H(&y), H(&x), form);
    gv_gelu_fwd(&cu, D(&y), D(&x), form);
    cmp(form ? "gelu_fwd tanh" : "gelu_fwd erf", dt, &y, tol);
  }
  gv_silu_fwd(&cpu, H(&y), H(&x));
  gv_silu_fwd(&cu, D(&y), D(&x));
  cmp("silu_fwd", dt, &y, tol);
  gv_relu_fwd(&cpu, H(&y), H(&x));
  gv_relu_fwd(&cu, D(&y), D(&x));
  cmp("relu_fwd", dt, &y, tol);
  gv_affine(&cpu, H(&y), H(&x), 1.7f, -0.3f, 0);
  gv_affine(&cu, D(&y), D(&x), 1.7f, -0.3f, 0);
  cmp("affine", dt, &y, tol);
  for (int flags = 0; flags <= GV_ACC_DX; flags += GV_ACC_DX) {
    struct pair dy = mk(dt, s, -1.0, 1.0), dx = mk(dt, s, -1.0, 1.0);
    for (int form = 0; form < 2; form++) {
      gv_gelu_bwd(&cpu, H(&dx), H(&dy), H(&x), form, flags);
      gv_gelu_bwd(&cu, D(&dx), D(&dy), D(&x), form, flags);
      cmp(flags ? "gelu_bwd acc" : "gelu_bwd", dt, &dx, tol);
    }
    gv_silu_bwd(&cpu, H(&dx), H(&dy), H(&x), flags);
    gv_silu_bwd(&cu, D(&dx), D(&dy), D(&x), flags);
    cmp(flags ? "silu_bwd acc" : "silu_bwd", dt, &dx, tol);
    gv_relu_bwd(&cpu, H(&dx), H(&dy), H(&x), flags);
    gv_relu_bwd(&cu, D(&dx), D(&dy), D(&x), flags);
    cmp(flags ? "relu_bwd acc" : "relu_bwd", dt, &dx, tol);
    gv_affine(&cpu, H(&dx), H(&dy), -0.6f, 0.0f, flags);
    gv_affine(&cu, D(&dx), D(&dy), -0.6f, 0.0f, flags);
    cmp(flags ? "affine acc" : "affine (backward form)", dt, &dx, tol);
    pair_free(&dy);
    pair_free(&dx);
  }
  pair_free(&x);
  pair_free(&y);
}

/* swiglu and mul: forward, then backward with both gradients and with each one NULL. */
static void test_binary(enum gv_dtype dt)
{
  const int64_t s[4] = {7, 301, 0, 0};
  double tol = tol_of(dt, TOL_F32);
  struct pair a = mk(dt, s, -4.0, 4.0), b = mk(dt, s, -2.0, 2.0), y = mk(dt, s, 7.0, 7.0);
  gv_swiglu_fwd(&cpu, H(&y), H(&a), H(&b));
  gv_swiglu_fwd(&cu, D(&y), D(&a), D(&b));
  cmp("swiglu_fwd", dt, &y, tol);
  gv_mul_fwd(&cpu, H(&y), H(&a), H(&b));
  gv_mul_fwd(&cu, D(&y), D(&a), D(&b));
  cmp("mul_fwd", dt, &y, tol);
  gv_add_fwd(&cpu, H(&y), H(&a), H(&b));
  gv_add_fwd(&cu, D(&y), D(&a), D(&b));
  cmp("add_fwd", dt, &y, tol);
  for (int flags = 0; flags <= GV_ACC_DX; flags += GV_ACC_DX) {
    for (int which = 0; which < 3; which++) {      /* 0: both, 1: first NULL, 2: second NULL */
      struct pair dy = mk(dt, s, -1.0, 1.0), g1 = mk(dt, s, -1.0, 1.0), g2 = mk(dt, s, -1.0, 1.0);
      struct pair *p1 = which == 1 ? NULL : &g1, *p2 = which == 2 ? NULL : &g2;
      char name[64];
      gv_swiglu_bwd(&cpu, H(p1), H(p2), H(&dy), H(&a), H(&b), flags);
      gv_swiglu_bwd(&cu, D(p1), D(p2), D(&dy), D(&a), D(&b), flags);
      snprintf(name, sizeof name, "swiglu_bwd dgate flags %d case %d", flags, which);
      cmp(name, dt, &g1, tol);                     /* a NULL gradient stays untouched */
      snprintf(name, sizeof name, "swiglu_bwd dup flags %d case %d", flags, which);
      cmp(name, dt, &g2, tol);
      gv_mul_bwd(&cpu, H(p1), H(p2), H(&dy), H(&a), H(&b), flags);
      gv_mul_bwd(&cu, D(p1), D(p2), D(&dy), D(&a), D(&b), flags);
      snprintf(name, sizeof name, "mul_bwd da flags %d case %d", flags, which);
      cmp(name, dt, &g1, tol);
      snprintf(name, sizeof name, "mul_bwd db flags %d case %d", flags, which);
      cmp(name, dt, &g2, tol);
      pair_free(&dy);
      pair_free(&g1);
      pair_free(&g2);
    }
  }
  pair_free(&a);
  pair_free(&b);
  pair_free(&y);
}

/* Philox masks must agree bit for bit: an odd offset and length exercise the partial
 * Philox blocks at both ends. */
static void test_dropout(enum gv_dtype dt)
{
  const int64_t s[4] = {1001, 0, 0, 0};
  const uint64_t seed = 0x0123456789abcdefull, offset = 6;
  double exact = dt == GV_DTYPE_BF16 ? TOL_BF16 : 0.0;
  struct pair x = mk(dt, s, 0.5, 1.5), y = mk(dt, s, 7.0, 7.0), dx = mk(dt, s, -1.0, 1.0);
  gv_dropout_fwd(&cpu, H(&y), H(&x), 0.3f, seed, offset);
  gv_dropout_fwd(&cu, D(&y), D(&x), 0.3f, seed, offset);
  int64_t kept = 0, mismatched = 0;
  float *got = download(&y);
  for (int64_t i = 0; i < s[0]; i++) {
    kept += ((float *)y.h.data)[i] != 0.0f;
    mismatched += (got[i] == 0.0f) != (((float *)y.h.data)[i] == 0.0f);
  }
  free(got);
  CHECK_EQ_INT(0, mismatched);                     /* the masks, in either dtype (x != 0) */
  CHECK(kept > 600 && kept < 800);                 /* ~70% kept: the mask is not trivial */
  cmp("dropout_fwd p=0.3", dt, &y, exact);
  gv_dropout_fwd(&cpu, H(&y), H(&x), 0.0f, seed, offset);
  gv_dropout_fwd(&cu, D(&y), D(&x), 0.0f, seed, offset);
  cmp("dropout_fwd p=0 (copy)", dt, &y, exact);
  gv_dropout_bwd(&cpu, H(&dx), H(&x), 0.3f, seed, offset, 0);
  gv_dropout_bwd(&cu, D(&dx), D(&x), 0.3f, seed, offset, 0);
  cmp("dropout_bwd", dt, &dx, exact);
  gv_dropout_bwd(&cpu, H(&dx), H(&x), 0.3f, seed + 1, offset + 3, GV_ACC_DX);
  gv_dropout_bwd(&cu, D(&dx), D(&x), 0.3f, seed + 1, offset + 3, GV_ACC_DX);
  cmp("dropout_bwd acc", dt, &dx, tol_of(dt, TOL_F32));   /* x*inv + dx may be one fma */
  pair_free(&x);
  pair_free(&y);
  pair_free(&dx);
}

/* ---- norms ---- */

/* The residual add fused in front of LayerNorm / RMSNorm: the sum h and the norm's outputs
 * against the CPU's parts. In bf16 the device stores h rounded and normalises that, so the
 * CPU's reference rounds its f32 sum to bf16 values before its norm. */
static void cpu_add_norm(enum gv_dtype dt, int rms, struct pair *h, struct pair *y, struct pair *mean,
                         struct pair *rstd, struct pair *a, struct pair *b, struct pair *w, struct pair *bi)
{
  gv_add_fwd(&cpu, H(h), H(a), H(b));
  float *hv = h->h.data;
  for (int64_t i = 0; dt == GV_DTYPE_BF16 && i < gv_tensor_numel(&h->h); i++)
    hv[i] = gv_bf16_to_float(gv_bf16_from_float(hv[i]));
  if (rms)
    gv_rmsnorm_fwd(&cpu, H(y), H(rstd), H(h), H(w), 1e-5f);
  else
    gv_layernorm_fwd(&cpu, H(y), H(mean), H(rstd), H(h), H(w), H(bi), 1e-5f);
}

static void test_add_norms(enum gv_dtype dt, int64_t M, int64_t C)
{
  const int64_t sx[4] = {M, C, 0, 0}, sc[4] = {C, 0, 0, 0}, sm[4] = {M, 0, 0, 0};
  double tol = tol_of(dt, TOL_F32);
  struct pair a = mk(dt, sx, -1.0, 2.0), b = mk(dt, sx, -1.0, 1.0), h = mk(dt, sx, 7.0, 7.0), y = mk(dt, sx, 7.0, 7.0),
              w = mk(dt, sc, 0.5, 1.5), bi = mk(dt, sc, -0.5, 0.5);
  struct pair mean = mk(GV_DTYPE_F32, sm, 7.0, 7.0), rstd = mk(GV_DTYPE_F32, sm, 7.0, 7.0);
  for (int rms = 0; rms < 2; rms++) {
    cpu_add_norm(dt, rms, &h, &y, &mean, &rstd, &a, &b, &w, &bi);
    if (rms) {
      gv_add_rmsnorm_fwd(&cu, D(&h), D(&y), D(&rstd), D(&a), D(&b), D(&w), 1e-5f);
    } else {
      gv_add_layernorm_fwd(&cu, D(&h), D(&y), D(&mean), D(&rstd), D(&a), D(&b), D(&w), D(&bi), 1e-5f);
      cmp("add_layernorm_fwd mean", dt, &mean, TOL_NORM_BWD);
    }
    cmp(rms ? "add_rmsnorm_fwd h" : "add_layernorm_fwd h", dt, &h, tol);
    cmp(rms ? "add_rmsnorm_fwd y" : "add_layernorm_fwd y", dt, &y, tol);
    cmp(rms ? "add_rmsnorm_fwd rstd" : "add_layernorm_fwd rstd", dt, &rstd, TOL_NORM_BWD);
  }
  pair_free(&a), pair_free(&b), pair_free(&h), pair_free(&y), pair_free(&w), pair_free(&bi);
  pair_free(&mean), pair_free(&rstd);
}

/* LayerNorm (with and without bias) and RMSNorm forward; then the backward on the CPU's
 * saved statistics, every flag combination and every NULL-allowed gradient. */
static void test_norms(enum gv_dtype dt, int64_t M, int64_t C)
{
  const int64_t sx[4] = {M, C, 0, 0}, sc[4] = {C, 0, 0, 0}, sm[4] = {M, 0, 0, 0};
  double tol = tol_of(dt, TOL_F32), tolb = tol_of(dt, TOL_NORM_BWD);
  struct pair x = mk(dt, sx, -1.0, 3.0), y = mk(dt, sx, 7.0, 7.0), w = mk(dt, sc, 0.5, 1.5),
              b = mk(dt, sc, -0.5, 0.5);
  struct pair mean = mk(GV_DTYPE_F32, sm, 7.0, 7.0), rstd = mk(GV_DTYPE_F32, sm, 7.0, 7.0);
  for (int rms = 0; rms < 2; rms++) {
    for (int bias = 0; bias < 2 - rms; bias++) {
      if (rms) {
        gv_rmsnorm_fwd(&cpu, H(&y), H(&rstd), H(&x), H(&w), 1e-5f);
        gv_rmsnorm_fwd(&cu, D(&y), D(&rstd), D(&x), D(&w), 1e-5f);
      } else {
        gv_layernorm_fwd(&cpu, H(&y), H(&mean), H(&rstd), H(&x), H(&w), bias ? H(&b) : NULL, 1e-5f);
        gv_layernorm_fwd(&cu, D(&y), D(&mean), D(&rstd), D(&x), D(&w), bias ? D(&b) : NULL, 1e-5f);
        cmp("layernorm_fwd mean", dt, &mean, TOL_NORM_BWD);
      }
      cmp(rms ? "rmsnorm_fwd y" : bias ? "layernorm_fwd y" : "layernorm_fwd y (no bias)", dt, &y, tol);
      cmp(rms ? "rmsnorm_fwd rstd" : "layernorm_fwd rstd", dt, &rstd, TOL_NORM_BWD);
    }
    upload(&rstd);                                 /* both backwards read the CPU's statistics */
    upload(&mean);
    for (int flags = 0; flags <= (GV_ACC_DX | GV_ACC_DW); flags += GV_ACC_DX | GV_ACC_DW) {
      for (int which = 0; which < 4; which++) {    /* 0: all, 1: no dx, 2: no dw, 3: no db */
        if (rms && which == 3) continue;
        struct pair dy = mk(dt, sx, -1.0, 1.0), dx = mk(dt, sx, -1.0, 1.0), dw = mk(dt, sc, -1.0, 1.0),
                    db = mk(dt, sc, -1.0, 1.0);
        struct pair *pdx = which == 1 ? NULL : &dx, *pdw = which == 2 ? NULL : &dw,
                    *pdb = which == 3 || rms ? NULL : &db;
        char name[80];
        if (rms) {
          gv_rmsnorm_bwd(&cpu, H(pdx), H(pdw), H(&dy), H(&x), H(&w), H(&rstd), flags);
          gv_rmsnorm_bwd(&cu, D(pdx), D(pdw), D(&dy), D(&x), D(&w), D(&rstd), flags);
        } else {
          gv_layernorm_bwd(&cpu, H(pdx), H(pdw), H(pdb), H(&dy), H(&x), H(&w), H(&mean), H(&rstd), flags);
          gv_layernorm_bwd(&cu, D(pdx), D(pdw), D(pdb), D(&dy), D(&x), D(&w), D(&mean), D(&rstd), flags);
        }
        const char *op = rms ? "rmsnorm_bwd" : "layernorm_bwd";
        snprintf(name, sizeof name, "%s dx C=%lld flags %d case %d", op, (long long)C, flags, which);
        cmp(name, dt, &dx, tolb);
        snprintf(name, sizeof name, "%s dw C=%lld flags %d case %d", op, (long long)C, flags, which);
        cmp(name, dt, &dw, tolb);
        snprintf(name, sizeof name, "%s db C=%lld flags %d case %d", op, (long long)C, flags, which);
        cmp(name, dt, &db, tolb);
        pair_free(&dy);
        pair_free(&dx);
        pair_free(&dw);
        pair_free(&db);
      }
    }
  }
  pair_free(&x);
  pair_free(&y);
  pair_free(&w);
  pair_free(&b);
  pair_free(&mean);
  pair_free(&rstd);
}

/* ---- softmax over the last dimension; column copies (slice, concat) ---- */

static void test_softmax(enum gv_dtype dt, int64_t rows, int64_t cols)
{
  const int64_t s[4] = {rows, cols, 0, 0};
  double tol = tol_of(dt, TOL_F32);
  struct pair x = mk(dt, s, -6.0, 6.0), y = mk(dt, s, 7.0, 7.0);
  gv_softmax_fwd(&cpu, H(&y), H(&x));
  gv_softmax_fwd(&cu, D(&y), D(&x));
  cmp("softmax_fwd", dt, &y, tol);
  for (int flags = 0; flags <= GV_ACC_DX; flags += GV_ACC_DX) {
    struct pair dy = mk(dt, s, -1.0, 1.0), dx = mk(dt, s, -1.0, 1.0);
    gv_softmax_bwd(&cpu, H(&dx), H(&dy), H(&y), flags);
    gv_softmax_bwd(&cu, D(&dx), D(&dy), D(&y), flags);
    cmp(flags ? "softmax_bwd acc" : "softmax_bwd", dt, &dx, tol);
    gv_softmax_bwd(&cpu, H(&dy), H(&dy), H(&y), flags);    /* dx aliases dy */
    gv_softmax_bwd(&cu, D(&dy), D(&dy), D(&y), flags);
    cmp("softmax_bwd dx=dy", dt, &dy, tol);
    pair_free(&dy);
    pair_free(&dx);
  }
  gv_softmax_fwd(&cpu, H(&x), H(&x));                      /* in place */
  gv_softmax_fwd(&cu, D(&x), D(&x));
  cmp("softmax_fwd in place", dt, &x, tol);
  pair_free(&x);
  pair_free(&y);
}

/* ViT's patch cut of 3 images [2, 3, 12, 20] into 4 x 4 patches, and back (copies: exact). */
static void test_patchify(enum gv_dtype dt)
{
  const int64_t si[4] = {2, 3, 12, 20}, sr[4] = {2, 15, 48, 0};
  struct pair img = mk(dt, si, -1.0, 1.0), rows = mk(dt, sr, -1.0, 1.0);
  gv_patchify(&cpu, H(&rows), H(&img), 4, 0);
  gv_patchify(&cu, D(&rows), D(&img), 4, 0);
  cmp("patchify", dt, &rows, 0.0);
  gv_patchify(&cpu, H(&rows), H(&img), 4, 1);
  gv_patchify(&cu, D(&rows), D(&img), 4, 1);
  cmp("patchify inverse", dt, &img, 0.0);
  pair_free(&img);
  pair_free(&rows);
}

static void test_copy_cols(enum gv_dtype dt)
{
  const int64_t sd[4] = {37, 61, 0, 0}, ss[4] = {37, 59, 0, 0};
  struct pair dst = mk(dt, sd, -1.0, 1.0), src = mk(dt, ss, -1.0, 1.0);
  for (int flags = 0; flags <= GV_ACC_DX; flags += GV_ACC_DX) {
    gv_copy_cols(&cpu, H(&dst), 7, H(&src), 3, 50, flags);
    gv_copy_cols(&cu, D(&dst), 7, D(&src), 3, 50, flags);
    cmp(flags ? "copy_cols acc" : "copy_cols", dt, &dst, tol_of(dt, TOL_F32));
  }
  pair_free(&dst);
  pair_free(&src);
}

/* ---- rope ---- */

static void test_rope(enum gv_dtype dt)
{
  const int64_t s[4] = {2, 5, 3, 64};
  double tol = tol_of(dt, TOL_F32);
  for (int64_t rot = 0; rot <= 16; rot += 16) { /* the whole head; GPT-NeoX's partial rotary */
    struct pair x = mk(dt, s, -1.0, 1.0), y = mk(dt, s, 7.0, 7.0), dx = mk(dt, s, -1.0, 1.0);
    gv_rope_fwd(&cpu, H(&y), H(&x), 10000.0f, rot, 7);
    gv_rope_fwd(&cu, D(&y), D(&x), 10000.0f, rot, 7);
    cmp(rot ? "rope_fwd partial" : "rope_fwd", dt, &y, tol);
    gv_rope_bwd(&cpu, H(&dx), H(&y), 10000.0f, rot, 7, 0);
    gv_rope_bwd(&cu, D(&dx), D(&y), 10000.0f, rot, 7, 0);
    cmp(rot ? "rope_bwd partial" : "rope_bwd", dt, &dx, tol);
    gv_rope_bwd(&cpu, H(&dx), H(&x), 500000.0f, rot, 1000, GV_ACC_DX);
    gv_rope_bwd(&cu, D(&dx), D(&x), 500000.0f, rot, 1000, GV_ACC_DX);
    cmp(rot ? "rope_bwd partial acc" : "rope_bwd acc", dt, &dx, tol);
    gv_rope_fwd(&cpu, H(&x), H(&x), 10000.0f, rot, 3);      /* in place: y aliases x */
    gv_rope_fwd(&cu, D(&x), D(&x), 10000.0f, rot, 3);
    cmp(rot ? "rope_fwd partial in place" : "rope_fwd in place", dt, &x, tol);
    pair_free(&x);
    pair_free(&y);
    pair_free(&dx);
  }
}

/* ---- embedding ---- */

/* Token ids (repeated ids exercise the backward's scatter-add) and positions. */
static void test_embedding(enum gv_dtype dt)
{
  enum { B = 4, T = 16, C = 72, V = 50, VP = 40, POS = 3 };
  const int64_t sy[4] = {B, T, C, 0}, st[4] = {V, C, 0, 0}, sp[4] = {VP, C, 0, 0};
  double tol = tol_of(dt, TOL_F32);
  struct pair ids = mk_ids(B * T, V), tok = mk(dt, st, -1.0, 1.0), pos = mk(dt, sp, -1.0, 1.0);
  struct pair y = mk(dt, sy, 7.0, 7.0), dy = mk(dt, sy, -1.0, 1.0);
  gv_embedding_fwd(&cpu, H(&y), H(&ids), H(&tok), 0, 0);
  gv_embedding_fwd(&cu, D(&y), D(&ids), D(&tok), 0, 0);
  cmp("embedding_fwd ids", dt, &y, tol);
  gv_embedding_fwd(&cpu, H(&y), NULL, H(&pos), POS, 1);
  gv_embedding_fwd(&cu, D(&y), NULL, D(&pos), POS, 1);
  cmp("embedding_fwd positions acc", dt, &y, tol);
  tol = dt == GV_DTYPE_BF16 ? TOL_BF16_ATOMIC : TOL_F32;
  for (int flags = 0; flags <= GV_ACC_DW; flags += GV_ACC_DW) {
    gv_embedding_bwd(&cpu, H(&tok), H(&dy), H(&ids), 0, flags);
    gv_embedding_bwd(&cu, D(&tok), D(&dy), D(&ids), 0, flags);
    cmp(flags ? "embedding_bwd ids acc" : "embedding_bwd ids", dt, &tok, tol);
    gv_embedding_bwd(&cpu, H(&pos), H(&dy), NULL, POS, flags);
    gv_embedding_bwd(&cu, D(&pos), D(&dy), NULL, POS, flags);
    cmp(flags ? "embedding_bwd positions acc" : "embedding_bwd positions", dt, &pos, tol);
  }
  pair_free(&ids);
  pair_free(&tok);
  pair_free(&pos);
  pair_free(&y);
  pair_free(&dy);
}

/* ---- Ulysses and vocabulary parallelism ---- */

/* copy2d between offset, strided blocks (padding untouched: exact). */
static void test_copy2d(enum gv_dtype dt)
{
  enum { R = 37, W = 19, SLD = 64, DLD = 41, SOFF = 5, DOFF = 3 };
  const int64_t ss[4] = {R, SLD, 0, 0}, sd[4] = {R, DLD, 0, 0};
  struct pair src = mk(dt, ss, -1.0, 1.0), dst = mk(dt, sd, 7.0, 7.0);
  size_t es = gv_dtype_size(dt);
  gv_copy2d(&cpu, (float *)dst.h.data + DOFF, DLD, (const float *)src.h.data + SOFF, SLD, R, W, GV_DTYPE_F32);
  gv_copy2d(&cu, (char *)dst.d.data + DOFF * es, DLD, (const char *)src.d.data + SOFF * es, SLD, R, W, dt);
  cmp("copy2d", dt, &dst, 0.0);
  pair_free(&src);
  pair_free(&dst);
}

/* The block [LO, LO + VS) of a vocabulary of V: ids outside give zero rows / no gradient. */
static void test_embedding_shard(enum gv_dtype dt)
{
  enum { B = 4, T = 16, C = 72, V = 50, LO = 20, VS = 15 };
  const int64_t sy[4] = {B, T, C, 0}, st[4] = {VS, C, 0, 0};
  struct pair ids = mk_ids(B * T, V), tab = mk(dt, st, -1.0, 1.0), y = mk(dt, sy, 7.0, 7.0),
              dy = mk(dt, sy, -1.0, 1.0);
  gv_embedding_shard_fwd(&cpu, H(&y), H(&ids), H(&tab), LO);
  gv_embedding_shard_fwd(&cu, D(&y), D(&ids), D(&tab), LO);
  cmp("embedding_shard_fwd", dt, &y, tol_of(dt, TOL_F32));
  for (int flags = 0; flags <= GV_ACC_DW; flags += GV_ACC_DW) {
    gv_embedding_shard_bwd(&cpu, H(&tab), H(&dy), H(&ids), LO, flags);
    gv_embedding_shard_bwd(&cu, D(&tab), D(&dy), D(&ids), LO, flags);
    cmp(flags ? "embedding_shard_bwd acc" : "embedding_shard_bwd", dt, &tab,
        dt == GV_DTYPE_BF16 ? TOL_BF16_ATOMIC : TOL_F32);
  }
  pair_free(&ids);
  pair_free(&tab);
  pair_free(&y);
  pair_free(&dy);
}

/* The three forward stages (no all-reduce: one block's partial values on both backends),
 * rows wider than a block of threads, ignored rows; then the backward. */
static void test_xent_shard(enum gv_dtype dt)
{
  enum { M = 67, V = 5000, LO = 1600, VS = 1500 };
  const int64_t sx[4] = {M, VS, 0, 0}, sm[4] = {M, 0, 0, 0}, s1[4] = {1, 0, 0, 0};
  const float scale = 1.0f / 50.0f;
  struct pair x = mk(dt, sx, -4.0, 4.0), t = mk_ids(M, V), lse = mk(GV_DTYPE_F32, sm, 7.0, 7.0),
              part = mk(GV_DTYPE_F32, sm, 7.0, 7.0), loss = mk(GV_DTYPE_F32, s1, 7.0, 7.0),
              dx = mk(dt, sx, 7.0, 7.0);
  int32_t *ht = t.h.data;
  ht[0] = -1;         /* ignored */
  ht[1] = LO;         /* the block's first and last columns */
  ht[2] = LO + VS - 1;
  gv_dev_memcpy(&cu, t.d.data, ht, M * sizeof *ht, GV_COPY_H2D);
  for (int lo = 0; lo <= LO; lo += LO) { /* lo 0: the block that adds the lse terms */
    gv_xent_shard_fwd(&cpu, NULL, H(&lse), NULL, H(&x), H(&t), lo, scale, GV_XSHARD_MAX);
    gv_xent_shard_fwd(&cu, NULL, D(&lse), NULL, D(&x), D(&t), lo, scale, GV_XSHARD_MAX);
    cmp("xent_shard_fwd max", dt, &lse, 0.0);
    gv_xent_shard_fwd(&cpu, NULL, H(&lse), H(&part), H(&x), H(&t), lo, scale, GV_XSHARD_SUMEXP);
    gv_xent_shard_fwd(&cu, NULL, D(&lse), D(&part), D(&x), D(&t), lo, scale, GV_XSHARD_SUMEXP);
    cmp("xent_shard_fwd sumexp", dt, &part, TOL_F32);
    gv_xent_shard_fwd(&cpu, H(&loss), H(&lse), H(&part), H(&x), H(&t), lo, scale, GV_XSHARD_LOSS);
    gv_xent_shard_fwd(&cu, D(&loss), D(&lse), D(&part), D(&x), D(&t), lo, scale, GV_XSHARD_LOSS);
    cmp("xent_shard_fwd lse", dt, &lse, TOL_F32);
    cmp(lo ? "xent_shard_fwd loss (lo > 0)" : "xent_shard_fwd loss (lo 0)", dt, &loss, TOL_F32);
    gv_xent_shard_bwd(&cpu, H(&dx), H(&x), H(&lse), H(&t), lo, scale);
    gv_xent_shard_bwd(&cu, D(&dx), D(&x), D(&lse), D(&t), lo, scale);
    cmp("xent_shard_bwd", dt, &dx, tol_of(dt, TOL_F32));
  }
  pair_free(&x);
  pair_free(&t);
  pair_free(&lse);
  pair_free(&part);
  pair_free(&loss);
  pair_free(&dx);
}

/* ---- reductions and copies ---- */

static void test_reduce(enum gv_dtype dt)
{
  const int64_t s[4] = {1000003, 0, 0, 0};
  double tol = tol_of(dt, TOL_F32);
  struct pair x = mk(dt, s, -2.0, 2.0), y = mk(dt, s, -1.0, 1.0);
  double want = gv_sumsq(&cpu, H(&x)), got = gv_sumsq(&cu, D(&x));
  CHECK_CLOSE(want, got, 0.0, 1e-9);               /* fp64 sums of the same squares */
  gv_axpy(&cpu, H(&y), -0.7f, H(&x));
  gv_axpy(&cu, D(&y), -0.7f, D(&x));
  cmp("axpy", dt, &y, tol);
  gv_scale(&cpu, H(&y), 1.3f);
  gv_scale(&cu, D(&y), 1.3f);
  cmp("scale", dt, &y, tol);
  gv_fill(&cpu, H(&y), dt == GV_DTYPE_BF16 ? round_bf16(0.37f) : 0.37f);
  gv_fill(&cu, D(&y), 0.37f);
  cmp("fill", dt, &y, 0.0);
  gv_copy(&cpu, H(&y), H(&x));
  gv_copy(&cu, D(&y), D(&x));
  cmp("copy", dt, &y, 0.0);
  pair_free(&x);
  pair_free(&y);
}

/* f32 -> bf16 -> f32 on the device vs gv_copy on the CPU: the same bits. */
static void test_convert(void)
{
  enum { N = 4099 };
  const int64_t s[4] = {N, 0, 0, 0};
  struct pair f = mk(GV_DTYPE_F32, s, -3.0, 3.0), back = mk(GV_DTYPE_F32, s, 7.0, 7.0);
  ((float *)f.h.data)[0] = 1.00390625f;             /* a tie: rounds to even (1.0) */
  ((float *)f.h.data)[1] = -0.0f;
  upload(&f);
  uint16_t *hb = malloc(N * sizeof *hb), *db = malloc(N * sizeof *db);
  struct gv_tensor cpu_b = gv_tensor_4d(hb, GV_DTYPE_BF16, N, 0, 0, 0);
  struct gv_tensor cu_b = gv_tensor_4d(gv_dev_alloc(&cu, N * sizeof *hb), GV_DTYPE_BF16, N, 0, 0, 0);
  gv_copy(&cpu, &cpu_b, H(&f));
  gv_copy(&cu, &cu_b, D(&f));
  gv_dev_memcpy(&cu, db, cu_b.data, N * sizeof *db, GV_COPY_D2H);
  CHECK(memcmp(hb, db, N * sizeof *hb) == 0);
  gv_copy(&cpu, H(&back), &cpu_b);
  gv_copy(&cu, D(&back), &cu_b);
  cmp("copy bf16 -> f32", GV_DTYPE_F32, &back, 0.0);
  gv_dev_free(&cu, &cu_b.data, N * sizeof *hb);
  free(hb);
  free(db);
  pair_free(&f);
  pair_free(&back);
}

int main(void)
{
  if (tu_cuda_begin(&cpu, &cu))
    return 77;
  for (int k = 0; k < 2; k++) {
    enum gv_dtype dt = k ? GV_DTYPE_BF16 : GV_DTYPE_F32;
    test_unary(dt);
    test_binary(dt);
    test_dropout(dt);
    test_norms(dt, 37, 203);
    test_add_norms(dt, 37, 203);
    test_norms(dt, 5, 1100);
    test_rope(dt);
    test_softmax(dt, 37, 203);
    test_softmax(dt, 3, 1100);
    test_copy_cols(dt);
    test_patchify(dt);
    test_embedding(dt);
    test_reduce(dt);
    test_copy2d(dt);
    test_embedding_shard(dt);
    test_xent_shard(dt);
  }
  test_convert();
  gv_backend_free(&cu);
  gv_backend_free(&cpu);
  return tu_report("test_cuda_ops");
}
