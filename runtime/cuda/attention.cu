/* attention.cu - fused scaled dot-product attention in the FlashAttention-2 style: the
 * T x S score matrix never exists in global memory, forward keeps only lse (f32).
 * Semantics of runtime/cpu/attention.c: causal masks key j > i + (S - T); scale 1/sqrt(D)
 * or gv_attn_opts's, its optional (T,S,Hb) bias (gradient summed by atomics) and key padding mask;
 * GQA reads kv head h / (H / KV); backward follows GV_ACC_DX for dq, dk and dv.
 *   q, o, dq, dout: (B,T,H,D); k, v, dk, dv: (B,S,KV,D); lse: (B,H,T) f32; D <= 128
 * Forward: one block per (query tile of BM rows, head, batch); key tiles of BN rows stream
 * through shared memory with an online softmax (running max m, sum l, rescaled output
 * accumulator in registers). Backward: delta = rowsum(dO * O) first; then one block per
 * (key tile, kv head, batch) keeps dK and dV of its BN keys in registers while it loops over
 * the query heads of its group and the query tiles that can see it, recomputing P from
 * lse; dQ is added with fp32 atomics into a workspace accumulator, converted at the end.
 * Plain CUDA-core fp32 FMAs (bf16 calls go to the tensor-core kernels of attention_tc.cu
 * when GV_CUDA_ATTENTION=tc and the head dim allows); tiles are fp32 in shared
 * memory whatever the storage dtype. Each thread of the 16 x 16 block owns the rows
 * ty + 16 r and the columns tx + 16 c of a 64 x 64 tile (odd row pitch: no bank conflicts). */
#include <math.h>

#include "cuda/attention.cuh"
#include "cuda/cu_common.cuh"

enum {
  BM = 64, BN = 64,                 /* query rows, key rows per tile */
  TX = 16, TY = 16, THREADS = TX * TY,
  RM = BM / TY, RN = BN / TX,       /* rows, key columns of a tile per thread */
  LP = BN + 1                       /* row pitch of the P / dS tile */
};

/* dst[r * (D+1) + c] = mul * src[(row0 + r) * stride + c] for r < rows (zero past valid). */
template <typename T>
static __device__ void load_tile(float *dst, const T *src, int64_t row0, int64_t valid, int64_t stride, int D,
                          int rows, float mul)
{
  for (int idx = threadIdx.x; idx < rows * D; idx += THREADS) {
    int r = idx / D, c = idx - r * D;
    dst[r * (D + 1) + c] = r < valid ? mul * cu_load(src, (row0 + r) * stride + c) : 0.0f;
  }
}

/* x over the 16 lanes of one tile row (same ty: lanes 0-15 or 16-31 of the warp). */
static __device__ __forceinline__ float row_max16(float x)
{
  for (int o = TX / 2; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
static __device__ __forceinline__ float row_sum16(float x)
{
  for (int o = TX / 2; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

/* acc[r][c] = sum_e A[(ty + TY r) * lda + e] * B[(tx + TX c) * ldb + e]: a 64 x 64 tile of
 * A B^T over the inner dimension n. */
static __device__ __forceinline__ void tile_abt(float (&acc)[RM][RN], const float *A, int lda, const float *Bm,
                                         int ldb, int n)
{
  int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
#pragma unroll
  for (int r = 0; r < RM; r++)
#pragma unroll
    for (int c = 0; c < RN; c++) acc[r][c] = 0.0f;
#pragma unroll 4
  for (int e = 0; e < n; e++) {
    float a[RM], b[RN];
#pragma unroll
    for (int r = 0; r < RM; r++) a[r] = A[(ty + TY * r) * lda + e];
#pragma unroll
    for (int c = 0; c < RN; c++) b[c] = Bm[(tx + TX * c) * ldb + e];
#pragma unroll
    for (int r = 0; r < RM; r++)
#pragma unroll
      for (int c = 0; c < RN; c++) acc[r][c] += a[r] * b[c];
  }
}

/* acc[r][e] += sum_x A[x * lda + (ty + TY r)] * B[x * ldb + (tx + TX e)] over x < n, for the
 * D columns tx + TX e < D: (A^T B) rows of the tile times a D-wide operand. */
template <int DMAX>
static __device__ __forceinline__ void tile_atb(float (&acc)[RM][DMAX / TX], const float *A, int lda,
                                         const float *Bm, int ldb, int n, int D)
{
  int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
#pragma unroll 2
  for (int x = 0; x < n; x++) {
    float a[RM];
#pragma unroll
    for (int r = 0; r < RM; r++) a[r] = A[x * lda + ty + TY * r];
#pragma unroll
    for (int e = 0; e < DMAX / TX; e++) {
      int c = tx + TX * e;
      float b = c < D ? Bm[x * ldb + c] : 0.0f;
#pragma unroll
      for (int r = 0; r < RM; r++) acc[r][e] += a[r] * b;
    }
  }
}

/* The bias of head h, query i, key j (0 without one) and its gradient's atomic sum. */
template <typename T>
static __device__ __forceinline__ float bias_at(const struct attn_dims &d, int64_t h, int64_t i, int64_t j)
{
  return d.bias ? cu_load((const T *)d.bias, (i * d.S + j) * d.Hb + d.h0 + h) : 0.0f;
}
template <typename T> static __device__ __forceinline__ void dbias_add(T *p, float v);
template <> __device__ __forceinline__ void dbias_add<float>(float *p, float v) { atomicAdd(p, v); }
template <> __device__ __forceinline__ void dbias_add<__nv_bfloat16>(__nv_bfloat16 *p, float v)
{
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  atomicAdd(p, __float2bfloat16_rn(v));
#else
  __trap(); /* bf16 atomics need sm_80 */
#endif
}

/* ---- forward ---- */

static size_t fwd_smem(int D) { return sizeof(float) * ((size_t)(BM + 2 * BN) * (D + 1) + (size_t)BM * LP); }

/* Block (query tile, head, batch). Shared: Q (scaled), K, V tiles (pitch D+1), P tile. */
template <typename T, int DMAX>
static __global__ void __launch_bounds__(THREADS)
attn_fwd_kernel(T *o, float *lse, const T *q, const T *k, const T *v, struct attn_dims d)
{
  extern __shared__ float sm[];
  const int D = d.D, LD = D + 1, tx = threadIdx.x % TX, ty = threadIdx.x / TX;
  float *Qs = sm, *Ks = Qs + BM * LD, *Vs = Ks + BN * LD, *Ps = Vs + BN * LD;
  const int64_t i0 = (int64_t)blockIdx.x * BM, h = blockIdx.y, b = blockIdx.z, kvh = h / d.G;
  const int64_t qstride = d.H * D, kstride = d.KV * D;
  const T *qb = q + (b * d.T * d.H + h) * D;
  const T *kb = k + (b * d.S * d.KV + kvh) * D, *vb = v + (b * d.S * d.KV + kvh) * D;

  load_tile(Qs, qb, i0, d.T - i0, qstride, D, BM, d.scale);
  float acc[RM][DMAX / TX], m[RM], l[RM];
#pragma unroll
  for (int r = 0; r < RM; r++) {
    m[r] = -INFINITY, l[r] = 0.0f;
#pragma unroll
    for (int e = 0; e < DMAX / TX; e++) acc[r][e] = 0.0f;
  }
  int64_t kend = d.causal ? min(d.S, i0 + BM + d.off) : d.S;   /* last visible key + 1 */
  for (int64_t j0 = 0; j0 < kend; j0 += BN) {
    __syncthreads();                                         /* previous tiles consumed */
    load_tile(Ks, kb, j0, d.S - j0, kstride, D, BN, 1.0f);
    load_tile(Vs, vb, j0, d.S - j0, kstride, D, BN, 1.0f);
    __syncthreads();
    float s[RM][RN];
    tile_abt(s, Qs, LD, Ks, LD, D);
#pragma unroll
    for (int r = 0; r < RM; r++) {
      int64_t i = i0 + ty + TY * r;
      float mx = -INFINITY;
#pragma unroll
      for (int c = 0; c < RN; c++) {
        if (!visible(d, b, i, j0 + tx + TX * c)) s[r][c] = -INFINITY;
        else s[r][c] += bias_at<T>(d, h, i, j0 + tx + TX * c);
        mx = fmaxf(mx, s[r][c]);
      }
      float mnew = fmaxf(m[r], row_max16(mx));
      float alpha = mnew == -INFINITY ? 1.0f : expf(m[r] - mnew), sum = 0.0f;
#pragma unroll
      for (int c = 0; c < RN; c++) {
        float p = s[r][c] == -INFINITY ? 0.0f : expf(s[r][c] - mnew);
        Ps[(ty + TY * r) * LP + tx + TX * c] = p;
        sum += p;
      }
      l[r] = l[r] * alpha + row_sum16(sum);
      m[r] = mnew;
#pragma unroll
      for (int e = 0; e < DMAX / TX; e++) acc[r][e] *= alpha;
    }
    __syncthreads();
    /* acc[r][e] += sum_j P[row r][j] V[j][col e]: P^T is not needed, read P by rows. */
#pragma unroll 2
    for (int j = 0; j < BN; j++) {
      float p[RM];
#pragma unroll
      for (int r = 0; r < RM; r++) p[r] = Ps[(ty + TY * r) * LP + j];
#pragma unroll
      for (int e = 0; e < DMAX / TX; e++) {
        int c = tx + TX * e;
        float vv = c < D ? Vs[j * LD + c] : 0.0f;
#pragma unroll
        for (int r = 0; r < RM; r++) acc[r][e] += p[r] * vv;
      }
    }
  }
#pragma unroll
  for (int r = 0; r < RM; r++) {
    int64_t i = i0 + ty + TY * r;
    if (i >= d.T) continue;
    float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;   /* a row with no visible key gives 0 */
#pragma unroll
    for (int e = 0; e < DMAX / TX; e++) {
      int c = tx + TX * e;
      if (c < D) o[(b * d.T + i) * qstride + h * D + c] = cu_from_float<T>(acc[r][e] * inv);
    }
    if (tx == 0) lse[(b * d.H + h) * d.T + i] = l[r] > 0.0f ? m[r] + logf(l[r]) : -INFINITY;
  }
}

/* ---- backward ---- */

static size_t bwd_smem(int D)
{
  return sizeof(float) * ((size_t)(2 * BM + 2 * BN) * (D + 1) + (size_t)BM * LP + 2 * BM);
}

/* delta[(b*H + h)*T + t] = sum_c dO * O of row (b, t, h): one warp per row. */
template <typename T>
static __global__ void attn_delta_kernel(float *delta, const T *dout, const T *o, struct attn_dims d)
{
  int64_t rows = d.B * d.T * d.H, warps = (int64_t)gridDim.x * (blockDim.x / 32);
  for (int64_t row = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; row < rows; row += warps) {
    float s = 0.0f;
    for (int c = threadIdx.x % 32; c < d.D; c += 32) s += cu_load(dout, row * d.D + c) * cu_load(o, row * d.D + c);
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    int64_t h = row % d.H, t = (row / d.H) % d.T, b = row / (d.H * d.T);
    if (threadIdx.x % 32 == 0) delta[(b * d.H + h) * d.T + t] = s;
  }
}

/* Block (key tile, kv head, batch): dK, dV of BN keys in registers (rows ty + TY r, columns
 * tx + TX e), over every query head of the group and every query tile that sees the keys. */
template <typename T, int DMAX>
static __global__ void __launch_bounds__(THREADS)
attn_bwd_kernel(T *dk, T *dv, float *dq_acc, const T *q, const T *k, const T *v, const T *dout,
                const float *lse, const float *delta, struct attn_dims d, int acc_out)
{
  extern __shared__ float sm[];
  const int D = d.D, LD = D + 1, tx = threadIdx.x % TX, ty = threadIdx.x / TX;
  float *Ks = sm, *Vs = Ks + BN * LD, *Qs = Vs + BN * LD, *dOs = Qs + BM * LD, *Ps = dOs + BM * LD;
  float *rowL = Ps + BM * LP, *rowD = rowL + BM;
  const int64_t j0 = (int64_t)blockIdx.x * BN, kvh = blockIdx.y, b = blockIdx.z;
  const int64_t qstride = d.H * D, kstride = d.KV * D;
  const int64_t koff = (b * d.S * d.KV + kvh) * D;

  load_tile(Ks, k + koff, j0, d.S - j0, kstride, D, BN, 1.0f);
  load_tile(Vs, v + koff, j0, d.S - j0, kstride, D, BN, 1.0f);
  float dK[RM][DMAX / TX], dV[RM][DMAX / TX];
#pragma unroll
  for (int r = 0; r < RM; r++)
#pragma unroll
    for (int e = 0; e < DMAX / TX; e++) dK[r][e] = 0.0f, dV[r][e] = 0.0f;
  /* query i sees key j0 iff i >= j0 - off: earlier query tiles are skipped */
  int64_t first = d.causal ? max((int64_t)0, j0 - d.off) / BM * BM : 0;

  for (int64_t h = kvh * d.G; h < (kvh + 1) * d.G; h++) {
    const int64_t qoff = (b * d.T * d.H + h) * D, loff = (b * d.H + h) * d.T;
    for (int64_t i0 = first; i0 < d.T; i0 += BM) {
      __syncthreads();                                       /* previous tiles consumed */
      load_tile(Qs, q + qoff, i0, d.T - i0, qstride, D, BM, 1.0f);
      load_tile(dOs, dout + qoff, i0, d.T - i0, qstride, D, BM, 1.0f);
      for (int r = threadIdx.x; r < BM; r += THREADS) {
        rowL[r] = i0 + r < d.T ? lse[loff + i0 + r] : 0.0f;
        rowD[r] = i0 + r < d.T ? delta[loff + i0 + r] : 0.0f;
      }
      __syncthreads();
      /* P = exp(scale q k^T - lse), dP = dO v^T, dS = P (dP - delta); thread: rows ty+TY r */
      float p[RM][RN], ds[RM][RN];
      tile_abt(p, Qs, LD, Ks, LD, D);
      tile_abt(ds, dOs, LD, Vs, LD, D);
#pragma unroll
      for (int r = 0; r < RM; r++) {
        int ir = ty + TY * r;
#pragma unroll
        for (int c = 0; c < RN; c++) {
          bool vis = visible(d, b, i0 + ir, j0 + tx + TX * c);
          p[r][c] = vis ? expf(d.scale * p[r][c] + bias_at<T>(d, h, i0 + ir, j0 + tx + TX * c) - rowL[ir]) : 0.0f;
          ds[r][c] = p[r][c] * (ds[r][c] - rowD[ir]);
          if (vis && d.dbias)
            dbias_add<T>((T *)d.dbias + ((i0 + ir) * d.S + j0 + tx + TX * c) * d.Hb + d.h0 + h, ds[r][c]);
          Ps[ir * LP + tx + TX * c] = p[r][c];
        }
      }
      __syncthreads();
      tile_atb<DMAX>(dV, Ps, LP, dOs, LD, BM, D);            /* dV += P^T dO */
      __syncthreads();
#pragma unroll
      for (int r = 0; r < RM; r++)
#pragma unroll
        for (int c = 0; c < RN; c++) Ps[(ty + TY * r) * LP + tx + TX * c] = ds[r][c];
      __syncthreads();
      tile_atb<DMAX>(dK, Ps, LP, Qs, LD, BM, D);             /* dK += dS^T Q (scaled at the end) */
      /* dQ rows of this tile += scale dS K, added into the fp32 accumulator */
#pragma unroll
      for (int r = 0; r < RM; r++) {
        int64_t i = i0 + ty + TY * r;
        float dq[DMAX / TX];
#pragma unroll
        for (int e = 0; e < DMAX / TX; e++) dq[e] = 0.0f;
        for (int j = 0; j < BN; j++) {
          float s = Ps[(ty + TY * r) * LP + j];
#pragma unroll
          for (int e = 0; e < DMAX / TX; e++) {
            int c = tx + TX * e;
            dq[e] += s * (c < D ? Ks[j * LD + c] : 0.0f);
          }
        }
        if (i < d.T)
#pragma unroll
          for (int e = 0; e < DMAX / TX; e++) {
            int c = tx + TX * e;
            if (c < D) atomicAdd(&dq_acc[(b * d.T + i) * qstride + h * D + c], d.scale * dq[e]);
          }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < RM; r++) {
    int64_t j = j0 + ty + TY * r;
    if (j >= d.S) continue;
#pragma unroll
    for (int e = 0; e < DMAX / TX; e++) {
      int c = tx + TX * e;
      if (c >= D) continue;
      int64_t idx = (b * d.S + j) * kstride + kvh * D + c;
      cu_store(dk, idx, d.scale * dK[r][e], acc_out);
      cu_store(dv, idx, dV[r][e], acc_out);
    }
  }
}

/* dq (+)= dq_acc */
template <typename T>
static __global__ void attn_dq_kernel(T *dq, const float *dq_acc, int64_t n, int acc)
{
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    cu_store(dq, i, dq_acc[i], acc);
}

/* ---- launches ---- */

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

/* The backend's workspace: the attention backward's delta [B,H,T] then its dQ accumulator
 * [B,T,H,D], fp32, and at least the cuBLASLt workspace of the GEMMs (linear.cu), which run
 * before or after it on the same stream and reuse the same bytes. */
extern "C" size_t gv_cuda_attention_workspace(struct gv_backend *be, int64_t B, int64_t T, int64_t S,
                                              int64_t H, int64_t KV, int64_t D)
{
  (void)be, (void)S, (void)KV;
  size_t attn = align256(sizeof(float) * (size_t)(B * H * T)) + align256(sizeof(float) * (size_t)(B * T * H * D));
  return attn > GV_CUDA_GEMM_WORKSPACE ? attn : GV_CUDA_GEMM_WORKSPACE;
}

static void check_args(const struct gv_tensor *lse, const struct gv_tensor *q,
                       const struct gv_tensor *const *same, int n)
{
  GV_CHECK(lse->dtype == GV_DTYPE_F32, "cuda attention: lse must be f32, is %s", gv_dtype_name(lse->dtype));
  GV_CHECK(q->shape[3] >= 1 && q->shape[3] <= 128, "cuda attention: head dim %lld not in [1, 128]",
           (long long)q->shape[3]);
  GV_CHECK(q->shape[1] <= 65535LL * BM && q->shape[2] <= 65535 && q->shape[0] <= 65535,
           "cuda attention: grid too large");
  for (int i = 0; i < n; i++)
    GV_CHECK(same[i]->dtype == q->dtype, "cuda attention: operands of mixed dtypes (%s and %s)",
             gv_dtype_name(q->dtype), gv_dtype_name(same[i]->dtype));
}

/* Instantiates f<T, DMAX> for the smallest of 32, 64, 128 that holds D. */
#define ATTN_DMAX(D, DMAX, ...) do { \
    if ((D) <= 32) { enum { DMAX = 32 }; __VA_ARGS__; } \
    else if ((D) <= 64) { enum { DMAX = 64 }; __VA_ARGS__; } \
    else { enum { DMAX = 128 }; __VA_ARGS__; } } while (0)

extern "C" void gv_cuda_attention_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                                      const struct gv_tensor *q, const struct gv_tensor *k,
                                      const struct gv_tensor *v, int causal, const struct gv_attn_opts *x)
{
  const struct gv_tensor *same[] = {k, v, o};
  check_args(lse, q, same, 3);
  struct attn_dims d = dims_of(q, k, causal, x);
  if (!d.B || !d.T || !d.H) return;
  if (cu_attn_tc_takes(be, q->dtype, d)) {
    typedef __nv_bfloat16 bf;
    cu_attn_tc_fwd(be, (bf *)o->data, (float *)lse->data, (const bf *)q->data, (const bf *)k->data,
                   (const bf *)v->data, d);
    return;
  }
  dim3 grid((unsigned)((d.T + BM - 1) / BM), (unsigned)d.H, (unsigned)d.B);
  size_t smem = fwd_smem(d.D);
  CU_DISPATCH(q->dtype, T, ATTN_DMAX(d.D, DMAX, {
    GV_CUDA_CHECK(cudaFuncSetAttribute(attn_fwd_kernel<T, DMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       (int)smem));
    attn_fwd_kernel<T, DMAX><<<grid, THREADS, smem, cu_stream(be)>>>(
        (T *)o->data, (float *)lse->data, (const T *)q->data, (const T *)k->data, (const T *)v->data, d);
    GV_CUDA_LAUNCH_CHECK();
  }));
}

extern "C" void gv_cuda_attention_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                                      struct gv_tensor *dv, const struct gv_tensor *dout, const struct gv_tensor *q,
                                      const struct gv_tensor *k, const struct gv_tensor *v,
                                      const struct gv_tensor *o, const struct gv_tensor *lse, int causal,
                                      int flags, const struct gv_attn_opts *x)
{
  GV_CHECK(dq && dk && dv, "attention_bwd needs dq, dk and dv");
  const struct gv_tensor *same[] = {k, v, o, dout, dq, dk, dv};
  check_args(lse, q, same, 7);
  struct attn_dims d = dims_of(q, k, causal, x);
  int acc = (flags & GV_ACC_DX) ? 1 : 0;
  size_t need = gv_cuda_attention_workspace(be, d.B, d.T, d.S, d.H, d.KV, d.D);
  GV_CHECK(be->workspace_bytes >= need,
           "cuda attention_bwd: workspace of %zu bytes is below the %zu it needs (size it with gv_backend_workspace_bytes)",
           be->workspace_bytes, need);
  float *delta = (float *)be->workspace;
  float *dq_acc = (float *)((char *)be->workspace + align256(sizeof(float) * (size_t)(d.B * d.H * d.T)));
  int64_t nq = d.B * d.T * d.H * d.D;
  cudaStream_t st = cu_stream(be);
  if (!d.B || !d.S || !d.KV) return;
  GV_CUDA_CHECK(cudaMemsetAsync(dq_acc, 0, sizeof(float) * (size_t)nq, st));
  dim3 grid((unsigned)((d.S + BN - 1) / BN), (unsigned)d.KV, (unsigned)d.B);
  size_t smem = bwd_smem(d.D);
  CU_DISPATCH(q->dtype, T, {
    attn_delta_kernel<T><<<cu_blocks(be, d.B * d.T * d.H * 32, 256), 256, 0, st>>>(
        delta, (const T *)dout->data, (const T *)o->data, d);
    GV_CUDA_LAUNCH_CHECK();
    if (cu_attn_tc_takes(be, q->dtype, d)) {
      typedef __nv_bfloat16 bf;
      cu_attn_tc_bwd(be, (bf *)dk->data, (bf *)dv->data, dq_acc, (const bf *)q->data, (const bf *)k->data,
                     (const bf *)v->data, (const bf *)dout->data, (const float *)lse->data, delta, d, acc);
    } else {
      ATTN_DMAX(d.D, DMAX, {
        GV_CUDA_CHECK(cudaFuncSetAttribute(attn_bwd_kernel<T, DMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)smem));
        attn_bwd_kernel<T, DMAX><<<grid, THREADS, smem, st>>>(
            (T *)dk->data, (T *)dv->data, dq_acc, (const T *)q->data, (const T *)k->data, (const T *)v->data,
            (const T *)dout->data, (const float *)lse->data, delta, d, acc);
        GV_CUDA_LAUNCH_CHECK();
      });
    }
    if (nq > 0) {
      attn_dq_kernel<T><<<cu_blocks(be, nq, 256), 256, 0, st>>>((T *)dq->data, dq_acc, nq, acc);
      GV_CUDA_LAUNCH_CHECK();
    }
  });
}

/* Ring attention's merge (gvrt.h, attention_merge): one thread per (query row, head) pair
 * rescales its D outputs; f32 only, as ring attention runs. */
static __global__ void attn_merge_kernel(float *o, float *lse, const float *ob, const float *lseb, int64_t R,
                                         int64_t H, int64_t D, int64_t L)
{
  for (int64_t t = cu_tid(); t < R * H; t += cu_stride()) {
    int64_t h = t / R, i = t - h * R;
    float a = lse[h * L + i], b = lseb[h * R + i];
    if (b == -INFINITY)
      continue;
    float m = fmaxf(a, b), lnew = m + logf(expf(a - m) + expf(b - m));
    float wa = expf(a - lnew), wb = expf(b - lnew);
    float *orow = o + (i * H + h) * D;
    const float *brow = ob + (i * H + h) * D;
    for (int64_t c = 0; c < D; c++) orow[c] = orow[c] * wa + brow[c] * wb;
    lse[h * L + i] = lnew;
  }
}

void gv_cuda_attention_merge(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                             const struct gv_tensor *ob, const struct gv_tensor *lseb)
{
  int64_t R = o->shape[1], H = o->shape[2], D = o->shape[3];
  if (R * H == 0)
    return;
  attn_merge_kernel<<<cu_blocks(be, R * H, 256), 256, 0, cu_stream(be)>>>(
      (float *)o->data, (float *)lse->data, (const float *)ob->data, (const float *)lseb->data, R, H, D, lse->shape[2]);
  GV_CUDA_LAUNCH_CHECK();
}
