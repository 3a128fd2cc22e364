/* xent.c - fused softmax cross-entropy over the vocabulary. Forward saves the per-row
 * logsumexp and returns loss = scale * sum_i (lse_i - logit[i, t_i]); backward writes
 * dlogits = scale * (exp(logit - lse) - onehot) in one pass (it may overwrite the logits).
 * scale = 1/N for the mean over N tokens (N summed over micro-batches and ranks).
 * Negative targets are ignored (no loss, zero gradient).
 *   logits, dlogits: (M,V); targets: (M) i32; lse: (M) */
#include <math.h>

#include "cpu/cpu.h"

static float row_lse(const float *l, int64_t V)
{
  float mx = -INFINITY, s = 0.0f;
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < V; j++) mx = l[j] > mx ? l[j] : mx;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < V; j++) s += cpu_expf(l[j] - mx);
  return mx + logf(s);
}

CPU_CLONES
void gv_cpu_xent_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                     const struct gv_tensor *logits, const struct gv_tensor *targets, float scale)
{
  const float *pl = cpu_f32(logits);
  const int32_t *pt = targets->data;
  float *plse = cpu_f32(lse);
  int64_t M = cpu_rows(logits), V = cpu_cols(logits);
  double sum = 0.0;
  for (int64_t i = 0; i < M; i++)
    GV_CHECK(pt[i] < V, "xent: target %d of row %lld not below vocab %lld", pt[i], (long long)i,
             (long long)V);
#pragma omp parallel for schedule(static) reduction(+ : sum)
  for (int64_t i = 0; i < M; i++) {
    plse[i] = row_lse(pl + i * V, V);
    if (pt[i] >= 0) sum += (double)plse[i] - pl[i * V + pt[i]];
  }
  cpu_f32(loss)[0] = (float)(sum * scale);
}

CPU_CLONES
void gv_cpu_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                     const struct gv_tensor *logits, const struct gv_tensor *lse,
                     const struct gv_tensor *targets, float scale)
{
  const float *pl = cpu_f32(logits), *plse = cpu_f32(lse);
  const int32_t *pt = targets->data;
  float *pd = cpu_f32(dlogits);
  int64_t M = cpu_rows(logits), V = cpu_cols(logits);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    float s = pt[i] >= 0 ? scale : 0.0f, m = plse[i];
    for (int64_t j = 0; j < V; j++) pd[i * V + j] = s * cpu_expf(pl[i * V + j] - m);
    if (pt[i] >= 0) pd[i * V + pt[i]] -= s;
  }
}
