/* attention.cuh - what the two attention implementations share (attention.cu: fp32 on CUDA
 * cores, any dtype; attention_tc.cu: bf16 on tensor cores): the problem's dimensions, the
 * causal visibility rule, and the tensor-core entry points attention.cu dispatches to. */
#ifndef GV_CUDA_ATTENTION_CUH
#define GV_CUDA_ATTENTION_CUH

#include "cuda/cuda_impl.h"

struct attn_dims {
  int64_t B, T, S, H, KV, G, off;   /* G = H / KV; off = S - T (causal diagonal) */
  int D, causal;
  float scale;                      /* of the scores (gv_attn_opts; default 1/sqrt(D)) */
  const void *bias;                 /* (T,S,Hb) added to the scores, in q's dtype, or NULL */
  void *dbias;                      /* backward: the scores' gradient summed over the batch, or NULL */
  int64_t Hb, h0;                   /* the bias's heads; head h of the call reads h0 + h */
  const int32_t *key_ids;           /* (B,S) key padding ids (keys equal to pad hidden), or NULL */
  int32_t pad;
};

static inline struct attn_dims dims_of(const struct gv_tensor *q, const struct gv_tensor *k, int causal,
                                       const struct gv_attn_opts *x)
{
  struct attn_dims d;
  d.B = q->shape[0], d.T = q->shape[1], d.H = q->shape[2], d.S = k->shape[1], d.KV = k->shape[2];
  d.G = d.H / d.KV, d.off = d.S - d.T, d.D = (int)q->shape[3], d.causal = causal;
  d.scale = x && x->scale != 0.0f ? x->scale : 1.0f / sqrtf((float)d.D);
  d.bias = x && x->bias ? x->bias->data : NULL;
  d.dbias = x && x->dbias ? x->dbias->data : NULL;
  d.Hb = x && (x->bias || x->dbias) ? (x->bias ? x->bias : x->dbias)->shape[2] : 0;
  d.h0 = x ? x->h0 : 0;
  d.key_ids = x && x->key_ids ? (const int32_t *)x->key_ids->data : NULL;
  d.pad = x ? x->pad_id : 0;
  return d;
}

/* Key j of sample b is visible from query i (both in range, not past the causal diagonal,
 * not a padding key). */
static __device__ __forceinline__ bool visible(const struct attn_dims &d, int64_t b, int64_t i, int64_t j)
{
  return i < d.T && j < d.S && !(d.causal && j > i + d.off) && !(d.key_ids && d.key_ids[b * d.S + j] == d.pad);
}

/* attention_tc.cu: whether the tensor-core kernels take this call (bf16, D a multiple of 8 up
 * to 128, no bias and no key padding, enabled for the backend), the forward, and the backward's main kernel (dK, dV of
 * each key tile, dQ added into the fp32 dq_acc; delta = rowsum(dO * O) precomputed). */
int cu_attn_tc_takes(struct gv_backend *be, enum gv_dtype dt, const struct attn_dims &d);
void cu_attn_tc_fwd(struct gv_backend *be, __nv_bfloat16 *o, float *lse, const __nv_bfloat16 *q,
                    const __nv_bfloat16 *k, const __nv_bfloat16 *v, const struct attn_dims &d);
void cu_attn_tc_bwd(struct gv_backend *be, __nv_bfloat16 *dk, __nv_bfloat16 *dv, float *dq_acc,
                    const __nv_bfloat16 *q, const __nv_bfloat16 *k, const __nv_bfloat16 *v,
                    const __nv_bfloat16 *dout, const float *lse, const float *delta, const struct attn_dims &d,
                    int acc);

#endif
