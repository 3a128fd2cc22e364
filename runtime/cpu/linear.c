/* linear.c - y = x w^T + b through OpenBLAS sgemm (sliced over OpenMP threads) (nn.Linear layout, w [N,K]); backward
 * gives dx = dy w, dw = dy^T x, db = colsum(dy), each overwritten or accumulated by flags.
 *   x: (M,K) row-major, w: (N,K), b: (N), y: (M,N) */
#include <cblas.h>

#include "cpu/cpu.h"

CPU_CLONES
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

/* Rows per slice: at least 32 so tiny problems stay one call. */
enum { MIN_SLICE = 32 };

/* gv_cpu_sgemm; with row_init, each thread first sets its rows of C to row_init (N values:
 * a bias) and sgemm adds to them (beta 1): one parallel region, and the rows are written
 * by the thread that computes them right after. */
static void sgemm_slices(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                         int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                         const float *row_init)
{
  int nt = cpu_max_threads();
  int64_t slices = M / MIN_SLICE < nt ? M / MIN_SLICE : nt;
  if (slices < 1) slices = 1;
#pragma omp parallel for schedule(static) num_threads((int)slices) if (slices > 1)
  for (int64_t s = 0; s < slices; s++) {
    int64_t m0 = M * s / slices, m1 = M * (s + 1) / slices;
    const float *a = trans_a ? A + m0 : A + m0 * lda;        /* op(A) row m is A column m if transposed */
    if (row_init)
      for (int64_t i = m0; i < m1; i++) memcpy(C + i * ldc, row_init, sizeof(float) * (size_t)N);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)(m1 - m0), (int)N, (int)K, alpha, a, (int)lda, B, (int)ldb, row_init ? 1.0f : beta,
                C + m0 * ldc, (int)ldc);
  }
}

void gv_cpu_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc)
{
  sgemm_slices(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void gv_cpu_linear_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                       const struct gv_tensor *w, const struct gv_tensor *b)
{
  const float *px = cpu_f32(x), *pw = cpu_f32(w);
  int64_t M = cpu_rows(x), K = cpu_cols(x), N = w->shape[0];
  sgemm_slices(0, 1, M, N, K, 1.0f, px, K, pw, K, 0.0f, cpu_f32(y), N, cpu_f32(b));
}

void gv_cpu_linear_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                       struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                       const struct gv_tensor *w, int flags)
{
  const float *pdy = cpu_f32(dy), *px = cpu_f32(x), *pw = cpu_f32(w);
  int64_t M = cpu_rows(x), K = cpu_cols(x), N = w->shape[0];
  if (dx)
    gv_cpu_sgemm(0, 0, M, K, N, 1.0f, pdy, N, pw, K, (flags & GV_ACC_DX) ? 1.0f : 0.0f, cpu_f32(dx), K);
  if (dw)
    gv_cpu_sgemm(1, 0, N, K, M, 1.0f, pdy, N, px, K, (flags & GV_ACC_DW) ? 1.0f : 0.0f, cpu_f32(dw), K);
  if (db) gv_cpu_colsum(cpu_f32(db), pdy, M, N, flags & GV_ACC_DW);
}
