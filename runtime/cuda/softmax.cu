/* softmax.cu - softmax over the last dimension on the CUDA backend, with the CPU backend's
 * semantics (runtime/cpu/softmax.c): y = exp(x - max) / sum in fp32; backward
 * dx (+)= y (dy - <dy, y>). One block per row (grid-stride over rows), block max and sums by
 * warp shuffles; each thread writes only the elements it read, after the block reductions,
 * so y may alias x and dx may alias dy.
 *   x, y, dy, dx: (M,N) row-major, one dtype (f32 or bf16) */
#include "cuda/cu_common.cuh"

namespace {

/* Max of v over the block, returned to every thread (every thread must call it). */
__device__ float block_max(float v)
{
  __shared__ float part[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < nwarps ? part[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) part[0] = v;
  }
  __syncthreads();
  return part[0];
}

template <typename T>
__global__ void softmax_fwd_kernel(T *y, const T *x, int64_t M, int64_t N)
{
  for (int64_t row = blockIdx.x; row < M; row += gridDim.x) {
    const T *xr = x + row * N;
    T *yr = y + row * N;
    float mx = -INFINITY, s = 0.0f;
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) mx = fmaxf(mx, cu_load(xr, j));
    mx = block_max(mx);
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) s += expf(cu_load(xr, j) - mx);
    float inv = 1.0f / cu_block_sum(s);
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) cu_store(yr, j, expf(cu_load(xr, j) - mx) * inv, 0);
  }
}

template <typename T>
__global__ void softmax_bwd_kernel(T *dx, const T *dy, const T *y, int64_t M, int64_t N, int acc)
{
  for (int64_t row = blockIdx.x; row < M; row += gridDim.x) {
    const T *dyr = dy + row * N, *yr = y + row * N;
    T *dxr = dx + row * N;
    float dot = 0.0f;
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) dot += cu_load(dyr, j) * cu_load(yr, j);
    dot = cu_block_sum(dot);
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x)
      cu_store(dxr, j, cu_load(yr, j) * (cu_load(dyr, j) - dot), acc);
  }
}

int64_t rows_of(const struct gv_tensor *t, int64_t N) { return N ? gv_tensor_numel(t) / N : 0; }

}  // namespace

extern "C" void gv_cuda_softmax_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x)
{
  int64_t N = x->shape[x->ndim - 1], M = rows_of(x, N);
  cu_need_dtype("softmax_fwd", "x", x, y->dtype);
  if (M * N == 0) return;
  unsigned grid = (unsigned)(M < 65535 ? M : 65535);
  CU_DISPATCH(y->dtype, T,
              softmax_fwd_kernel<T><<<grid, CU_THREADS, 0, cu_stream(be)>>>(cu_ptr<T>(y), cu_ptr<T>(x), M, N));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_softmax_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                                    const struct gv_tensor *y, int flags)
{
  int64_t N = y->shape[y->ndim - 1], M = rows_of(y, N);
  cu_need_dtype("softmax_bwd", "dy", dy, dx->dtype);
  cu_need_dtype("softmax_bwd", "y", y, dx->dtype);
  if (M * N == 0) return;
  unsigned grid = (unsigned)(M < 65535 ? M : 65535);
  CU_DISPATCH(dx->dtype, T,
              softmax_bwd_kernel<T><<<grid, CU_THREADS, 0, cu_stream(be)>>>(cu_ptr<T>(dx), cu_ptr<T>(dy), cu_ptr<T>(y),
                                                                          M, N, flags & GV_ACC_DX));
  GV_CUDA_LAUNCH_CHECK();
}
