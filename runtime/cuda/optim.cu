/* optim.cu - AdamW on the GPU: one fused element-wise kernel per parameter (shard),
 * templated over the gradient's dtype (f32 or bf16; p, m, v are fp32). The scalars are
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

/* m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  p = p*shrink - step * m / (sqrt(v)/bc2s + eps) */
template <typename G>
__global__ void adamw_kernel(float *__restrict__ p, const G *__restrict__ g, float *__restrict__ m,
                             float *__restrict__ v, int64_t n, struct cu_adamw_scalars s)
{
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float gi = cu_load(g, i);
    float mi = __fadd_rn(__fmul_rn(m[i], s.b1), __fmul_rn(gi, s.c1));
    float vi = __fadd_rn(__fmul_rn(v[i], s.b2), __fmul_rn(__fmul_rn(s.c2, gi), gi));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt), s.eps);
    m[i] = mi;
    v[i] = vi;
    p[i] = __fsub_rn(__fmul_rn(p[i], s.shrink), __fmul_rn(s.step_size, __fdiv_rn(mi, denom)));
  }
}

extern "C" void gv_cuda_adamw(struct gv_backend *be, const struct gv_adamw *opt, struct gv_tensor *p,
                              const struct gv_tensor *g, struct gv_tensor *m, struct gv_tensor *v, int t,
                              float lr, int decay)
{
  const int64_t n = gv_tensor_numel(p);
  if (n == 0) return;
  const struct cu_adamw_scalars s = adamw_scalars(opt, t, lr, decay);
  const int threads = 256;
  CU_DISPATCH(g->dtype, G,
              adamw_kernel<G><<<cu_blocks(be, n, threads), threads, 0, cu_stream(be)>>>(
                  (float *)p->data, (const G *)g->data, (float *)m->data, (float *)v->data, n, s));
  GV_CUDA_LAUNCH_CHECK();
}
