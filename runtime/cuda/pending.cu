/* pending.cu - entry points not written yet: each is fatal with its name. Entries move out
 * of this file into their own file (linear.cu, attention.cu, ...) as they are written. */
#include "cuda/cuda_impl.h"

#define CU_PENDING(name) gv_fatalf(__FILE__, __LINE__, name, "gvrt", "cuda backend: %s is not written yet", name)

extern "C" void gv_cuda_linear_init(struct gv_backend *be)
{
  (void)be; 
  CU_PENDING("gv_cuda_linear_init");
}

extern "C" void gv_cuda_linear_shutdown(struct gv_backend *be)
{
  (void)be; 
  CU_PENDING("gv_cuda_linear_shutdown");
}

extern "C" void gv_cuda_linear_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                        const struct gv_tensor *w, const struct gv_tensor *b)
{
  (void)be; (void)y; (void)x; (void)w; (void)b; 
  CU_PENDING("gv_cuda_linear_fwd");
}

extern "C" void gv_cuda_linear_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                        struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                        const struct gv_tensor *w, int flags)
{
  (void)be; (void)dx; (void)dw; (void)db; (void)dy; (void)x; (void)w; (void)flags; 
  CU_PENDING("gv_cuda_linear_bwd");
}

extern "C" size_t gv_cuda_attention_workspace(struct gv_backend *be, int64_t B, int64_t T, int64_t S, int64_t H,
                                   int64_t KV, int64_t D)
{
  (void)be; (void)B; (void)T; (void)S; (void)H; (void)KV; (void)D; 
  CU_PENDING("gv_cuda_attention_workspace"); return 0;
}

extern "C" void gv_cuda_attention_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                           const struct gv_tensor *q, const struct gv_tensor *k,
                           const struct gv_tensor *v, int causal)
{
  (void)be; (void)o; (void)lse; (void)q; (void)k; (void)v; (void)causal; 
  CU_PENDING("gv_cuda_attention_fwd");
}

extern "C" void gv_cuda_attention_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                           struct gv_tensor *dv, const struct gv_tensor *dout, const struct gv_tensor *q,
                           const struct gv_tensor *k, const struct gv_tensor *v,
                           const struct gv_tensor *o, const struct gv_tensor *lse, int causal,
                           int flags)
{
  (void)be; (void)dq; (void)dk; (void)dv; (void)dout; (void)q; (void)k; (void)v; (void)o; (void)lse; (void)causal; (void)flags; 
  CU_PENDING("gv_cuda_attention_bwd");
}

extern "C" void gv_cuda_xent_fwd(struct gv_backend *be, struct gv_tensor *loss, struct gv_tensor *lse,
                      const struct gv_tensor *logits, const struct gv_tensor *targets, float scale)
{
  (void)be; (void)loss; (void)lse; (void)logits; (void)targets; (void)scale; 
  CU_PENDING("gv_cuda_xent_fwd");
}

extern "C" void gv_cuda_xent_bwd(struct gv_backend *be, struct gv_tensor *dlogits, const struct gv_tensor *logits,
                      const struct gv_tensor *lse, const struct gv_tensor *targets, float scale)
{
  (void)be; (void)dlogits; (void)logits; (void)lse; (void)targets; (void)scale; 
  CU_PENDING("gv_cuda_xent_bwd");
}
