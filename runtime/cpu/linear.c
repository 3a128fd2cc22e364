/* linear.c - y = x w^T + b through OpenBLAS sgemm (nn.Linear layout, w [N,K]); backward
 * gives dx = dy w, dw = dy^T x, db = colsum(dy), each overwritten or accumulated by flags.
 *   x: (M,K) row-major, w: (N,K), b: (N), y: (M,N) */
#include <cblas.h>

#include "cpu/cpu.h"

void gv_cpu_colsum(float *out, const float *m, int64_t rows, int64_t cols, int acc)
{
  enum { CHUNK = 64 };
  int64_t nchunks = (cols + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < nchunks; c++) {
    int64_t j0 = c * CHUNK, j1 = j0 + CHUNK < cols ? j0 + CHUNK : cols;
    float s[CHUNK] = {0};
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = j0; j < j1; j++) s[j - j0] += m[i * cols + j];
    for (int64_t j = j0; j < j1; j++) cpu_store(&out[j], s[j - j0], acc);
  }
}

void gv_cpu_linear_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                       const struct gv_tensor *w, const struct gv_tensor *b)
{
  float *py = cpu_f32(y), *pb = cpu_f32(b);
  const float *px = cpu_f32(x), *pw = cpu_f32(w);
  int64_t M = cpu_rows(x), K = cpu_cols(x), N = w->shape[0];
  if (pb) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) py[i * N + j] = pb[j];
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, px, (int)K,
              pw, (int)K, pb ? 1.0f : 0.0f, py, (int)N);
}

void gv_cpu_linear_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                       struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                       const struct gv_tensor *w, int flags)
{
  const float *pdy = cpu_f32(dy), *px = cpu_f32(x), *pw = cpu_f32(w);
  int64_t M = cpu_rows(x), K = cpu_cols(x), N = w->shape[0];
  if (dx)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)K, (int)N, 1.0f, pdy,
                (int)N, pw, (int)K, (flags & GV_ACC_DX) ? 1.0f : 0.0f, cpu_f32(dx), (int)K);
  if (dw)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)K, (int)M, 1.0f, pdy, (int)N,
                px, (int)K, (flags & GV_ACC_DW) ? 1.0f : 0.0f, cpu_f32(dw), (int)K);
  if (db) gv_cpu_colsum(cpu_f32(db), pdy, M, N, flags & GV_ACC_DW);
}
