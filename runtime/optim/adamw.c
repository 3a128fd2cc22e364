/* adamw.c - AdamW on fp32 master weights, the torch.optim.AdamW (1.13, single-tensor)
 * definition step for step: decay first (decoupled, p *= 1 - lr*wd), then the moments,
 * then p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). The bias corrections are
 * computed in double like PyTorch's Python scalars; the per-element math is fp32, in the
 * same order as PyTorch's, so one step agrees with torch to an ulp or so. Element-wise,
 * hence shard-agnostic (ZeRO calls it on its shard). Compiled like the CPU kernels for the
 * host's vector width (CPU_CLONES), with floating-point contraction off for this file
 * (runtime/CMakeLists.txt): no FMA is formed, so every clone gives the same bits as the
 * baseline build. */
#include <math.h>
#include <string.h>

#include "cpu/cpu.h"
#include "gvrt_train.h"

CPU_CLONES
void gv_optim_adamw_step(const struct gv_adamw *opt, float *p, const float *g, float *m,
                         float *v, size_t n, int t, float lr, int decay)
{
  const double bc1 = 1.0 - pow(opt->beta1, t), bc2 = 1.0 - pow(opt->beta2, t);
  const float shrink = decay ? (float)(1.0 - (double)lr * opt->weight_decay) : 1.0f;
  const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
  const float b1 = opt->beta1, b2 = opt->beta2, c1 = 1.0f - b1, c2 = 1.0f - b2;
  const float eps = opt->eps;

#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) {
    float gi = g[i];
    float mi = m[i] * b1 + gi * c1;
    float vi = v[i] * b2 + c2 * gi * gi;
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * shrink - step_size * (mi / denom);
  }
}

/* Round to nearest even on the upper 16 bits; quiet NaNs keep a mantissa bit. */
void gv_optim_to_bf16(uint16_t *dst, const float *src, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &src[i], sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
      dst[i] = (uint16_t)((u >> 16) | 0x40);
    else
      dst[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
}
