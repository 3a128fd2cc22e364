/* xent.cu - fused softmax cross-entropy over the vocabulary, the CPU backend's semantics
 * (runtime/cpu/xent.c): forward saves lse_i = logsumexp(logits[i, :]) (f32) and OVERWRITES
 * loss[0] = scale * sum_i (lse_i - logits[i, t_i]) over rows with t_i >= 0; backward writes
 * dlogits = scale * (exp(logits - lse) - onehot(t)) (0 on ignored rows) and may alias logits.
 * Probabilities are never stored.
 *   logits, dlogits: (M,V) f32 or bf16; targets: (M) i32; lse: (M) f32; loss: (1) f32
 * Forward: one block per row, an online (max, sum) pair per thread over a strided pass of
 * the row, merged by warp shuffles then shared memory; the loss is a second, one-block
 * kernel summing the M row terms in fp64 in a fixed order (deterministic, no atomics).
 * Targets >= V are a caller bug the CPU backend reports; here such rows are ignored.
 * The shard entries work on one block [lo, lo + V) of a vocabulary split (targets are global
 * ids; the stages of gvrt.h, all-reduced by the caller in between): the row max and the
 * exponential sums are one block per row like the forward, the loss stage one block like
 * the loss kernel; the backward is the same kernel with the one-hot column shifted by lo. */
#include <math.h>

#include "cuda/cu_common.cuh"

enum { XENT_THREADS = 1024, LOSS_THREADS = 1024, XENT_WARPS = XENT_THREADS / 32 };

/* ---- online logsumexp pairs ---- */

struct lse_pair {
  float m, s;   /* running max and sum of exp(x - m); m = -inf while empty */
};

static __device__ __forceinline__ struct lse_pair lse_merge(struct lse_pair a, struct lse_pair b)
{
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  float m = fmaxf(a.m, b.m);
  struct lse_pair r = {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
  return r;
}

static __device__ __forceinline__ struct lse_pair lse_push(struct lse_pair a, float x)
{
  if (x == -INFINITY) return a;
  if (x > a.m) {
    struct lse_pair r = {x, a.s * expf(a.m - x) + 1.0f};   /* exp(-inf) = 0 when empty */
    return r;
  }
  a.s += expf(x - a.m);
  return a;
}

/* The pair of the whole block, valid in every thread. */
static __device__ struct lse_pair lse_block_reduce(struct lse_pair p)
{
  __shared__ struct lse_pair warp[XENT_WARPS];
  for (int o = 16; o > 0; o >>= 1) {
    struct lse_pair q = {__shfl_xor_sync(0xffffffffu, p.m, o), __shfl_xor_sync(0xffffffffu, p.s, o)};
    p = lse_merge(p, q);
  }
  if ((threadIdx.x & 31) == 0) warp[threadIdx.x >> 5] = p;
  __syncthreads();
  if (threadIdx.x < 32) {
    struct lse_pair e = {-INFINITY, 0.0f};
    p = threadIdx.x < blockDim.x / 32 ? warp[threadIdx.x] : e;
    for (int o = 16; o > 0; o >>= 1) {
      struct lse_pair q = {__shfl_xor_sync(0xffffffffu, p.m, o), __shfl_xor_sync(0xffffffffu, p.s, o)};
      p = lse_merge(p, q);
    }
    if (threadIdx.x == 0) warp[0] = p;
  }
  __syncthreads();
  return warp[0];
}

/* ---- forward ---- */

/* One block per row i: lse[i] = m + log(s). */
template <typename T>
static __global__ void __launch_bounds__(XENT_THREADS) xent_lse_kernel(float *lse, const T *logits, int64_t V)
{
  const T *row = logits + (int64_t)blockIdx.x * V;
  struct lse_pair p = {-INFINITY, 0.0f};
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) p = lse_push(p, cu_load(row, j));
  p = lse_block_reduce(p);
  if (threadIdx.x == 0) lse[blockIdx.x] = p.m + logf(p.s);
}

/* One block: loss[0] = scale * sum_i (lse_i - logits[i, t_i]), fp64, fixed order. */
template <typename T>
static __global__ void __launch_bounds__(LOSS_THREADS)
xent_loss_kernel(float *loss, const float *lse, const T *logits, const int32_t *targets, int64_t M,
                 int64_t V, float scale)
{
  __shared__ double part[LOSS_THREADS];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    int32_t t = targets[i];
    if (t >= 0 && t < V) s += (double)lse[i] - (double)cu_load(logits, i * V + t);
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int n = LOSS_THREADS / 2; n > 0; n >>= 1) {
    if ((int)threadIdx.x < n) part[threadIdx.x] += part[threadIdx.x + n];
    __syncthreads();
  }
  if (threadIdx.x == 0) loss[0] = (float)(part[0] * (double)scale);
}

static void need_f32(const struct gv_tensor *t, const char *what)
{
  GV_CHECK(t->dtype == GV_DTYPE_F32, "cuda xent: %s must be f32, is %s", what, gv_dtype_name(t->dtype));
}

extern "C" void gv_cuda_xent_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                                 const struct gv_tensor *logits, const struct gv_tensor *targets, float scale)
{
  int64_t M = cu_rows(logits), V = cu_cols(logits);
  need_f32(loss, "loss");
  need_f32(lse, "lse");
  GV_CHECK(M < (int64_t)1 << 31, "cuda xent: %lld rows exceed one grid", (long long)M);
  CU_DISPATCH(logits->dtype, T, {
    if (M > 0) {
      xent_lse_kernel<T><<<(unsigned)M, XENT_THREADS, 0, cu_stream(be)>>>((float *)lse->data,
                                                                            (const T *)logits->data, V);
      GV_CUDA_LAUNCH_CHECK();
    }
    xent_loss_kernel<T><<<1, LOSS_THREADS, 0, cu_stream(be)>>>(
        (float *)loss->data, (const float *)lse->data, (const T *)logits->data,
        (const int32_t *)targets->data, M, V, scale);
    GV_CUDA_LAUNCH_CHECK();
  });
}

/* ---- backward ---- */

/* Element-wise over (M,V); reads each logit before writing the same index (alias-safe).
 * Column j is global column lo + j; a shard's rows count whenever t >= 0 (the target may be
 * in another block), a whole row's only when t < V as well. */
template <typename T, typename U>
static __global__ void xent_bwd_kernel(U *dlogits, const T *logits, const float *lse, const int32_t *targets,
                                int64_t M, int64_t V, int64_t lo, int shard, float scale)
{
  int64_t n = M * V;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
       idx += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = idx / V, j = idx - i * V;
    int32_t t = targets[i];
    float s = (t >= 0 && (shard || t < V)) ? scale : 0.0f;
    float g = s * expf(cu_load(logits, idx) - lse[i]) - (j + lo == (int64_t)t ? s : 0.0f);
    dlogits[idx] = cu_from_float<U>(g);
  }
}

static void xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits, const struct gv_tensor *logits,
                     const struct gv_tensor *lse, const struct gv_tensor *targets, int64_t lo, int shard, float scale)
{
  int64_t M = cu_rows(logits), V = cu_cols(logits);
  need_f32(lse, "lse");
  GV_CHECK(dlogits->data != logits->data || dlogits->dtype == logits->dtype,
           "cuda xent_bwd: dlogits aliases logits with another dtype");
  if (!M || !V) return;
  int threads = 256, blocks = cu_blocks(be, M * V, threads);
  CU_DISPATCH(logits->dtype, T, CU_DISPATCH(dlogits->dtype, U, {
    xent_bwd_kernel<T, U><<<blocks, threads, 0, cu_stream(be)>>>(
        (U *)dlogits->data, (const T *)logits->data, (const float *)lse->data,
        (const int32_t *)targets->data, M, V, lo, shard, scale);
    GV_CUDA_LAUNCH_CHECK();
  }));
}

extern "C" void gv_cuda_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits, const struct gv_tensor *logits,
                                 const struct gv_tensor *lse, const struct gv_tensor *targets, float scale)
{
  xent_bwd(be, dlogits, logits, lse, targets, 0, 0, scale);
}

extern "C" void gv_cuda_xent_shard_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                                       const struct gv_tensor *logits, const struct gv_tensor *lse,
                                       const struct gv_tensor *targets, int64_t lo, float scale)
{
  xent_bwd(be, dlogits, logits, lse, targets, lo, 1, scale);
}

/* ---- one block of a vocabulary split: the forward's stages ---- */

/* One block per row i: lse[i] = max_j logits[i, j] (-inf for an empty row). */
template <typename T>
static __global__ void __launch_bounds__(XENT_THREADS) shard_max_kernel(float *lse, const T *logits, int64_t V)
{
  const T *row = logits + (int64_t)blockIdx.x * V;
  struct lse_pair p = {-INFINITY, 0.0f};
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) p = lse_push(p, cu_load(row, j));
  p = lse_block_reduce(p);
  if (threadIdx.x == 0) lse[blockIdx.x] = p.m;
}

/* One block per row i: part[i] = sum_j exp(logits[i, j] - lse[i]), fp64 accumulation. */
template <typename T>
static __global__ void __launch_bounds__(XENT_THREADS)
shard_sumexp_kernel(float *part, const float *lse, const T *logits, int64_t V)
{
  const T *row = logits + (int64_t)blockIdx.x * V;
  float m = lse[blockIdx.x];
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) s += (double)expf(cu_load(row, j) - m);
  s = cu_block_sum(s);
  if (threadIdx.x == 0) part[blockIdx.x] = (float)s;
}

/* One block: lse_i += log(part_i); loss[0] = this block's share of the loss (fp64, fixed order). */
template <typename T>
static __global__ void __launch_bounds__(LOSS_THREADS)
shard_loss_kernel(float *loss, float *lse, const float *part, const T *logits, const int32_t *targets, int64_t M,
                  int64_t V, int64_t lo, float scale)
{
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    int64_t t = targets[i], k = t - lo;
    float l = lse[i] + logf(part[i]);
    lse[i] = l;
    if (t < 0) continue;
    s += (lo == 0 ? (double)l : 0.0) - (k >= 0 && k < V ? (double)cu_load(logits, i * V + k) : 0.0);
  }
  s = cu_block_sum(s);
  if (threadIdx.x == 0) loss[0] = (float)(s * (double)scale);
}

extern "C" void gv_cuda_xent_shard_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                                       struct gv_tensor *part, const struct gv_tensor *logits,
                                       const struct gv_tensor *targets, int64_t lo, float scale, int stage)
{
  int64_t M = cu_rows(logits), V = cu_cols(logits);
  need_f32(lse, "lse");
  GV_CHECK(M < (int64_t)1 << 31, "cuda xent_shard: %lld rows exceed one grid", (long long)M);
  if (stage != GV_XSHARD_LOSS && M == 0) return;
  CU_DISPATCH(logits->dtype, T, {
    const T *x = (const T *)logits->data;
    if (stage == GV_XSHARD_MAX)
      shard_max_kernel<T><<<(unsigned)M, XENT_THREADS, 0, cu_stream(be)>>>((float *)lse->data, x, V);
    else if (stage == GV_XSHARD_SUMEXP)
      shard_sumexp_kernel<T><<<(unsigned)M, XENT_THREADS, 0, cu_stream(be)>>>((float *)part->data,
                                                                               (const float *)lse->data, x, V);
    else
      shard_loss_kernel<T><<<1, LOSS_THREADS, 0, cu_stream(be)>>>((float *)loss->data, (float *)lse->data,
                                                                  (const float *)part->data, x,
                                                                  (const int32_t *)targets->data, M, V, lo, scale);
    GV_CUDA_LAUNCH_CHECK();
  });
}
