/* gvrt_train.h - training-side API of libgvrt: AdamW on fp32 master weights, global-norm
 * gradient clipping, the LR schedule, and counter-based (Philox) parameter init.
 * Included from gvrt.h. Everything here works on flat fp32 arrays so that a sharded
 * parameter (ZeRO, TP) is updated by calling the same function on its shard: AdamW is
 * element-wise, clipping is split into a local sum of squares (all-reduce it) and a scale,
 * and init depends only on (seed, name, global element index), never on the shard.
 * Definitions follow PyTorch 1.13 exactly; docs/runtime.md writes out every formula. */
#ifndef GVRT_TRAIN_H
#define GVRT_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef GV_API
#if defined(__GNUC__)
#define GV_API __attribute__((visibility("default")))
#else
#define GV_API
#endif
#endif

/* ---- AdamW (torch.optim.AdamW, decoupled decay, bias correction) ---- */

struct gv_adamw {
  float beta1, beta2, eps;
  float weight_decay;          /* applied only where the caller passes decay = 1 */
};

/* One update of n elements at 1-based step t with learning rate lr:
 *   p *= 1 - lr*wd (if decay);  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * p, m, v are fp32 (p is the master copy); g may alias nothing else. */
GV_API void gv_optim_adamw_step(const struct gv_adamw *opt, float *p, const float *g, float *m,
                                float *v, size_t n, int t, float lr, int decay);

/* Which parameters decay: rank >= 2 (matrices, embeddings) when exclude_1d is set, all
 * otherwise. The fixtures use exclude_1d = 1 (norm weights and biases do not decay). */
static inline int gv_optim_decays(int ndim, int exclude_1d) { return !exclude_1d || ndim >= 2; }

/* fp32 master -> bf16 copy (round to nearest even; NaN stays NaN) for mixed precision. */
GV_API void gv_optim_to_bf16(uint16_t *dst, const float *src, size_t n);

/* ---- global-norm clipping (torch.nn.utils.clip_grad_norm_, norm_type 2) ---- */

/* Sum of squares of one gradient shard, accumulated in double. */
GV_API double gv_optim_sq_sum(const float *g, size_t n);
/* The sum over count shards of gv_optim_sq_sum(g[i], n[i]), added in their order, in one
 * parallel region (one barrier instead of one per shard); bit for bit the same on one and
 * two threads (clip.c says why). */
GV_API double gv_optim_sq_sum_multi(const float *const *g, const size_t *n, int count);
/* coef = min(1, max_norm / (total_norm + 1e-6)); total_norm = sqrt(all-reduced sq sums). */
GV_API float gv_optim_clip_coef(double total_norm, float max_norm);
GV_API void gv_optim_scale(float *g, size_t n, float coef);
/* Single-rank convenience: clips count gradients in place, returns the pre-clip norm. */
GV_API double gv_optim_clip_grad_norm(float *const *grads, const size_t *sizes, int count,
                                      float max_norm);

/* ---- LR schedule ---- */

enum gv_lr_decay { GV_LR_COSINE, GV_LR_LINEAR, GV_LR_CONSTANT };

struct gv_lr_schedule {
  double max_lr, min_lr;
  int warmup_steps;            /* linear: lr * (step+1) / warmup for step < warmup */
  int decay_steps;             /* step at which the decay reaches min_lr (usually total steps) */
  enum gv_lr_decay decay;
};

/* LR for the 0-based update index step (see docs/runtime.md for the formula). */
GV_API double gv_lr_at(const struct gv_lr_schedule *s, int step);

/* ---- counter-based init (Philox4x32-10 + Box-Muller) ---- */

/* Key of a parameter: 64-bit FNV-1a of its name mixed with the run seed. */
GV_API uint64_t gv_init_key(uint64_t seed, const char *name);
/* N(mean, std) value of global element index i of the tensor keyed by key. */
GV_API float gv_init_normal_at(uint64_t key, uint64_t i, float mean, float std);
/* out[j] = normal at global index first + j, j < n (a contiguous shard). */
GV_API void gv_init_normal(float *out, size_t n, uint64_t key, uint64_t first, float mean,
                           float std);
/* A rows x cols block at (row0, col0) of a row-major matrix with global_cols columns,
 * written densely (ld = cols): the TP column/row shard of a weight. */
GV_API void gv_init_normal_block(float *out, size_t rows, size_t cols, size_t row0, size_t col0,
                                 size_t global_cols, uint64_t key, float mean, float std);
GV_API void gv_init_fill(float *out, size_t n, float value);

#ifdef __cplusplus
}
#endif

#endif
