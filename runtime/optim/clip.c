/* clip.c - global-norm gradient clipping with torch.nn.utils.clip_grad_norm_ semantics
 * (norm_type 2): total = sqrt(sum over all grads of g^2), coef = max_norm / (total + 1e-6)
 * clamped to 1, every grad *= coef (PyTorch 1.13 multiplies even when coef == 1, which is
 * exact). Split into a local sum of squares, the coefficient and the scale so that a
 * sharded run all-reduces the sums in between; each parameter element must be counted
 * once (replicated TP params on one rank only). Sums are in double: the norm of ~1e8
 * fp32 squares would otherwise lose digits. */
#include <math.h>

#include "gvrt_train.h"

double gv_optim_sq_sum(const float *g, size_t n)
{
  double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++)
    s += (double)g[i] * g[i];
  return s;
}

float gv_optim_clip_coef(double total_norm, float max_norm)
{
  double coef = max_norm / (total_norm + 1e-6);
  return coef < 1.0 ? (float)coef : 1.0f;
}

void gv_optim_scale(float *g, size_t n, float coef)
{
  if (coef == 1.0f)
    return;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++)
    g[i] *= coef;
}

double gv_optim_clip_grad_norm(float *const *grads, const size_t *sizes, int count, float max_norm)
{
  double sq = 0.0;
  for (int i = 0; i < count; i++)
    sq += gv_optim_sq_sum(grads[i], sizes[i]);
  double norm = sqrt(sq);
  float coef = gv_optim_clip_coef(norm, max_norm);
  for (int i = 0; i < count; i++)
    gv_optim_scale(grads[i], sizes[i], coef);
  return norm;
}
