/* bf16_convert.c - the CPU backend's bf16 <-> f32 conversion loops: widening, and narrowing
 * with round to nearest even (gv_bf16_from_float). The bf16 emulation (bf16.c) and
 * gv_cpu_copy across dtypes (elementwise.c) both use them; they depend on nothing else. */
#include "cpu/cpu.h"

void gv_cpu_bf16_widen(float *dst, const uint16_t *src, int64_t n)
{
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dst[i] = gv_bf16_to_float(src[i]);
}

/* dst = round(src), or round(float(dst) + src) when add (one rounding either way). */
void gv_cpu_bf16_narrow(uint16_t *dst, const float *src, int64_t n, int add)
{
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++)
    dst[i] = gv_bf16_from_float(add ? gv_bf16_to_float(dst[i]) + src[i] : src[i]);
}
