/* moe.cu - mixture-of-experts kernels of the CUDA backend, with the CPU backend's semantics
 * (runtime/cpu/moe.c; the contracts are in gvrt.h, "Mixture of experts"). The routing (the
 * stable counting sort of the assignments by expert) is computed by one thread into the
 * backend's workspace (off [E+1] then pos [M k], i32) before each op that needs it, so every
 * op is deterministic and no op allocates (the workspace, sized for the program's attention,
 * holds it whenever hidden >= k + 1). The per-expert GEMMs are plain untiled kernels (one
 * thread per output element, the expert of a row found by a binary search of off): simple
 * and exact, not fast (cuBLAS grouped GEMMs are the next step); each sum runs in a fixed
 * order. Checked against the CPU backend by tests/ops/cuda/test_cuda_moe.c, on the host
 * emulator (ops_cuda_emu_moe) until a GPU runs it.
 *   idx i32 [M, k], x [M, N|C], routed rows [M k, C], w [E, N, K] */
#include "cuda/cu_common.cuh"

namespace {

__global__ void route_kernel(int32_t *off, int32_t *pos, const int32_t *idx, int64_t A, int64_t E)
{
  if (blockIdx.x || threadIdx.x) return;
  for (int64_t e = 0; e <= E; e++) off[e] = 0;
  for (int64_t a = 0; a < A; a++) {
    int32_t e = idx[a] < 0 ? 0 : idx[a] >= E ? (int32_t)E - 1 : idx[a]; /* ids are checked on the host side */
    off[e + 1]++;
  }
  for (int64_t e = 0; e < E; e++) off[e + 1] += off[e];
  for (int64_t a = 0; a < A; a++) { /* off[e] advances as expert e's rows are handed out, then is restored */
    int32_t e = idx[a] < 0 ? 0 : idx[a] >= E ? (int32_t)E - 1 : idx[a];
    pos[a] = off[e]++;
  }
  for (int64_t e = E; e > 0; e--) off[e] = off[e - 1];
  off[0] = 0;
}

/* The expert whose rows [off[e], off[e+1]) hold row p. */
__device__ int64_t expert_of(const int32_t *off, int64_t E, int64_t p)
{
  int64_t lo = 0, hi = E - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi + 1) / 2;
    if (off[mid] <= p) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

template <typename T> __global__ void topk_kernel(int32_t *idx, const T *x, int64_t M, int64_t N, int64_t k)
{
  for (int64_t i = cu_tid(); i < M; i += cu_stride()) {
    int32_t *o = idx + i * k;
    for (int64_t j = 0; j < k; j++) {
      int64_t best = -1;
      float bv = 0.0f;
      for (int64_t c = 0; c < N; c++) {
        int taken = 0;
        for (int64_t q = 0; q < j && !taken; q++) taken = o[q] == c;
        float v = cu_load(x, i * N + c);
        if (!taken && (best < 0 || v > bv)) { best = c; bv = v; }
      }
      o[j] = (int32_t)best;
    }
  }
}

template <typename T> __global__ void take_fwd_kernel(T *y, const T *x, const int32_t *idx, int64_t A, int64_t N, int64_t k)
{
  for (int64_t a = cu_tid(); a < A; a += cu_stride()) cu_store(y, a, cu_load(x, (a / k) * N + idx[a]), 0);
}

/* One thread per row: its k columns add in order (repeated columns add up). */
template <typename T>
__global__ void take_bwd_kernel(T *dx, const T *dy, const int32_t *idx, int64_t M, int64_t N, int64_t k, int acc)
{
  for (int64_t i = cu_tid(); i < M; i += cu_stride()) {
    if (!acc)
      for (int64_t c = 0; c < N; c++) dx[i * N + c] = cu_from_float<T>(0.0f);
    for (int64_t j = 0; j < k; j++) {
      int64_t c = i * N + idx[i * k + j];
      cu_store(dx, c, cu_load(dy, i * k + j), 1);
    }
  }
}

template <typename T> __global__ void permute_fwd_kernel(T *xp, const T *x, const int32_t *pos, int64_t A, int64_t C, int64_t k)
{
  for (int64_t i = cu_tid(); i < A * C; i += cu_stride()) {
    int64_t a = i / C, c = i % C;
    xp[(int64_t)pos[a] * C + c] = x[(a / k) * C + c];
  }
}

template <typename T>
__global__ void permute_bwd_kernel(T *dx, const T *dxp, const int32_t *pos, int64_t M, int64_t C, int64_t k, int acc)
{
  for (int64_t i = cu_tid(); i < M * C; i += cu_stride()) {
    int64_t t = i / C, c = i % C;
    float s = 0.0f;
    for (int64_t j = 0; j < k; j++) s += cu_load(dxp, (int64_t)pos[t * k + j] * C + c);
    cu_store(dx, i, s, acc);
  }
}

/* y [R, N] = x [R, K] w_e^T for each row's expert e. */
template <typename T>
__global__ void grouped_fwd_kernel(T *y, const T *x, const T *w, const int32_t *off, int64_t R, int64_t E, int64_t N,
                                   int64_t K)
{
  for (int64_t i = cu_tid(); i < R * N; i += cu_stride()) {
    int64_t p = i / N, n = i % N, e = expert_of(off, E, p);
    float s = 0.0f;
    for (int64_t q = 0; q < K; q++) s += cu_load(x, p * K + q) * cu_load(w, (e * N + n) * K + q);
    cu_store(y, i, s, 0);
  }
}

template <typename T>
__global__ void grouped_dx_kernel(T *dx, const T *dy, const T *w, const int32_t *off, int64_t R, int64_t E, int64_t N,
                                  int64_t K, int acc)
{
  for (int64_t i = cu_tid(); i < R * K; i += cu_stride()) {
    int64_t p = i / K, q = i % K, e = expert_of(off, E, p);
    float s = 0.0f;
    for (int64_t n = 0; n < N; n++) s += cu_load(dy, p * N + n) * cu_load(w, (e * N + n) * K + q);
    cu_store(dx, i, s, acc);
  }
}

template <typename T>
__global__ void grouped_dw_kernel(T *dw, const T *dy, const T *x, const int32_t *off, int64_t E, int64_t N, int64_t K,
                                  int acc)
{
  for (int64_t i = cu_tid(); i < E * N * K; i += cu_stride()) {
    int64_t e = i / (N * K), n = (i / K) % N, q = i % K;
    float s = 0.0f;
    for (int64_t p = off[e]; p < off[e + 1]; p++) s += cu_load(dy, p * N + n) * cu_load(x, p * K + q);
    cu_store(dw, i, s, acc);
  }
}

template <typename T>
__global__ void unpermute_fwd_kernel(T *y, const T *yp, const T *g, const int32_t *pos, int64_t M, int64_t C, int64_t k)
{
  for (int64_t i = cu_tid(); i < M * C; i += cu_stride()) {
    int64_t t = i / C, c = i % C;
    float s = 0.0f;
    for (int64_t j = 0; j < k; j++) s += cu_load(g, t * k + j) * cu_load(yp, (int64_t)pos[t * k + j] * C + c);
    cu_store(y, i, s, 0);
  }
}

/* One block per assignment: dyp's row, and the gate's gradient as a block sum. */
template <typename T>
__global__ void unpermute_bwd_kernel(T *dyp, T *dg, const T *dy, const T *yp, const T *g, const int32_t *pos,
                                     int64_t A, int64_t C, int64_t k, int acc)
{
  for (int64_t a = blockIdx.x; a < A; a += gridDim.x) {
    int64_t r = (int64_t)pos[a] * C, t = (a / k) * C;
    float gate = cu_load(g, a), dot = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      float d = cu_load(dy, t + c);
      dot += d * cu_load(yp, r + c);
      if (dyp) cu_store(dyp, r + c, gate * d, acc);
    }
    dot = cu_block_sum(dot);
    if (dg && threadIdx.x == 0) cu_store(dg, a, dot, acc);
  }
}

/* One block: loss = scale sum_e c_e sum_t p[t, e] (counts from off). */
template <typename T>
__global__ void aux_fwd_kernel(float *loss, const T *p, const int32_t *off, int64_t M, int64_t E, float scale)
{
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < M * E; i += blockDim.x) {
    int64_t e = i % E;
    s += (float)(off[e + 1] - off[e]) * cu_load(p, i);
  }
  s = cu_block_sum(s);
  if (threadIdx.x == 0) loss[0] = s * scale;
}

template <typename T>
__global__ void aux_bwd_kernel(T *dp, const int32_t *off, int64_t M, int64_t E, float scale, int acc)
{
  for (int64_t i = cu_tid(); i < M * E; i += cu_stride()) {
    int64_t e = i % E;
    cu_store(dp, i, scale * (float)(off[e + 1] - off[e]), acc);
  }
}

int64_t cols(const struct gv_tensor *t) { return t->shape[t->ndim - 1]; }
int64_t rows(const struct gv_tensor *t) { return cols(t) ? gv_tensor_numel(t) / cols(t) : 0; }

/* The routing of idx among E experts, in the workspace: *pos (i32 [A]); returns off (i32 [E+1]). */
int32_t *route(struct gv_backend *be, const struct gv_tensor *idx, int64_t E, int32_t **pos)
{
  int64_t A = gv_tensor_numel(idx);
  size_t need = sizeof(int32_t) * (size_t)(A + E + 1);
  GV_CHECK(be->workspace_bytes >= need,
           "cuda moe: the routing of %lld assignments to %lld experts needs %zu bytes of workspace, the backend has %zu",
           (long long)A, (long long)E, need, be->workspace_bytes);
  int32_t *off = (int32_t *)be->workspace;
  *pos = off + E + 1;
  route_kernel<<<1, 1, 0, cu_stream(be)>>>(off, *pos, cu_ptr<int32_t>(idx), A, E);
  GV_CUDA_LAUNCH_CHECK();
  return off;
}

}  // namespace

extern "C" void gv_cuda_topk(struct gv_backend *be, struct gv_tensor *idx, const struct gv_tensor *x)
{
  int64_t M = rows(x), N = cols(x), k = cols(idx);
  if (!M) return;
  CU_DISPATCH(x->dtype, T,
              topk_kernel<T><<<cu_blocks(be, M, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(cu_ptr<int32_t>(idx),
                                                                                           cu_ptr<T>(x), M, N, k));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_take_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                                 const struct gv_tensor *idx)
{
  int64_t A = gv_tensor_numel(idx), N = cols(x), k = cols(idx);
  cu_need_dtype("take_fwd", "x", x, y->dtype);
  if (!A) return;
  CU_DISPATCH(y->dtype, T,
              take_fwd_kernel<T><<<cu_blocks(be, A, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(y), cu_ptr<T>(x), cu_ptr<int32_t>(idx), A, N, k));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_take_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                                 const struct gv_tensor *idx, int flags)
{
  int64_t M = rows(dx), N = cols(dx), k = cols(idx);
  cu_need_dtype("take_bwd", "dy", dy, dx->dtype);
  if (!M) return;
  CU_DISPATCH(dx->dtype, T,
              take_bwd_kernel<T><<<cu_blocks(be, M, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(dx), cu_ptr<T>(dy), cu_ptr<int32_t>(idx), M, N, k, flags & GV_ACC_DX));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_moe_permute_fwd(struct gv_backend *be, struct gv_tensor *xp, const struct gv_tensor *x,
                                        const struct gv_tensor *idx, int64_t E)
{
  int64_t A = gv_tensor_numel(idx), C = cols(x), k = cols(idx);
  cu_need_dtype("moe_permute_fwd", "x", x, xp->dtype);
  if (!A) return;
  int32_t *pos;
  route(be, idx, E, &pos);
  CU_DISPATCH(xp->dtype, T,
              permute_fwd_kernel<T><<<cu_blocks(be, A * C, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(xp), cu_ptr<T>(x), pos, A, C, k));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_moe_permute_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dxp,
                                        const struct gv_tensor *idx, int64_t E, int flags)
{
  int64_t M = rows(dx), C = cols(dx), k = cols(idx);
  cu_need_dtype("moe_permute_bwd", "dxp", dxp, dx->dtype);
  if (!M) return;
  int32_t *pos;
  route(be, idx, E, &pos);
  CU_DISPATCH(dx->dtype, T,
              permute_bwd_kernel<T><<<cu_blocks(be, M * C, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(dx), cu_ptr<T>(dxp), pos, M, C, k, flags & GV_ACC_DX));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_moe_grouped_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                                        const struct gv_tensor *w, const struct gv_tensor *idx)
{
  int64_t E = w->shape[0], N = w->shape[1], K = w->shape[2], R = rows(x);
  cu_need_dtype("moe_grouped_fwd", "x", x, y->dtype);
  cu_need_dtype("moe_grouped_fwd", "w", w, y->dtype);
  if (!R) return;
  int32_t *pos, *off = route(be, idx, E, &pos);
  CU_DISPATCH(y->dtype, T,
              grouped_fwd_kernel<T><<<cu_blocks(be, R * N, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(y), cu_ptr<T>(x), cu_ptr<T>(w), off, R, E, N, K));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_moe_grouped_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                                        const struct gv_tensor *dy, const struct gv_tensor *x,
                                        const struct gv_tensor *w, const struct gv_tensor *idx, int flags)
{
  int64_t E = w->shape[0], N = w->shape[1], K = w->shape[2], R = rows(x);
  cu_need_dtype("moe_grouped_bwd", "x", x, dy->dtype);
  cu_need_dtype("moe_grouped_bwd", "w", w, dy->dtype);
  cu_need_dtype("moe_grouped_bwd", "dx", dx, dy->dtype);
  cu_need_dtype("moe_grouped_bwd", "dw", dw, dy->dtype);
  int32_t *pos, *off = route(be, idx, E, &pos);
  if (dx && R)
    CU_DISPATCH(dy->dtype, T,
                grouped_dx_kernel<T><<<cu_blocks(be, R * K, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                    cu_ptr<T>(dx), cu_ptr<T>(dy), cu_ptr<T>(w), off, R, E, N, K, flags & GV_ACC_DX));
  if (dw)
    CU_DISPATCH(dy->dtype, T,
                grouped_dw_kernel<T><<<cu_blocks(be, E * N * K, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                    cu_ptr<T>(dw), cu_ptr<T>(dy), cu_ptr<T>(x), off, E, N, K, flags & GV_ACC_DW));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_moe_unpermute_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *yp,
                                          const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t E)
{
  int64_t M = rows(y), C = cols(y), k = cols(idx);
  cu_need_dtype("moe_unpermute_fwd", "yp", yp, y->dtype);
  cu_need_dtype("moe_unpermute_fwd", "gates", gates, y->dtype);
  if (!M) return;
  int32_t *pos;
  route(be, idx, E, &pos);
  CU_DISPATCH(y->dtype, T,
              unpermute_fwd_kernel<T><<<cu_blocks(be, M * C, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(y), cu_ptr<T>(yp), cu_ptr<T>(gates), pos, M, C, k));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_moe_unpermute_bwd(struct gv_backend *be, struct gv_tensor *dyp, struct gv_tensor *dgates,
                                          const struct gv_tensor *dy, const struct gv_tensor *yp,
                                          const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t E,
                                          int flags)
{
  int64_t A = gv_tensor_numel(idx), C = cols(dy), k = cols(idx);
  cu_need_dtype("moe_unpermute_bwd", "yp", yp, dy->dtype);
  cu_need_dtype("moe_unpermute_bwd", "gates", gates, dy->dtype);
  cu_need_dtype("moe_unpermute_bwd", "dyp", dyp, dy->dtype);
  cu_need_dtype("moe_unpermute_bwd", "dgates", dgates, dy->dtype);
  if (!A) return;
  int32_t *pos;
  route(be, idx, E, &pos);
  unsigned grid = (unsigned)(A < 65535 ? A : 65535);
  CU_DISPATCH(dy->dtype, T,
              unpermute_bwd_kernel<T><<<grid, CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(dyp), cu_ptr<T>(dgates), cu_ptr<T>(dy), cu_ptr<T>(yp), cu_ptr<T>(gates), pos, A, C, k,
                  flags & GV_ACC_DX));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_moe_aux_fwd(struct gv_backend *be, struct gv_tensor *loss, const struct gv_tensor *probs,
                                    const struct gv_tensor *idx, float scale)
{
  int64_t M = rows(probs), E = cols(probs);
  int32_t *pos, *off = route(be, idx, E, &pos);
  CU_DISPATCH(probs->dtype, T,
              aux_fwd_kernel<T><<<1, CU_THREADS, 0, cu_stream(be)>>>(cu_ptr<float>(loss), cu_ptr<T>(probs), off, M, E,
                                                                    scale));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_moe_aux_bwd(struct gv_backend *be, struct gv_tensor *dprobs, const struct gv_tensor *idx,
                                    float scale, int flags)
{
  int64_t M = rows(dprobs), E = cols(dprobs);
  if (!M) return;
  int32_t *pos, *off = route(be, idx, E, &pos);
  CU_DISPATCH(dprobs->dtype, T,
              aux_bwd_kernel<T><<<cu_blocks(be, M * E, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(dprobs), off, M, E, scale, flags & GV_ACC_DX));
  GV_CUDA_LAUNCH_CHECK();
}
