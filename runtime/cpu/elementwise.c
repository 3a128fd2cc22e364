/* elementwise.c - activations (GELU tanh/erf, SiLU, SwiGLU), mul, residual add, the scalar
 * multiply-add (affine), column copies (slice/concat on the last dimension), dropout and
 * the reductions/copies the optimizer and the schedules need (and the strided 2-D copy of
 * Ulysses' packing). One parallel loop per op;
 * backward stores through cpu_store so GV_ACC_DX/GV_ACC_DW select = or +=.
 * Dropout draws one Philox4x32-10 block per 4 elements: element e = offset + i uses lane
 * e & 3 of philox(ctr = {e >> 2 (64-bit), 0, 0}, key = seed), kept when u32 >= p * 2^32. */
#include <math.h>
#include <string.h>

#include "cpu/cpu.h"

static const float SQRT_2_OVER_PI = 0.7978845608028654f, GELU_C = 0.044715f;

/* ---- activations ---- */

static float gelu(float x, int tanh_form)
{
  if (tanh_form) return 0.5f * x * (1.0f + cpu_tanhf(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

static float gelu_grad(float x, int tanh_form)
{
  if (tanh_form) {
    float t = cpu_tanhf(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_C * x * x);
  }
  return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) + x * expf(-0.5f * x * x) * 0.3989422804014327f;
}

static float sigmoid(float x) { return 1.0f / (1.0f + cpu_expf(-x)); }
static float silu(float x) { return x * sigmoid(x); }
static float silu_grad(float x)
{
  float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

CPU_CLONES
void gv_cpu_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                     int tanh_form)
{
  float *py = cpu_f32(y);
  const float *px = cpu_f32(x);
  int64_t n = gv_tensor_numel(x);
  if (tanh_form) {                                /* two loops: the tanh one vectorises */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) py[i] = gelu(px[i], 1);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) py[i] = gelu(px[i], 0);
  }
}

CPU_CLONES
void gv_cpu_gelu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                     const struct gv_tensor *x, int tanh_form, int flags)
{
  float *pdx = cpu_f32(dx);
  const float *pdy = cpu_f32(dy), *px = cpu_f32(x);
  int64_t n = gv_tensor_numel(x);
  int acc = flags & GV_ACC_DX;
  if (tanh_form) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) cpu_store(&pdx[i], pdy[i] * gelu_grad(px[i], 1), acc);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) cpu_store(&pdx[i], pdy[i] * gelu_grad(px[i], 0), acc);
  }
}

static float relu(float x) { return x > 0.0f ? x : 0.0f; }
static float relu_grad(float x) { return x > 0.0f ? 1.0f : 0.0f; }   /* 0 at 0, as PyTorch */

/* An activation y = f(x) and its backward dx (+)= dy * f'(x), written once: NAME_fwd/_bwd
 * from the scalar functions NAME and NAME_grad. */
#define CPU_UNARY(NAME)                                                                          \
  CPU_CLONES                                                                                     \
  void gv_cpu_##NAME##_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x) \
  {                                                                                              \
    (void)be;                                                                                    \
    float *py = cpu_f32(y);                                                                      \
    const float *px = cpu_f32(x);                                                                \
    int64_t n = gv_tensor_numel(x);                                                              \
    _Pragma("omp parallel for schedule(static)")                                                 \
    for (int64_t i = 0; i < n; i++) py[i] = NAME(px[i]);                                         \
  }                                                                                              \
  CPU_CLONES                                                                                     \
  void gv_cpu_##NAME##_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy, \
                           const struct gv_tensor *x, int flags)                                 \
  {                                                                                              \
    (void)be;                                                                                    \
    float *pdx = cpu_f32(dx);                                                                    \
    const float *pdy = cpu_f32(dy), *px = cpu_f32(x);                                            \
    int64_t n = gv_tensor_numel(x);                                                              \
    _Pragma("omp parallel for schedule(static)")                                                 \
    for (int64_t i = 0; i < n; i++) cpu_store(&pdx[i], pdy[i] * NAME##_grad(px[i]), flags & GV_ACC_DX); \
  }
CPU_UNARY(silu)
CPU_UNARY(relu)

/* y = silu(gate) * up */
CPU_CLONES
void gv_cpu_swiglu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *gate,
                       const struct gv_tensor *up)
{
  float *py = cpu_f32(y);
  const float *pg = cpu_f32(gate), *pu = cpu_f32(up);
  int64_t n = gv_tensor_numel(y);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) py[i] = silu(pg[i]) * pu[i];
}

CPU_CLONES
void gv_cpu_swiglu_bwd(struct gv_backend *be, struct gv_tensor *dgate, struct gv_tensor *dup,
                       const struct gv_tensor *dy, const struct gv_tensor *gate,
                       const struct gv_tensor *up, int flags)
{
  float *pdg = cpu_f32(dgate), *pdu = cpu_f32(dup);
  const float *pdy = cpu_f32(dy), *pg = cpu_f32(gate), *pu = cpu_f32(up);
  int64_t n = gv_tensor_numel(dy);
  int acc = flags & GV_ACC_DX;
  /* One loop per output, so each vectorises, in one parallel region; dup first, so dgate may
   * alias dy, gate or up (then the second loop waits for the first). */
  GV_CHECK(!(pdg && pdu && (pdu == pdy || pdu == pg || pdu == pu)),
           "swiglu_bwd: dup may not alias dy, gate or up when dgate is wanted");
  int wait = pdu && (cpu_overlap(pdg, pdy, n) || cpu_overlap(pdg, pg, n) || cpu_overlap(pdg, pu, n));
#pragma omp parallel
  {
    if (pdu) {
#pragma omp for schedule(static) nowait
      for (int64_t i = 0; i < n; i++) cpu_store(&pdu[i], pdy[i] * silu(pg[i]), acc);
    }
    if (wait) {
#pragma omp barrier
    }
    if (pdg) {
#pragma omp for schedule(static) nowait
      for (int64_t i = 0; i < n; i++) cpu_store(&pdg[i], pdy[i] * pu[i] * silu_grad(pg[i]), acc);
    }
  }
}

/* ---- mul, add ---- */

CPU_CLONES
void gv_cpu_mul_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                    const struct gv_tensor *b)
{
  float *py = cpu_f32(y);
  const float *pa = cpu_f32(a), *pb = cpu_f32(b);
  int64_t n = gv_tensor_numel(y);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) py[i] = pa[i] * pb[i];
}

CPU_CLONES
void gv_cpu_mul_bwd(struct gv_backend *be, struct gv_tensor *da, struct gv_tensor *db,
                    const struct gv_tensor *dy, const struct gv_tensor *a,
                    const struct gv_tensor *b, int flags)
{
  float *pda = cpu_f32(da), *pdb = cpu_f32(db);
  const float *pdy = cpu_f32(dy), *pa = cpu_f32(a), *pb = cpu_f32(b);
  int64_t n = gv_tensor_numel(dy);
  int acc = flags & GV_ACC_DX;
  GV_CHECK(!(pda && pdb && (pda == pa || pda == pdy)), "mul_bwd: da may not alias a or dy when db is wanted");
  if (pda) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) cpu_store(&pda[i], pdy[i] * pb[i], acc);
  }
  if (pdb) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) cpu_store(&pdb[i], pdy[i] * pa[i], acc);
  }
}

CPU_CLONES
void gv_cpu_add_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                    const struct gv_tensor *b)
{
  float *py = cpu_f32(y);
  const float *pa = cpu_f32(a), *pb = cpu_f32(b);
  int64_t n = gv_tensor_numel(y);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) py[i] = pa[i] + pb[i];
}

/* ---- the scalar multiply-add, column copies ---- */

CPU_CLONES
void gv_cpu_affine(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float alpha, float beta,
                   int flags)
{
  (void)be;
  float *py = cpu_f32(y);
  const float *px = cpu_f32(x);
  int64_t n = gv_tensor_numel(x);
  int acc = flags & GV_ACC_DX;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) cpu_store(&py[i], alpha * px[i] + beta, acc);
}

/* dst[r, dst_col + j] (+)= src[r, src_col + j], j < n, for every row r. */
void gv_cpu_copy_cols(struct gv_backend *be, struct gv_tensor *dst, int64_t dst_col, const struct gv_tensor *src,
                      int64_t src_col, int64_t n, int flags)
{
  (void)be;
  float *pd = cpu_f32(dst);
  const float *ps = cpu_f32(src);
  int64_t M = cpu_rows(src), Nd = cpu_cols(dst), Ns = cpu_cols(src);
  int acc = flags & GV_ACC_DX;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; r++)
    for (int64_t j = 0; j < n; j++) cpu_store(&pd[r * Nd + dst_col + j], ps[r * Ns + src_col + j], acc);
}

/* Any float dtype: each patch row is C x p runs of p contiguous elements of an image row. */
void gv_cpu_patchify(struct gv_backend *be, struct gv_tensor *rows, struct gv_tensor *img, int64_t p, int inverse)
{
  (void)be;
  int64_t B = img->shape[0], C = img->shape[1], H = img->shape[2], W = img->shape[3], nx = W / p, N = (H / p) * nx;
  size_t es = gv_dtype_size(img->dtype), run = es * (size_t)p;
  char *pr = rows->data, *pi = img->data;
#pragma omp parallel for schedule(static)
  for (int64_t bn = 0; bn < B * N; bn++) {
    int64_t b = bn / N, py = (bn % N) / nx, px = bn % nx;
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < p; i++) {
        char *r = pr + es * (size_t)((bn * C + c) * p * p + i * p);
        char *m = pi + es * (size_t)(((b * C + c) * H + py * p + i) * W + px * p);
        memcpy(inverse ? m : r, inverse ? r : m, run);
      }
  }
}

/* ---- dropout ---- */

/* out = in * keep / (1 - p) for elements offset .. offset + n - 1 of the global stream. */
static void dropout_apply(float *out, const float *in, int64_t n, float p, uint64_t seed,
                          uint64_t offset, int acc)
{
  if (p == 0.0f) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) cpu_store(&out[i], in[i], acc);
    return;
  }
  double t = (double)p * 4294967296.0;
  uint32_t thresh = t >= 4294967295.0 ? 0xffffffffu : (uint32_t)t;
  float inv = 1.0f / (1.0f - p);
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  uint64_t b0 = offset >> 2, b1 = (offset + (uint64_t)n + 3) >> 2;
#pragma omp parallel for schedule(static)
  for (uint64_t blk = b0; blk < b1; blk++) {
    uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), 0, 0}, u[4];
    gv_philox4x32(u, ctr, key);
    for (int lane = 0; lane < 4; lane++) {
      uint64_t e = blk * 4 + (uint64_t)lane;
      if (e < offset || e >= offset + (uint64_t)n) continue;
      int64_t i = (int64_t)(e - offset);
      cpu_store(&out[i], u[lane] >= thresh ? in[i] * inv : 0.0f, acc);
    }
  }
}

void gv_cpu_dropout_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                        float p, uint64_t seed, uint64_t offset)
{
  dropout_apply(cpu_f32(y), cpu_f32(x), gv_tensor_numel(x), p, seed, offset, 0);
}

void gv_cpu_dropout_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                        float p, uint64_t seed, uint64_t offset, int flags)
{
  dropout_apply(cpu_f32(dx), cpu_f32(dy), gv_tensor_numel(dy), p, seed, offset, flags & GV_ACC_DX);
}

/* ---- reductions and copies ---- */

/* The optimizer's own sum (same order, same threads), so the gradient norm a program
 * computes through the backend is bit-identical to gv_optim_sq_sum's. */
double gv_cpu_sumsq(struct gv_backend *be, const struct gv_tensor *x)
{
  (void)be;
  return gv_optim_sq_sum(cpu_f32(x), (size_t)gv_tensor_numel(x));
}

void gv_cpu_fill(struct gv_backend *be, struct gv_tensor *x, float value)
{
  float *px = cpu_f32(x);
  int64_t n = gv_tensor_numel(x);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) px[i] = value;
}

/* Same dtype: bytes; f32 <-> bf16: convert (round to nearest even). */
void gv_cpu_copy(struct gv_backend *be, struct gv_tensor *dst, const struct gv_tensor *src)
{
  int64_t n = gv_tensor_numel(src);
  if (dst->dtype == src->dtype) {
    memmove(dst->data, src->data, gv_tensor_bytes(src));
  } else if (dst->dtype == GV_DTYPE_BF16) {
    gv_cpu_bf16_narrow(dst->data, cpu_f32(src), n, 0);
  } else {
    gv_cpu_bf16_widen(cpu_f32(dst), src->data, n);
  }
}

CPU_CLONES
void gv_cpu_axpy(struct gv_backend *be, struct gv_tensor *y, float alpha, const struct gv_tensor *x)
{
  float *py = cpu_f32(y);
  const float *px = cpu_f32(x);
  int64_t n = gv_tensor_numel(x);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) py[i] += alpha * px[i];
}

CPU_CLONES
void gv_cpu_scale(struct gv_backend *be, struct gv_tensor *x, float alpha)
{
  float *px = cpu_f32(x);
  int64_t n = gv_tensor_numel(x);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) px[i] *= alpha;
}

/* Row by row (any dtype: bytes); the row strides may differ, the regions do not overlap. */
void gv_cpu_copy2d(struct gv_backend *be, void *dst, int64_t dst_ld, const void *src, int64_t src_ld,
                   int64_t rows, int64_t cols, enum gv_dtype dtype)
{
  size_t es = gv_dtype_size(dtype), row = es * (size_t)cols;
  char *d = dst;
  const char *s = src;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++)
    memcpy(d + (size_t)r * es * (size_t)dst_ld, s + (size_t)r * es * (size_t)src_ld, row);
}
