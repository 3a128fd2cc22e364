/* cpu.h - internal to the CPU backend: its table (registered by core/backend.c), its state,
 * and the kernels the table points to. CPU compute is fp32 and every kernel is written once,
 * for float. bf16 tensors are emulated (bf16.c): the table points to wrappers that pass f32
 * calls straight through and run bf16 calls as widen to f32 scratch, the f32 kernel, round
 * each output once. Shapes were checked by core/ops.c; kernels only check dtypes (cpu_f32)
 * and index ranges. */
#ifndef GV_CPU_H
#define GV_CPU_H

#include <string.h>

#include "gvrt.h"

extern const struct gv_backend_ops gv_cpu_ops;

/* be->impl of a CPU backend: the f32 scratch of the bf16 emulation (bf16.c), grown on
 * demand, reused across calls, freed by the backend's shutdown. */
struct gv_cpu {
  float *scratch;
  size_t scratch_floats;
};

/* The float data of t, fatal unless t is f32 (NULL stays NULL). The table's bf16.c wrappers
 * hand the kernels f32 views, so a bf16 tensor reaches this only past them. */
static inline float *cpu_f32(const struct gv_tensor *t)
{
  if (!t) return NULL;
  GV_CHECK(t->dtype == GV_DTYPE_F32, "cpu kernels compute in f32; got a %s tensor (bf16 goes through bf16.c)",
           gv_dtype_name(t->dtype));
  return (float *)t->data;
}

static inline int64_t cpu_cols(const struct gv_tensor *t) { return t->shape[t->ndim - 1]; }
static inline int64_t cpu_rows(const struct gv_tensor *t)
{
  return cpu_cols(t) ? gv_tensor_numel(t) / cpu_cols(t) : 0;
}

/* Hot loops are compiled for baseline x86-64, x86-64-v3 (AVX2+FMA) and x86-64-v4 (AVX-512)
 * and the best is picked at load time (function multiversioning, an ifunc), so the build
 * stays portable (no -march) yet uses the host's vector width. GV_NO_CLONES turns it off.
 * A helper that a cloned function calls is not cloned with it (and GCC does not inline it there):
 * a static per-row helper of a hot loop needs CPU_CLONES of its own, or it runs baseline SSE2
 * (`nm` lists clones as NAME.arch_x86_64_v3 / .arch_x86_64_v4). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(GV_NO_CLONES)
#define CPU_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define CPU_CLONES
#endif

/* OpenMP thread count and id (1 and 0 when built without OpenMP). */
#ifdef _OPENMP
#include <omp.h>
static inline int cpu_max_threads(void) { return omp_get_max_threads(); }
static inline int cpu_thread_id(void) { return omp_get_thread_num(); }
#else
static inline int cpu_max_threads(void) { return 1; }
static inline int cpu_thread_id(void) { return 0; }
#endif

/* exp(x) for float in plain arithmetic so loops over it vectorise (libm's expf does not;
 * the clamps need -fno-trapping-math to if-convert):
 * Cephes' range reduction x = n ln2 + r and degree-6 polynomial, within 2 ulp of expf on
 * [-87, 88]; inputs are clamped to that range (exp(-inf) gives ~1e-38, not 0). A NaN stays
 * NaN: the exponent is taken from 0 for it (converting NaN to int is undefined), the
 * polynomial carries the NaN. */
static inline float cpu_expf(float x)
{
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  float fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  /* round to nearest */
  int32_t n = (int32_t)(fn == fn ? fn : 0.0f);
  float r = x - fn * 0.693359375f + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, 4);
  return p * scale;
}

/* tanh through cpu_expf: 1 - 2 / (exp(2x) + 1), exact at both saturations. */
static inline float cpu_tanhf(float x) { return 1.0f - 2.0f / (cpu_expf(2.0f * x) + 1.0f); }

/* Whether n floats at a and n at b share memory (NULL shares nothing): a kernel whose
 * second loop reads what its first may overwrite waits for the first to finish. */
static inline int cpu_overlap(const float *a, const float *b, int64_t n)
{
  return a && b && a < b + n && b < a + n;
}

/* dst = v or dst += v, the accumulate convention of every backward. */
static inline void cpu_store(float *dst, float v, int acc) { *dst = acc ? *dst + v : v; }

/* C (M,N) = alpha op(A) op(B) + beta C, row-major, through OpenBLAS sgemm with the M rows
 * split among the OpenMP threads (each calls single-threaded sgemm on its slice). The CPU
 * backend keeps OpenBLAS single-threaded (cpu_init) so that only one thread pool exists: an
 * OpenMP pool spinning beside OpenBLAS's own threads halves GEMM speed on a small machine. */
void gv_cpu_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc);

/* Column sums of a [rows, cols] matrix into out[cols] (= or +=); parallel over columns. */
void gv_cpu_colsum(float *out, const float *m, int64_t rows, int64_t cols, int acc);

/* linear.c */
void gv_cpu_linear_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                       const struct gv_tensor *w, const struct gv_tensor *b);
void gv_cpu_linear_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                       struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                       const struct gv_tensor *w, int flags);
/* embedding.c */
void gv_cpu_embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                          const struct gv_tensor *table, int64_t pos_offset, int accumulate);
void gv_cpu_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                          const struct gv_tensor *dy, const struct gv_tensor *ids,
                          int64_t pos_offset, int flags);
void gv_cpu_embedding_shard_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                                const struct gv_tensor *table, int64_t lo);
void gv_cpu_embedding_shard_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                                const struct gv_tensor *dy, const struct gv_tensor *ids, int64_t lo,
                                int flags);
/* norm.c */
void gv_cpu_layernorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *mean,
                          struct gv_tensor *rstd, const struct gv_tensor *x,
                          const struct gv_tensor *w, const struct gv_tensor *b, float eps);
void gv_cpu_layernorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                          struct gv_tensor *db, const struct gv_tensor *dy,
                          const struct gv_tensor *x, const struct gv_tensor *w,
                          const struct gv_tensor *mean, const struct gv_tensor *rstd, int flags);
void gv_cpu_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *rstd,
                        const struct gv_tensor *x, const struct gv_tensor *w, float eps);
void gv_cpu_rmsnorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                        const struct gv_tensor *dy, const struct gv_tensor *x,
                        const struct gv_tensor *w, const struct gv_tensor *rstd, int flags);
/* the residual add + norm in one pass over the rows (f32; bf16: as the parts) */
void gv_cpu_add_layernorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y,
                              struct gv_tensor *mean, struct gv_tensor *rstd, const struct gv_tensor *a,
                              const struct gv_tensor *b, const struct gv_tensor *w,
                              const struct gv_tensor *bias, float eps);
void gv_cpu_add_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y,
                            struct gv_tensor *rstd, const struct gv_tensor *a, const struct gv_tensor *b,
                            const struct gv_tensor *w, float eps);
/* elementwise.c */
void gv_cpu_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                     int tanh_form);
void gv_cpu_gelu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                     const struct gv_tensor *x, int tanh_form, int flags);
void gv_cpu_relu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
void gv_cpu_relu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                     const struct gv_tensor *x, int flags);
void gv_cpu_silu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
void gv_cpu_silu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                     const struct gv_tensor *x, int flags);
void gv_cpu_swiglu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *gate,
                       const struct gv_tensor *up);
void gv_cpu_swiglu_bwd(struct gv_backend *be, struct gv_tensor *dgate, struct gv_tensor *dup,
                       const struct gv_tensor *dy, const struct gv_tensor *gate,
                       const struct gv_tensor *up, int flags);
void gv_cpu_mul_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                    const struct gv_tensor *b);
void gv_cpu_mul_bwd(struct gv_backend *be, struct gv_tensor *da, struct gv_tensor *db,
                    const struct gv_tensor *dy, const struct gv_tensor *a,
                    const struct gv_tensor *b, int flags);
void gv_cpu_add_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                    const struct gv_tensor *b);
void gv_cpu_dropout_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                        float p, uint64_t seed, uint64_t offset);
void gv_cpu_dropout_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                        float p, uint64_t seed, uint64_t offset, int flags);
double gv_cpu_sumsq(struct gv_backend *be, const struct gv_tensor *x);
void gv_cpu_fill(struct gv_backend *be, struct gv_tensor *x, float value);
void gv_cpu_copy(struct gv_backend *be, struct gv_tensor *dst, const struct gv_tensor *src);
void gv_cpu_axpy(struct gv_backend *be, struct gv_tensor *y, float alpha,
                 const struct gv_tensor *x);
void gv_cpu_scale(struct gv_backend *be, struct gv_tensor *x, float alpha);
void gv_cpu_copy2d(struct gv_backend *be, void *dst, int64_t dst_ld, const void *src, int64_t src_ld,
                   int64_t rows, int64_t cols, enum gv_dtype dtype);
void gv_cpu_affine(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float alpha, float beta,
                   int flags);
void gv_cpu_copy_cols(struct gv_backend *be, struct gv_tensor *dst, int64_t dst_col, const struct gv_tensor *src,
                      int64_t src_col, int64_t n, int flags);
void gv_cpu_patchify(struct gv_backend *be, struct gv_tensor *rows, struct gv_tensor *img, int64_t patch, int inverse);
/* softmax.c */
void gv_cpu_softmax_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
void gv_cpu_softmax_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                        const struct gv_tensor *y, int flags);
/* rope.c */
void gv_cpu_rope_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                     float base, int64_t rot_dim, int64_t pos_offset);
void gv_cpu_rope_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                     float base, int64_t rot_dim, int64_t pos_offset, int flags);
/* attention.c (attention_merge: f32 only, as ring attention runs) */
void gv_cpu_attention_merge(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                            const struct gv_tensor *ob, const struct gv_tensor *lseb);
size_t gv_cpu_attention_workspace(struct gv_backend *be, int64_t B, int64_t T, int64_t S,
                                  int64_t H, int64_t KV, int64_t D);
void gv_cpu_attention_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                          const struct gv_tensor *q, const struct gv_tensor *k,
                          const struct gv_tensor *v, int causal, const struct gv_attn_opts *x);
void gv_cpu_attention_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                          struct gv_tensor *dv, const struct gv_tensor *dout,
                          const struct gv_tensor *q, const struct gv_tensor *k,
                          const struct gv_tensor *v, const struct gv_tensor *o,
                          const struct gv_tensor *lse, int causal, int flags, const struct gv_attn_opts *x);
/* xent.c */
void gv_cpu_xent_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                     const struct gv_tensor *logits, const struct gv_tensor *targets, float scale);
void gv_cpu_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                     const struct gv_tensor *logits, const struct gv_tensor *lse,
                     const struct gv_tensor *targets, float scale);
void gv_cpu_xent_shard_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                           struct gv_tensor *part, const struct gv_tensor *logits,
                           const struct gv_tensor *targets, int64_t lo, float scale, int stage);
void gv_cpu_xent_shard_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                           const struct gv_tensor *logits, const struct gv_tensor *lse,
                           const struct gv_tensor *targets, int64_t lo, float scale);
/* moe.c: mixture of experts (bf16.c wraps every one of them) */
void gv_cpu_topk(struct gv_backend *be, struct gv_tensor *idx, const struct gv_tensor *x);
void gv_cpu_take_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                     const struct gv_tensor *idx);
void gv_cpu_take_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                     const struct gv_tensor *idx, int flags);
void gv_cpu_moe_permute_fwd(struct gv_backend *be, struct gv_tensor *xp, const struct gv_tensor *x,
                            const struct gv_tensor *idx, int64_t E);
void gv_cpu_moe_permute_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dxp,
                            const struct gv_tensor *idx, int64_t E, int flags);
void gv_cpu_moe_grouped_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                            const struct gv_tensor *w, const struct gv_tensor *idx);
void gv_cpu_moe_grouped_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                            const struct gv_tensor *dy, const struct gv_tensor *x, const struct gv_tensor *w,
                            const struct gv_tensor *idx, int flags);
void gv_cpu_moe_unpermute_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *yp,
                              const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t E);
void gv_cpu_moe_unpermute_bwd(struct gv_backend *be, struct gv_tensor *dyp, struct gv_tensor *dgates,
                              const struct gv_tensor *dy, const struct gv_tensor *yp, const struct gv_tensor *gates,
                              const struct gv_tensor *idx, int64_t E, int flags);
void gv_cpu_moe_aux_fwd(struct gv_backend *be, struct gv_tensor *loss, const struct gv_tensor *probs,
                        const struct gv_tensor *idx, float scale);
void gv_cpu_moe_aux_bwd(struct gv_backend *be, struct gv_tensor *dprobs, const struct gv_tensor *idx, float scale,
                        int flags);
void gv_cpu_bf16_topk(struct gv_backend *be, struct gv_tensor *idx, const struct gv_tensor *x);
void gv_cpu_bf16_take_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                          const struct gv_tensor *idx);
void gv_cpu_bf16_take_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                          const struct gv_tensor *idx, int flags);
void gv_cpu_bf16_moe_permute_fwd(struct gv_backend *be, struct gv_tensor *xp, const struct gv_tensor *x,
                                 const struct gv_tensor *idx, int64_t E);
void gv_cpu_bf16_moe_permute_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dxp,
                                 const struct gv_tensor *idx, int64_t E, int flags);
void gv_cpu_bf16_moe_grouped_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                                 const struct gv_tensor *w, const struct gv_tensor *idx);
void gv_cpu_bf16_moe_grouped_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                                 const struct gv_tensor *dy, const struct gv_tensor *x, const struct gv_tensor *w,
                                 const struct gv_tensor *idx, int flags);
void gv_cpu_bf16_moe_unpermute_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *yp,
                                   const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t E);
void gv_cpu_bf16_moe_unpermute_bwd(struct gv_backend *be, struct gv_tensor *dyp, struct gv_tensor *dgates,
                                   const struct gv_tensor *dy, const struct gv_tensor *yp,
                                   const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t E, int flags);
void gv_cpu_bf16_moe_aux_fwd(struct gv_backend *be, struct gv_tensor *loss, const struct gv_tensor *probs,
                             const struct gv_tensor *idx, float scale);
void gv_cpu_bf16_moe_aux_bwd(struct gv_backend *be, struct gv_tensor *dprobs, const struct gv_tensor *idx,
                             float scale, int flags);
/* optim.c: AdamW through the table (gv_optim_adamw_step; bf16 or scaled gradients widened in chunks) */
void gv_cpu_adamw_multi(struct gv_backend *be, const struct gv_adamw *opt, const struct gv_adamw_tensor *ts, int nt,
                        enum gv_dtype gdt, int t, float lr, float gscale);

/* bf16.c: bf16 <-> f32 conversion loops (OpenMP), also gv_cpu_copy's; narrow rounds once,
 * adding into the old bf16 contents when add */
void gv_cpu_bf16_widen(float *dst, const uint16_t *src, int64_t n);
void gv_cpu_bf16_narrow(uint16_t *dst, const float *src, int64_t n, int add);
/* bf16.c: the table's entries for float tensors, one wrapper per f32 kernel above (same
 * arguments): f32 calls go straight to the kernel, bf16 calls are emulated */
void gv_cpu_bf16_linear_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                            const struct gv_tensor *w, const struct gv_tensor *b);
void gv_cpu_bf16_linear_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                            struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                            const struct gv_tensor *w, int flags);
void gv_cpu_bf16_embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                               const struct gv_tensor *table, int64_t pos_offset, int accumulate);
void gv_cpu_bf16_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                               const struct gv_tensor *dy, const struct gv_tensor *ids,
                               int64_t pos_offset, int flags);
void gv_cpu_bf16_embedding_shard_fwd(struct gv_backend *be, struct gv_tensor *y,
                                     const struct gv_tensor *ids, const struct gv_tensor *table,
                                     int64_t lo);
void gv_cpu_bf16_embedding_shard_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                                     const struct gv_tensor *dy, const struct gv_tensor *ids,
                                     int64_t lo, int flags);
void gv_cpu_bf16_layernorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *mean,
                               struct gv_tensor *rstd, const struct gv_tensor *x,
                               const struct gv_tensor *w, const struct gv_tensor *b, float eps);
void gv_cpu_bf16_layernorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                               struct gv_tensor *db, const struct gv_tensor *dy,
                               const struct gv_tensor *x, const struct gv_tensor *w,
                               const struct gv_tensor *mean, const struct gv_tensor *rstd, int flags);
void gv_cpu_bf16_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *rstd,
                             const struct gv_tensor *x, const struct gv_tensor *w, float eps);
void gv_cpu_bf16_rmsnorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                             const struct gv_tensor *dy, const struct gv_tensor *x,
                             const struct gv_tensor *w, const struct gv_tensor *rstd, int flags);
void gv_cpu_bf16_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                          int tanh_form);
void gv_cpu_bf16_gelu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                          const struct gv_tensor *x, int tanh_form, int flags);
void gv_cpu_bf16_relu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
void gv_cpu_bf16_relu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                          const struct gv_tensor *x, int flags);
void gv_cpu_bf16_silu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
void gv_cpu_bf16_silu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                          const struct gv_tensor *x, int flags);
void gv_cpu_bf16_swiglu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *gate,
                            const struct gv_tensor *up);
void gv_cpu_bf16_swiglu_bwd(struct gv_backend *be, struct gv_tensor *dgate, struct gv_tensor *dup,
                            const struct gv_tensor *dy, const struct gv_tensor *gate,
                            const struct gv_tensor *up, int flags);
void gv_cpu_bf16_mul_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                         const struct gv_tensor *b);
void gv_cpu_bf16_mul_bwd(struct gv_backend *be, struct gv_tensor *da, struct gv_tensor *db,
                         const struct gv_tensor *dy, const struct gv_tensor *a,
                         const struct gv_tensor *b, int flags);
void gv_cpu_bf16_add_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                         const struct gv_tensor *b);
void gv_cpu_bf16_affine(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float alpha,
                        float beta, int flags);
void gv_cpu_bf16_softmax_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
void gv_cpu_bf16_softmax_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                             const struct gv_tensor *y, int flags);
void gv_cpu_bf16_copy_cols(struct gv_backend *be, struct gv_tensor *dst, int64_t dst_col,
                           const struct gv_tensor *src, int64_t src_col, int64_t n, int flags);
void gv_cpu_bf16_rope_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                          float base, int64_t rot_dim, int64_t pos_offset);
void gv_cpu_bf16_rope_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                          float base, int64_t rot_dim, int64_t pos_offset, int flags);
void gv_cpu_bf16_dropout_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                             float p, uint64_t seed, uint64_t offset);
void gv_cpu_bf16_dropout_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                             float p, uint64_t seed, uint64_t offset, int flags);
void gv_cpu_bf16_attention_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                               const struct gv_tensor *q, const struct gv_tensor *k,
                               const struct gv_tensor *v, int causal, const struct gv_attn_opts *x);
void gv_cpu_bf16_attention_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                               struct gv_tensor *dv, const struct gv_tensor *dout,
                               const struct gv_tensor *q, const struct gv_tensor *k,
                               const struct gv_tensor *v, const struct gv_tensor *o,
                               const struct gv_tensor *lse, int causal, int flags, const struct gv_attn_opts *x);
void gv_cpu_bf16_xent_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                          const struct gv_tensor *logits, const struct gv_tensor *targets, float scale);
void gv_cpu_bf16_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                          const struct gv_tensor *logits, const struct gv_tensor *lse,
                          const struct gv_tensor *targets, float scale);
void gv_cpu_bf16_xent_shard_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                                struct gv_tensor *part, const struct gv_tensor *logits,
                                const struct gv_tensor *targets, int64_t lo, float scale, int stage);
void gv_cpu_bf16_xent_shard_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                                const struct gv_tensor *logits, const struct gv_tensor *lse,
                                const struct gv_tensor *targets, int64_t lo, float scale);
double gv_cpu_bf16_sumsq(struct gv_backend *be, const struct gv_tensor *x);
double gv_cpu_bf16_sumsq_multi(struct gv_backend *be, const struct gv_tensor *xs, int count);
void gv_cpu_bf16_fill(struct gv_backend *be, struct gv_tensor *x, float value);
void gv_cpu_bf16_axpy(struct gv_backend *be, struct gv_tensor *y, float alpha, const struct gv_tensor *x);
void gv_cpu_bf16_scale(struct gv_backend *be, struct gv_tensor *x, float alpha);

#endif
