/* fused.h - fused ops written as their parts through a backend's own table: the reference
 * the fusing backends are checked against, the CPU backend's entries, and a device
 * backend's fallback where its fused path does not apply. Internal to libgvrt. */
#ifndef GV_CORE_FUSED_H
#define GV_CORE_FUSED_H

#include "gvrt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* linear_fwd into pre, then gelu_fwd (tanh form) of pre into y. */
void gv_fused_linear_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *pre,
                              const struct gv_tensor *x, const struct gv_tensor *w, const struct gv_tensor *b);
/* linear_bwd with its input gradient into dpre (overwritten; flags' GV_ACC_DW for dw, db),
 * then gelu_bwd (tanh form) in place: dpre = dpre * gelu'(pre). */
void gv_fused_linear_dgelu_bwd(struct gv_backend *be, struct gv_tensor *dpre, struct gv_tensor *dw,
                               struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                               const struct gv_tensor *w, const struct gv_tensor *pre, int flags);

/* add_fwd of a and b into h, then the norm of h into y. */
void gv_fused_add_layernorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *mean,
                                struct gv_tensor *rstd, const struct gv_tensor *a, const struct gv_tensor *b,
                                const struct gv_tensor *w, const struct gv_tensor *bias, float eps);
void gv_fused_add_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y, struct gv_tensor *rstd,
                              const struct gv_tensor *a, const struct gv_tensor *b, const struct gv_tensor *w, float eps);

#ifdef __cplusplus
}
#endif

#endif
