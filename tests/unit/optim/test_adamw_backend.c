/* test_adamw_backend.c - gv_adamw through the cpu backend's table equals the host
 * function gv_optim_adamw_step bit for bit, for f32 gradients and for bf16 gradients
 * (widened in chunks by the backend), over several steps with decay on and off; and the
 * dispatcher's shape/dtype checks are wired (a good call does not trip them).
 * gv_adamw_multi equals its definition bit for bit: per tensor, the gradient times the
 * clipping scale (in fp32), gv_optim_adamw_step, and the new master rounded into the bf16
 * parameter; f32 and bf16 gradients, with and without the bf16 copies, scale 1 and 0.37. */
#include <string.h>

#include "gvrt.h"
#include "testutil.h"
#include "unit/optim/adamw_case.h"

static void run_backend(struct adamw_case *c, int bf16)
{
  struct gv_backend be;
  gv_backend_init(&be, "cpu", 0);
  struct gv_tensor p = gv_tensor_4d(c->p, GV_DTYPE_F32, AC_N, 0, 0, 0);
  struct gv_tensor m = gv_tensor_4d(c->m, GV_DTYPE_F32, AC_N, 0, 0, 0);
  struct gv_tensor v = gv_tensor_4d(c->v, GV_DTYPE_F32, AC_N, 0, 0, 0);
  for (int k = 0; k < AC_STEPS; k++) {
    struct gv_tensor g = bf16 ? gv_tensor_4d(c->gb[k], GV_DTYPE_BF16, AC_N, 0, 0, 0)
                              : gv_tensor_4d(c->g[k], GV_DTYPE_F32, AC_N, 0, 0, 0);
    gv_adamw(&be, &ac_opt, &p, &g, &m, &v, k + 1, ac_lr(k), ac_decay(k));
  }
  gv_backend_free(&be);
}

static void check_equal(int bf16)
{
  struct adamw_case *ref = ac_make(bf16), *got = ac_make(bf16);
  ac_reference(ref);
  run_backend(got, bf16);
  CHECK(!memcmp(ref->p, got->p, sizeof ref->p));
  CHECK(!memcmp(ref->m, got->m, sizeof ref->m));
  CHECK(!memcmp(ref->v, got->v, sizeof ref->v));
  /* and the update did something */
  struct adamw_case *init = ac_make(bf16);
  CHECK(memcmp(init->p, got->p, sizeof init->p) != 0);
  free(ref);
  free(got);
  free(init);
}

/* The definition, on host copies: scale, step, round. */
static void multi_reference(struct adamw_multi_case *c, enum gv_dtype gdt, int low, float gscale)
{
  for (int k = 0; k < AM_T; k++) {
    int64_t o = am_off(k), n = am_sizes[k];
    float *g = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
      g[i] = (gdt == GV_DTYPE_BF16 ? gv_bf16_to_float(c->gb[o + i]) : c->g[o + i]) * gscale;
    gv_optim_adamw_step(&ac_opt, c->p + o, g, c->m + o, c->v + o, (size_t)n, 3, 2e-3f, k % 2);
    for (int64_t i = 0; low && i < n; i++)
      c->pb[o + i] = gv_bf16_from_float(c->p[o + i]);
    free(g);
  }
}

static void check_multi(enum gv_dtype gdt, int low, float gscale)
{
  struct adamw_multi_case *ref = am_make(), *got = am_make();
  struct gv_backend be;
  struct gv_adamw_tensor ts[AM_T];
  gv_backend_init(&be, "cpu", 0);
  multi_reference(ref, gdt, low, gscale);
  am_tensors(ts, got->p, got->m, got->v, gdt == GV_DTYPE_BF16 ? (const void *)got->gb : got->g, got->pb, gdt, low);
  gv_adamw_multi(&be, &ac_opt, ts, AM_T, gdt, 3, 2e-3f, gscale);
  CHECK(!memcmp(ref->p, got->p, sizeof ref->p));
  CHECK(!memcmp(ref->m, got->m, sizeof ref->m));
  CHECK(!memcmp(ref->v, got->v, sizeof ref->v));
  CHECK(!memcmp(ref->pb, got->pb, sizeof ref->pb));
  CHECK(!low || got->pb[am_off(4) + 5] != 0); /* the copies were written */
  gv_backend_free(&be);
  free(ref);
  free(got);
}

int main(void)
{
  check_equal(0);
  check_equal(1);
  for (int low = 0; low <= 1; low++)
    for (int sc = 0; sc <= 1; sc++) {
      check_multi(GV_DTYPE_F32, low, sc ? am_gscale : 1.0f);
      check_multi(GV_DTYPE_BF16, low, sc ? am_gscale : 1.0f);
    }
  return tu_report("test_adamw_backend");
}
