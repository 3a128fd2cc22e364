/* xent.c - fused softmax cross-entropy over the vocabulary. Forward saves the per-row
 * logsumexp and returns loss = scale * sum_i (lse_i - logit[i, t_i]); backward writes
 * dlogits = scale * (exp(logit - lse) - onehot) in one pass (it may overwrite the logits).
 * scale = 1/N for the mean over N tokens (N summed over micro-batches and ranks).
 * Negative targets are ignored (no loss, zero gradient). The shard entries are the same over
 * one block [lo, lo + V) of a vocabulary split, in the stages of gvrt.h (the caller all-reduces
 * between them).
 *   logits, dlogits: (M,V); targets: (M) i32; lse: (M) */
#include <math.h>

#include "cpu/cpu.h"

CPU_CLONES
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

/* dlogits = scale * (exp(logits - lse) - onehot(t - lo)) over columns [lo, lo + V) of the rows;
 * zero rows where t < 0. */
CPU_CLONES
static void xent_grad(float *pd, const float *pl, const float *plse, const int32_t *pt, int64_t M, int64_t V,
                      int64_t lo, float scale)
{
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    float s = pt[i] >= 0 ? scale : 0.0f, m = plse[i];
    int64_t k = (int64_t)pt[i] - lo;
    for (int64_t j = 0; j < V; j++) pd[i * V + j] = s * cpu_expf(pl[i * V + j] - m);
    if (pt[i] >= 0 && k >= 0 && k < V) pd[i * V + k] -= s;
  }
}

CPU_CLONES
void gv_cpu_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                     const struct gv_tensor *logits, const struct gv_tensor *lse,
                     const struct gv_tensor *targets, float scale)
{
  xent_grad(cpu_f32(dlogits), cpu_f32(logits), cpu_f32(lse), targets->data, cpu_rows(logits), cpu_cols(logits), 0,
            scale);
}

/* ---- one block [lo, lo + V) of a vocabulary split (the stages of gvrt.h) ---- */

CPU_CLONES
static void shard_max(float *plse, const float *pl, int64_t M, int64_t V)
{
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    float mx = V ? pl[i * V] : -INFINITY;
    for (int64_t j = 1; j < V; j++) mx = pl[i * V + j] > mx ? pl[i * V + j] : mx;
    plse[i] = mx;
  }
}

/* Sums of exponentials in fp64 (exp of the fp64 difference), rounded once. */
static void shard_sumexp(float *ppart, const float *plse, const float *pl, int64_t M, int64_t V)
{
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    double s = 0;
    for (int64_t j = 0; j < V; j++) s += exp((double)pl[i * V + j] - plse[i]);
    ppart[i] = (float)s;
  }
}

/* lse_i += log(part_i); this block's share of the loss (the lse terms on the block at 0). */
static float shard_loss(float *plse, const float *ppart, const float *pl, const int32_t *pt, int64_t M, int64_t V,
                        int64_t lo, float scale)
{
  double sum = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
  for (int64_t i = 0; i < M; i++) {
    int64_t k = (int64_t)pt[i] - lo;
    plse[i] += logf(ppart[i]);
    if (pt[i] < 0) continue;
    sum += (lo == 0 ? (double)plse[i] : 0.0) - (k >= 0 && k < V ? pl[i * V + k] : 0.0f);
  }
  return (float)(scale * sum);
}

void gv_cpu_xent_shard_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                           struct gv_tensor *part, const struct gv_tensor *logits,
                           const struct gv_tensor *targets, int64_t lo, float scale, int stage)
{
  const float *pl = cpu_f32(logits);
  float *plse = cpu_f32(lse);
  int64_t M = cpu_rows(logits), V = cpu_cols(logits);
  if (stage == GV_XSHARD_MAX)
    shard_max(plse, pl, M, V);
  else if (stage == GV_XSHARD_SUMEXP)
    shard_sumexp(cpu_f32(part), plse, pl, M, V);
  else
    cpu_f32(loss)[0] = shard_loss(plse, cpu_f32(part), pl, targets->data, M, V, lo, scale);
}

CPU_CLONES
void gv_cpu_xent_shard_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                           const struct gv_tensor *logits, const struct gv_tensor *lse,
                           const struct gv_tensor *targets, int64_t lo, float scale)
{
  xent_grad(cpu_f32(dlogits), cpu_f32(logits), cpu_f32(lse), targets->data, cpu_rows(logits), cpu_cols(logits), lo,
            scale);
}
