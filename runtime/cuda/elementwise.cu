/* elementwise.cu - activations (GELU erf/tanh, SiLU, SwiGLU), mul, residual add, the scalar
 * multiply-add (affine), column copies (slice/concat on the last dimension) and dropout
 * on the CUDA backend, with the CPU backend's semantics (runtime/cpu/elementwise.c):
 * - every op except dropout is one grid-stride kernel, map_kernel, parameterised by the
 *   element type and by a small functor giving out[i] from up to three inputs at i; math is
 *   fp32, stores go through cu_store so GV_ACC_DX selects = or +=;
 * - the two-output backwards (swiglu, mul) run one launch per output in the CPU's order
 *   (dup before dgate, da before db), so the same aliasing is allowed;
 * - dropout draws the CPU's Philox4x32-10 stream bit for bit: element e = offset + i uses
 *   lane e & 3 of philox(ctr = {e >> 2 (64-bit), 0, 0}, key = seed), kept when
 *   u32 >= p * 2^32; one thread per Philox block of 4 elements.
 *   all operands: the same shape and dtype (f32 or bf16) */
#include "cuda/cu_common.cuh"

namespace {

constexpr float SQRT_2_OVER_PI = 0.7978845608028654f, GELU_C = 0.044715f;

/* ---- scalar math (fp32, as the CPU reference) ---- */

__device__ __forceinline__ float gelu(float x, int tanh_form)
{
  if (tanh_form) return 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

__device__ __forceinline__ float gelu_grad(float x, int tanh_form)
{
  if (tanh_form) {
    float t = tanhf(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_C * x * x);
  }
  return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) + x * expf(-0.5f * x * x) * 0.3989422804014327f;
}

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float silu(float x) { return x * sigmoid(x); }
__device__ __forceinline__ float silu_grad(float x)
{
  float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

/* ---- functors: out[i] = f(a[i], b[i], c[i]) (unused inputs read as 0) ---- */

struct GeluFwd {
  int tanh_form;
  __device__ float operator()(float x, float, float) const { return gelu(x, tanh_form); }
};
struct GeluBwd {      /* (dy, x) */
  int tanh_form;
  __device__ float operator()(float dy, float x, float) const { return dy * gelu_grad(x, tanh_form); }
};
struct SiluFwd {
  __device__ float operator()(float x, float, float) const { return silu(x); }
};
struct SiluBwd {      /* (dy, x) */
  __device__ float operator()(float dy, float x, float) const { return dy * silu_grad(x); }
};
struct ReluFwd {
  __device__ float operator()(float x, float, float) const { return x > 0.0f ? x : 0.0f; }
};
struct ReluBwd {      /* (dy, x): 0 at 0, as the CPU */
  __device__ float operator()(float dy, float x, float) const { return x > 0.0f ? dy : 0.0f; }
};
struct SwigluFwd {    /* (gate, up) */
  __device__ float operator()(float g, float u, float) const { return silu(g) * u; }
};
struct SwigluDup {    /* (dy, gate) */
  __device__ float operator()(float dy, float g, float) const { return dy * silu(g); }
};
struct SwigluDgate {  /* (dy, up, gate): the CPU's dy * up * silu'(gate) */
  __device__ float operator()(float dy, float u, float g) const { return dy * u * silu_grad(g); }
};
struct Mul {
  __device__ float operator()(float a, float b, float) const { return a * b; }
};
struct Add {
  __device__ float operator()(float a, float b, float) const { return a + b; }
};
struct Copy {
  __device__ float operator()(float a, float, float) const { return a; }
};
struct Affine {       /* alpha x + beta */
  float alpha, beta;
  __device__ float operator()(float x, float, float) const { return alpha * x + beta; }
};

/* ---- the one elementwise kernel ---- */

// out, a, b, c: (n) in T; b, c may be NULL
template <typename T, typename F>
__global__ void map_kernel(T *out, const T *a, const T *b, const T *c, int64_t n, int acc, F f)
{
  for (int64_t i = cu_tid(); i < n; i += cu_stride())
    cu_store(out, i, f(cu_load(a, i), b ? cu_load(b, i) : 0.0f, c ? cu_load(c, i) : 0.0f), acc);
}

/* out = f(a, b, c) elementwise (= or += by acc); every operand has out's dtype. */
template <typename F>
void map(struct gv_backend *be, const char *op, struct gv_tensor *out, const struct gv_tensor *a,
         const struct gv_tensor *b, const struct gv_tensor *c, int acc, F f)
{
  int64_t n = gv_tensor_numel(out);
  cu_need_dtype(op, "input", a, out->dtype);
  cu_need_dtype(op, "input", b, out->dtype);
  cu_need_dtype(op, "input", c, out->dtype);
  if (n == 0) return;
  CU_DISPATCH(out->dtype, T,
              map_kernel<T, F><<<cu_blocks(be, n, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(out), cu_ptr<T>(a), cu_ptr<T>(b), cu_ptr<T>(c), n, acc, f));
  GV_CUDA_LAUNCH_CHECK();
}

/* ---- column copies ---- */

// dst[r, dc + j] (+)= src[r, sc + j] for r < M, j < n; one thread per copied element
template <typename T>
__global__ void copy_cols_kernel(T *dst, int64_t Nd, int64_t dc, const T *src, int64_t Ns, int64_t sc,
                                 int64_t M, int64_t n, int acc)
{
  for (int64_t k = cu_tid(); k < M * n; k += cu_stride()) {
    int64_t r = k / n, j = k % n;
    cu_store(dst, r * Nd + dc + j, cu_load(src, r * Ns + sc + j), acc);
  }
}

/* ---- dropout ---- */

constexpr uint32_t PHILOX_M0 = 0xD2511F53u, PHILOX_M1 = 0xCD9E8D57u;
constexpr uint32_t PHILOX_W0 = 0x9E3779B9u, PHILOX_W1 = 0xBB67AE85u;

/* Philox4x32-10, the same rounds as gv_philox4x32 (runtime/core/philox.c). */
__device__ __forceinline__ void philox4x32(uint32_t u[4], uint64_t blk, uint32_t k0, uint32_t k1)
{
  uint32_t c0 = (uint32_t)blk, c1 = (uint32_t)(blk >> 32), c2 = 0, c3 = 0;
  for (int r = 0; r < 10; r++) {
    uint32_t hi0 = __umulhi(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
    uint32_t hi1 = __umulhi(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  u[0] = c0, u[1] = c1, u[2] = c2, u[3] = c3;
}

// out, in: (n) = elements offset .. offset + n - 1 of the stream; blocks b0 .. b0 + nblk - 1
template <typename T>
__global__ void dropout_kernel(T *out, const T *in, int64_t n, uint64_t offset, uint64_t b0,
                               uint64_t nblk, uint32_t thresh, float inv, uint32_t k0, uint32_t k1,
                               int acc)
{
  for (int64_t j = cu_tid(); j < (int64_t)nblk; j += cu_stride()) {
    uint64_t blk = b0 + (uint64_t)j;
    uint32_t u[4];
    philox4x32(u, blk, k0, k1);
    for (int lane = 0; lane < 4; lane++) {
      uint64_t e = blk * 4 + (uint64_t)lane;
      if (e < offset || e >= offset + (uint64_t)n) continue;
      int64_t i = (int64_t)(e - offset);
      cu_store(out, i, u[lane] >= thresh ? cu_load(in, i) * inv : 0.0f, acc);
    }
  }
}

/* out = in * keep / (1 - p) (= or += by acc); p = 0 copies, as the CPU backend. */
void dropout_apply(struct gv_backend *be, const char *op, struct gv_tensor *out,
                   const struct gv_tensor *in, float p, uint64_t seed, uint64_t offset, int acc)
{
  int64_t n = gv_tensor_numel(in);
  if (p == 0.0f) {
    map(be, op, out, in, NULL, NULL, acc, Copy());
    return;
  }
  cu_need_dtype(op, "input", in, out->dtype);
  if (n == 0) return;
  double t = (double)p * 4294967296.0;
  uint32_t thresh = t >= 4294967295.0 ? 0xffffffffu : (uint32_t)t;
  float inv = 1.0f / (1.0f - p);
  uint64_t b0 = offset >> 2, b1 = (offset + (uint64_t)n + 3) >> 2;
  CU_DISPATCH(out->dtype, T,
              dropout_kernel<T><<<cu_blocks(be, (int64_t)(b1 - b0), CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(out), cu_ptr<T>(in), n, offset, b0, b1 - b0, thresh, inv, (uint32_t)seed,
                  (uint32_t)(seed >> 32), acc));
  GV_CUDA_LAUNCH_CHECK();
}

}  // namespace

/* ---- entry points ---- */

extern "C" void gv_cuda_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                                 int tanh_form)
{
  map(be, "gelu_fwd", y, x, NULL, NULL, 0, GeluFwd{tanh_form});
}

extern "C" void gv_cuda_gelu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                                 const struct gv_tensor *x, int tanh_form, int flags)
{
  map(be, "gelu_bwd", dx, dy, x, NULL, flags & GV_ACC_DX, GeluBwd{tanh_form});
}

/* An activation without options: NAME_fwd maps Fwd over x, NAME_bwd maps Bwd over (dy, x). */
#define CUDA_UNARY(NAME, Fwd, Bwd)                                                                            \
  extern "C" void gv_cuda_##NAME##_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x) \
  {                                                                                                           \
    map(be, #NAME "_fwd", y, x, NULL, NULL, 0, Fwd());                                                        \
  }                                                                                                           \
  extern "C" void gv_cuda_##NAME##_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy, \
                                       const struct gv_tensor *x, int flags)                                  \
  {                                                                                                           \
    map(be, #NAME "_bwd", dx, dy, x, NULL, flags & GV_ACC_DX, Bwd());                                         \
  }
CUDA_UNARY(silu, SiluFwd, SiluBwd)
CUDA_UNARY(relu, ReluFwd, ReluBwd)

/* y = silu(gate) * up */
extern "C" void gv_cuda_swiglu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *gate,
                                   const struct gv_tensor *up)
{
  map(be, "swiglu_fwd", y, gate, up, NULL, 0, SwigluFwd());
}

/* dup first, so dgate may alias dy, gate or up (the CPU's order and check). */
extern "C" void gv_cuda_swiglu_bwd(struct gv_backend *be, struct gv_tensor *dgate, struct gv_tensor *dup,
                                   const struct gv_tensor *dy, const struct gv_tensor *gate,
                                   const struct gv_tensor *up, int flags)
{
  void *pdu = dup ? dup->data : NULL;
  GV_CHECK(!(dgate && dup && (pdu == dy->data || pdu == gate->data || pdu == up->data)),
           "swiglu_bwd: dup may not alias dy, gate or up when dgate is wanted");
  if (dup) map(be, "swiglu_bwd", dup, dy, gate, NULL, flags & GV_ACC_DX, SwigluDup());
  if (dgate) map(be, "swiglu_bwd", dgate, dy, up, gate, flags & GV_ACC_DX, SwigluDgate());
}

extern "C" void gv_cuda_mul_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                                const struct gv_tensor *b)
{
  map(be, "mul_fwd", y, a, b, NULL, 0, Mul());
}

/* da first, so db may alias a, b or dy (the CPU's order and check). */
extern "C" void gv_cuda_mul_bwd(struct gv_backend *be, struct gv_tensor *da, struct gv_tensor *db,
                                const struct gv_tensor *dy, const struct gv_tensor *a,
                                const struct gv_tensor *b, int flags)
{
  void *pda = da ? da->data : NULL;
  GV_CHECK(!(da && db && (pda == a->data || pda == dy->data)), "mul_bwd: da may not alias a or dy when db is wanted");
  if (da) map(be, "mul_bwd", da, dy, b, NULL, flags & GV_ACC_DX, Mul());
  if (db) map(be, "mul_bwd", db, dy, a, NULL, flags & GV_ACC_DX, Mul());
}

extern "C" void gv_cuda_add_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                                const struct gv_tensor *b)
{
  map(be, "add_fwd", y, a, b, NULL, 0, Add());
}

extern "C" void gv_cuda_affine(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float alpha,
                               float beta, int flags)
{
  map(be, "affine", y, x, NULL, NULL, flags & GV_ACC_DX, Affine{alpha, beta});
}

extern "C" void gv_cuda_copy_cols(struct gv_backend *be, struct gv_tensor *dst, int64_t dst_col,
                                  const struct gv_tensor *src, int64_t src_col, int64_t n, int flags)
{
  int64_t Nd = dst->shape[dst->ndim - 1], Ns = src->shape[src->ndim - 1];
  int64_t M = Ns ? gv_tensor_numel(src) / Ns : 0;
  cu_need_dtype("copy_cols", "src", src, dst->dtype);
  if (M * n == 0) return;
  CU_DISPATCH(dst->dtype, T,
              copy_cols_kernel<T><<<cu_blocks(be, M * n, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(dst), Nd, dst_col, cu_ptr<T>(src), Ns, src_col, M, n, flags & GV_ACC_DX));
  GV_CUDA_LAUNCH_CHECK();
}

/* One thread per element of the patch rows [B, N, C p p]. */
template <typename T>
__global__ void patchify_kernel(T *rows, T *img, int64_t C, int64_t H, int64_t W, int64_t p, int64_t total, int inverse)
{
  int64_t K = C * p * p, nx = W / p, N = (H / p) * nx;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t k = e % K, n = (e / K) % N, b = e / (K * N), c = k / (p * p), i = (k / p) % p, j = k % p;
    int64_t m = ((b * C + c) * H + (n / nx) * p + i) * W + (n % nx) * p + j;
    if (inverse)
      img[m] = rows[e];
    else
      rows[e] = img[m];
  }
}

extern "C" void gv_cuda_patchify(struct gv_backend *be, struct gv_tensor *rows, struct gv_tensor *img, int64_t p,
                                 int inverse)
{
  int64_t total = gv_tensor_numel(rows);
  CU_DISPATCH(img->dtype, T,
              patchify_kernel<T><<<cu_blocks(be, total, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(rows), cu_ptr<T>(img), img->shape[1], img->shape[2], img->shape[3], p, total, inverse));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_dropout_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                                    float p, uint64_t seed, uint64_t offset)
{
  dropout_apply(be, "dropout_fwd", y, x, p, seed, offset, 0);
}

extern "C" void gv_cuda_dropout_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                                    float p, uint64_t seed, uint64_t offset, int flags)
{
  dropout_apply(be, "dropout_bwd", dx, dy, p, seed, offset, flags & GV_ACC_DX);
}
