/* cuda_impl.h - internal to the CUDA backend (C++ via nvcc, C linkage outward): the
 * backend's private state, the check macros for CUDA and cuBLAS(Lt) calls, the dtype
 * dispatch that instantiates every kernel once per element type (float, bf16), and the
 * entry points the table in backend.cu points to, one group per file.
 *
 * Conventions (the same contracts as the CPU backend, docs/runtime.md):
 *  - every kernel runs on the backend's one compute stream (cu_stream(be)); nothing
 *    synchronises except sync, sumsq (returns a host value) and copy_bytes D2H;
 *  - kernels never allocate: scratch comes from be->workspace (the plan's workspace);
 *  - math is fp32 inside every kernel; bf16 is a storage type (load -> float -> store);
 *  - GV_ACC_DX / GV_ACC_DW select dst += grad instead of dst = grad, per output. */
#ifndef GV_CUDA_IMPL_H
#define GV_CUDA_IMPL_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "gvrt.h"

/* ---- check macros: every CUDA / cuBLAS call goes through one of these ---- */

#define GV_CUDA_CHECK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) \
      gv_fatal(__FILE__, __LINE__, #call, "cuda", cudaGetErrorString(e_)); } while (0)
#define GV_CUBLAS_CHECK(call) do { cublasStatus_t s_ = (call); if (s_ != CUBLAS_STATUS_SUCCESS) \
      gv_fatal(__FILE__, __LINE__, #call, "cublas", cublasGetStatusString(s_)); } while (0)
/* After a kernel launch: launch-configuration errors (not asynchronous faults). */
#define GV_CUDA_LAUNCH_CHECK() GV_CUDA_CHECK(cudaGetLastError())

/* ---- the backend's private state (be->impl) ---- */

struct gv_cuda {
  int device;
  int sm_count;
  int cc_major, cc_minor;
  cudaStream_t stream;              /* the compute stream */
  cublasHandle_t blas;
  cublasLtHandle_t lt;
  double *d_reduce;                 /* one fp64 accumulator (sumsq) */
  double *h_reduce;                 /* its pinned host mirror */
  struct gv_cuda_gemm_cache *gemm;  /* cuBLASLt algorithms by shape (linear.cu) */
  int attention_tc;                 /* bf16 attention on tensor cores (attention_tc.cu): GV_CUDA_ATTENTION=tc */
};

static inline struct gv_cuda *cu_impl(struct gv_backend *be) { return (struct gv_cuda *)be->impl; }
static inline cudaStream_t cu_stream(struct gv_backend *be) { return cu_impl(be)->stream; }

/* ---- dtype dispatch: write a kernel once as a template over T, launch it through
 * CU_DISPATCH(dtype, T, body), which instantiates body for float and __nv_bfloat16. ---- */

template <typename T> __device__ __forceinline__ float cu_load(const T *p, int64_t i);
template <> __device__ __forceinline__ float cu_load<float>(const float *p, int64_t i) { return p[i]; }
template <> __device__ __forceinline__ float cu_load<__nv_bfloat16>(const __nv_bfloat16 *p, int64_t i)
{
  return __bfloat162float(p[i]);
}
template <typename T> __device__ __forceinline__ T cu_from_float(float x);
template <> __device__ __forceinline__ float cu_from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 cu_from_float<__nv_bfloat16>(float x)
{
  return __float2bfloat16_rn(x);
}
/* dst[i] = v, or dst[i] += v when acc (the GV_ACC_* contract). */
template <typename T> __device__ __forceinline__ void cu_store(T *p, int64_t i, float v, int acc)
{
  p[i] = cu_from_float<T>(acc ? cu_load(p, i) + v : v);
}

#define CU_DISPATCH(dtype, T, ...) do { \
    switch (dtype) { \
    case GV_DTYPE_F32: { typedef float T; __VA_ARGS__; } break; \
    case GV_DTYPE_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break; \
    default: gv_fatalf(__FILE__, __LINE__, "CU_DISPATCH", "gvrt", \
                       "cuda backend: unsupported dtype %s", gv_dtype_name(dtype)); \
    } } while (0)

/* Launch geometry for n independent elements: grid-stride loops, at most 8 blocks/SM. */
static inline int cu_blocks(struct gv_backend *be, int64_t n, int threads)
{
  int64_t b = (n + threads - 1) / threads, cap = (int64_t)cu_impl(be)->sm_count * 8;
  return (int)(b < 1 ? 1 : b > cap ? cap : b);
}

static inline int64_t cu_cols(const struct gv_tensor *t) { return t->shape[t->ndim - 1]; }
static inline int64_t cu_rows(const struct gv_tensor *t)
{
  return cu_cols(t) ? gv_tensor_numel(t) / cu_cols(t) : 0;
}

/* ---- entry points of the table (extern "C": backend.cu lists them) ---- */

extern "C" {
extern const struct gv_backend_ops gv_cuda_ops;

/* linear.cu: cuBLASLt GEMMs (bias in the epilogue), fp32 accumulation */
void gv_cuda_linear_init(struct gv_backend *be);
void gv_cuda_linear_shutdown(struct gv_backend *be);
void gv_cuda_linear_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                        const struct gv_tensor *w, const struct gv_tensor *b);
void gv_cuda_linear_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                        struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                        const struct gv_tensor *w, int flags);
void gv_cuda_linear_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *pre,
                             const struct gv_tensor *x, const struct gv_tensor *w, const struct gv_tensor *b);
void gv_cuda_linear_dgelu_bwd(struct gv_backend *be, struct gv_tensor *dpre, struct gv_tensor *dw,
                              struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                              const struct gv_tensor *w, const struct gv_tensor *pre, int flags);
/* embedding.cu */
void gv_cuda_embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                           const struct gv_tensor *table, int64_t pos_offset, int accumulate);
void gv_cuda_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable, const struct gv_tensor *dy,
                           const struct gv_tensor *ids, int64_t pos_offset, int flags);
void gv_cuda_embedding_shard_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                                 const struct gv_tensor *table, int64_t lo);
void gv_cuda_embedding_shard_bwd(struct gv_backend *be, struct gv_tensor *dtable, const struct gv_tensor *dy,
                                 const struct gv_tensor *ids, int64_t lo, int flags);
/* norm.cu */
void gv_cuda_layernorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *mean,
                           struct gv_tensor *rstd, const struct gv_tensor *x, const struct gv_tensor *w,
                           const struct gv_tensor *b, float eps);
void gv_cuda_layernorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                           struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                           const struct gv_tensor *w, const struct gv_tensor *mean,
                           const struct gv_tensor *rstd, int flags);
void gv_cuda_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *rstd,
                         const struct gv_tensor *x, const struct gv_tensor *w, float eps);
void gv_cuda_add_layernorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *mean,
                               struct gv_tensor *rstd, const struct gv_tensor *a, const struct gv_tensor *b,
                               const struct gv_tensor *w, const struct gv_tensor *bias, float eps);
void gv_cuda_add_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *rstd,
                             const struct gv_tensor *a, const struct gv_tensor *b, const struct gv_tensor *w, float eps);
void gv_cuda_rmsnorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                         const struct gv_tensor *dy, const struct gv_tensor *x, const struct gv_tensor *w,
                         const struct gv_tensor *rstd, int flags);
/* elementwise.cu: activations, products, residual add, dropout (Philox, as the CPU backend) */
void gv_cuda_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, int tanh_form);
void gv_cuda_gelu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                      const struct gv_tensor *x, int tanh_form, int flags);
void gv_cuda_relu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
void gv_cuda_relu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                      const struct gv_tensor *x, int flags);
void gv_cuda_silu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
void gv_cuda_silu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                      const struct gv_tensor *x, int flags);
void gv_cuda_swiglu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *gate,
                        const struct gv_tensor *up);
void gv_cuda_swiglu_bwd(struct gv_backend *be, struct gv_tensor *dgate, struct gv_tensor *dup,
                        const struct gv_tensor *dy, const struct gv_tensor *gate,
                        const struct gv_tensor *up, int flags);
void gv_cuda_mul_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                     const struct gv_tensor *b);
void gv_cuda_mul_bwd(struct gv_backend *be, struct gv_tensor *da, struct gv_tensor *db,
                     const struct gv_tensor *dy, const struct gv_tensor *a, const struct gv_tensor *b,
                     int flags);
void gv_cuda_add_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                     const struct gv_tensor *b);
void gv_cuda_dropout_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float p,
                         uint64_t seed, uint64_t offset);
void gv_cuda_dropout_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                         float p, uint64_t seed, uint64_t offset, int flags);
void gv_cuda_affine(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float alpha, float beta,
                    int flags);
void gv_cuda_copy_cols(struct gv_backend *be, struct gv_tensor *dst, int64_t dst_col, const struct gv_tensor *src,
                       int64_t src_col, int64_t n, int flags);
void gv_cuda_patchify(struct gv_backend *be, struct gv_tensor *rows, struct gv_tensor *img, int64_t patch, int inverse);
/* softmax.cu */
void gv_cuda_softmax_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
void gv_cuda_softmax_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                         const struct gv_tensor *y, int flags);
/* rope.cu */
void gv_cuda_rope_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float base,
                      int64_t rot_dim, int64_t pos_offset);
void gv_cuda_rope_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                      float base, int64_t rot_dim, int64_t pos_offset, int flags);
/* attention.cu: FlashAttention-2-style fused attention (no T x T matrix), MHA/GQA */
/* The cuBLASLt workspace the GEMMs use at most (linear.cu): part of the plan's workspace. */
#define GV_CUDA_GEMM_WORKSPACE ((size_t)32 << 20)
size_t gv_cuda_attention_workspace(struct gv_backend *be, int64_t B, int64_t T, int64_t S, int64_t H,
                                   int64_t KV, int64_t D);
void gv_cuda_attention_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                           const struct gv_tensor *q, const struct gv_tensor *k,
                           const struct gv_tensor *v, int causal, const struct gv_attn_opts *x);
void gv_cuda_attention_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                           struct gv_tensor *dv, const struct gv_tensor *dout, const struct gv_tensor *q,
                           const struct gv_tensor *k, const struct gv_tensor *v,
                           const struct gv_tensor *o, const struct gv_tensor *lse, int causal,
                           int flags, const struct gv_attn_opts *x);
void gv_cuda_attention_merge(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                             const struct gv_tensor *ob, const struct gv_tensor *lseb);
/* xent.cu: fused softmax cross-entropy (online logsumexp; probabilities never stored) */
void gv_cuda_xent_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                      const struct gv_tensor *logits, const struct gv_tensor *targets, float scale);
void gv_cuda_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits, const struct gv_tensor *logits,
                      const struct gv_tensor *lse, const struct gv_tensor *targets, float scale);
void gv_cuda_xent_shard_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                            struct gv_tensor *part, const struct gv_tensor *logits,
                            const struct gv_tensor *targets, int64_t lo, float scale, int stage);
void gv_cuda_xent_shard_bwd(struct gv_backend *be, struct gv_tensor *dlogits, const struct gv_tensor *logits,
                            const struct gv_tensor *lse, const struct gv_tensor *targets, int64_t lo,
                            float scale);
/* reduce.cu: reductions, fills, copies (f32 <-> bf16), axpy, scale */
double gv_cuda_sumsq(struct gv_backend *be, const struct gv_tensor *x);
double gv_cuda_sumsq_multi(struct gv_backend *be, const struct gv_tensor *xs, int count);
void gv_cuda_fill(struct gv_backend *be, struct gv_tensor *x, float value);
void gv_cuda_copy(struct gv_backend *be, struct gv_tensor *dst, const struct gv_tensor *src);
void gv_cuda_axpy(struct gv_backend *be, struct gv_tensor *y, float alpha, const struct gv_tensor *x);
void gv_cuda_scale(struct gv_backend *be, struct gv_tensor *x, float alpha);
void gv_cuda_copy2d(struct gv_backend *be, void *dst, int64_t dst_ld, const void *src, int64_t src_ld,
                    int64_t rows, int64_t cols, enum gv_dtype dtype);
/* optim.cu: AdamW, one fused multi-tensor kernel (the formula of runtime/optim/adamw.c) */
void gv_cuda_adamw_multi(struct gv_backend *be, const struct gv_adamw *opt, const struct gv_adamw_tensor *ts, int nt,
                         enum gv_dtype gdt, int t, float lr, float gscale);
}

/* moe.cu: mixture of experts (routing scratch in be->workspace) */
extern "C" void gv_cuda_topk(struct gv_backend *be, struct gv_tensor *idx, const struct gv_tensor *x);
extern "C" void gv_cuda_take_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                                 const struct gv_tensor *idx);
extern "C" void gv_cuda_take_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                                 const struct gv_tensor *idx, int flags);
extern "C" void gv_cuda_moe_permute_fwd(struct gv_backend *be, struct gv_tensor *xp, const struct gv_tensor *x,
                                        const struct gv_tensor *idx, int64_t E);
extern "C" void gv_cuda_moe_permute_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dxp,
                                        const struct gv_tensor *idx, int64_t E, int flags);
extern "C" void gv_cuda_moe_grouped_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                                        const struct gv_tensor *w, const struct gv_tensor *idx);
extern "C" void gv_cuda_moe_grouped_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                                        const struct gv_tensor *dy, const struct gv_tensor *x,
                                        const struct gv_tensor *w, const struct gv_tensor *idx, int flags);
extern "C" void gv_cuda_moe_unpermute_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *yp,
                                          const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t E);
extern "C" void gv_cuda_moe_unpermute_bwd(struct gv_backend *be, struct gv_tensor *dyp, struct gv_tensor *dgates,
                                          const struct gv_tensor *dy, const struct gv_tensor *yp,
                                          const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t E,
                                          int flags);
extern "C" void gv_cuda_moe_aux_fwd(struct gv_backend *be, struct gv_tensor *loss, const struct gv_tensor *probs,
                                    const struct gv_tensor *idx, float scale);
extern "C" void gv_cuda_moe_aux_bwd(struct gv_backend *be, struct gv_tensor *dprobs, const struct gv_tensor *idx,
                                    float scale, int flags);

#endif
