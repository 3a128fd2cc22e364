/* rope.cu - rotary position embedding on the CUDA backend, Hugging Face LLaMA convention
 * (rotate_half) on the first R = rot_dim dims of each head (R < D: GPT-NeoX's partial rotary,
 * the other dims pass through), with the CPU backend's semantics (runtime/cpu/rope.c): for
 * pair i < R/2, angle = (pos_offset + t) * (1 / base^(2i/R)) in fp32, out = [x1 cos - x2 sin,
 * x2 cos + x1 sin]; the backward rotates by the negative angle. One thread per (b, t, i)
 * computes its cos/sin once and rotates pair i of every head; threads i >= R/2 copy the
 * passed dim R + (i - R/2) of every head. base^e, cos and sin are evaluated in fp64 and
 * rounded to fp32, so they match the CPU's correctly rounded libm floats (fp32 CUDA
 * powf/sinf differ by a few ulp, which the angle magnifies by pos).
 *   x, y: (B,T,H,D) row-major, one dtype (f32 or bf16); y may alias x */
#include "cuda/cu_common.cuh"

namespace {

// y, x: (BT, H, D); seq = T; R rotated dims; sign = +1 forward, -1 backward
template <typename T>
__global__ void rope_kernel(T *y, const T *x, int64_t BT, int64_t seq, int64_t H, int64_t D, int64_t R,
                            float base, int64_t pos_offset, float sign, int acc)
{
  int64_t half = R / 2, per = half + (D - R);
  for (int64_t k = cu_tid(); k < BT * per; k += cu_stride()) {
    int64_t bt = k / per, i = k % per;
    if (i >= half) { /* a dim that is not rotated */
      for (int64_t h = 0; h < H; h++) {
        int64_t o = (bt * H + h) * D + R + (i - half);
        cu_store(y, o, cu_load(x, o), acc);
      }
      continue;
    }
    float pos = (float)(pos_offset + bt % seq);
    float inv_freq = 1.0f / (float)pow((double)base, (double)((float)(2 * i) / (float)R));
    double s, c;
    sincos((double)(pos * inv_freq), &s, &c);
    float cf = (float)c, sf = sign * (float)s;
    for (int64_t h = 0; h < H; h++) {
      int64_t o = (bt * H + h) * D + i;
      float x1 = cu_load(x, o), x2 = cu_load(x, o + half);   /* both read before either store */
      cu_store(y, o, x1 * cf - x2 * sf, acc);
      cu_store(y, o + half, x2 * cf + x1 * sf, acc);
    }
  }
}

void rope_apply(struct gv_backend *be, const char *op, struct gv_tensor *y, const struct gv_tensor *x,
                float base, int64_t R, int64_t pos_offset, float sign, int acc)
{
  int64_t B = x->shape[0], T_ = x->shape[1], H = x->shape[2], D = x->shape[3];
  cu_need_dtype(op, "output", y, x->dtype);
  if (B * T_ * H * D == 0) return;
  int64_t per = R / 2 + (D - R);
  CU_DISPATCH(x->dtype, T,
              rope_kernel<T><<<cu_blocks(be, B * T_ * per, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(y), cu_ptr<T>(x), B * T_, T_, H, D, R, base, pos_offset, sign, acc));
  GV_CUDA_LAUNCH_CHECK();
}

}  // namespace

extern "C" void gv_cuda_rope_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                                 float base, int64_t rot_dim, int64_t pos_offset)
{
  rope_apply(be, "rope_fwd", y, x, base, rot_dim, pos_offset, 1.0f, 0);
}

extern "C" void gv_cuda_rope_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                                 float base, int64_t rot_dim, int64_t pos_offset, int flags)
{
  rope_apply(be, "rope_bwd", dx, dy, base, rot_dim, pos_offset, -1.0f, flags & GV_ACC_DX);
}
