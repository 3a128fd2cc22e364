/* optim.cu - AdamW on the GPU: one fused multi-tensor kernel (up to MT_MAX tensors a
 * launch, each block one chunk of one tensor), templated over the gradients' dtype (f32 or
 * bf16; p, m, v are fp32), with the clipping scale and the bf16 parameter copy fused in. The scalars are
 * computed on the host exactly as runtime/optim/adamw.c does (bias corrections in double,
 * PyTorch 1.13's single-tensor AdamW), and the per-element math is the same sequence of
 * fp32 operations, each rounded on its own (__f*_rn: no FMA contraction), so a step equals
 * gv_optim_adamw_step on the CPU up to the rounding of sqrtf/division, both IEEE here. */
#include <math.h>

#include "cuda/cuda_impl.h"

/* The per-step scalars of adamw.c, in the same precision and order. */
struct cu_adamw_scalars {
  float shrink, step_size, bc2_sqrt, b1, b2, c1, c2, eps;
};

static struct cu_adamw_scalars adamw_scalars(const struct gv_adamw *opt, int t, float lr, int decay)
{
  const double bc1 = 1.0 - pow((double)opt->beta1, (double)t);
  const double bc2 = 1.0 - pow((double)opt->beta2, (double)t);
  struct cu_adamw_scalars s;
  s.shrink = decay ? (float)(1.0 - (double)lr * (double)opt->weight_decay) : 1.0f;
  s.step_size = (float)((double)lr / bc1);
  s.bc2_sqrt = (float)sqrt(bc2);
  s.b1 = opt->beta1;
  s.b2 = opt->beta2;
  s.c1 = 1.0f - s.b1;
  s.c2 = 1.0f - s.b2;
  s.eps = opt->eps;
  return s;
}

/* Tensors per launch: their descriptors travel as a kernel argument (< 4 KiB). */
enum { MT_MAX = 32, MT_CHUNK = 4096, MT_THREADS = 256 };

/* A launch's tensors and, per tensor, its first block (blocks of MT_CHUNK elements). */
struct mt_batch {
  struct gv_adamw_tensor t[MT_MAX];
  int start[MT_MAX + 1];
  int nt;
};

/* m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  p = p*shrink - step * m / (sqrt(v)/bc2s + eps),
 * g = g * gscale first; the bf16 copy of p when asked. Block b works on one chunk of the
 * tensor whose block range holds b. */
template <typename G>
__global__ void adamw_multi_kernel(struct mt_batch b, struct cu_adamw_scalars s, float shrink_decay, float gscale)
{
  int k = 0;
  while (k + 1 < b.nt && b.start[k + 1] <= (int)blockIdx.x) k++;
  const struct gv_adamw_tensor &ts = b.t[k];
  const int64_t first = (int64_t)((int)blockIdx.x - b.start[k]) * MT_CHUNK;
  const int64_t end = first + MT_CHUNK < ts.n ? first + MT_CHUNK : ts.n;
  const float shrink = ts.decay ? shrink_decay : 1.0f;
  const G *g = (const G *)ts.g;
  float *p = ts.p, *m = ts.m, *v = ts.v;
  for (int64_t i = first + threadIdx.x; i < end; i += blockDim.x) {
    float gi = cu_load(g, i);
    if (gscale != 1.0f) gi = __fmul_rn(gi, gscale);
    float mi = __fadd_rn(__fmul_rn(m[i], s.b1), __fmul_rn(gi, s.c1));
    float vi = __fadd_rn(__fmul_rn(v[i], s.b2), __fmul_rn(__fmul_rn(s.c2, gi), gi));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt), s.eps);
    float pi = __fsub_rn(__fmul_rn(p[i], shrink), __fmul_rn(s.step_size, __fdiv_rn(mi, denom)));
    m[i] = mi;
    v[i] = vi;
    p[i] = pi;
    if (ts.p_bf16) ((__nv_bfloat16 *)ts.p_bf16)[i] = __float2bfloat16_rn(pi);
  }
}

/* Batches of up to MT_MAX non-empty tensors, one launch each. */
extern "C" void gv_cuda_adamw_multi(struct gv_backend *be, const struct gv_adamw *opt,
                                    const struct gv_adamw_tensor *ts, int nt, enum gv_dtype gdt, int t, float lr,
                                    float gscale)
{
  const struct cu_adamw_scalars s = adamw_scalars(opt, t, lr, 0);
  const float shrink_decay = adamw_scalars(opt, t, lr, 1).shrink;
  struct mt_batch b;
  for (int i = 0; i < nt;) {
    b.nt = 0;
    b.start[0] = 0;
    for (; i < nt && b.nt < MT_MAX; i++) {
      if (ts[i].n == 0) continue;
      int64_t blocks = (ts[i].n + MT_CHUNK - 1) / MT_CHUNK;
      GV_CHECK((int64_t)b.start[b.nt] + blocks < INT32_MAX, "cuda adamw_multi: tensor of %lld elements is too large",
               (long long)ts[i].n);
      b.t[b.nt] = ts[i];
      b.start[b.nt + 1] = b.start[b.nt] + (int)blocks;
      b.nt++;
    }
    if (!b.nt) continue;
    CU_DISPATCH(gdt, G,
                adamw_multi_kernel<G><<<b.start[b.nt], MT_THREADS, 0, cu_stream(be)>>>(b, s, shrink_decay, gscale));
    GV_CUDA_LAUNCH_CHECK();
  }
}
