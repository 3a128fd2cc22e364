/* norm.cu - LayerNorm (biased variance; saves mean and rstd) and RMSNorm (saves rstd) on the
 * CUDA backend, with the CPU backend's semantics (runtime/cpu/norm.c); one kernel of each
 * kind serves both norms (mean == NULL means RMSNorm, no centring).
 * - forward and dx: one block per row, block sums by warp shuffles (cu_block_sum); the
 *   statistics are two-pass (mean, then sum of squared deviations), as on the CPU;
 * - dw/db: a second kernel, deterministic and without workspace: a block owns 32 columns,
 *   its 16 thread rows stride over the M rows and are summed in a fixed order, recomputing
 *   xhat from the saved mean/rstd; dw and db honour GV_ACC_DW, dx GV_ACC_DX.
 *   x, y, dy, dx: (M,C) row-major; w, b, dw, db: (C), all one dtype (f32 or bf16);
 *   mean, rstd: (M) f32
 * add_layernorm / add_rmsnorm: the forward with the residual add h = a + b in front, in the
 * same kernel (h stored once, its rows read back by the threads that wrote them). */
#include "cuda/cu_common.cuh"

namespace {

enum { DW_COLS = 32, DW_ROWS = 16 };

/* ---- forward ---- */

// one block per row; y may alias x (each thread writes only what it last reads, after the
// block sums). With x2: the row is h = x + x2 first (stored rounded into h; each thread
// reads back only the elements it wrote), the residual add fused in
template <typename T>
__global__ void norm_fwd_kernel(T *y, float *mean, float *rstd, const T *x, const T *w, const T *b,
                                int64_t C, float eps, T *h, const T *x2)
{
  int64_t row = blockIdx.x;
  const T *xr = x + row * C;
  T *yr = y + row * C;
  if (x2) {
    T *hr = h + row * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) cu_store(hr, c, cu_load(xr, c) + cu_load(x2 + row * C, c), 0);
    xr = hr;
  }
  float mu = 0.0f, var = 0.0f;
  if (mean) {
    float s = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += cu_load(xr, c);
    mu = cu_block_sum(s) / (float)C;
  }
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float d = cu_load(xr, c) - mu;
    var += d * d;
  }
  float rs = 1.0f / sqrtf(cu_block_sum(var) / (float)C + eps);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    cu_store(yr, c, (cu_load(xr, c) - mu) * rs * cu_load(w, c) + (b ? cu_load(b, c) : 0.0f), 0);
  if (threadIdx.x == 0) {
    if (mean) mean[row] = mu;
    rstd[row] = rs;
  }
}

/* ---- backward ---- */

// dx = rstd * (g - [mean(g)] - xhat * mean(g * xhat)), g = dy * w; the bracket only when
// mean != NULL (LayerNorm). One block per row.
template <typename T>
__global__ void norm_dx_kernel(T *dx, const T *dy, const T *x, const T *w, const float *mean,
                               const float *rstd, int64_t C, int acc)
{
  int64_t row = blockIdx.x;
  const T *dyr = dy + row * C, *xr = x + row * C;
  T *dxr = dx + row * C;
  float mu = mean ? mean[row] : 0.0f, rs = rstd[row], sg = 0.0f, sgx = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float g = cu_load(dyr, c) * cu_load(w, c);
    sg += g;
    sgx += g * (cu_load(xr, c) - mu) * rs;
  }
  sg = cu_block_sum(sg);
  sgx = cu_block_sum(sgx);
  float mg = mean ? sg / (float)C : 0.0f, mgx = sgx / (float)C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    cu_store(dxr, c, rs * (cu_load(dyr, c) * cu_load(w, c) - mg - (cu_load(xr, c) - mu) * rs * mgx), acc);
}

// dw[c] = sum_i dy[i,c] xhat[i,c], db[c] = sum_i dy[i,c]; block (DW_COLS, DW_ROWS) per 32 columns
template <typename T>
__global__ void norm_dwdb_kernel(T *dw, T *db, const T *dy, const T *x, const float *mean,
                                 const float *rstd, int64_t M, int64_t C, int acc)
{
  __shared__ float sw[DW_ROWS][DW_COLS + 1], sb[DW_ROWS][DW_COLS + 1];
  int64_t c = (int64_t)blockIdx.x * DW_COLS + threadIdx.x;
  float aw = 0.0f, ab = 0.0f;
  if (c < C) {
    for (int64_t i = threadIdx.y; i < M; i += DW_ROWS) {
      float d = cu_load(dy, i * C + c), mu = mean ? mean[i] : 0.0f;
      aw += d * (cu_load(x, i * C + c) - mu) * rstd[i];
      ab += d;
    }
  }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  aw = ab = 0.0f;
  for (int r = 0; r < DW_ROWS; r++) {
    aw += sw[r][threadIdx.x];
    ab += sb[r][threadIdx.x];
  }
  if (dw) cu_store(dw, c, aw, acc);
  if (db) cu_store(db, c, ab, acc);
}

/* Dtypes every norm entry shares: rows in T = x's dtype, statistics f32. */
void check_norm(const char *op, const struct gv_tensor *y, const struct gv_tensor *x,
                const struct gv_tensor *w, const struct gv_tensor *b, const struct gv_tensor *mean,
                const struct gv_tensor *rstd)
{
  cu_need_dtype(op, "y", y, x->dtype);
  cu_need_dtype(op, "weight", w, x->dtype);
  cu_need_dtype(op, "bias", b, x->dtype);
  cu_need_dtype(op, "mean", mean, GV_DTYPE_F32);
  cu_need_dtype(op, "rstd", rstd, GV_DTYPE_F32);
  GV_CHECK(cu_rows(x) <= 0x7fffffff, "cuda %s: %lld rows exceed the grid", op, (long long)cu_rows(x));
}

/* h, x2: NULL, or the residual add fused in front (h = x + x2, then the norm of h). */
void norm_fwd(struct gv_backend *be, const char *op, struct gv_tensor *y, struct gv_tensor *mean,
              struct gv_tensor *rstd, const struct gv_tensor *x, const struct gv_tensor *w,
              const struct gv_tensor *b, float eps, struct gv_tensor *h = NULL, const struct gv_tensor *x2 = NULL)
{
  int64_t M = cu_rows(x), C = cu_cols(x);
  check_norm(op, y, x, w, b, mean, rstd);
  cu_need_dtype(op, "h", h, x->dtype);
  cu_need_dtype(op, "b", x2, x->dtype);
  if (M == 0) return;
  CU_DISPATCH(x->dtype, T,
              norm_fwd_kernel<T><<<(unsigned)M, CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(y), cu_ptr<float>(mean), cu_ptr<float>(rstd), cu_ptr<T>(x), cu_ptr<T>(w),
                  cu_ptr<T>(b), C, eps, cu_ptr<T>(h), cu_ptr<T>(x2)));
  GV_CUDA_LAUNCH_CHECK();
}

/* dx (when given), then dw/db (when either is given). */
void norm_bwd(struct gv_backend *be, const char *op, struct gv_tensor *dx, struct gv_tensor *dw,
              struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
              const struct gv_tensor *w, const struct gv_tensor *mean, const struct gv_tensor *rstd,
              int flags)
{
  int64_t M = cu_rows(x), C = cu_cols(x);
  check_norm(op, dy, x, w, NULL, mean, rstd);
  cu_need_dtype(op, "dx", dx, x->dtype);
  cu_need_dtype(op, "dw", dw, x->dtype);
  cu_need_dtype(op, "db", db, x->dtype);
  if (dx && M > 0) {
    CU_DISPATCH(x->dtype, T,
                norm_dx_kernel<T><<<(unsigned)M, CU_THREADS, 0, cu_stream(be)>>>(
                    cu_ptr<T>(dx), cu_ptr<T>(dy), cu_ptr<T>(x), cu_ptr<T>(w), cu_ptr<float>(mean),
                    cu_ptr<float>(rstd), C, flags & GV_ACC_DX));
    GV_CUDA_LAUNCH_CHECK();
  }
  if ((!dw && !db) || C == 0) return;
  dim3 block(DW_COLS, DW_ROWS);
  unsigned grid = (unsigned)((C + DW_COLS - 1) / DW_COLS);
  CU_DISPATCH(x->dtype, T,
              norm_dwdb_kernel<T><<<grid, block, 0, cu_stream(be)>>>(
                  cu_ptr<T>(dw), cu_ptr<T>(db), cu_ptr<T>(dy), cu_ptr<T>(x), cu_ptr<float>(mean),
                  cu_ptr<float>(rstd), M, C, flags & GV_ACC_DW));
  GV_CUDA_LAUNCH_CHECK();
}

}  // namespace

/* ---- entry points ---- */

extern "C" void gv_cuda_layernorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *mean,
                                      struct gv_tensor *rstd, const struct gv_tensor *x,
                                      const struct gv_tensor *w, const struct gv_tensor *b, float eps)
{
  GV_CHECK(mean != NULL, "layernorm_fwd needs mean");
  norm_fwd(be, "layernorm_fwd", y, mean, rstd, x, w, b, eps);
}

extern "C" void gv_cuda_layernorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                                      struct gv_tensor *db, const struct gv_tensor *dy,
                                      const struct gv_tensor *x, const struct gv_tensor *w,
                                      const struct gv_tensor *mean, const struct gv_tensor *rstd,
                                      int flags)
{
  GV_CHECK(mean != NULL, "layernorm_bwd needs the saved mean");
  norm_bwd(be, "layernorm_bwd", dx, dw, db, dy, x, w, mean, rstd, flags);
}

extern "C" void gv_cuda_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *rstd,
                                    const struct gv_tensor *x, const struct gv_tensor *w, float eps)
{
  norm_fwd(be, "rmsnorm_fwd", y, NULL, rstd, x, w, NULL, eps);
}

extern "C" void gv_cuda_add_layernorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y,
                                          struct gv_tensor *mean, struct gv_tensor *rstd, const struct gv_tensor *a,
                                          const struct gv_tensor *b, const struct gv_tensor *w,
                                          const struct gv_tensor *bias, float eps)
{
  GV_CHECK(mean != NULL, "add_layernorm_fwd needs mean");
  norm_fwd(be, "add_layernorm_fwd", y, mean, rstd, a, w, bias, eps, h, b);
}

extern "C" void gv_cuda_add_rmsnorm_fwd(struct gv_backend *be, struct gv_tensor *h, struct gv_tensor *y,
                                        struct gv_tensor *rstd, const struct gv_tensor *a, const struct gv_tensor *b,
                                        const struct gv_tensor *w, float eps)
{
  norm_fwd(be, "add_rmsnorm_fwd", y, NULL, rstd, a, w, NULL, eps, h, b);
}

extern "C" void gv_cuda_rmsnorm_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                                    const struct gv_tensor *dy, const struct gv_tensor *x,
                                    const struct gv_tensor *w, const struct gv_tensor *rstd, int flags)
{
  norm_bwd(be, "rmsnorm_bwd", dx, dw, NULL, dy, x, w, NULL, rstd, flags);
}
