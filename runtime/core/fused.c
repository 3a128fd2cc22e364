/* fused.c - the fused ops as their parts (fused.h), through the backend's table so that
 * each part keeps its backend's semantics (bf16 included). */
#include "core/fused.h"

void gv_fused_linear_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *pre,
                              const struct gv_tensor *x, const struct gv_tensor *w, const struct gv_tensor *b)
{
  be->ops->linear_fwd(be, pre, x, w, b);
  be->ops->gelu_fwd(be, y, pre, 1);
}

void gv_fused_linear_dgelu_bwd(struct gv_backend *be, struct gv_tensor *dpre, struct gv_tensor *dw,
                               struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                               const struct gv_tensor *w, const struct gv_tensor *pre, int flags)
{
  be->ops->linear_bwd(be, dpre, dw, db, dy, x, w, flags & GV_ACC_DW);
  be->ops->gelu_bwd(be, dpre, dpre, pre, 1, 0);
}

void gv_fused_add_layernorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *mean,
                                struct gv_tensor *rstd, const struct gv_tensor *a, const struct gv_tensor *b,
                                const struct gv_tensor *w, const struct gv_tensor *bias, float eps)
{
  be->ops->add_fwd(be, h, a, b);
  be->ops->layernorm_fwd(be, y, mean, rstd, h, w, bias, eps);
}

void gv_fused_add_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *rstd,
                              const struct gv_tensor *a, const struct gv_tensor *b, const struct gv_tensor *w, float eps)
{
  be->ops->add_fwd(be, h, a, b);
  be->ops->rmsnorm_fwd(be, y, rstd, h, w, eps);
}
