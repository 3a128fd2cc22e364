/* embedding.c - row gather (token ids, or learned positions pos_offset + t when ids is NULL)
 * and its scatter-add backward; the same two for one block of a vocabulary split (ids
 * [lo, lo + V) map to table rows 0..V-1; rows of other ids are zero / add nothing). The
 * backward is parallel over column slices of the table, so rows that share an id never race.
 *   table: (V,C), ids: (M) i32, y: (M,C) with M = B*T */
#include <string.h>

#include "cpu/cpu.h"

/* Which table row output row r reads: a position, ids[r], or ids[r] - lo in a shard (-1
 * there when the id is outside the block). */
struct rows_of_ids {
  const int32_t *ids;
  int64_t T, pos_offset, lo, V;
  int shard;
};

static int64_t row_id(const struct rows_of_ids *m, int64_t r)
{
  if (!m->ids) return m->pos_offset + r % m->T;
  int64_t k = (int64_t)m->ids[r] - m->lo;
  return m->shard && (k < 0 || k >= m->V) ? -1 : k;
}

static struct rows_of_ids rows_map(const struct gv_tensor *y, const struct gv_tensor *ids, int64_t V,
                                   int64_t pos_offset, int64_t lo, int shard)
{
  struct rows_of_ids m = {ids ? (const int32_t *)ids->data : NULL, y->ndim >= 2 ? y->shape[y->ndim - 2] : 1,
                          pos_offset, lo, V, shard};
  if (!shard) /* a whole table: every id must be in range */
    for (int64_t r = 0, M = cpu_rows(y); r < M; r++) {
      int64_t id = row_id(&m, r);
      GV_CHECK(id >= 0 && id < V, "embedding: row %lld has id %lld outside [0, %lld)", (long long)r,
               (long long)id, (long long)V);
    }
  return m;
}

static void gather(float *py, const float *pt, const struct rows_of_ids *m, int64_t M, int64_t C, int accumulate)
{
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; r++) {
    int64_t k = row_id(m, r);
    float *dst = py + r * C;
    if (k < 0) { /* an id of another block (shards only) */
      memset(dst, 0, sizeof(float) * (size_t)C);
      continue;
    }
    const float *src = pt + k * C;
    for (int64_t c = 0; c < C; c++) cpu_store(&dst[c], src[c], accumulate);
  }
}

static void scatter_add(float *pt, const float *pdy, const struct rows_of_ids *m, int64_t M, int64_t C)
{
  enum { CHUNK = 64 };
  int64_t nchunks = (C + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static)
  for (int64_t ch = 0; ch < nchunks; ch++) {
    int64_t c0 = ch * CHUNK, c1 = c0 + CHUNK < C ? c0 + CHUNK : C;
    for (int64_t r = 0; r < M; r++) {
      int64_t k = row_id(m, r);
      if (k < 0) continue;
      float *dst = pt + k * C;
      const float *src = pdy + r * C;
      for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
    }
  }
}

CPU_CLONES
void gv_cpu_embedding_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                          const struct gv_tensor *table, int64_t pos_offset, int accumulate)
{
  struct rows_of_ids m = rows_map(y, ids, table->shape[0], pos_offset, 0, 0);
  gather(cpu_f32(y), cpu_f32(table), &m, cpu_rows(y), cpu_cols(y), accumulate);
}

CPU_CLONES
void gv_cpu_embedding_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                          const struct gv_tensor *dy, const struct gv_tensor *ids,
                          int64_t pos_offset, int flags)
{
  struct rows_of_ids m = rows_map(dy, ids, dtable->shape[0], pos_offset, 0, 0);
  float *pt = cpu_f32(dtable);
  if (!(flags & GV_ACC_DW)) memset(pt, 0, gv_tensor_bytes(dtable));
  scatter_add(pt, cpu_f32(dy), &m, cpu_rows(dy), cpu_cols(dy));
}

CPU_CLONES
void gv_cpu_embedding_shard_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *ids,
                                const struct gv_tensor *table, int64_t lo)
{
  struct rows_of_ids m = rows_map(y, ids, table->shape[0], 0, lo, 1);
  gather(cpu_f32(y), cpu_f32(table), &m, cpu_rows(y), cpu_cols(y), 0);
}

CPU_CLONES
void gv_cpu_embedding_shard_bwd(struct gv_backend *be, struct gv_tensor *dtable,
                                const struct gv_tensor *dy, const struct gv_tensor *ids, int64_t lo,
                                int flags)
{
  struct rows_of_ids m = rows_map(dy, ids, dtable->shape[0], 0, lo, 1);
  float *pt = cpu_f32(dtable);
  if (!(flags & GV_ACC_DW)) memset(pt, 0, gv_tensor_bytes(dtable));
  scatter_add(pt, cpu_f32(dy), &m, cpu_rows(dy), cpu_cols(dy));
}
