/* xent.cu - fused softmax cross-entropy over the vocabulary, the CPU backend's semantics
 * (runtime/cpu/xent.c): forward saves lse_i = logsumexp(logits[i, :]) (f32) and OVERWRITES
 * loss[0] = scale * sum_i (lse_i - logits[i, t_i]) over rows with t_i >= 0; backward writes
 * dlogits = scale * (exp(logits - lse) - onehot(t)) (0 on ignored rows) and may alias logits.
 * Probabilities are never stored.
 *   logits, dlogits: (M,V) f32 or bf16; targets: (M) i32; lse: (M) f32; loss: (1) f32
 * Forward: one block per row, an online (max, sum) pair per thread over a strided pass of
 * the row, merged by warp shuffles then shared memory; the loss is a second, one-block
 * kernel summing the M row terms in fp64 in a fixed order (deterministic, no atomics).
 * Targets >= V are a caller bug the CPU backend reports; here such rows are ignored. */
#include <math.h>

#include "cuda/cuda_impl.h"

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

/* Element-wise over (M,V); reads each logit before writing the same index (alias-safe). */
template <typename T, typename U>
static __global__ void xent_bwd_kernel(U *dlogits, const T *logits, const float *lse, const int32_t *targets,
                                int64_t M, int64_t V, float scale)
{
  int64_t n = M * V;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
       idx += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = idx / V, j = idx - i * V;
    int32_t t = targets[i];
    float s = (t >= 0 && t < V) ? scale : 0.0f;
    float g = s * expf(cu_load(logits, idx) - lse[i]) - (j == t ? s : 0.0f);
    dlogits[idx] = cu_from_float<U>(g);
  }
}

extern "C" void gv_cuda_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits, const struct gv_tensor *logits,
                                 const struct gv_tensor *lse, const struct gv_tensor *targets, float scale)
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
        (const int32_t *)targets->data, M, V, scale);
    GV_CUDA_LAUNCH_CHECK();
  }));
}
