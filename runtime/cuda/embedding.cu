/* embedding.cu - row gather (token ids, or learned positions pos_offset + t when ids is
 * NULL) and its scatter-add backward on the CUDA backend, with the CPU backend's semantics
 * (runtime/cpu/embedding.c). One thread per output element. An id outside [0, V) is fatal as
 * on the CPU, but found on the device: the kernel prints the row and id and traps, and the
 * next checked CUDA call reports the failed launch.
 * The backward zeroes dtable unless GV_ACC_DW, then adds every dy row with atomicAdd (fp32
 * atomics for f32 tables; native bf16 atomics, sm_80+, for bf16 tables, each add rounded to
 * bf16). Rows sharing an id are therefore summed in no fixed order: NOT bitwise
 * deterministic (f32: last-bit differences run to run).
 * The shard entries are the same kernels over one block [lo, lo + V) of a vocabulary split:
 * ids outside the block give a zero row (forward) and add nothing (backward), never a trap.
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

/* Which rows of the table the output rows read: positions, ids, or ids - lo in a shard. */
struct id_map {
  const int32_t *ids;
  int64_t seq, pos_offset, V, lo;
  int shard;
};

/* Table row of output row r; -1 for an id outside a shard's block; traps on an id outside
 * [0, V) otherwise. */
__device__ __forceinline__ int64_t row_id(const struct id_map m, int64_t r)
{
  int64_t id = m.ids ? (int64_t)m.ids[r] - m.lo : m.pos_offset + r % m.seq, V = m.V;
  if (m.shard) return id >= 0 && id < V ? id : -1;
  if (id < 0 || id >= V) {
    printf("gvrt: cuda embedding: row %lld has id %lld outside [0, %lld)\n", (long long)r, (long long)id,
           (long long)V);
    __trap();
  }
  return id;
}

// y (+)= table[id(r)] (0 for an id outside a shard's block)
template <typename T>
__global__ void embedding_fwd_kernel(T *y, const struct id_map m, const T *table, int64_t M, int64_t C, int acc)
{
  for (int64_t k = cu_tid(); k < M * C; k += cu_stride()) {
    int64_t r = k / C, c = k % C, id = row_id(m, r);
    cu_store(y, k, id < 0 ? 0.0f : cu_load(table, id * C + c), id < 0 ? 0 : acc);
  }
}

// dtable[id(r)] += dy[r] (nothing for an id outside a shard's block)
template <typename T>
__global__ void embedding_bwd_kernel(T *dtable, const struct id_map m, const T *dy, int64_t M, int64_t C)
{
  for (int64_t k = cu_tid(); k < M * C; k += cu_stride()) {
    int64_t r = k / C, c = k % C, id = row_id(m, r);
    if (id >= 0) cu_atomic_add(dtable + id * C + c, cu_load(dy, k));
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

/* The launches of both kernels (shard: ids - lo, masked to the block). */
void embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *table, struct id_map m,
                   int accumulate)
{
  int64_t M = cu_rows(y), C = cu_cols(y);
  cu_need_dtype("embedding_fwd", "table", table, y->dtype);
  if (M * C == 0) return;
  CU_DISPATCH(y->dtype, T,
              embedding_fwd_kernel<T><<<cu_blocks(be, M * C, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(y), m, cu_ptr<T>(table), M, C, accumulate));
  GV_CUDA_LAUNCH_CHECK();
}

void embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable, const struct gv_tensor *dy, struct id_map m,
                   int flags)
{
  int64_t M = cu_rows(dy), C = cu_cols(dy);
  cu_need_dtype("embedding_bwd", "dtable", dtable, dy->dtype);
  if (!(flags & GV_ACC_DW))
    GV_CUDA_CHECK(cudaMemsetAsync(dtable->data, 0, gv_tensor_bytes(dtable), cu_stream(be)));  /* 0 in f32 and bf16 */
  if (M * C == 0) return;
  CU_DISPATCH(dy->dtype, T,
              embedding_bwd_kernel<T><<<cu_blocks(be, M * C, CU_THREADS), CU_THREADS, 0, cu_stream(be)>>>(
                  cu_ptr<T>(dtable), m, cu_ptr<T>(dy), M, C));
  GV_CUDA_LAUNCH_CHECK();
}

struct id_map make_map(const struct gv_tensor *y, const struct gv_tensor *ids, int64_t V, int64_t pos_offset,
                       int64_t lo, int shard)
{
  struct id_map m = {cu_ptr<int32_t>(ids), seq_len(y), pos_offset, V, lo, shard};
  return m;
}

}  // namespace

extern "C" void gv_cuda_embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                                      const struct gv_tensor *table, int64_t pos_offset, int accumulate)
{
  check_positions(y, ids, table->shape[0], pos_offset);
  embedding_fwd(be, y, table, make_map(y, ids, table->shape[0], pos_offset, 0, 0), accumulate);
}

extern "C" void gv_cuda_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable, const struct gv_tensor *dy,
                                      const struct gv_tensor *ids, int64_t pos_offset, int flags)
{
  check_positions(dy, ids, dtable->shape[0], pos_offset);
  embedding_bwd(be, dtable, dy, make_map(dy, ids, dtable->shape[0], pos_offset, 0, 0), flags);
}

extern "C" void gv_cuda_embedding_shard_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                                            const struct gv_tensor *table, int64_t lo)
{
  embedding_fwd(be, y, table, make_map(y, ids, table->shape[0], 0, lo, 1), 0);
}

extern "C" void gv_cuda_embedding_shard_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                                            const struct gv_tensor *dy, const struct gv_tensor *ids, int64_t lo,
                                            int flags)
{
  embedding_bwd(be, dtable, dy, make_map(dy, ids, dtable->shape[0], 0, lo, 1), flags);
}
