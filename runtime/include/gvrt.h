/* gvrt.h - the public API of libgvrt: everything generated training programs may call,
 * and nothing else. Internal modules use the headers under runtime/<folder>/.
 *
 * Sections: visibility and errors (fatal path, check macros), logging, dtypes and bf16,
 * tensors and views, backends and device memory, arenas carved from the memory plan,
 * the op entry points (forward and backward of every primitive), reductions and copies.
 * Training-side API (optimizer, init, LR schedule) lives in gvrt_train.h, included last.
 *
 * Contracts every backend keeps (docs/runtime.md spells them out):
 *  - tensors are dense row-major (last dim contiguous); a view is a pointer + shape;
 *  - kernels never allocate: scratch comes from the backend's workspace, itself a buffer of
 *    the memory plan sized with gv_backend_workspace_bytes();
 *  - backward entry points take `flags`: GV_ACC_DX / GV_ACC_DW select dst += grad instead
 *    of dst = grad, per output, so micro-batches and residual branches accumulate in place;
 *  - every shape is checked in the gv_* dispatchers (runtime/core/ops.c) before the backend
 *    runs; a mismatch is fatal and prints both shapes. */
#ifndef GVRT_H
#define GVRT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define GV_API __attribute__((visibility("default")))
#define GV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define GV_API
#define GV_PRINTF(f, a)
#endif
#ifdef __cplusplus
#define GV_NORETURN [[noreturn]]
#else
#define GV_NORETURN _Noreturn
#endif

/* The CUDA backend is C++ (nvcc); every declaration here has C linkage. */
#ifdef __cplusplus
extern "C" {
#endif

GV_API const char *gv_version(void);

/* ---- fatal path and check macros ---- */

/* Prints "[rank r/w host] gvrt: <lib> error: <msg>\n  at <file>:<line> in <call>" to stderr,
 * runs the registered abort hook (the comm layer registers ncclCommAbort there), then
 * ends the whole job: MPI_Abort(MPI_COMM_WORLD) when MPI is initialised, abort() else. */
GV_API GV_NORETURN void gv_fatal(const char *file, int line, const char *call, const char *lib,
                                 const char *msg);
GV_API GV_NORETURN void gv_fatalf(const char *file, int line, const char *call, const char *lib,
                                  const char *fmt, ...) GV_PRINTF(5, 6);
/* MPI error code -> message (MPI_Error_string when built with MPI), then gv_fatal. */
GV_API GV_NORETURN void gv_fatal_mpi(const char *file, int line, const char *call, int err);
/* One hook run by gv_fatal before the job is aborted (e.g. ncclCommAbort); NULL clears. */
GV_API void gv_fatal_set_hook(void (*hook)(void *arg), void *arg);

/* Errors a caller can recover from (a file that does not open or parse: datasets,
 * checkpoints, safetensors, tensor files) follow one convention: the function returns an
 * int, 0 on success and nonzero on failure (-1, or a status code such as gv_data_status),
 * and writes a one-line message naming the file and the field, key or record into the
 * caller's buffer `char *err, size_t errn` (NULL: no message). They never print and never
 * abort; what is not recoverable (a broken invariant) goes to gv_fatal. */

/* GV_CHECK(cond, fmt, ...): an invariant of the runtime or of the caller's shapes. */
#define GV_CHECK(cond, ...) do { if (!(cond)) \
      gv_fatalf(__FILE__, __LINE__, #cond, "gvrt", __VA_ARGS__); } while (0)
/* MPI_SUCCESS is 0 by the standard, so this needs no mpi.h. */
#define GV_MPI_CHECK(call) do { int e_ = (call); if (e_ != 0) \
      gv_fatal_mpi(__FILE__, __LINE__, #call, e_); } while (0)

/* ---- logging ---- */

enum gv_log_level { GV_LOG_ERROR, GV_LOG_WARN, GV_LOG_INFO, GV_LOG_DEBUG };

/* The rank prefix: set once after MPI init (before that, OMPI_COMM_WORLD_RANK / PMI_RANK /
 * SLURM_PROCID are read). The level comes from GV_LOG=error|warn|info|debug (default info). */
GV_API void gv_log_set_rank(int rank, int world);
GV_API int gv_log_rank(void);
GV_API int gv_log_world(void);
GV_API void gv_log(enum gv_log_level level, const char *fmt, ...) GV_PRINTF(2, 3);
/* Same, printed by rank 0 only (progress lines). */
GV_API void gv_log0(enum gv_log_level level, const char *fmt, ...) GV_PRINTF(2, 3);

/* ---- dtypes ---- */

enum gv_dtype { GV_DTYPE_F32, GV_DTYPE_BF16, GV_DTYPE_I32, GV_DTYPE_F64 /* host-side reductions only */ };

GV_API size_t gv_dtype_size(enum gv_dtype t);
GV_API const char *gv_dtype_name(enum gv_dtype t);

/* bf16 <-> fp32: round to nearest even, NaN stays a (quiet) NaN. */
static inline float gv_bf16_to_float(uint16_t h)
{
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static inline uint16_t gv_bf16_from_float(float f)
{
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

/* ---- counter-based random numbers ---- */

/* Philox4x32-10 block: out = philox(counter ctr[4], key k[2]) (core/philox.c); parameter
 * init and dropout draw from it. Exposed for its known-answer test. */
GV_API void gv_philox4x32(uint32_t out[4], const uint32_t ctr[4], const uint32_t k[2]);

/* ---- tensors ---- */

#define GV_MAX_DIMS 4

/* A dense row-major tensor on some device. Non-owning: the memory belongs to an arena. */
struct gv_tensor {
  void *data;
  enum gv_dtype dtype;
  int ndim;
  int64_t shape[GV_MAX_DIMS];
};

GV_API struct gv_tensor gv_tensor_make(void *data, enum gv_dtype dtype, int ndim,
                                       const int64_t *shape);
/* Shorthand for 1..4 dims (unused trailing dims pass 0). */
GV_API struct gv_tensor gv_tensor_4d(void *data, enum gv_dtype dtype, int64_t d0, int64_t d1,
                                     int64_t d2, int64_t d3);
GV_API int64_t gv_tensor_numel(const struct gv_tensor *t);
GV_API size_t gv_tensor_bytes(const struct gv_tensor *t);
/* Same memory, another shape with the same element count (fatal otherwise). */
GV_API struct gv_tensor gv_tensor_reshape(const struct gv_tensor *t, int ndim,
                                          const int64_t *shape);
/* Rows [first, first+count) along dim 0 (a micro-batch, a pipeline chunk). */
GV_API struct gv_tensor gv_tensor_view(const struct gv_tensor *t, int64_t first, int64_t count);
/* "[2, 32, 64] f32" into buf; returns buf. */
GV_API const char *gv_tensor_str(const struct gv_tensor *t, char *buf, size_t n);

/* ---- backends ---- */

struct gv_backend;

enum gv_copy_dir { GV_COPY_H2D, GV_COPY_D2H, GV_COPY_D2D };

/* Flags of backward entry points: accumulate into the input gradient (dx, da, dq, ...)
 * and/or into the parameter gradients (dW, db, dtable, dgamma, ...). */
enum { GV_ACC_DX = 1, GV_ACC_DW = 2 };

/* One const table per backend (cpu: runtime/cpu/backend.c; cuda: runtime/cuda/backend.cu).
 * Every entry is mandatory; gv_backend_init checks none is NULL. Shapes (all dense):
 *   linear     x [M,K], w [N,K], b [N] or NULL, y [M,N]:  y = x w^T + b
 *   linear_gelu  the same with pre [M,N] = x w^T + b kept and y = gelu_tanh(pre); backward
 *              linear_dgelu: dpre = (dy w) * gelu_tanh'(pre) (overwritten), dw, db as linear's
 *   embedding  ids i32 [M] (or NULL: positions pos_offset + (row % T), T = y dim -2),
 *              table [V,C], y [M,C]:  y (+)= table[id]  (accumulate: token + position)
 *   layernorm  x,y [M,C], w,b [C], mean,rstd f32 [M]     rmsnorm: no b, no mean
 *   add_layernorm / add_rmsnorm  h = a + b (the residual stream, [M,C]), then the norm of h
 *              into y (y must not alias h)
 *   gelu/silu/relu/swiglu/mul/add: elementwise, all operands of one shape (relu's gradient at 0 is 0)
 *   rope       x,y [B,T,H,D] (y may alias x), HF rotate_half, position pos_offset + t, on the
 *              first rot_dim dims of each head (even, <= D; 0: all D; GPT-NeoX's partial
 *              rotary), frequencies base^(-2i/rot_dim); the other D - rot_dim pass through
 *   affine     y (+)= alpha x + beta elementwise (y may alias x); the scalar multiply-add
 *   softmax    x,y [..., N] over the last dim, y may alias x; backward
 *              dx (+)= y (dy - sum_j dy_j y_j) per row, dx may alias dy
 *   copy_cols  dst [..., Nd], src [..., Ns] of the same rows: dst[r, dst_col + j] (+)=
 *              src[r, src_col + j] for j < n, the other columns untouched; no aliasing
 *              (slice and concat on the last dimension)
 *   patchify   img [B,C,H,W] <-> rows [B,N,C*p*p]: the non-overlapping p x p patches of each image,
 *              N = (H/p)(W/p) in row-major order, each row channel-major then the square's rows
 *              (Conv2d's weight [out,C,p,p] order); inverse 0 writes rows from img, 1 img from
 *              rows (the permutation back); one dtype, no aliasing (ViT's patch embedding)
 *   attention  q [B,T,H,D], k,v [B,S,KV,D], o [B,T,H,D], lse f32 [B,H,T]; H % KV == 0;
 *              causal masks key j > i + (S - T); scale 1/sqrt(D)
 *   attention_merge  ring attention's online-softmax step: (ob, lseb), the attention of the same
 *              query rows over other keys, merged into (o, lse): lse' = log(e^lse + e^lseb),
 *              o' = o e^(lse - lse') + ob e^(lseb - lse'). o, ob [1,R,H,D] f32; lseb f32 [1,H,R];
 *              lse f32 [1,H,L] with L >= R: the first R entries of each head's row (a slice of
 *              a longer row: the second half of a zigzag rank's queries)
 *   dropout    y = x * keep / (1-p), keep = philox(seed, offset + i) >= p; p = 0 copies
 *   xent       logits [M,V], targets i32 [M] (negative = ignored), lse f32 [M],
 *              loss f32 [1] = scale * sum_i (lse_i - logits[i, t_i]);
 *              dlogits = scale * (softmax - onehot), may alias logits.
 *   copy2d     raw pointers: rows x cols elements of dtype from src (row stride src_ld
 *              elements) to dst (row stride dst_ld); cols <= both strides; no overlap
 *   embedding_shard  one block of a vocabulary split: table [Vs,C] holds the rows of ids
 *              [lo, lo+Vs); ids i32 [M] (never NULL), y [M,C]: y[i] = table[id_i - lo] and 0
 *              for ids outside the block; backward dtable[id_i - lo] (+)= dy[i] for ids inside
 *   xent_shard logits [M,Vs] are the columns [lo, lo+Vs) of the full rows; targets are global
 *              ids. Forward in three stages, the caller all-reducing over the split after each:
 *                GV_XSHARD_MAX     lse_i = max_j logits[i,j]          (then MAX over lse)
 *                GV_XSHARD_SUMEXP  part_i = sum_j exp(logits[i,j] - lse_i)  (then SUM part)
 *                GV_XSHARD_LOSS    lse_i += log(part_i); loss = scale * sum over t_i >= 0 of
 *                                  ((lo == 0 ? lse_i : 0) - (logits[i, t_i-lo] if t_i in the
 *                                  block, else 0))               (then SUM loss: the loss)
 *              part f32 [M] is scratch (unused by MAX); lse f32 [M]; loss f32 [1] (LOSS only).
 *              Backward: dlogits = scale * (exp(logits - lse) - onehot(t_i - lo)), 0 on rows
 *              with t_i < 0; may alias logits.
 * NULL is allowed only for: linear b, dx, dw, db; embedding ids (positions); layernorm b and
 * backward dx, dw, db; rmsnorm backward dx, dw; one of swiglu's or mul's two gradients.
 * Any other NULL is fatal. */
struct gv_adamw; /* gvrt_train.h */
/* One tensor of a multi-tensor AdamW step (gv_adamw_multi): fp32 master weights p, moments
 * m and v, its gradient g (the call's gradient dtype), n elements, whether it decays, and
 * p_bf16: NULL, or the bf16 parameter written with p's new value rounded to nearest even
 * (mixed precision: the update and the copy in one pass). */
struct gv_adamw_tensor {
  float *p;
  const void *g;
  float *m, *v;
  uint16_t *p_bf16;
  int64_t n;
  int decay;
};

/* The stages of xent_shard_fwd, in call order (see above). */
enum { GV_XSHARD_MAX, GV_XSHARD_SUMEXP, GV_XSHARD_LOSS };

/* Options of an attention beyond q, k, v. scale: of the scores q.k (0: 1/sqrt(D); T5: 1).
 * bias: added to the scores, [T, S, Hb] in q's dtype (T5's relative position bias; NULL:
 * none); head h of the call reads bias head h0 + h (Hb >= h0 + H: a tp rank's heads of a
 * replicated bias). dbias (backward): the sum over the batch of the scores' gradient is
 * added into it, laid out as bias (or NULL). key_ids: i32 [B, S] (NULL: none), a key
 * padding mask: key j of sample b is hidden from every query where key_ids[b, j] == pad_id
 * (an encoder's source tokens); a query row that sees no key gives o = 0, lse = -inf and no
 * gradient. */
struct gv_attn_opts {
  float scale;
  const struct gv_tensor *bias;
  struct gv_tensor *dbias;
  int64_t h0;
  const struct gv_tensor *key_ids;
  int32_t pad_id;
};

struct gv_backend_ops {
  const char *name;
  void (*init)(struct gv_backend *be);       /* sets be->impl */
  void (*shutdown)(struct gv_backend *be);
  /* memory */
  void *(*alloc)(struct gv_backend *be, size_t bytes);
  void (*release)(struct gv_backend *be, void *p, size_t bytes);
  void (*copy_bytes)(struct gv_backend *be, void *dst, const void *src, size_t n, enum gv_copy_dir dir);
  void (*sync)(struct gv_backend *be);
  /* bytes in use on the device (all its users) and its size; 0 and 0 where unknown (cpu) */
  void (*mem_info)(struct gv_backend *be, size_t *used, size_t *total);
  /* workspace the op set needs for the largest attention of the plan */
  size_t (*attention_workspace)(struct gv_backend *be, int64_t B, int64_t T, int64_t S, int64_t H,
                                int64_t KV, int64_t D);
  /* linear */
  void (*linear_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                     const struct gv_tensor *w, const struct gv_tensor *b);
  void (*linear_bwd)(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                     struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                     const struct gv_tensor *w, int flags);
  /* a linear and the tanh GELU of its output in one pass (cuda: cuBLASLt's GELU_AUX
   * epilogue), and the linear's input gradient times the GELU derivative of pre (DGELU) */
  void (*linear_gelu_fwd)(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *pre,
                          const struct gv_tensor *x, const struct gv_tensor *w, const struct gv_tensor *b);
  void (*linear_dgelu_bwd)(struct gv_backend *be, struct gv_tensor *dpre, struct gv_tensor *dw,
                           struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                           const struct gv_tensor *w, const struct gv_tensor *pre, int flags);
  /* embedding (token and learned position) */
  void (*embedding_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                        const struct gv_tensor *table, int64_t pos_offset, int accumulate);
  void (*embedding_bwd)(struct gv_backend *be, struct gv_tensor *dtable,
                        const struct gv_tensor *dy, const struct gv_tensor *ids,
                        int64_t pos_offset, int flags);
  /* norms */
  void (*layernorm_fwd)(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *mean,
                        struct gv_tensor *rstd, const struct gv_tensor *x,
                        const struct gv_tensor *w, const struct gv_tensor *b, float eps);
  void (*layernorm_bwd)(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                        struct gv_tensor *db, const struct gv_tensor *dy,
                        const struct gv_tensor *x, const struct gv_tensor *w,
                        const struct gv_tensor *mean, const struct gv_tensor *rstd, int flags);
  void (*rmsnorm_fwd)(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *rstd,
                      const struct gv_tensor *x, const struct gv_tensor *w, float eps);
  void (*rmsnorm_bwd)(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                      const struct gv_tensor *dy, const struct gv_tensor *x,
                      const struct gv_tensor *w, const struct gv_tensor *rstd, int flags);
  /* a residual add and the norm of its sum in one pass (the backward needs no fusion: the
   * norm's GV_ACC_DX adds into the residual stream's gradient) */
  void (*add_layernorm_fwd)(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *mean,
                            struct gv_tensor *rstd, const struct gv_tensor *a, const struct gv_tensor *b,
                            const struct gv_tensor *w, const struct gv_tensor *bias, float eps);
  void (*add_rmsnorm_fwd)(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *rstd,
                          const struct gv_tensor *a, const struct gv_tensor *b, const struct gv_tensor *w, float eps);
  /* activations and elementwise */
  void (*gelu_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                   int tanh_form);
  void (*gelu_bwd)(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                   const struct gv_tensor *x, int tanh_form, int flags);
  void (*silu_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
  void (*silu_bwd)(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                   const struct gv_tensor *x, int flags);
  void (*relu_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
  void (*relu_bwd)(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                   const struct gv_tensor *x, int flags);
  void (*swiglu_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *gate,
                     const struct gv_tensor *up);
  void (*swiglu_bwd)(struct gv_backend *be, struct gv_tensor *dgate, struct gv_tensor *dup,
                     const struct gv_tensor *dy, const struct gv_tensor *gate,
                     const struct gv_tensor *up, int flags);
  void (*mul_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                  const struct gv_tensor *b);
  void (*mul_bwd)(struct gv_backend *be, struct gv_tensor *da, struct gv_tensor *db,
                  const struct gv_tensor *dy, const struct gv_tensor *a,
                  const struct gv_tensor *b, int flags);
  void (*add_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                  const struct gv_tensor *b);
  void (*affine)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float alpha,
                 float beta, int flags);
  void (*softmax_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
  void (*softmax_bwd)(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                      const struct gv_tensor *y, int flags);
  void (*copy_cols)(struct gv_backend *be, struct gv_tensor *dst, int64_t dst_col, const struct gv_tensor *src,
                    int64_t src_col, int64_t n, int flags);
  void (*patchify)(struct gv_backend *be, struct gv_tensor *rows, struct gv_tensor *img, int64_t patch, int inverse);
  /* rope */
  void (*rope_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                   float base, int64_t rot_dim, int64_t pos_offset);
  void (*rope_bwd)(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                   float base, int64_t rot_dim, int64_t pos_offset, int flags);
  /* attention (flash-style: only lse is kept for backward) */
  void (*attention_fwd)(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                        const struct gv_tensor *q, const struct gv_tensor *k,
                        const struct gv_tensor *v, int causal, const struct gv_attn_opts *x);
  void (*attention_bwd)(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                        struct gv_tensor *dv, const struct gv_tensor *dout,
                        const struct gv_tensor *q, const struct gv_tensor *k,
                        const struct gv_tensor *v, const struct gv_tensor *o,
                        const struct gv_tensor *lse, int causal, int flags, const struct gv_attn_opts *x);
  void (*attention_merge)(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                          const struct gv_tensor *ob, const struct gv_tensor *lseb);
  /* dropout (counter-based: the mask is recomputed in backward, never stored) */
  void (*dropout_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                      float p, uint64_t seed, uint64_t offset);
  void (*dropout_bwd)(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                      float p, uint64_t seed, uint64_t offset, int flags);
  /* fused softmax cross-entropy */
  void (*xent_fwd)(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                   const struct gv_tensor *logits, const struct gv_tensor *targets, float scale);
  void (*xent_bwd)(struct gv_backend *be, struct gv_tensor *dlogits,
                   const struct gv_tensor *logits, const struct gv_tensor *lse,
                   const struct gv_tensor *targets, float scale);
  /* reductions, copies (copy converts dtype f32 <-> bf16) */
  double (*sumsq)(struct gv_backend *be, const struct gv_tensor *x);
  /* the sumsq of count tensors added in their order, bit for bit */
  double (*sumsq_multi)(struct gv_backend *be, const struct gv_tensor *xs, int count);
  void (*fill)(struct gv_backend *be, struct gv_tensor *x, float value);
  void (*copy)(struct gv_backend *be, struct gv_tensor *dst, const struct gv_tensor *src);
  void (*axpy)(struct gv_backend *be, struct gv_tensor *y, float alpha, const struct gv_tensor *x);
  void (*scale)(struct gv_backend *be, struct gv_tensor *x, float alpha);
  /* optimizer: one AdamW step of gv_optim_adamw_step (gvrt_train.h) on device memory for
   * nt tensors at once (struct gv_adamw_tensor), gradients of dtype gdt (f32 or bf16)
   * multiplied by gscale (fp32, rounded) first: the clipping coefficient */
  void (*adamw_multi)(struct gv_backend *be, const struct gv_adamw *opt, const struct gv_adamw_tensor *ts,
                      int nt, enum gv_dtype gdt, int t, float lr, float gscale);
  /* strided 2-D copy (Ulysses' packing of column blocks around an all-to-all) */
  void (*copy2d)(struct gv_backend *be, void *dst, int64_t dst_ld, const void *src, int64_t src_ld,
                 int64_t rows, int64_t cols, enum gv_dtype dtype);
  /* vocabulary parallelism: the embedding and the cross-entropy of one vocabulary block */
  void (*embedding_shard_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                              const struct gv_tensor *table, int64_t lo);
  void (*embedding_shard_bwd)(struct gv_backend *be, struct gv_tensor *dtable,
                              const struct gv_tensor *dy, const struct gv_tensor *ids, int64_t lo,
                              int flags);
  void (*xent_shard_fwd)(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                         struct gv_tensor *part, const struct gv_tensor *logits,
                         const struct gv_tensor *targets, int64_t lo, float scale, int stage);
  void (*xent_shard_bwd)(struct gv_backend *be, struct gv_tensor *dlogits,
                         const struct gv_tensor *logits, const struct gv_tensor *lse,
                         const struct gv_tensor *targets, int64_t lo, float scale);
  /* mixture of experts (the routing contract is gv_moe_* below) */
  void (*topk)(struct gv_backend *be, struct gv_tensor *idx, const struct gv_tensor *x);
  void (*take_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                   const struct gv_tensor *idx);
  void (*take_bwd)(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                   const struct gv_tensor *idx, int flags);
  void (*moe_permute_fwd)(struct gv_backend *be, struct gv_tensor *xp, const struct gv_tensor *x,
                          const struct gv_tensor *idx, int64_t experts);
  void (*moe_permute_bwd)(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dxp,
                          const struct gv_tensor *idx, int64_t experts, int flags);
  void (*moe_grouped_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                          const struct gv_tensor *w, const struct gv_tensor *idx);
  void (*moe_grouped_bwd)(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                          const struct gv_tensor *dy, const struct gv_tensor *x,
                          const struct gv_tensor *w, const struct gv_tensor *idx, int flags);
  void (*moe_unpermute_fwd)(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *yp,
                            const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t experts);
  void (*moe_unpermute_bwd)(struct gv_backend *be, struct gv_tensor *dyp, struct gv_tensor *dgates,
                            const struct gv_tensor *dy, const struct gv_tensor *yp,
                            const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t experts,
                            int flags);
  void (*moe_aux_fwd)(struct gv_backend *be, struct gv_tensor *loss, const struct gv_tensor *probs,
                      const struct gv_tensor *idx, float scale);
  void (*moe_aux_bwd)(struct gv_backend *be, struct gv_tensor *dprobs, const struct gv_tensor *idx,
                      float scale, int flags);
};

/* A backend instance: its table, its private state (threads, streams, handles), the one
 * device-allocation counter, and the workspace carved from the plan. */
struct gv_backend {
  const struct gv_backend_ops *ops;
  void *impl;
  int device;
  size_t allocated_bytes;   /* live bytes from gv_dev_alloc */
  void *workspace;
  size_t workspace_bytes;
  void *stream;             /* the compute stream of a device backend (cuda: its
                             * cudaStream_t), set by its init; NULL on cpu */
  int matmul_precision;     /* enum gv_matmul_precision, for f32 linears (0: highest) */
};

/* How f32 linears may compute (PyTorch's torch.set_float32_matmul_precision): highest =
 * fp32 (the default, and the only one on cpu); high = TF32 tensor cores (10-bit
 * mantissa inputs, fp32 accumulation); medium = bf16 tensor cores (8-bit mantissa inputs,
 * fp32 accumulation). Storage stays f32 either way. */
enum gv_matmul_precision { GV_MATMUL_HIGHEST, GV_MATMUL_HIGH, GV_MATMUL_MEDIUM };
/* "highest", "high" or "medium" (fatal otherwise). */
GV_API void gv_backend_set_matmul_precision(struct gv_backend *be, const char *name);

/* "cpu" or "cuda" (when built with CUDA). Fatal if the name is unknown. device: the GPU
 * of a device backend, taken modulo the number of devices (so a process may pass its
 * node-local rank); ignored by cpu. */
GV_API void gv_backend_init(struct gv_backend *be, const char *name, int device);
GV_API void gv_backend_free(struct gv_backend *be);
/* 1 when backend `name` can be started here (cpu: always; cuda: built with CUDA and a
 * usable GPU), else 0 with the reason in why (GPU tests skip on it). */
GV_API int gv_backend_available(const char *name, char *why, size_t why_len);
/* Names of the compiled-in backends, NULL-terminated. */
GV_API const char *const *gv_backend_names(void);
/* Workspace the ops need for the largest attention of the plan (bytes). */
GV_API size_t gv_backend_workspace_bytes(struct gv_backend *be, int64_t B, int64_t T, int64_t S,
                                         int64_t H, int64_t KV, int64_t D);
GV_API void gv_backend_set_workspace(struct gv_backend *be, void *ptr, size_t bytes);
GV_API void gv_backend_sync(struct gv_backend *be);
/* Device memory in use by everyone (the plan's arenas, the CUDA context, cuBLAS, NCCL's
 * communicators, other processes) and the device's size; both 0 on cpu. */
GV_API void gv_backend_mem_info(struct gv_backend *be, size_t *used, size_t *total);
/* The backend's compute stream (a cudaStream_t on cuda, NULL on cpu): hand it to
 * gv_comm_set_stream so collectives are ordered with the kernels instead of waiting for
 * the whole device. */
GV_API void *gv_backend_stream(struct gv_backend *be);

/* The one counting allocator: 64-byte aligned, fatal on failure; be->allocated_bytes. */
GV_API void *gv_dev_alloc(struct gv_backend *be, size_t bytes);
GV_API void gv_dev_free(struct gv_backend *be, void **p, size_t bytes);  /* sets *p = NULL */
GV_API void gv_dev_memcpy(struct gv_backend *be, void *dst, const void *src, size_t n,
                          enum gv_copy_dir dir);
/* Host memory as the cpu backend allocates it: 64-byte aligned, and from 2 MiB on 2 MiB
 * aligned and advised to be backed by transparent huge pages; NULL on failure or for 0
 * bytes; free() releases it. */
GV_API void *gv_cpu_alloc(size_t bytes);

/* ---- arenas carved from the memory plan ---- */

enum gv_mem_kind { GV_MEM_PARAMS, GV_MEM_GRADS, GV_MEM_OPTIM, GV_MEM_ACTS, GV_MEM_WORKSPACE,
                   GV_MEM_KINDS };

/* One buffer of the plan: produced by the compiler, constant in the generated program. */
struct gv_plan_buf {
  const char *name;
  enum gv_mem_kind kind;
  size_t offset, bytes;     /* offset inside its kind's arena; 64-byte aligned */
};
struct gv_plan {
  size_t arena_bytes[GV_MEM_KINDS];
  const struct gv_plan_buf *bufs;
  int nbufs;
};
struct gv_arenas {
  struct gv_backend *be;
  void *base[GV_MEM_KINDS];
  size_t bytes[GV_MEM_KINDS];
};

/* Validates the plan (every buffer aligned and inside its arena), allocates one arena per
 * kind with gv_dev_alloc, logs each size once, and checks planned == allocated bytes.
 * The workspace arena becomes the backend's workspace. */
GV_API void gv_arenas_init(struct gv_arenas *a, struct gv_backend *be, const struct gv_plan *plan);
GV_API void gv_arenas_free(struct gv_arenas *a);
GV_API void *gv_arenas_ptr(const struct gv_arenas *a, const struct gv_plan_buf *buf);

/* ---- ops: checked dispatchers (same arguments as the table, minus nothing) ---- */

GV_API void gv_linear_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                          const struct gv_tensor *w, const struct gv_tensor *b);
GV_API void gv_linear_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                          struct gv_tensor *db, const struct gv_tensor *dy,
                          const struct gv_tensor *x, const struct gv_tensor *w, int flags);
/* y = gelu_tanh(pre), pre = x w^T + b (kept for backward): gv_linear_fwd then gv_gelu_fwd
 * (tanh form) in one pass where the backend can. */
GV_API void gv_linear_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *pre,
                               const struct gv_tensor *x, const struct gv_tensor *w, const struct gv_tensor *b);
/* dpre = (dy w) * gelu_tanh'(pre), overwritten (never accumulated), and dw, db as
 * gv_linear_bwd with flags' GV_ACC_DW: gv_linear_bwd into dpre then gv_gelu_bwd in place. */
GV_API void gv_linear_dgelu_bwd(struct gv_backend *be, struct gv_tensor *dpre, struct gv_tensor *dw,
                                struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                                const struct gv_tensor *w, const struct gv_tensor *pre, int flags);
GV_API void gv_embedding_fwd(struct gv_backend *be, struct gv_tensor *y,
                             const struct gv_tensor *ids, const struct gv_tensor *table,
                             int64_t pos_offset, int accumulate);
GV_API void gv_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                             const struct gv_tensor *dy, const struct gv_tensor *ids,
                             int64_t pos_offset, int flags);
GV_API void gv_layernorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *mean,
                             struct gv_tensor *rstd, const struct gv_tensor *x,
                             const struct gv_tensor *w, const struct gv_tensor *b, float eps);
GV_API void gv_layernorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                             struct gv_tensor *db, const struct gv_tensor *dy,
                             const struct gv_tensor *x, const struct gv_tensor *w,
                             const struct gv_tensor *mean, const struct gv_tensor *rstd,
                             int flags);
GV_API void gv_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *rstd,
                           const struct gv_tensor *x, const struct gv_tensor *w, float eps);
GV_API void gv_rmsnorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                           const struct gv_tensor *dy, const struct gv_tensor *x,
                           const struct gv_tensor *w, const struct gv_tensor *rstd, int flags);
/* h = a + b, then y = layernorm(h) / rmsnorm(h): gv_add_fwd and the norm in one pass. */
GV_API void gv_add_layernorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *mean,
                                 struct gv_tensor *rstd, const struct gv_tensor *a, const struct gv_tensor *b,
                                 const struct gv_tensor *w, const struct gv_tensor *bias, float eps);
GV_API void gv_add_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *rstd,
                               const struct gv_tensor *a, const struct gv_tensor *b, const struct gv_tensor *w,
                               float eps);
GV_API void gv_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                        int tanh_form);
GV_API void gv_gelu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                        const struct gv_tensor *x, int tanh_form, int flags);
GV_API void gv_silu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
GV_API void gv_silu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                        const struct gv_tensor *x, int flags);
GV_API void gv_relu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
GV_API void gv_relu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                        const struct gv_tensor *x, int flags);
GV_API void gv_swiglu_fwd(struct gv_backend *be, struct gv_tensor *y,
                          const struct gv_tensor *gate, const struct gv_tensor *up);
GV_API void gv_swiglu_bwd(struct gv_backend *be, struct gv_tensor *dgate, struct gv_tensor *dup,
                          const struct gv_tensor *dy, const struct gv_tensor *gate,
                          const struct gv_tensor *up, int flags);
GV_API void gv_mul_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                       const struct gv_tensor *b);
GV_API void gv_mul_bwd(struct gv_backend *be, struct gv_tensor *da, struct gv_tensor *db,
                       const struct gv_tensor *dy, const struct gv_tensor *a,
                       const struct gv_tensor *b, int flags);
/* Residual add; its backward is gv_copy / gv_axpy of dy into each branch. */
GV_API void gv_add_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                       const struct gv_tensor *b);
/* y (+)= alpha x + beta (GV_ACC_DX in flags accumulates); its backward is dx (+)= alpha dy. */
GV_API void gv_affine(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float alpha,
                      float beta, int flags);
GV_API void gv_softmax_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x);
GV_API void gv_softmax_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                           const struct gv_tensor *y, int flags);
GV_API void gv_copy_cols(struct gv_backend *be, struct gv_tensor *dst, int64_t dst_col,
                         const struct gv_tensor *src, int64_t src_col, int64_t n, int flags);
GV_API void gv_patchify(struct gv_backend *be, struct gv_tensor *rows, struct gv_tensor *img, int64_t patch,
                        int inverse);
/* Mixture of experts. idx i32 [M, k]: the k experts (ids < E) each of M token rows goes to.
 * Routing: assignment a = t k + j (token t, choice j) has row pos(a) of the expert-sorted
 * layout: the assignments of expert 0 first, then expert 1, ..., each expert's in order of
 * a (a stable counting sort, so every backend and every run permutes alike).
 *   topk        x [M, N] float -> idx i32 [M, k]: the k largest of each row, largest first,
 *               ties to the lower column (no backward: indices)
 *   take        y [M, k] = x[i, idx[i, j]] of x [M, N]; backward dx (+)= dy scattered (0
 *               elsewhere; repeated columns add)
 *   moe_permute xp [M k, C]: row pos(a) = x row t; backward dx[t] (+)= sum_j dxp[pos(t k + j)]
 *   moe_grouped x, y [M k, K|N] in the routed layout, w [E, N, K]: each row times its
 *               expert's w^T; backward dx (+)= dy w_e, dw_e (+)= dy^T x over its rows
 *               (GV_ACC_DX, GV_ACC_DW); dx or dw may be NULL
 *   moe_unpermute y [M, C] = sum_j gates[t, j] yp[pos(t k + j)]; backward dyp[pos] =
 *               gates dy[t] and dgates[t, j] = <dy[t], yp[pos]> (both (+)= under GV_ACC_DX)
 *   moe_aux     load balancing: loss f32 [1] = scale sum_e c_e sum_t probs[t, e], c_e the
 *               assignments of expert e (probs [M, E]); backward dprobs[t, e] (+)= scale c_e */
GV_API void gv_topk(struct gv_backend *be, struct gv_tensor *idx, const struct gv_tensor *x);
GV_API void gv_take_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                        const struct gv_tensor *idx);
GV_API void gv_take_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                        const struct gv_tensor *idx, int flags);
GV_API void gv_moe_permute_fwd(struct gv_backend *be, struct gv_tensor *xp, const struct gv_tensor *x,
                               const struct gv_tensor *idx, int64_t experts);
GV_API void gv_moe_permute_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dxp,
                               const struct gv_tensor *idx, int64_t experts, int flags);
GV_API void gv_moe_grouped_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                               const struct gv_tensor *w, const struct gv_tensor *idx);
GV_API void gv_moe_grouped_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                               const struct gv_tensor *dy, const struct gv_tensor *x,
                               const struct gv_tensor *w, const struct gv_tensor *idx, int flags);
GV_API void gv_moe_unpermute_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *yp,
                                 const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t experts);
GV_API void gv_moe_unpermute_bwd(struct gv_backend *be, struct gv_tensor *dyp, struct gv_tensor *dgates,
                                 const struct gv_tensor *dy, const struct gv_tensor *yp,
                                 const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t experts,
                                 int flags);
GV_API void gv_moe_aux_fwd(struct gv_backend *be, struct gv_tensor *loss, const struct gv_tensor *probs,
                           const struct gv_tensor *idx, float scale);
GV_API void gv_moe_aux_bwd(struct gv_backend *be, struct gv_tensor *dprobs, const struct gv_tensor *idx,
                           float scale, int flags);
GV_API void gv_rope_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                        float base, int64_t rot_dim, int64_t pos_offset);
GV_API void gv_rope_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                        float base, int64_t rot_dim, int64_t pos_offset, int flags);
GV_API void gv_attention_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                             const struct gv_tensor *q, const struct gv_tensor *k,
                             const struct gv_tensor *v, int causal);
/* T5's relative position bucket of rel = key - query (Hugging Face's
 * T5Attention._relative_position_bucket): bidirectional halves the buckets between earlier
 * and later keys; half of a side are exact distances, the rest log-spaced up to
 * max_distance (the last bucket beyond it). */
GV_API int32_t gv_rel_position_bucket(int64_t rel, int64_t buckets, int64_t max_distance, int bidirectional);
/* Attention with options (x NULL: the defaults of gv_attention_fwd/bwd). */
GV_API void gv_attention_opts_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                                  const struct gv_tensor *q, const struct gv_tensor *k,
                                  const struct gv_tensor *v, int causal, const struct gv_attn_opts *x);
GV_API void gv_attention_opts_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                                  struct gv_tensor *dv, const struct gv_tensor *dout,
                                  const struct gv_tensor *q, const struct gv_tensor *k,
                                  const struct gv_tensor *v, const struct gv_tensor *o,
                                  const struct gv_tensor *lse, int causal, int flags,
                                  const struct gv_attn_opts *x);
GV_API void gv_attention_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                             struct gv_tensor *dv, const struct gv_tensor *dout,
                             const struct gv_tensor *q, const struct gv_tensor *k,
                             const struct gv_tensor *v, const struct gv_tensor *o,
                             const struct gv_tensor *lse, int causal, int flags);
GV_API void gv_attention_merge(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                               const struct gv_tensor *ob, const struct gv_tensor *lseb);
GV_API void gv_dropout_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                           float p, uint64_t seed, uint64_t offset);
GV_API void gv_dropout_bwd(struct gv_backend *be, struct gv_tensor *dx,
                           const struct gv_tensor *dy, float p, uint64_t seed, uint64_t offset,
                           int flags);
/* Mean loss over N tokens: scale = 1/N (N all-reduced over ranks and micro-batches). */
GV_API void gv_xent_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                        const struct gv_tensor *logits, const struct gv_tensor *targets,
                        float scale);
GV_API void gv_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                        const struct gv_tensor *logits, const struct gv_tensor *lse,
                        const struct gv_tensor *targets, float scale);
GV_API double gv_sumsq(struct gv_backend *be, const struct gv_tensor *x);
/* sq = 0, then sq += gv_sumsq of each of the count tensors in turn; the CPU backend sums
 * them all in one parallel region. */
GV_API double gv_sumsq_multi(struct gv_backend *be, const struct gv_tensor *xs, int count);
GV_API void gv_fill(struct gv_backend *be, struct gv_tensor *x, float value);
GV_API void gv_copy(struct gv_backend *be, struct gv_tensor *dst, const struct gv_tensor *src);
GV_API void gv_axpy(struct gv_backend *be, struct gv_tensor *y, float alpha,
                    const struct gv_tensor *x);
GV_API void gv_scale(struct gv_backend *be, struct gv_tensor *x, float alpha);
/* One AdamW update at 1-based step t through the backend (the formula and argument
 * meanings of gv_optim_adamw_step): p, m, v f32; g f32 or bf16 (widened per element);
 * equal element counts. ZeRO calls it on a shard, like gv_optim_adamw_step. */
GV_API void gv_adamw(struct gv_backend *be, const struct gv_adamw *opt, struct gv_tensor *p,
                     const struct gv_tensor *g, struct gv_tensor *m, struct gv_tensor *v, int t,
                     float lr, int decay);
/* The same step for nt tensors in one pass (one launch per few dozen tensors on cuda), each
 * gradient first multiplied by gscale in fp32 (1: unchanged), and with p_bf16 set the bf16
 * parameter rewritten from the new master: equal, bit for bit, to gv_scale of each gradient,
 * gv_adamw of each tensor and gv_copy of each master into its bf16 parameter (for a bf16
 * gradient, except that the scaled gradient is not rounded to bf16 first). */
GV_API void gv_adamw_multi(struct gv_backend *be, const struct gv_adamw *opt, const struct gv_adamw_tensor *ts,
                           int nt, enum gv_dtype gdt, int t, float lr, float gscale);
/* rows x cols elements of dtype (any, i32 included) from src to dst, row strides src_ld and
 * dst_ld elements (both >= cols); the regions must not overlap. */
GV_API void gv_copy2d(struct gv_backend *be, void *dst, int64_t dst_ld, const void *src,
                      int64_t src_ld, int64_t rows, int64_t cols, enum gv_dtype dtype);
/* Vocabulary-parallel embedding: table [Vs, C] is the block of ids [lo, lo + Vs). Forward
 * writes y[i] = table[ids[i] - lo], or zeros for an id outside the block (the sum over the
 * blocks' ranks is the full lookup); backward adds dy[i] into dtable[ids[i] - lo] for ids
 * inside (dtable zeroed first unless flags has GV_ACC_DW). */
GV_API void gv_embedding_shard_fwd(struct gv_backend *be, struct gv_tensor *y,
                                   const struct gv_tensor *ids, const struct gv_tensor *table,
                                   int64_t lo);
GV_API void gv_embedding_shard_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                                   const struct gv_tensor *dy, const struct gv_tensor *ids,
                                   int64_t lo, int flags);
/* Vocabulary-parallel cross-entropy on logits [M, Vs], the columns [lo, lo + Vs): stage
 * GV_XSHARD_MAX, MAX all-reduce of lse, GV_XSHARD_SUMEXP, SUM all-reduce of part,
 * GV_XSHARD_LOSS, SUM all-reduce of loss gives gv_xent_fwd's loss and lse of the full rows
 * (the contract above struct gv_backend_ops). Backward: gv_xent_bwd on the block's columns. */
GV_API void gv_xent_shard_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                              struct gv_tensor *part, const struct gv_tensor *logits,
                              const struct gv_tensor *targets, int64_t lo, float scale, int stage);
GV_API void gv_xent_shard_bwd(struct gv_backend *be, struct gv_tensor *dlogits,
                              const struct gv_tensor *logits, const struct gv_tensor *lse,
                              const struct gv_tensor *targets, int64_t lo, float scale);

#ifdef __cplusplus
}
#endif

#if defined(__has_include)
#if __has_include("gvrt_train.h")
#include "gvrt_train.h"
#endif
#endif

#endif
