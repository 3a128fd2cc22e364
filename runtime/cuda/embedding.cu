/* embedding.cu - row gather (token ids, or learned positions pos_offset + t when ids is
 * NULL) and its scatter-add backward on the CUDA backend, with the CPU backend's semantics
 * (runtime/cpu/embedding.c). One thread per output element. An id outside [0, V) is fatal as
 * on the CPU, but found on the device: the kernel prints the row and id and traps, and the
 * next checked CUDA call reports the failed launch.
 * The backward zeroes dtable unless GV_ACC_DW, then adds every dy row with atomicAdd (fp32
 * atomics for f32 tables; native bf16 atomics, sm_80+, for bf16 tables, each add rounded to
 * bf16). Rows sharing an id are therefore summed in no fixed order: NOT bitwise
 * deterministic (f32: last-bit differences run to run).
 *   table, dtable: (V,C); ids: (M) i32 or NULL; y, dy: (M,C) with M = B*T; one float dtype */
#include <stdio.h>

#include "cuda/cu_common.cuh"

namespace {

template <typename T> __device__ __forceinline__ void cu_atomic_add(T *p, float v);
template <> __device__ __forceinline__ void cu_atomic_add<float>(float *p, float v) { atomicAdd(p, v); }
template <> __device__ __forceinline__ void cu_atomic_add<__nv_bfloat16>(__nv_bfloat16 *p, float v)
{
  atomicAdd(p, __float2bfloat16_rn(v));
}

/* Table row of output row r; traps on an id outside [0, V). */
__device__ __forceinline__ int64_t row_id(const int32_t *ids, int64_t r, int64_t seq, int64_t pos_offset,
                                          int64_t V)
{
  int64_t id = ids ? ids[r] : pos_offset + r % seq;
  if (id < 0 || id >= V) {
    printf("gvrt: cuda embedding: row %lld has id %lld outside [0, %lld)\n", (long long)r, (long long)id,
           (long long)V);
    __trap();
  }
  return id;
}

// y (+)= table[id(r)]
template <typename T>
__global__ void embedding_fwd_kernel(T *y, const int32_t *ids, const T *table, int64_t M, int64_t C,
                                     int64_t seq, int64_t V, int64_t pos_offset, int acc)
{
  for (int64_t k = cu_tid(); k < M * C; k += cu_stride()) {
    int64_t r = k / C, c = k % C;
    cu_store(y, k, cu_load(table, row_id(ids, r, seq, pos_offset, V) * C + c), acc);
  }
}

// dtable[id(r)] += dy[r]
template <typename T>
__global__ void embedding_bwd_kernel(T *dtable, const int32_t *ids, const T *dy, int64_t M, int64_t C,
                                     int64_t seq, int64_t V, int64_t pos_offset)
{
  for (int64_t k = cu_tid(); k < M * C; k += cu_stride()) {
    int64_t r = k / C, c = k % C;
    cu_atomic_add(dtable + row_id(ids, r, seq, pos_offset, V) * C + c, cu_load(dy, k));
  }
}

/* The sequence length T (y's dim -2; 1 for a vector). */
int64_t seq_len(const struct gv_tensor *y) { return y->ndim >= 2 ? y->shape[y->ndim - 2] : 1; }

/* Positions are known on the host: check them here, with the CPU's message. */
void check_positions(const struct gv_tensor *y, const struct gv_tensor *ids, int64_t V, int64_t pos_offset)
{
  int64_t M = cu_rows(y), T_ = seq_len(y), n = M < T_ ? M : T_;   /* n distinct positions */
  if (ids || M == 0) return;
  int64_t bad_row = pos_offset < 0 ? 0 : n - 1;
  GV_CHECK(pos_offset >= 0 && pos_offset + n <= V, "embedding: row %lld has id %lld outside [0, %lld)",
           (long long)bad_row, (long long)(pos_offset + bad_row), (long long)V);
}

}  // namespace

extern "C" void gv_cuda_embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                                      const struct gv_tensor *table, int64_t pos_offset, int accumulate)
{
  int64_t M = cu_rows(y), C = cu_cols(y), T_ = seq_len(y), V = table->shape[0];
  cu_need_dtype("embedding_fwd", "table", table, y->dtype);
  check_positions(y, ids, V, pos_offset);
  if (M * C == 0) return;
  CU_DISPATCH(y->dtype, T,
              embedding_fwd_kernel<T><<<cu_blocks(be, M * C, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(y), cu_ptr<int32_t>(ids), cu_ptr<T>(table), M, C, T_, V, pos_offset, accumulate));
  GV_CUDA_LAUNCH_CHECK();
}

extern "C" void gv_cuda_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable, const struct gv_tensor *dy,
                                      const struct gv_tensor *ids, int64_t pos_offset, int flags)
{
  int64_t M = cu_rows(dy), C = cu_cols(dy), T_ = seq_len(dy), V = dtable->shape[0];
  cu_need_dtype("embedding_bwd", "dtable", dtable, dy->dtype);
  check_positions(dy, ids, V, pos_offset);
  if (!(flags & GV_ACC_DW))
    GV_CUDA_CHECK(cudaMemsetAsync(dtable->data, 0, gv_tensor_bytes(dtable), cu_stream(be)));  /* 0 in f32 and bf16 */
  if (M * C == 0) return;
  CU_DISPATCH(dy->dtype, T,
              embedding_bwd_kernel<T><<<cu_blocks(be, M * C, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(dtable), cu_ptr<int32_t>(ids), cu_ptr<T>(dy), M, C, T_, V, pos_offset));
  GV_CUDA_LAUNCH_CHECK();
}
