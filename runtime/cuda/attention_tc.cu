/* attention_tc.cu - bf16 attention on tensor cores (WMMA 16x16x16, bf16 inputs, fp32
 * accumulation), FlashAttention-2 style, for the calls attention.cu hands over
 * (cu_attn_tc_takes: bf16 tensors, head dim D a multiple of 8 up to 128, and the backend's
 * attention_tc switch, GV_CUDA_ATTENTION=tc). Same semantics and layouts as attention.cu:
 *   q, o, dq, dout: (B,T,H,D); k, v, dk, dv: (B,S,KV,D) bf16; lse: (B,H,T) f32.
 * Tiles are 64 queries x 64 keys, four warps per block, each warp owning 16 rows of the
 * tile; D is padded with zeros to DMAX (64 or 128) in shared memory.
 *  - Forward, block (query tile, head, batch): S = Q K^T per warp (its 16 queries x 64 keys)
 *    into shared fp32, online softmax by the warp's lanes (two per row), P rounded to bf16,
 *    the fp32 output accumulator (in shared memory, rescaled by exp(m_old - m_new)) gets
 *    P V. The output is O / l, lse = m + log l (scores scaled by 1/sqrt(D)).
 *  - Backward, block (key tile, kv head, batch), looping over the group's query heads and
 *    the query tiles that see the tile: per warp (its 16 keys) S^T = K Q^T and dP^T = V dO^T,
 *    P^T = exp(scale S^T - lse), dS^T = P^T (dP^T - delta) scale, both rounded to bf16;
 *    dV += P^T dO and dK += dS^T Q stay in fp32 accumulator fragments for the whole loop;
 *    dQ = dS K per warp (16 queries) is added with fp32 atomics into dq_acc.
 * P and dS are rounded to bf16 before their products (as FlashAttention does): a relative
 * error of 2^-9 per element, within the bf16 bounds of test_cuda_gemm_attn. */
#include <math.h>
#include <mma.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/attention.cuh"

using namespace nvcuda;

namespace {

constexpr int TM = 64, TN = 64, WARPS = 4, NT = WARPS * 32, WM = 16, SP = TN + 4, PP = TN + 8;

typedef __nv_bfloat16 bf16;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> frag_a_row;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> frag_a_col;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> frag_b_row;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> frag_b_col;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_acc;

/* Row pitches (elements) of the bf16 D-wide tiles and of the fp32 output accumulator: a
 * multiple of 8 bf16 / 4 floats (WMMA's rule), off a multiple of 32 banks. */
template <int DMAX> struct pitch { static constexpr int BD = DMAX + 8, FD = DMAX + 4; };

/* rows x DMAX bf16 tile (pitch BD) from row row0 of a (.., stride) tensor: 16-byte loads,
 * zeros past `valid` rows and past column D. */
template <int DMAX>
__device__ void load_rows(bf16 *dst, const bf16 *src, int64_t row0, int64_t valid, int64_t stride, int D)
{
  const int VEC = 8, per_row = DMAX / VEC;
  for (int idx = threadIdx.x; idx < TM * per_row; idx += NT) {
    int r = idx / per_row, c = (idx - r * per_row) * VEC;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r < valid && c < D) val = *(const uint4 *)(src + (row0 + r) * stride + c);
    *(uint4 *)(dst + r * pitch<DMAX>::BD + c) = val;
  }
}

/* acc (16 x 16) = A (16 x DMAX, row-major at a, pitch lda) times B^T where B is 16 x DMAX
 * row-major at b (pitch ldb): a block of A B^T over the head dimension. */
template <int DMAX>
__device__ __forceinline__ void mma_abt(frag_acc &acc, const bf16 *a, int lda, const bf16 *b, int ldb)
{
  wmma::fill_fragment(acc, 0.0f);
#pragma unroll
  for (int e = 0; e < DMAX; e += 16) {
    frag_a_row fa;
    frag_b_col fb;
    wmma::load_matrix_sync(fa, a + e, lda);
    wmma::load_matrix_sync(fb, b + e, ldb);
    wmma::mma_sync(acc, fa, fb, acc);
  }
}

/* ---- forward ---- */

template <int DMAX> size_t fwd_smem()
{
  typedef pitch<DMAX> P;
  return sizeof(bf16) * (3 * TM * P::BD + TM * PP) + sizeof(float) * (TM * SP + TM * P::FD + 2 * TM);
}

template <int DMAX>
__global__ void __launch_bounds__(NT) tc_fwd_kernel(bf16 *o, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                                                    struct attn_dims d)
{
  typedef pitch<DMAX> P;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16 *Qs = (bf16 *)smem, *Ks = Qs + TM * P::BD, *Vs = Ks + TN * P::BD, *Ps = Vs + TN * P::BD;
  float *Ss = (float *)(Ps + TM * PP), *Os = Ss + TM * SP, *mrow = Os + TM * P::FD, *lrow = mrow + TM;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, D = d.D;
  const int64_t i0 = (int64_t)blockIdx.x * TM, h = blockIdx.y, b = blockIdx.z, kvh = h / d.G;
  const int64_t qstride = d.H * D, kstride = d.KV * D;
  const bf16 *qb = q + (b * d.T * d.H + h) * D, *kb = k + (b * d.S * d.KV + kvh) * D, *vb = v + (b * d.S * d.KV + kvh) * D;

  load_rows<DMAX>(Qs, qb, i0, d.T - i0, qstride, D);
  for (int idx = threadIdx.x; idx < TM * P::FD; idx += NT) Os[idx] = 0.0f;
  for (int idx = threadIdx.x; idx < TM; idx += NT) mrow[idx] = -INFINITY, lrow[idx] = 0.0f;
  const int r = warp * WM + lane / 2, half = lane % 2;   /* this lane's row, and which 32 columns */
  const int64_t i = i0 + r;
  int64_t last = d.S;                                    /* keys past the last visible one are skipped */
  if (d.causal) {
    int64_t imax = (i0 + TM - 1 < d.T - 1 ? i0 + TM - 1 : d.T - 1) + d.off + 1;
    last = imax < last ? imax : last;
  }
  for (int64_t j0 = 0; j0 < last; j0 += TN) {
    __syncthreads();                                     /* the previous tile's K, V are done with */
    load_rows<DMAX>(Ks, kb, j0, d.S - j0, kstride, D);
    load_rows<DMAX>(Vs, vb, j0, d.S - j0, kstride, D);
    __syncthreads();
    float *Sw = Ss + warp * WM * SP;
#pragma unroll
    for (int kt = 0; kt < TN / 16; kt++) {               /* S (16 x 64) of the warp's queries */
      frag_acc acc;
      mma_abt<DMAX>(acc, Qs + warp * WM * P::BD, P::BD, Ks + kt * 16 * P::BD, P::BD);
      wmma::store_matrix_sync(Sw + kt * 16, acc, SP, wmma::mem_row_major);
    }
    __syncwarp();
    /* online softmax: two lanes per row, 32 columns each */
    float *srow = Ss + r * SP + half * 32, mx = -INFINITY;
    for (int c = 0; c < 32; c++) {
      int64_t j = j0 + half * 32 + c;
      float s = visible(d, b, i, j) ? srow[c] * d.scale : -INFINITY;
      srow[c] = s;
      mx = fmaxf(mx, s);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    float m_old = mrow[r], m_new = fmaxf(m_old, mx);
    float alpha = m_new == -INFINITY ? 1.0f : __expf(m_old - m_new), sum = 0.0f;
    bf16 *prow = Ps + r * PP + half * 32;
    for (int c = 0; c < 32; c++) {
      float p = m_new == -INFINITY ? 0.0f : __expf(srow[c] - m_new);
      bf16 pb = __float2bfloat16_rn(p);
      prow[c] = pb;
      sum += __bfloat162float(pb);                       /* l sums what P V multiplies */
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    float *orow = Os + r * P::FD + half * (DMAX / 2);
    for (int c = 0; c < DMAX / 2; c++) orow[c] *= alpha;
    __syncwarp();
    if (half == 0) mrow[r] = m_new, lrow[r] = lrow[r] * alpha + sum;
    __syncwarp();
#pragma unroll
    for (int dt = 0; dt < DMAX / 16; dt++) {             /* O (16 x DMAX) += P (16 x 64) V (64 x DMAX) */
      frag_acc acc;
      float *ot = Os + warp * WM * P::FD + dt * 16;
      wmma::load_matrix_sync(acc, ot, P::FD, wmma::mem_row_major);
#pragma unroll
      for (int kt = 0; kt < TN / 16; kt++) {
        frag_a_row fa;
        frag_b_row fb;
        wmma::load_matrix_sync(fa, Ps + warp * WM * PP + kt * 16, PP);
        wmma::load_matrix_sync(fb, Vs + kt * 16 * P::BD + dt * 16, P::BD);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(ot, acc, P::FD, wmma::mem_row_major);
    }
    __syncwarp();
  }
  __syncwarp();
  if (i < d.T) {
    float l = lrow[r], inv = l > 0.0f ? 1.0f / l : 0.0f;
    bf16 *orow = o + ((b * d.T + i) * d.H + h) * D;
    for (int c = half * (DMAX / 2); c < (half + 1) * (DMAX / 2) && c < D; c++)
      orow[c] = __float2bfloat16_rn(Os[r * P::FD + c] * inv);
    if (half == 0) lse[(b * d.H + h) * d.T + i] = l > 0.0f ? mrow[r] + logf(l) : -INFINITY;
  }
}

/* ---- backward ---- */

template <int DMAX> size_t bwd_smem()
{
  typedef pitch<DMAX> P;
  return sizeof(bf16) * (4 * TM * P::BD + 2 * TN * PP) + sizeof(float) * (2 * TM + 2 * TN * SP + WARPS * 256);
}

template <int DMAX>
__global__ void __launch_bounds__(NT) tc_bwd_kernel(bf16 *dk, bf16 *dv, float *dq_acc, const bf16 *q, const bf16 *k,
                                                    const bf16 *v, const bf16 *dout, const float *lse,
                                                    const float *delta, struct attn_dims d, int acc_out)
{
  typedef pitch<DMAX> P;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16 *Ks = (bf16 *)smem, *Vs = Ks + TN * P::BD, *Qs = Vs + TN * P::BD, *dOs = Qs + TM * P::BD;
  bf16 *PTs = dOs + TM * P::BD, *dSTs = PTs + TN * PP;  /* [key][query], all four warps' rows */
  float *lse_s = (float *)(dSTs + TN * PP), *delta_s = lse_s + TM, *STs = delta_s + TM, *dPTs = STs + TN * SP,
        *stage = dPTs + TN * SP;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, D = d.D;
  const int64_t j0 = (int64_t)blockIdx.x * TN, kvh = blockIdx.y, b = blockIdx.z;
  const int64_t qstride = d.H * D, kstride = d.KV * D;
  load_rows<DMAX>(Ks, k + (b * d.S * d.KV + kvh) * D, j0, d.S - j0, kstride, D);
  load_rows<DMAX>(Vs, v + (b * d.S * d.KV + kvh) * D, j0, d.S - j0, kstride, D);
  frag_acc dKf[DMAX / 16], dVf[DMAX / 16];
#pragma unroll
  for (int dt = 0; dt < DMAX / 16; dt++) wmma::fill_fragment(dKf[dt], 0.0f), wmma::fill_fragment(dVf[dt], 0.0f);
  /* the first query that sees key j0: i + off >= j0 */
  int64_t first = d.causal ? (j0 - d.off > 0 ? (j0 - d.off) / TM * TM : 0) : 0;
  const int kr = warp * WM + lane / 2, half = lane % 2;  /* this lane's key row (of the tile), its 32 queries */
  for (int64_t g = 0; g < d.G; g++) {
    const int64_t h = kvh * d.G + g;
    for (int64_t i0 = first; i0 < d.T; i0 += TM) {
      __syncthreads();                                   /* the previous tile's Q, dO, dS are done with */
      load_rows<DMAX>(Qs, q + (b * d.T * d.H + h) * D, i0, d.T - i0, qstride, D);
      load_rows<DMAX>(dOs, dout + (b * d.T * d.H + h) * D, i0, d.T - i0, qstride, D);
      for (int idx = threadIdx.x; idx < TM; idx += NT) {
        int64_t i = i0 + idx;
        lse_s[idx] = i < d.T ? lse[(b * d.H + h) * d.T + i] : 0.0f;
        delta_s[idx] = i < d.T ? delta[(b * d.H + h) * d.T + i] : 0.0f;
      }
      __syncthreads();
      float *STw = STs + warp * WM * SP, *dPTw = dPTs + warp * WM * SP;
#pragma unroll
      for (int qt = 0; qt < TM / 16; qt++) {             /* S^T = K Q^T, dP^T = V dO^T (the warp's 16 keys) */
        frag_acc acc;
        mma_abt<DMAX>(acc, Ks + warp * WM * P::BD, P::BD, Qs + qt * 16 * P::BD, P::BD);
        wmma::store_matrix_sync(STw + qt * 16, acc, SP, wmma::mem_row_major);
        mma_abt<DMAX>(acc, Vs + warp * WM * P::BD, P::BD, dOs + qt * 16 * P::BD, P::BD);
        wmma::store_matrix_sync(dPTw + qt * 16, acc, SP, wmma::mem_row_major);
      }
      __syncwarp();
      const int64_t j = j0 + kr;
      for (int c = half * 32; c < half * 32 + 32; c++) { /* P^T and dS^T of this lane's key, 32 queries */
        int64_t i = i0 + c;
        float p = visible(d, b, i, j) ? __expf(STs[kr * SP + c] * d.scale - lse_s[c]) : 0.0f;
        float ds = p * (dPTs[kr * SP + c] - delta_s[c]) * d.scale;
        PTs[kr * PP + c] = __float2bfloat16_rn(p);
        dSTs[kr * PP + c] = __float2bfloat16_rn(ds);
      }
      __syncwarp();
#pragma unroll
      for (int dt = 0; dt < DMAX / 16; dt++)             /* dV += P^T dO, dK += dS^T Q (16 keys x DMAX) */
#pragma unroll
        for (int qt = 0; qt < TM / 16; qt++) {
          frag_a_row fp, fs;
          frag_b_row fo, fq;
          wmma::load_matrix_sync(fp, PTs + warp * WM * PP + qt * 16, PP);
          wmma::load_matrix_sync(fo, dOs + qt * 16 * P::BD + dt * 16, P::BD);
          wmma::mma_sync(dVf[dt], fp, fo, dVf[dt]);
          wmma::load_matrix_sync(fs, dSTs + warp * WM * PP + qt * 16, PP);
          wmma::load_matrix_sync(fq, Qs + qt * 16 * P::BD + dt * 16, P::BD);
          wmma::mma_sync(dKf[dt], fs, fq, dKf[dt]);
        }
      __syncthreads();                                   /* every warp's dS^T rows are in */
      float *st = stage + warp * 256;
#pragma unroll
      for (int dt = 0; dt < DMAX / 16; dt++) {           /* dQ (the warp's 16 queries) = dS K */
        frag_acc acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int kt = 0; kt < TN / 16; kt++) {
          frag_a_col fs;                                 /* dS (query, key) = dS^T read column-major */
          frag_b_row fk;
          wmma::load_matrix_sync(fs, dSTs + kt * 16 * PP + warp * WM, PP);
          wmma::load_matrix_sync(fk, Ks + kt * 16 * P::BD + dt * 16, P::BD);
          wmma::mma_sync(acc, fs, fk, acc);
        }
        wmma::store_matrix_sync(st, acc, 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
          int rr = e / 16, c = dt * 16 + e % 16;
          int64_t i = i0 + warp * WM + rr;
          if (i < d.T && c < D) atomicAdd(dq_acc + ((b * d.T + i) * d.H + h) * D + c, st[e]);
        }
        __syncwarp();
      }
    }
  }
  /* dK, dV of the warp's 16 keys: through the warp's staging tile into the outputs */
  float *st = stage + warp * 256;
#pragma unroll
  for (int which = 0; which < 2; which++)
#pragma unroll
    for (int dt = 0; dt < DMAX / 16; dt++) {
      wmma::store_matrix_sync(st, which ? dVf[dt] : dKf[dt], 16, wmma::mem_row_major);
      __syncwarp();
      bf16 *out = which ? dv : dk;
      for (int e = lane; e < 256; e += 32) {
        int rr = e / 16, c = dt * 16 + e % 16;
        int64_t j = j0 + warp * WM + rr;
        if (j < d.S && c < D) cu_store(out, ((b * d.S + j) * d.KV + kvh) * D + c, st[e], acc_out);
      }
      __syncwarp();
    }
}

/* DMAX for D (64 or 128). */
#define TC_DMAX(D, DMAX, ...) do { \
    if ((D) <= 64) { constexpr int DMAX = 64; __VA_ARGS__; } else { constexpr int DMAX = 128; __VA_ARGS__; } } while (0)

} /* namespace */

int cu_attn_tc_takes(struct gv_backend *be, enum gv_dtype dt, const struct attn_dims &d)
{
  return cu_impl(be)->attention_tc && !d.bias && !d.dbias && !d.key_ids && dt == GV_DTYPE_BF16 && d.D % 8 == 0 && d.D <= 128 && cu_impl(be)->cc_major >= 8;
}

void cu_attn_tc_fwd(struct gv_backend *be, bf16 *o, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                    const struct attn_dims &d)
{
  dim3 grid((unsigned)((d.T + TM - 1) / TM), (unsigned)d.H, (unsigned)d.B);
  TC_DMAX(d.D, DMAX, {
    size_t smem = fwd_smem<DMAX>();
    GV_CUDA_CHECK(cudaFuncSetAttribute(tc_fwd_kernel<DMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    tc_fwd_kernel<DMAX><<<grid, NT, smem, cu_stream(be)>>>(o, lse, q, k, v, d);
    GV_CUDA_LAUNCH_CHECK();
  });
}

void cu_attn_tc_bwd(struct gv_backend *be, bf16 *dk, bf16 *dv, float *dq_acc, const bf16 *q, const bf16 *k,
                    const bf16 *v, const bf16 *dout, const float *lse, const float *delta, const struct attn_dims &d,
                    int acc)
{
  dim3 grid((unsigned)((d.S + TN - 1) / TN), (unsigned)d.KV, (unsigned)d.B);
  TC_DMAX(d.D, DMAX, {
    size_t smem = bwd_smem<DMAX>();
    GV_CUDA_CHECK(cudaFuncSetAttribute(tc_bwd_kernel<DMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    tc_bwd_kernel<DMAX><<<grid, NT, smem, cu_stream(be)>>>(dk, dv, dq_acc, q, k, v, dout, lse, delta, d, acc);
    GV_CUDA_LAUNCH_CHECK();
  });
}
