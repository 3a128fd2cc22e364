/* rope.c - rotary position embedding, Hugging Face LLaMA convention (rotate_half, not
 * interleaved) on the first R = rot_dim dims of each head (R = D: LLaMA; R < D: GPT-NeoX's
 * partial rotary, the other D - R dims pass through unchanged): for pair i < R/2,
 * angle = (pos_offset + t) * base^(-2i/R) computed in fp32 as transformers does;
 * out = [x1 cos - x2 sin, x2 cos + x1 sin]. The backward is the same rotation by the negative
 * angle (a rotation's transpose), so both share rope_apply.
 *   x, y: (B,T,H,D) row-major; y may alias x */
#include <math.h>

#include "cpu/cpu.h"

enum { ROPE_MAX_HALF = 512 };

CPU_CLONES
static void rope_apply(float *y, const float *x, const struct gv_tensor *shape, float base, int64_t rot,
                       int64_t pos_offset, float sign, int acc)
{
  int64_t B = shape->shape[0], T = shape->shape[1], H = shape->shape[2], D = shape->shape[3];
  int64_t half = rot / 2;
  GV_CHECK(half <= ROPE_MAX_HALF, "rope: rotated dims %lld above %d", (long long)rot, 2 * ROPE_MAX_HALF);
  float inv_freq[ROPE_MAX_HALF];
  for (int64_t i = 0; i < half; i++) inv_freq[i] = 1.0f / powf(base, (float)(2 * i) / (float)rot);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; t++) {       /* one angle table per position, shared by the B rows */
    float c[ROPE_MAX_HALF], s[ROPE_MAX_HALF];
    float pos = (float)(pos_offset + t);
    for (int64_t i = 0; i < half; i++) {
      float ang = pos * inv_freq[i];
      c[i] = cosf(ang);
      s[i] = sign * sinf(ang);
    }
    for (int64_t bt = t; bt < B * T; bt += T)
      for (int64_t h = 0; h < H; h++) {
        const float *xr = x + (bt * H + h) * D;
        float *yr = y + (bt * H + h) * D;
        for (int64_t i = 0; i < half; i++) {
          float x1 = xr[i], x2 = xr[i + half];
          cpu_store(&yr[i], x1 * c[i] - x2 * s[i], acc);
          cpu_store(&yr[i + half], x2 * c[i] + x1 * s[i], acc);
        }
        for (int64_t j = rot; j < D; j++) /* the dims that are not rotated */
          cpu_store(&yr[j], xr[j], acc);
      }
  }
}

void gv_cpu_rope_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                     float base, int64_t rot_dim, int64_t pos_offset)
{
  rope_apply(cpu_f32(y), cpu_f32(x), x, base, rot_dim, pos_offset, 1.0f, 0);
}

void gv_cpu_rope_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                     float base, int64_t rot_dim, int64_t pos_offset, int flags)
{
  rope_apply(cpu_f32(dx), cpu_f32(dy), dy, base, rot_dim, pos_offset, -1.0f, flags & GV_ACC_DX);
}
