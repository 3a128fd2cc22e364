/* cu_common.cuh - device helpers shared by the CUDA kernels of elementwise.cu, norm.cu,
 * rope.cu, embedding.cu and reduce.cu: grid-stride indexing, warp/block sums (shuffles, one
 * 32-slot shared array per type), typed data pointers that keep NULL, and the dtype checks
 * the kernels rely on (every float operand of one op has the op's dtype: mixed f32/bf16
 * operands are refused, the exceptions being mean/rstd, always f32, and copy).
 * Invariant: block sizes are multiples of 32 (cu_block_sum assumes whole warps). */
#ifndef GV_CU_COMMON_CUH
#define GV_CU_COMMON_CUH

#include "cuda/cuda_impl.h"

enum { CU_THREADS = 256 };

/* ---- indexing ---- */

__device__ __forceinline__ int64_t cu_tid() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t cu_stride() { return (int64_t)gridDim.x * blockDim.x; }

/* ---- reductions inside a warp / a block ---- */

template <typename A> __device__ __forceinline__ A cu_warp_sum(A v)
{
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/* Sum of v over the block, returned to every thread. Every thread of the block must call it
 * (it synchronises); safe to call several times in a row. */
template <typename A> __device__ A cu_block_sum(A v)
{
  __shared__ A part[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
  v = cu_warp_sum(v);
  __syncthreads();                          /* part[] of a previous call has been read */
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < nwarps ? part[lane] : (A)0;
    v = cu_warp_sum(v);
    if (lane == 0) part[0] = v;
  }
  __syncthreads();
  return part[0];
}

/* ---- host side: pointers and dtype checks ---- */

template <typename T> static inline T *cu_ptr(const struct gv_tensor *t)
{
  return t ? (T *)t->data : nullptr;
}

/* t (when given) must have dtype dt; names the op and the operand otherwise. */
static inline void cu_need_dtype(const char *op, const char *name, const struct gv_tensor *t,
                                 enum gv_dtype dt)
{
  GV_CHECK(!t || t->dtype == dt, "cuda %s: %s is %s, the op computes in %s (mixed dtypes are not supported)",
           op, name, gv_dtype_name(t->dtype), gv_dtype_name(dt));
}

#endif
