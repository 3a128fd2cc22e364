/* norm.c - LayerNorm (biased variance; saves mean and rstd) and RMSNorm (saves rstd).
 * Forward and dx are parallel over rows; dw/db are a second pass parallel over column
 * slices (recomputing xhat from the saved statistics), so no per-thread partial sums.
 *   x, y: (M,C) row-major; w, b: (C); mean, rstd: (M) */
#include <math.h>

#include "core/fused.h"
#include "cpu/cpu.h"

enum { COL_CHUNK = 64 };

/* ---- forward ---- */

/* One row: statistics, then y = (x - mu) * rstd * w (+ b). mean_out NULL = RMSNorm. */
CPU_CLONES
static void norm_row(float *y, float *mean_out, float *rstd_out, const float *x, const float *w,
                     const float *b, int64_t C, float eps)
{
  float mu = 0.0f, var = 0.0f;
  if (mean_out) {
#pragma omp simd reduction(+ : mu)
    for (int64_t c = 0; c < C; c++) mu += x[c];
    mu /= (float)C;
  }
#pragma omp simd reduction(+ : var)
  for (int64_t c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
  float rs = 1.0f / sqrtf(var / (float)C + eps);
  for (int64_t c = 0; c < C; c++) y[c] = (x[c] - mu) * rs * w[c] + (b ? b[c] : 0.0f);
  if (mean_out) *mean_out = mu;
  *rstd_out = rs;
}

/* The norm of x's rows; with ra (the fused residual add) x's row is first written as
 * ra + rb, as add_fwd writes it, so the norm reads it from cache and one parallel loop
 * does both. */
CPU_CLONES
static void norm_fwd(struct gv_tensor *y, struct gv_tensor *mean, struct gv_tensor *rstd,
                     const struct gv_tensor *x, const struct gv_tensor *w,
                     const struct gv_tensor *b, float eps, const struct gv_tensor *ra, const struct gv_tensor *rb)
{
  float *py = cpu_f32(y), *pm = cpu_f32(mean), *pr = cpu_f32(rstd), *ph = ra ? cpu_f32(x) : NULL;
  const float *px = cpu_f32(x), *pw = cpu_f32(w), *pb = cpu_f32(b), *pa = cpu_f32(ra), *pb2 = cpu_f32(rb);
  int64_t M = cpu_rows(x), C = cpu_cols(x);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    if (ph)
      for (int64_t c = 0; c < C; c++) ph[i * C + c] = pa[i * C + c] + pb2[i * C + c];
    norm_row(py + i * C, pm ? pm + i : NULL, pr + i, px + i * C, pw, pb, C, eps);
  }
}

void gv_cpu_layernorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *mean,
                          struct gv_tensor *rstd, const struct gv_tensor *x,
                          const struct gv_tensor *w, const struct gv_tensor *b, float eps)
{
  norm_fwd(y, mean, rstd, x, w, b, eps, NULL, NULL);
}

void gv_cpu_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *rstd,
                        const struct gv_tensor *x, const struct gv_tensor *w, float eps)
{
  norm_fwd(y, NULL, rstd, x, w, NULL, eps, NULL, NULL);
}

/* The residual add + norm in one pass over the rows when every operand is f32 (bit for bit
 * add_fwd then the norm: the same sums, the same row function); under bf16 as its parts,
 * which round the sum h before the norm reads it. */
static int all_f32(const struct gv_tensor *const *ts, int n)
{
  for (int i = 0; i < n; i++)
    if (ts[i] && ts[i]->dtype != GV_DTYPE_F32)
      return 0;
  return 1;
}

void gv_cpu_add_layernorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y,
                              struct gv_tensor *mean, struct gv_tensor *rstd, const struct gv_tensor *a,
                              const struct gv_tensor *b, const struct gv_tensor *w,
                              const struct gv_tensor *bias, float eps)
{
  if (!all_f32((const struct gv_tensor *const[]){h, y, a, b, w, bias}, 6))
    gv_fused_add_layernorm_fwd(be, h, y, mean, rstd, a, b, w, bias, eps);
  else
    norm_fwd(y, mean, rstd, h, w, bias, eps, a, b);
}

void gv_cpu_add_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y,
                            struct gv_tensor *rstd, const struct gv_tensor *a, const struct gv_tensor *b,
                            const struct gv_tensor *w, float eps)
{
  if (!all_f32((const struct gv_tensor *const[]){h, y, a, b, w}, 5))
    gv_fused_add_rmsnorm_fwd(be, h, y, rstd, a, b, w, eps);
  else
    norm_fwd(y, NULL, rstd, h, w, NULL, eps, a, b);
}

/* ---- backward ---- */

/* dx = rstd * (g - [mean(g)] - xhat * mean(g * xhat)), g = dy * w; the bracketed term is
 * LayerNorm only (centred). */
CPU_CLONES
static void norm_dx_row(float *dx, const float *dy, const float *x, const float *w, float mu,
                        float rs, int centred, int64_t C, int acc)
{
  float sg = 0.0f, sgx = 0.0f;
#pragma omp simd reduction(+ : sg, sgx)
  for (int64_t c = 0; c < C; c++) {
    float g = dy[c] * w[c];
    sg += g;
    sgx += g * (x[c] - mu) * rs;
  }
  float mg = centred ? sg / (float)C : 0.0f, mgx = sgx / (float)C;
  for (int64_t c = 0; c < C; c++)
    cpu_store(&dx[c], rs * (dy[c] * w[c] - mg - (x[c] - mu) * rs * mgx), acc);
}

CPU_CLONES
static void norm_bwd(struct gv_tensor *dx, struct gv_tensor *dw, struct gv_tensor *db,
                     const struct gv_tensor *dy, const struct gv_tensor *x,
                     const struct gv_tensor *w, const struct gv_tensor *mean,
                     const struct gv_tensor *rstd, int flags)
{
  const float *pdy = cpu_f32(dy), *px = cpu_f32(x), *pw = cpu_f32(w), *pm = cpu_f32(mean),
              *pr = cpu_f32(rstd);
  float *pdx = cpu_f32(dx), *pdw = cpu_f32(dw), *pdb = cpu_f32(db);
  int64_t M = cpu_rows(x), C = cpu_cols(x), nchunks = (C + COL_CHUNK - 1) / COL_CHUNK;
  int dwb = pdw || pdb, wait = dwb && (cpu_overlap(pdx, pdy, M * C) || cpu_overlap(pdx, px, M * C));
  /* one parallel region: the dw/db column pass need not wait for the dx rows unless dx
   * overwrites what it reads */
#pragma omp parallel
  {
    if (pdx) {
#pragma omp for schedule(static) nowait
      for (int64_t i = 0; i < M; i++)
        norm_dx_row(pdx + i * C, pdy + i * C, px + i * C, pw, pm ? pm[i] : 0.0f, pr[i], pm != NULL,
                    C, flags & GV_ACC_DX);
    }
    if (wait) {
#pragma omp barrier
    }
    if (dwb) {
#pragma omp for schedule(static) nowait
      for (int64_t ch = 0; ch < nchunks; ch++) {
        int64_t c0 = ch * COL_CHUNK, c1 = c0 + COL_CHUNK < C ? c0 + COL_CHUNK : C;
        float sw[COL_CHUNK] = {0}, sb[COL_CHUNK] = {0};
        for (int64_t i = 0; i < M; i++) {
          float mu = pm ? pm[i] : 0.0f, rs = pr[i];
          for (int64_t c = c0; c < c1; c++) {
            sw[c - c0] += pdy[i * C + c] * (px[i * C + c] - mu) * rs;
            sb[c - c0] += pdy[i * C + c];
          }
        }
        for (int64_t c = c0; c < c1; c++) {
          if (pdw) cpu_store(&pdw[c], sw[c - c0], flags & GV_ACC_DW);
          if (pdb) cpu_store(&pdb[c], sb[c - c0], flags & GV_ACC_DW);
        }
      }
    }
  }
}

void gv_cpu_layernorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                          struct gv_tensor *db, const struct gv_tensor *dy,
                          const struct gv_tensor *x, const struct gv_tensor *w,
                          const struct gv_tensor *mean, const struct gv_tensor *rstd, int flags)
{
  GV_CHECK(mean != NULL, "layernorm_bwd needs the saved mean");
  norm_bwd(dx, dw, db, dy, x, w, mean, rstd, flags);
}

void gv_cpu_rmsnorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                        const struct gv_tensor *dy, const struct gv_tensor *x,
                        const struct gv_tensor *w, const struct gv_tensor *rstd, int flags)
{
  norm_bwd(dx, dw, NULL, dy, x, w, NULL, rstd, flags);
}
