/* reduce.cu - the reductions, fills, copies and vector updates the optimizer and the
 * schedules need, on the CUDA backend, with the CPU backend's semantics
 * (runtime/cpu/elementwise.c): grid-stride kernels, fp32 math, f32 or bf16 storage.
 * - sumsq: squares summed in fp64 per thread, per block (shuffles), then one fp64 atomicAdd
 *   per block into cu_impl(be)->d_reduce; the value comes back through the pinned h_reduce
 *   after a stream synchronisation (the only entry here that synchronises). Block order
 *   varies, so the result may differ in the last fp64 bits from run to run;
 * - copy: same dtype is a device-to-device memcpy (dst == src: nothing); f32 <-> bf16
 *   converts, rounding to nearest even as gv_bf16_from_float;
 * - fill, axpy (y += alpha x), scale (x *= alpha): one dtype per call;
 * - copy2d: a strided 2-D copy (Ulysses' packing), cudaMemcpy2DAsync. */
#include "cuda/cu_common.cuh"

namespace {

// x: (n); *out += sum x^2 (fp64)
template <typename T>
__global__ void sumsq_kernel(double *out, const T *x, int64_t n)
{
  double s = 0.0;
  for (int64_t i = cu_tid(); i < n; i += cu_stride()) {
    float v = cu_load(x, i);
    s += (double)v * v;
  }
  s = cu_block_sum(s);
  if (threadIdx.x == 0) atomicAdd(out, s);
}

template <typename T>
__global__ void fill_kernel(T *x, int64_t n, float value)
{
  for (int64_t i = cu_tid(); i < n; i += cu_stride()) cu_store(x, i, value, 0);
}

// dst, src: (n), any two float dtypes
template <typename TD, typename TS>
__global__ void convert_kernel(TD *dst, const TS *src, int64_t n)
{
  for (int64_t i = cu_tid(); i < n; i += cu_stride()) cu_store(dst, i, cu_load(src, i), 0);
}

// y (+)= alpha * x (x == NULL: y *= alpha)
template <typename T>
__global__ void axpy_kernel(T *y, const T *x, int64_t n, float alpha)
{
  for (int64_t i = cu_tid(); i < n; i += cu_stride()) {
    if (x) cu_store(y, i, alpha * cu_load(x, i), 1);
    else cu_store(y, i, cu_load(y, i) * alpha, 0);
  }
}

void axpy_launch(struct gv_backend *be, const char *op, struct gv_tensor *y, float alpha,
                 const struct gv_tensor *x)
{
  int64_t n = gv_tensor_numel(y);
  cu_need_dtype(op, "x", x, y->dtype);
  if (n == 0) return;
  CU_DISPATCH(y->dtype, T,
              axpy_kernel<T><<<cu_blocks(be, n, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(y), cu_ptr<T>(x), n, alpha));
  GV_CUDA_LAUNCH_CHECK();
}

}  // namespace

extern "C" double gv_cuda_sumsq(struct gv_backend *be, const struct gv_tensor *x)
{
  struct gv_cuda *cu = cu_impl(be);
  int64_t n = gv_tensor_numel(x);
  GV_CUDA_CHECK(cudaMemsetAsync(cu->d_reduce, 0, sizeof(double), cu->stream));
  if (n > 0) {
    CU_DISPATCH(x->dtype, T,
                sumsq_kernel<T><<<cu_blocks(be, n, CU_THREADS), CU_THREADS, 0, cu->stream>>>(
                    cu->d_reduce, cu_ptr<T>(x), n));
    GV_CUDA_LAUNCH_CHECK();
  }
  GV_CUDA_CHECK(cudaMemcpyAsync(cu->h_reduce, cu->d_reduce, sizeof(double), cudaMemcpyDeviceToHost, cu->stream));
  GV_CUDA_CHECK(cudaStreamSynchronize(cu->stream));
  return *cu->h_reduce;
}

extern "C" void gv_cuda_fill(struct gv_backend *be, struct gv_tensor *x, float value)
{
  int64_t n = gv_tensor_numel(x);
  if (n == 0) return;
  CU_DISPATCH(x->dtype, T,
              fill_kernel<T><<<cu_blocks(be, n, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(x), n, value));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_copy(struct gv_backend *be, struct gv_tensor *dst, const struct gv_tensor *src)
{
  int64_t n = gv_tensor_numel(src);
  if (n == 0) return;
  if (dst->dtype == src->dtype) {
    if (dst->data != src->data)
      GV_CUDA_CHECK(cudaMemcpyAsync(dst->data, src->data, gv_tensor_bytes(src), cudaMemcpyDeviceToDevice,
                                    cu_stream(be)));
    return;
  }
  CU_DISPATCH(dst->dtype, TD,
              CU_DISPATCH(src->dtype, TS,
                          convert_kernel<TD, TS><<<cu_blocks(be, n, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                              cu_ptr<TD>(dst), cu_ptr<TS>(src), n)));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_axpy(struct gv_backend *be, struct gv_tensor *y, float alpha, const struct gv_tensor *x)
{
  axpy_launch(be, "axpy", y, alpha, x);
}

extern "C" void gv_cuda_scale(struct gv_backend *be, struct gv_tensor *x, float alpha)
{
  axpy_launch(be, "scale", x, alpha, NULL);
}

/* copy2d: one cudaMemcpy2DAsync on the compute stream (pitches in bytes; any dtype). */
extern "C" void gv_cuda_copy2d(struct gv_backend *be, void *dst, int64_t dst_ld, const void *src, int64_t src_ld,
                               int64_t rows, int64_t cols, enum gv_dtype dtype)
{
  size_t es = gv_dtype_size(dtype);
  if (rows == 0 || cols == 0) return;
  GV_CUDA_CHECK(cudaMemcpy2DAsync(dst, es * (size_t)dst_ld, src, es * (size_t)src_ld, es * (size_t)cols,
                                  (size_t)rows, cudaMemcpyDeviceToDevice, cu_stream(be)));
}

/* One device reduction per tensor, added on the host in their order. */
extern "C" double gv_cuda_sumsq_multi(struct gv_backend *be, const struct gv_tensor *xs, int count)
{
  double sq = 0.0;
  for (int i = 0; i < count; i++) sq += gv_cuda_sumsq(be, &xs[i]);
  return sq;
}
