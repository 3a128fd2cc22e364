/* test_adamw_backend.c - gv_adamw through the cpu backend's table equals the host
 * function gv_optim_adamw_step bit for bit, for f32 gradients and for bf16 gradients
 * (widened in chunks by the backend), over several steps with decay on and off; and the
 * dispatcher's shape/dtype checks are wired (a good call does not trip them). */
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

int main(void)
{
  check_equal(0);
  check_equal(1);
  return tu_report("test_adamw_backend");
}
