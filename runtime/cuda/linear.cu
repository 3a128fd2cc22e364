/* linear.cu - y = x w^T + b and its backward through cuBLASLt, fp32 accumulation
 * (CUBLAS_COMPUTE_32F: true fp32 for f32 tensors unless the backend's matmul precision
 * allows TF32 or bf16 tensor cores, see compute_type), bias in the GEMM epilogue.
 *   x: (M,K) row-major, w: (N,K), b: (N), y: (M,N); dx = dy w, dw = dy^T x, db = colsum(dy).
 * cuBLASLt is column-major: a row-major (r,c) matrix is the column-major (c,r) matrix with
 * ld = c, i.e. its transpose, so every product is computed transposed:
 *   y^T  (N,M) = op_T(w as K x N) * (x as K x M)              m=N n=M k=K, bias over m
 *   dx^T (K,M) =     (w as K x N) * (dy as N x M)             m=K n=M k=N
 *   dw^T (K,N) =     (x as K x M) * op_T(dy as N x M)         m=K n=N k=M
 * db is a column-sum kernel. The algorithm of each (shape, dtypes, transposes, epilogue,
 * pointer alignments) is chosen once by cuBLASLt's heuristic and cached (a small table,
 * round-robin eviction); a shape it declines goes to cublasGemmEx (fp32 compute), a bias
 * epilogue it declines (or a bias below 16-byte alignment) becomes a broadcast kernel plus a
 * beta = 1 GEMM. linear_gelu / linear_dgelu use the GELU_AUX(_BIAS) and DGELU epilogues
 * (the GELU input saved / read as the auxiliary matrix), or run as their parts (core/fused.c)
 * where cuBLASLt declines. The cuBLASLt workspace is the backend's (the plan's workspace arena, which
 * gv_cuda_attention_workspace sizes to at least GV_CUDA_GEMM_WORKSPACE): up to 32 MiB of it,
 * or none when no workspace is set (the heuristic then picks workspace-free algorithms; the
 * workspace size is part of the cache key). Ops run in order on one stream, so the GEMMs and
 * the attention backward share it. */
#include <stdlib.h>
#include <string.h>

#include "core/fused.h"
#include "cuda/cuda_impl.h"

enum { GEMM_CACHE_SLOTS = 128 };
/* cublasLtMatmul refuses (NOT_SUPPORTED) a bias epilogue on a misaligned bias vector, and the
 * heuristic cannot be told the bias's alignment. On an H200 (cuBLAS 13) a bf16 bias at a 2-byte
 * offset was refused and 4 bytes and up passed; other GPUs and versions are reported to need
 * 16. Below this alignment the bias takes the broadcast path. */
enum { BIAS_ALIGN = 16 };

/* What the heuristic's answer depends on. */
struct gemm_key {
  int64_t m, n, k;
  int ta, tb;                       /* op(A), op(B) transposed */
  cudaDataType_t at, bt, ct, biast; /* biast meaningful only with a bias epilogue */
  cublasLtEpilogue_t epi;
  int align_a, align_b, align_c;    /* pointer alignments (bytes, <= 256) */
  int align_aux;                    /* the GELU epilogue's auxiliary matrix (0: none) */
  cublasComputeType_t compute;
  size_t ws_bytes;                  /* workspace the algorithm may use */
};

struct gv_cuda_gemm_cache {
  struct gemm_key key[GEMM_CACHE_SLOTS];
  cublasLtMatmulAlgo_t algo[GEMM_CACHE_SLOTS];
  int found[GEMM_CACHE_SLOTS];      /* 0: cuBLASLt has none (remembered too) */
  int used, next;                   /* filled slots; next slot to evict once full */
};

/* One column-major operand: pointer, type, stored rows x cols, leading dimension. */
struct gemm_mat {
  const void *p;
  cudaDataType_t t;
  int64_t rows, cols, ld;
};

static cudaDataType_t lt_type(enum gv_dtype d)
{
  GV_CHECK(d == GV_DTYPE_F32 || d == GV_DTYPE_BF16, "cuda linear: unsupported dtype %s", gv_dtype_name(d));
  return d == GV_DTYPE_F32 ? CUDA_R_32F : CUDA_R_16BF;
}

static int ptr_align(const void *p)
{
  uintptr_t u = (uintptr_t)p;
  int a = 1;
  while (a < 256 && !(u & (uintptr_t)a)) a <<= 1;
  return a;
}

/* ---- init / shutdown ---- */

extern "C" void gv_cuda_linear_init(struct gv_backend *be)
{
  struct gv_cuda_gemm_cache *c = (struct gv_cuda_gemm_cache *)calloc(1, sizeof *c);
  GV_CHECK(c != NULL, "out of host memory");
  cu_impl(be)->gemm = c;
}

extern "C" void gv_cuda_linear_shutdown(struct gv_backend *be)
{
  struct gv_cuda_gemm_cache *c = cu_impl(be)->gemm;
  if (!c) return;
  free(c);
  cu_impl(be)->gemm = NULL;
}

/* ---- the GEMM: C (m,n) = alpha op(A) op(B) + beta C [+ bias over rows] ---- */

static void set_attr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *v, size_t n)
{
  GV_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, a, v, n));
}

static void pref_align(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a, int align)
{
  uint32_t v = (uint32_t)align;
  GV_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, a, &v, sizeof v));
}

/* The cached algorithm of key, or the heuristic's first choice (then cached); NULL when
 * cuBLASLt has none (remembered too, logged once). */
static const cublasLtMatmulAlgo_t *gemm_algo(struct gv_cuda *cu, const struct gemm_key *key,
                                             cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t la,
                                             cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t lc)
{
  struct gv_cuda_gemm_cache *c = cu->gemm;
  for (int i = 0; i < c->used; i++)
    if (!memcmp(&c->key[i], key, sizeof *key)) return c->found[i] ? &c->algo[i] : NULL;
  cublasLtMatmulPreference_t pref;
  GV_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  GV_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &key->ws_bytes, sizeof key->ws_bytes));
  pref_align(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key->align_a);
  pref_align(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key->align_b);
  pref_align(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key->align_c);
  pref_align(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key->align_c);
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(cu->lt, op, la, lb, lc, lc, pref, 1, &res, &found);
  GV_CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
  int ok = st == CUBLAS_STATUS_SUCCESS && found > 0;
  if (!ok)
    gv_log(GV_LOG_DEBUG, "cuda linear: cuBLASLt has no algorithm for m=%lld n=%lld k=%lld (op %c%c, epilogue %d): %s",
           (long long)key->m, (long long)key->n, (long long)key->k, key->ta ? 'T' : 'N', key->tb ? 'T' : 'N',
           (int)key->epi, cublasGetStatusString(st));
  int slot = c->used < GEMM_CACHE_SLOTS ? c->used++ : c->next;
  if (slot == c->next) c->next = (c->next + 1) % GEMM_CACHE_SLOTS;   /* round-robin once full */
  c->key[slot] = *key;
  c->found[slot] = ok;
  if (ok) c->algo[slot] = res.algo;
  return ok ? &c->algo[slot] : NULL;
}

static cublasLtMatrixLayout_t layout(const struct gemm_mat *x)
{
  cublasLtMatrixLayout_t l;
  GV_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, x->t, (uint64_t)x->rows, (uint64_t)x->cols, x->ld));
  return l;
}

/* fp32 accumulation always; f32 operands may use TF32 or bf16 tensor cores when the
 * backend's matmul precision allows it (gv_backend_set_matmul_precision). */
static cublasComputeType_t compute_type(const struct gv_backend *be, cudaDataType_t at)
{
  if (at != CUDA_R_32F || be->matmul_precision == GV_MATMUL_HIGHEST) return CUBLAS_COMPUTE_32F;
  return be->matmul_precision == GV_MATMUL_HIGH ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F_FAST_16BF;
}

/* The same product through cublasGemmEx, for shapes cuBLASLt's heuristic declines (tiny or
 * oddly aligned leading dimensions). */
static void gemm_ex(struct gv_cuda *cu, int ta, int tb, int64_t m, int64_t n, int64_t k,
                    const struct gemm_mat *A, const struct gemm_mat *B, const struct gemm_mat *C,
                    float beta, cublasComputeType_t compute)
{
  const int64_t lim = INT32_MAX;
  float alpha = 1.0f;
  GV_CHECK(m <= lim && n <= lim && k <= lim && A->ld <= lim && B->ld <= lim && C->ld <= lim,
           "cuda linear: m=%lld n=%lld k=%lld too large for the cublasGemmEx fallback", (long long)m,
           (long long)n, (long long)k);
  GV_CUBLAS_CHECK(cublasGemmEx(cu->blas, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                               (int)m, (int)n, (int)k, &alpha, A->p, A->t, (int)A->ld, B->p, B->t,
                               (int)B->ld, &beta, (void *)C->p, C->t, (int)C->ld, compute,
                               CUBLAS_GEMM_DEFAULT));
}

/* What the GEMM's epilogue adds: a bias over the rows of C, and for the GELU epilogues the
 * auxiliary matrix (the GELU input: written by GELU_AUX, read by DGELU) laid out like C. */
struct gemm_epi {
  cublasLtEpilogue_t epi;
  const void *bias;
  cudaDataType_t biast;
  void *aux;
  int64_t aux_ld;
};

static const struct gemm_epi EPI_NONE = {CUBLASLT_EPILOGUE_DEFAULT, NULL, CUDA_R_32F, NULL, 0};

/* C = op(A) op(B) + beta C through the epilogue e. Returns 0 (and does nothing) when
 * cuBLASLt has no algorithm with e's epilogue, or refuses it at the call (NOT_SUPPORTED,
 * INVALID_VALUE: alignments the heuristic cannot be told); without an epilogue, a shape
 * cuBLASLt declines goes to cublasGemmEx. */
static int gemm(struct gv_backend *be, int ta, int tb, int64_t m, int64_t n, int64_t k,
                 const struct gemm_mat *A, const struct gemm_mat *B, const struct gemm_mat *C,
                 float beta, const struct gemm_epi *e)
{
  struct gv_cuda *cu = cu_impl(be);
  struct gemm_key key;
  memset(&key, 0, sizeof key);        /* padding takes part in memcmp */
  key.m = m, key.n = n, key.k = k, key.ta = ta, key.tb = tb;
  key.at = A->t, key.bt = B->t, key.ct = C->t, key.biast = e->bias ? e->biast : CUDA_R_32F;
  key.epi = e->epi;
  key.align_a = ptr_align(A->p), key.align_b = ptr_align(B->p), key.align_c = ptr_align(C->p);
  key.align_aux = e->aux ? ptr_align(e->aux) : 0;
  key.compute = compute_type(be, A->t);
  key.ws_bytes = be->workspace ? (be->workspace_bytes < GV_CUDA_GEMM_WORKSPACE ? be->workspace_bytes
                                                                               : GV_CUDA_GEMM_WORKSPACE) : 0;

  cublasLtMatmulDesc_t op;
  GV_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, key.compute, CUDA_R_32F));
  cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  set_attr(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa);
  set_attr(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb);
  set_attr(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &key.epi, sizeof key.epi);
  if (e->bias) {
    set_attr(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &e->bias, sizeof e->bias);
    set_attr(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &e->biast, sizeof e->biast);
  }
  if (e->aux) {
    int32_t auxt = (int32_t)C->t;
    set_attr(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &e->aux, sizeof e->aux);
    set_attr(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &e->aux_ld, sizeof e->aux_ld);
    set_attr(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE, &auxt, sizeof auxt);
  }
  cublasLtMatrixLayout_t la = layout(A), lb = layout(B), lc = layout(C);
  const cublasLtMatmulAlgo_t *algo = gemm_algo(cu, &key, op, la, lb, lc);
  float alpha = 1.0f;
  int done = 1;
  if (algo) {
    cublasStatus_t st = cublasLtMatmul(cu->lt, op, &alpha, A->p, la, B->p, lb, &beta, C->p, lc, (void *)C->p, lc, algo,
                                       key.ws_bytes ? be->workspace : NULL, key.ws_bytes, cu->stream);
    if (st != CUBLAS_STATUS_SUCCESS && key.epi != CUBLASLT_EPILOGUE_DEFAULT &&
        (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE)) {
      gv_log(GV_LOG_DEBUG, "cuda linear: cuBLASLt refused epilogue %d for m=%lld n=%lld k=%lld: %s", (int)key.epi,
             (long long)m, (long long)n, (long long)k, cublasGetStatusString(st));
      done = 0;
    } else {
      GV_CUBLAS_CHECK(st);
    }
  } else if (key.epi == CUBLASLT_EPILOGUE_DEFAULT) {
    gemm_ex(cu, ta, tb, m, n, k, A, B, C, beta, key.compute);
  } else {
    done = 0;
  }
  GV_CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(la));
  GV_CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lb));
  GV_CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lc));
  GV_CUBLAS_CHECK(cublasLtMatmulDescDestroy(op));
  return done;
}

/* A row-major (rows, cols) tensor seen column-major: (cols, rows), ld = cols. */
static struct gemm_mat colmajor(const struct gv_tensor *t, int64_t rows, int64_t cols)
{
  struct gemm_mat m = {t->data, lt_type(t->dtype), cols, rows, cols};
  return m;
}

/* ---- bias gradient: out[j] (+)= sum_i m[i, j] ---- */

enum { COLSUM_COLS = 32, COLSUM_ROWS = 8 };

/* m: (rows, cols) row-major; block (32, 8) owns 32 columns, fp32 partial sums per thread. */
template <typename T, typename U>
static __global__ void __launch_bounds__(COLSUM_COLS * COLSUM_ROWS)
colsum_kernel(U *out, const T *m, int64_t rows, int64_t cols, int acc)
{
  __shared__ float part[COLSUM_ROWS][COLSUM_COLS];
  int64_t j = (int64_t)blockIdx.x * COLSUM_COLS + threadIdx.x;
  float s = 0.0f;
  if (j < cols)
    for (int64_t i = threadIdx.y; i < rows; i += COLSUM_ROWS) s += cu_load(m, i * cols + j);
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    for (int r = 1; r < COLSUM_ROWS; r++) s += part[r][threadIdx.x];
    cu_store(out, j, s, acc);
  }
}

static void colsum(struct gv_backend *be, struct gv_tensor *out, const struct gv_tensor *m, int acc)
{
  int64_t rows = cu_rows(m), cols = cu_cols(m);
  dim3 block(COLSUM_COLS, COLSUM_ROWS), grid((unsigned)((cols + COLSUM_COLS - 1) / COLSUM_COLS));
  if (!cols) return;
  CU_DISPATCH(m->dtype, T, CU_DISPATCH(out->dtype, U, {
    colsum_kernel<T, U><<<grid, block, 0, cu_stream(be)>>>((U *)out->data, (const T *)m->data, rows,
                                                            cols, acc);
    GV_CUDA_LAUNCH_CHECK();
  }));
}

/* ---- bias without the epilogue: y[i, j] = b[j], then the GEMM adds with beta = 1 ---- */

template <typename T, typename U>
static __global__ void bias_rows_kernel(U *y, const T *b, int64_t rows, int64_t cols)
{
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < rows * cols;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = cu_from_float<U>(cu_load(b, i % cols));
}

static void bias_rows(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *b)
{
  int64_t rows = cu_rows(y), cols = cu_cols(y);
  CU_DISPATCH(b->dtype, T, CU_DISPATCH(y->dtype, U, {
    bias_rows_kernel<T, U><<<cu_blocks(be, rows * cols, 256), 256, 0, cu_stream(be)>>>(
        (U *)y->data, (const T *)b->data, rows, cols);
    GV_CUDA_LAUNCH_CHECK();
  }));
}

/* ---- forward / backward ---- */

extern "C" void gv_cuda_linear_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                                   const struct gv_tensor *w, const struct gv_tensor *b)
{
  int64_t M = cu_rows(x), K = cu_cols(x), N = w->shape[0];
  if (!M || !N) return;
  GV_CHECK(K > 0, "cuda linear_fwd: K = 0");
  struct gemm_mat A = colmajor(w, N, K), B = colmajor(x, M, K), C = colmajor(y, M, N);
  struct gemm_epi e = EPI_NONE;
  if (b && ptr_align(b->data) >= BIAS_ALIGN)
    e.epi = CUBLASLT_EPILOGUE_BIAS, e.bias = b->data, e.biast = lt_type(b->dtype);
  if ((!b || e.bias) && gemm(be, 1, 0, N, M, K, &A, &B, &C, 0.0f, &e))
    return;
  bias_rows(be, y, b);                /* no bias epilogue for these types, or b misaligned */
  gemm(be, 1, 0, N, M, K, &A, &B, &C, 1.0f, &EPI_NONE);
}

extern "C" void gv_cuda_linear_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                                   struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                                   const struct gv_tensor *w, int flags)
{
  int64_t M = cu_rows(x), K = cu_cols(x), N = w->shape[0];
  if (!M) {                           /* an empty batch: gradients that overwrite become 0 */
    if (dw && !(flags & GV_ACC_DW)) GV_CUDA_CHECK(cudaMemsetAsync(dw->data, 0, gv_tensor_bytes(dw), cu_stream(be)));
    if (db && !(flags & GV_ACC_DW)) GV_CUDA_CHECK(cudaMemsetAsync(db->data, 0, gv_tensor_bytes(db), cu_stream(be)));
    return;
  }
  if (!N || !K) return;
  struct gemm_mat mw = colmajor(w, N, K), mdy = colmajor(dy, M, N), mx = colmajor(x, M, K);
  if (dx) {
    struct gemm_mat C = colmajor(dx, M, K);
    gemm(be, 0, 0, K, M, N, &mw, &mdy, &C, (flags & GV_ACC_DX) ? 1.0f : 0.0f, &EPI_NONE);
  }
  if (dw) {
    struct gemm_mat C = colmajor(dw, N, K);
    gemm(be, 0, 1, K, N, M, &mx, &mdy, &C, (flags & GV_ACC_DW) ? 1.0f : 0.0f, &EPI_NONE);
  }
  if (db) colsum(be, db, dy, flags & GV_ACC_DW);
}

/* ---- the GELU epilogues (tanh GELU, as cuBLASLt computes it) ---- */

/* The GELU input matrix is laid out like C (column-major, ld = its rows): cuBLASLt wants
 * that ld a multiple of 8; otherwise, or when it declines, the parts run separately. */
static int gelu_epi_ok(const struct gv_tensor *y, const struct gv_tensor *pre, const struct gv_tensor *x)
{
  return y->dtype == pre->dtype && y->dtype == x->dtype && cu_cols(pre) % 8 == 0 && ptr_align(pre->data) >= 16;
}

extern "C" void gv_cuda_linear_gelu_fwd(struct gv_backend *be, struct gv_tensor *y, struct gv_tensor *pre,
                                        const struct gv_tensor *x, const struct gv_tensor *w,
                                        const struct gv_tensor *b)
{
  int64_t M = cu_rows(x), K = cu_cols(x), N = w->shape[0];
  if (!M || !N) return;
  if (K > 0 && gelu_epi_ok(y, pre, x) && (!b || ptr_align(b->data) >= BIAS_ALIGN)) {
    struct gemm_mat A = colmajor(w, N, K), B = colmajor(x, M, K), C = colmajor(y, M, N);
    struct gemm_epi e = {b ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX, b ? b->data : NULL,
                         b ? lt_type(b->dtype) : CUDA_R_32F, pre->data, N};
    if (gemm(be, 1, 0, N, M, K, &A, &B, &C, 0.0f, &e))
      return;
  }
  gv_fused_linear_gelu_fwd(be, y, pre, x, w, b);
}

extern "C" void gv_cuda_linear_dgelu_bwd(struct gv_backend *be, struct gv_tensor *dpre, struct gv_tensor *dw,
                                         struct gv_tensor *db, const struct gv_tensor *dy, const struct gv_tensor *x,
                                         const struct gv_tensor *w, const struct gv_tensor *pre, int flags)
{
  int64_t M = cu_rows(x), K = cu_cols(x), N = w->shape[0];
  if (M && N && K && gelu_epi_ok(dpre, pre, dy)) {
    struct gemm_mat mw = colmajor(w, N, K), mdy = colmajor(dy, M, N), C = colmajor(dpre, M, K);
    struct gemm_epi e = {CUBLASLT_EPILOGUE_DGELU, NULL, CUDA_R_32F, (void *)pre->data, K};
    if (gemm(be, 0, 0, K, M, N, &mw, &mdy, &C, 0.0f, &e)) { /* dpre; then dw, db as linear_bwd */
      gv_cuda_linear_bwd(be, NULL, dw, db, dy, x, w, flags & GV_ACC_DW);
      return;
    }
  }
  gv_fused_linear_dgelu_bwd(be, dpre, dw, db, dy, x, w, pre, flags);
}
