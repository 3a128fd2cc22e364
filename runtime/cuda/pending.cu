/* pending.cu - entry points not written yet: each is fatal with its name. Entries move out
 * of this file into their own file (linear.cu, attention.cu, ...) as they are written. */
#include "cuda/cuda_impl.h"

#define CU_PENDING(name) gv_fatalf(__FILE__, __LINE__, name, "gvrt", "cuda backend: %s is not written yet", name)

extern "C" void gv_cuda_embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                           const struct gv_tensor *table, int64_t pos_offset, int accumulate)
{
  (void)be; (void)y; (void)ids; (void)table; (void)pos_offset; (void)accumulate; 
  CU_PENDING("gv_cuda_embedding_fwd");
}

extern "C" void gv_cuda_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable, const struct gv_tensor *dy,
                           const struct gv_tensor *ids, int64_t pos_offset, int flags)
{
  (void)be; (void)dtable; (void)dy; (void)ids; (void)pos_offset; (void)flags; 
  CU_PENDING("gv_cuda_embedding_bwd");
}

extern "C" void gv_cuda_layernorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *mean,
                           struct gv_tensor *rstd, const struct gv_tensor *x, const struct gv_tensor *w,
                           const struct gv_tensor *b, float eps)
{
  (void)be; (void)y; (void)mean; (void)rstd; (void)x; (void)w; (void)b; (void)eps; 
  CU_PENDING("gv_cuda_layernorm_fwd");
}

extern "C" void gv_cuda_layernorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                           struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                           const struct gv_tensor *w, const struct gv_tensor *mean,
                           const struct gv_tensor *rstd, int flags)
{
  (void)be; (void)dx; (void)dw; (void)db; (void)dy; (void)x; (void)w; (void)mean; (void)rstd; (void)flags; 
  CU_PENDING("gv_cuda_layernorm_bwd");
}

extern "C" void gv_cuda_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *rstd,
                         const struct gv_tensor *x, const struct gv_tensor *w, float eps)
{
  (void)be; (void)y; (void)rstd; (void)x; (void)w; (void)eps; 
  CU_PENDING("gv_cuda_rmsnorm_fwd");
}

extern "C" void gv_cuda_rmsnorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                         const struct gv_tensor *dy, const struct gv_tensor *x, const struct gv_tensor *w,
                         const struct gv_tensor *rstd, int flags)
{
  (void)be; (void)dx; (void)dw; (void)dy; (void)x; (void)w; (void)rstd; (void)flags; 
  CU_PENDING("gv_cuda_rmsnorm_bwd");
}

extern "C" void gv_cuda_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, int tanh_form)
{
  (void)be; (void)y; (void)x; (void)tanh_form; 
  CU_PENDING("gv_cuda_gelu_fwd");
}

extern "C" void gv_cuda_gelu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                      const struct gv_tensor *x, int tanh_form, int flags)
{
  (void)be; (void)dx; (void)dy; (void)x; (void)tanh_form; (void)flags; 
  CU_PENDING("gv_cuda_gelu_bwd");
}

extern "C" void gv_cuda_silu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x)
{
  (void)be; (void)y; (void)x; 
  CU_PENDING("gv_cuda_silu_fwd");
}

extern "C" void gv_cuda_silu_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                      const struct gv_tensor *x, int flags)
{
  (void)be; (void)dx; (void)dy; (void)x; (void)flags; 
  CU_PENDING("gv_cuda_silu_bwd");
}

extern "C" void gv_cuda_swiglu_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *gate,
                        const struct gv_tensor *up)
{
  (void)be; (void)y; (void)gate; (void)up; 
  CU_PENDING("gv_cuda_swiglu_fwd");
}

extern "C" void gv_cuda_swiglu_bwd(struct gv_backend *be, struct gv_tensor *dgate, struct gv_tensor *dup,
                        const struct gv_tensor *dy, const struct gv_tensor *gate,
                        const struct gv_tensor *up, int flags)
{
  (void)be; (void)dgate; (void)dup; (void)dy; (void)gate; (void)up; (void)flags; 
  CU_PENDING("gv_cuda_swiglu_bwd");
}

extern "C" void gv_cuda_mul_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                     const struct gv_tensor *b)
{
  (void)be; (void)y; (void)a; (void)b; 
  CU_PENDING("gv_cuda_mul_fwd");
}

extern "C" void gv_cuda_mul_bwd(struct gv_backend *be, struct gv_tensor *da, struct gv_tensor *db,
                     const struct gv_tensor *dy, const struct gv_tensor *a, const struct gv_tensor *b,
                     int flags)
{
  (void)be; (void)da; (void)db; (void)dy; (void)a; (void)b; (void)flags; 
  CU_PENDING("gv_cuda_mul_bwd");
}

extern "C" void gv_cuda_add_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *a,
                     const struct gv_tensor *b)
{
  (void)be; (void)y; (void)a; (void)b; 
  CU_PENDING("gv_cuda_add_fwd");
}

extern "C" void gv_cuda_dropout_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float p,
                         uint64_t seed, uint64_t offset)
{
  (void)be; (void)y; (void)x; (void)p; (void)seed; (void)offset; 
  CU_PENDING("gv_cuda_dropout_fwd");
}

extern "C" void gv_cuda_dropout_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                         float p, uint64_t seed, uint64_t offset, int flags)
{
  (void)be; (void)dx; (void)dy; (void)p; (void)seed; (void)offset; (void)flags; 
  CU_PENDING("gv_cuda_dropout_bwd");
}

extern "C" void gv_cuda_rope_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x, float base,
                      int64_t pos_offset)
{
  (void)be; (void)y; (void)x; (void)base; (void)pos_offset; 
  CU_PENDING("gv_cuda_rope_fwd");
}

extern "C" void gv_cuda_rope_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                      float base, int64_t pos_offset, int flags)
{
  (void)be; (void)dx; (void)dy; (void)base; (void)pos_offset; (void)flags; 
  CU_PENDING("gv_cuda_rope_bwd");
}

extern "C" double gv_cuda_sumsq(struct gv_backend *be, const struct gv_tensor *x)
{
  (void)be; (void)x; 
  CU_PENDING("gv_cuda_sumsq"); return 0;
}

extern "C" void gv_cuda_fill(struct gv_backend *be, struct gv_tensor *x, float value)
{
  (void)be; (void)x; (void)value; 
  CU_PENDING("gv_cuda_fill");
}

extern "C" void gv_cuda_copy(struct gv_backend *be, struct gv_tensor *dst, const struct gv_tensor *src)
{
  (void)be; (void)dst; (void)src; 
  CU_PENDING("gv_cuda_copy");
}

extern "C" void gv_cuda_axpy(struct gv_backend *be, struct gv_tensor *y, float alpha, const struct gv_tensor *x)
{
  (void)be; (void)y; (void)alpha; (void)x; 
  CU_PENDING("gv_cuda_axpy");
}

extern "C" void gv_cuda_scale(struct gv_backend *be, struct gv_tensor *x, float alpha)
{
  (void)be; (void)x; (void)alpha; 
  CU_PENDING("gv_cuda_scale");
}
