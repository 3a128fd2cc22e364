/* embedding.c - row gather (token ids, or learned positions pos_offset + t when ids is NULL)
 * and its scatter-add backward. The backward is parallel over column slices of the table,
 * so rows that share an id never race.
 *   table: (V,C), ids: (M) i32, y: (M,C) with M = B*T */
#include <string.h>

#include "cpu/cpu.h"

/* Row index into the table for output row r. */
static int64_t row_id(const int32_t *ids, int64_t r, int64_t T, int64_t pos_offset)
{
  return ids ? ids[r] : pos_offset + r % T;
}

static void check_ids(const struct gv_tensor *y, const struct gv_tensor *ids, int64_t V,
                      int64_t pos_offset)
{
  int64_t M = cpu_rows(y), T = y->shape[y->ndim - 2];
  const int32_t *pid = ids ? (const int32_t *)ids->data : NULL;
  for (int64_t r = 0; r < M; r++) {
    int64_t id = row_id(pid, r, T, pos_offset);
    GV_CHECK(id >= 0 && id < V, "embedding: row %lld has id %lld outside [0, %lld)", (long long)r,
             (long long)id, (long long)V);
  }
}

CPU_CLONES
void gv_cpu_embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                          const struct gv_tensor *table, int64_t pos_offset, int accumulate)
{
  float *py = cpu_f32(y);
  const float *pt = cpu_f32(table);
  const int32_t *pid = ids ? (const int32_t *)ids->data : NULL;
  int64_t M = cpu_rows(y), C = cpu_cols(y), T = y->shape[y->ndim - 2];
  check_ids(y, ids, table->shape[0], pos_offset);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; r++) {
    const float *src = pt + row_id(pid, r, T, pos_offset) * C;
    float *dst = py + r * C;
    for (int64_t c = 0; c < C; c++) cpu_store(&dst[c], src[c], accumulate);
  }
}

CPU_CLONES
void gv_cpu_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                          const struct gv_tensor *dy, const struct gv_tensor *ids,
                          int64_t pos_offset, int flags)
{
  enum { CHUNK = 64 };
  float *pt = cpu_f32(dtable);
  const float *pdy = cpu_f32(dy);
  const int32_t *pid = ids ? (const int32_t *)ids->data : NULL;
  int64_t M = cpu_rows(dy), C = cpu_cols(dy), T = dy->shape[dy->ndim - 2];
  int64_t nchunks = (C + CHUNK - 1) / CHUNK;
  check_ids(dy, ids, dtable->shape[0], pos_offset);
  if (!(flags & GV_ACC_DW)) memset(pt, 0, gv_tensor_bytes(dtable));
#pragma omp parallel for schedule(static)
  for (int64_t ch = 0; ch < nchunks; ch++) {
    int64_t c0 = ch * CHUNK, c1 = c0 + CHUNK < C ? c0 + CHUNK : C;
    for (int64_t r = 0; r < M; r++) {
      float *dst = pt + row_id(pid, r, T, pos_offset) * C;
      const float *src = pdy + r * C;
      for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
    }
  }
}
