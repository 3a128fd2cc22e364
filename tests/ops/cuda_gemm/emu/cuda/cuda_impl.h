/* cuda/cuda_impl.h (emulated) - stands in for runtime/cuda/cuda_impl.h when run.sh compiles
 * attention.cu, attention_tc.cu (with mma.h here for WMMA) and xent.cu as host C++: one std::thread per CUDA thread, blocks one after
 * another, std::barrier for __syncthreads and for each warp's shuffles, host memory as
 * device memory. Only what those two files use is here. A developer check of the kernels'
 * indexing, masking and synchronisation on a machine without a GPU, not a GPU substitute:
 * no memory model, no timing, no tensor cores. */
#pragma once
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include "gvrt.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __align__(x)

struct dim3 { unsigned x = 1, y = 1, z = 1; dim3() {} dim3(unsigned a, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
extern thread_local dim3 threadIdx, blockIdx;
extern thread_local unsigned emu_tid;   /* the thread's linear index in its block (warp = emu_tid / 32) */
extern dim3 blockDim, gridDim;
extern float *emu_dyn_smem;
extern std::barrier<> *emu_block_bar;
extern std::barrier<> *emu_warp_bar[32];
extern double emu_xchg[32][32];  /* one 8-byte slot per lane */
inline void __syncthreads() { emu_block_bar->arrive_and_wait(); }
template <typename V> V __shfl_xor_sync(unsigned, V v, int off)
{
  unsigned w = emu_tid / 32, l = emu_tid % 32;
  static_assert(sizeof(V) <= 8, "shuffles of up to 8 bytes");
  std::memcpy(&emu_xchg[w][l], &v, sizeof v);
  emu_warp_bar[w]->arrive_and_wait();
  V r;
  std::memcpy(&r, &emu_xchg[w][l ^ off], sizeof r);
  emu_warp_bar[w]->arrive_and_wait();
  return r;
}
inline void __syncwarp() { emu_warp_bar[emu_tid / 32]->arrive_and_wait(); }
inline float __expf(float x) { return expf(x); }
/* correctly rounded fp32 operations (run.sh compiles with -ffp-contract=off: no FMA) */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
struct uint4 { unsigned x, y, z, w; };
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
inline float atomicAdd(float *p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline double atomicAdd(double *p, double v) { return std::atomic_ref<double>(*p).fetch_add(v); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
inline void __trap() { abort(); }
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }
#include <math.h>

struct __nv_bfloat16 { uint16_t x; };
inline float __bfloat162float(__nv_bfloat16 h) { return gv_bf16_to_float(h.x); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {gv_bf16_from_float(f)}; }
/* bf16 atomic add as the hardware does it: read, add in fp32, round, compare-and-swap */
inline __nv_bfloat16 atomicAdd(__nv_bfloat16 *p, __nv_bfloat16 v)
{
  std::atomic_ref<uint16_t> a(p->x);
  uint16_t old = a.load();
  while (!a.compare_exchange_weak(old, gv_bf16_from_float(gv_bf16_to_float(old) + __bfloat162float(v)))) {}
  return {old};
}

typedef int cudaStream_t;
typedef int cudaError_t;
enum { cudaSuccess = 0, cudaFuncAttributeMaxDynamicSharedMemorySize = 1 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
inline int cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) { memmove(d, s, n); return 0; }
inline int cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) { memmove(d, s, n); return 0; }
inline int cudaMemcpy2DAsync(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h, cudaMemcpyKind,
                             cudaStream_t)
{
  for (size_t r = 0; r < h; r++) memcpy((char *)d + r * dp, (const char *)s + r * sp, w);
  return 0;
}
inline int cudaStreamSynchronize(cudaStream_t) { return 0; }
template <typename F> int cudaFuncSetAttribute(F, int, int) { return 0; }
inline int cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) { memset(p, v, n); return 0; }
#define GV_CUDA_CHECK(call) do { (void)(call); } while (0)
#define GV_CUDA_LAUNCH_CHECK() do { } while (0)

struct gv_cuda {
  int sm_count, attention_tc, cc_major;
  cudaStream_t stream;
  double *d_reduce, *h_reduce;
};
/* The emulated device's state: one, beside the CPU backend's own be->impl (the emulator's
 * backend is the CPU one with entries swapped, so its impl stays the CPU's). */
extern struct gv_cuda emu_cuda;
#define GV_CUDA_GEMM_WORKSPACE ((size_t)32 << 20)
static inline struct gv_cuda *cu_impl(struct gv_backend *) { return &emu_cuda; }
static inline cudaStream_t cu_stream(struct gv_backend *) { return 0; }

template <typename T> inline float cu_load(const T *p, int64_t i);
template <> inline float cu_load<float>(const float *p, int64_t i) { return p[i]; }
template <> inline float cu_load<__nv_bfloat16>(const __nv_bfloat16 *p, int64_t i) { return __bfloat162float(p[i]); }
template <typename T> inline T cu_from_float(float x);
template <> inline float cu_from_float<float>(float x) { return x; }
template <> inline __nv_bfloat16 cu_from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <typename T> inline void cu_store(T *p, int64_t i, float v, int acc) { p[i] = cu_from_float<T>(acc ? cu_load(p, i) + v : v); }

#define CU_DISPATCH(dtype, T, ...) do { \
    switch (dtype) { \
    case GV_DTYPE_F32: { typedef float T; __VA_ARGS__; } break; \
    case GV_DTYPE_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break; \
    default: gv_fatalf(__FILE__, __LINE__, "CU_DISPATCH", "gvrt", "bad dtype"); \
    } } while (0)

static inline int cu_blocks(struct gv_backend *be, int64_t n, int threads)
{
  int64_t b = (n + threads - 1) / threads, cap = (int64_t)cu_impl(be)->sm_count * 8;
  return (int)(b < 1 ? 1 : b > cap ? cap : b);
}
static inline int64_t cu_cols(const struct gv_tensor *t) { return t->shape[t->ndim - 1]; }
static inline int64_t cu_rows(const struct gv_tensor *t) { return cu_cols(t) ? gv_tensor_numel(t) / cu_cols(t) : 0; }

/* kernel<<<grid, block, smem, stream>>>(args) -> emu_launch(kernel, grid, block, smem, stream)(args) */
template <typename K> struct emu_launcher {
  K k; dim3 g; dim3 b; size_t smem;
  template <typename... A> void operator()(A... args)
  {
    unsigned nb = b.x * b.y * b.z;
    gridDim = g;
    blockDim = b;
    std::vector<float> dyn(smem / 4 + 1);
    for (unsigned bz = 0; bz < g.z; bz++)
      for (unsigned by = 0; by < g.y; by++)
        for (unsigned bx = 0; bx < g.x; bx++) {
          emu_dyn_smem = dyn.data();
          std::barrier<> bb((std::ptrdiff_t)nb);
          emu_block_bar = &bb;
          std::vector<std::barrier<> *> wb;
          for (unsigned w = 0; w < (nb + 31) / 32; w++) emu_warp_bar[w] = new std::barrier<>(32);
          std::vector<std::thread> th;
          for (unsigned t = 0; t < nb; t++)
            th.emplace_back([&, t] {
              emu_tid = t;
              threadIdx = dim3(t % b.x, t / b.x % b.y, t / (b.x * b.y));
              blockIdx = dim3(bx, by, bz);
              k(args...);
            });
          for (auto &x : th) x.join();
          for (unsigned w = 0; w < (nb + 31) / 32; w++) delete emu_warp_bar[w];
        }
  }
};
template <typename K> emu_launcher<K> emu_launch(K k, dim3 g, dim3 b, size_t smem, cudaStream_t)
{
  return emu_launcher<K>{k, g, b, smem};
}
