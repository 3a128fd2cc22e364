/* clip.c - global-norm gradient clipping with torch.nn.utils.clip_grad_norm_ semantics
 * (norm_type 2): total = sqrt(sum over all grads of g^2), coef = max_norm / (total + 1e-6)
 * clamped to 1, every grad *= coef (PyTorch 1.13 multiplies even when coef == 1, which is
 * exact). Split into a local sum of squares, the coefficient and the scale so that a
 * sharded run all-reduces the sums in between; each parameter element must be counted
 * once (replicated TP params on one rank only). Sums are in double: the norm of ~1e8
 * fp32 squares would otherwise lose digits. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "gvrt.h"
#include "gvrt_train.h"

enum { SQ_PAR_MIN = 65536 }; /* shards above this many elements are summed by every thread */

double gv_optim_sq_sum(const float *g, size_t n)
{
  double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > SQ_PAR_MIN)
  for (size_t i = 0; i < n; i++)
    s += (double)g[i] * g[i];
  return s;
}

/* Every shard above SQ_PAR_MIN in one parallel region, each split over the team by the same
 * static schedule as gv_optim_sq_sum's loop (an `omp for nowait` each, so no barrier between
 * them); a thread's partial sum of shard k lands in part[k * nth + thread]. The partial sums
 * are then added in thread order from 0: with one or two threads that is the reduction's
 * result bit for bit (0 + a + b in either order; the squares are exact in double), with more
 * one of the orders the reduction may combine them in. The smaller shards go through
 * gv_optim_sq_sum, which sums them serially. */
double gv_optim_sq_sum_multi(const float *const *g, const size_t *n, int count)
{
  int big = 0, nth = omp_get_max_threads();
  for (int i = 0; i < count; i++)
    big += n[i] > SQ_PAR_MIN;
  double *part = big ? calloc((size_t)big * (size_t)nth, sizeof *part) : NULL;
  GV_CHECK(!big || part, "gradient norm: out of memory for %d x %d partial sums", big, nth);
#pragma omp parallel if (big > 0)
  {
    int t = omp_get_thread_num();
    for (int i = 0, k = 0; i < count; i++) {
      if (n[i] <= SQ_PAR_MIN)
        continue;
      double s = 0.0;
      const float *x = g[i];
#pragma omp for schedule(static) nowait
      for (size_t j = 0; j < n[i]; j++)
        s += (double)x[j] * x[j];
      part[(size_t)k++ * (size_t)nth + (size_t)t] = s;
    }
  }
  double sq = 0.0;
  for (int i = 0, k = 0; i < count; i++) {
    double s = 0.0;
    if (n[i] > SQ_PAR_MIN) {
      for (int t = 0; t < nth; t++)
        s += part[(size_t)k * (size_t)nth + (size_t)t];
      k++;
    } else {
      s = gv_optim_sq_sum(g[i], n[i]); /* serial at this size */
    }
    sq += s;
  }
  free(part);
  return sq;
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
  double norm = sqrt(gv_optim_sq_sum_multi((const float *const *)grads, sizes, count));
  float coef = gv_optim_clip_coef(norm, max_norm);
  for (int i = 0; i < count; i++)
    gv_optim_scale(grads[i], sizes[i], coef);
  return norm;
}
