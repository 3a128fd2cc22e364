/* softmax.c - softmax over the last dimension, row by row: y = exp(x - max) / sum, in fp32
 * (max, then the sum of exponentials in column order); backward dx (+)= y (dy - <dy, y>).
 *   x, y, dy, dx: (M,N) row-major; y may alias x, dx may alias dy */
#include <math.h>

#include "cpu/cpu.h"

CPU_CLONES
void gv_cpu_softmax_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x)
{
  (void)be;
  float *py = cpu_f32(y);
  const float *px = cpu_f32(x);
  int64_t M = cpu_rows(x), N = cpu_cols(x);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    const float *xr = px + i * N;
    float *yr = py + i * N, mx = -INFINITY, s = 0.0f;
    for (int64_t j = 0; j < N; j++) mx = fmaxf(mx, xr[j]);
    for (int64_t j = 0; j < N; j++) {
      float e = expf(xr[j] - mx);
      yr[j] = e;
      s += e;
    }
    float inv = 1.0f / s;
    for (int64_t j = 0; j < N; j++) yr[j] *= inv;
  }
}

CPU_CLONES
void gv_cpu_softmax_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                        const struct gv_tensor *y, int flags)
{
  (void)be;
  float *pdx = cpu_f32(dx);
  const float *pdy = cpu_f32(dy), *py = cpu_f32(y);
  int64_t M = cpu_rows(y), N = cpu_cols(y);
  int acc = flags & GV_ACC_DX;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    const float *dyr = pdy + i * N, *yr = py + i * N;
    float *dxr = pdx + i * N, dot = 0.0f;
    for (int64_t j = 0; j < N; j++) dot += dyr[j] * yr[j];
    for (int64_t j = 0; j < N; j++) cpu_store(&dxr[j], yr[j] * (dyr[j] - dot), acc);
  }
}
