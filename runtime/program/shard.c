/* shard.c - where a parameter's elements live on this rank: the parameter itself (all of
 * it, or under ZeRO-3 the part inside this rank's shard of its layer's range), the part
 * this rank updates (its ZeRO-2 shard or chunk), that part's gradient and its optimizer
 * state. Parameters and gradients are elements of the program's float dtype (es bytes:
 * 4, or 2 under bf16 mixed precision); optimizer state is fp32: AdamW m, v and, under
 * bf16, the master weights, as consecutive blocks of the rank's owned elements
 * (gvrt_program.h: the layout contract). Only addresses are computed here: the arenas may be device
 * memory. */
#include <string.h>

#include "gvrt_safetensors.h"
#include "program/run.h"

static size_t es_of(const struct gv_run *r) { return gv_run_fsz(r); }

const struct gv_run_zlayer *gv_run_zl(const struct gv_run *r, const struct gv_run_param *p)
{
  return gv_run_zero3_param(r, p) ? &r->zl[p->zlayer] : NULL;
}

/* [a, b) = [off, off + total * es) intersected with [lo, hi), in elements from off. */
static int clip_range(int64_t off, size_t total, size_t es, int64_t lo, int64_t hi, size_t *first, size_t *n)
{
  int64_t end = off + (int64_t)(es * total), a = off > lo ? off : lo, b = end < hi ? end : hi;
  if (a >= b)
    return 0;
  *first = (size_t)(a - off) / es;
  *n = (size_t)(b - a) / es;
  return 1;
}

int gv_run_held(const struct gv_run *r, const struct gv_run_param *p, size_t *first, size_t *n)
{
  const struct gv_run_zlayer *z = gv_run_zl(r, p);
  if (!z) {
    *first = 0;
    *n = gv_run_shard_numel(p);
    return 1;
  }
  int64_t per = z->range / z->dp_size, lo = (int64_t)z->dp_rank * per;
  return clip_range(p->poff, gv_run_shard_numel(p), es_of(r), lo, lo + per, first, n);
}

/* Element index of p's element `first` inside this rank's ZeRO-3 shard of its layer. */
static int64_t z3_elem(const struct gv_run *r, const struct gv_run_param *p, const struct gv_run_zlayer *z, size_t first)
{
  return (p->poff - (int64_t)z->dp_rank * (z->range / z->dp_size)) / (int64_t)es_of(r) + (int64_t)first;
}

void *gv_run_param_at(struct gv_run *r, const struct gv_run_param *p, size_t first)
{
  const struct gv_run_zlayer *z = gv_run_zl(r, p);
  int64_t es = (int64_t)es_of(r);
  if (z)
    return r->bases[GV_MEM_PARAMS] + z->pshard + es * z3_elem(r, p, z, first);
  return r->bases[GV_MEM_PARAMS] + p->poff + es * (int64_t)first;
}

int gv_run_owned(const struct gv_run *r, const struct gv_run_param *p, size_t *first, size_t *n)
{
  size_t total = gv_run_shard_numel(p);
  if (gv_run_zl(r, p))
    return gv_run_held(r, p, first, n);
  if (gv_run_zero2_param(r, p)) {
    size_t c = gv_run_zero2_chunk(p), lo = (size_t)p->dp_rank * c;
    if (lo >= total)
      return 0;
    *first = lo;
    *n = total - lo < c ? total - lo : c;
    return 1;
  }
  if (!r->zero) {
    *first = 0;
    *n = total;
    return 1;
  }
  int64_t lo = (int64_t)r->dp_rank * r->shard_bytes;
  return clip_range(p->goff, total, es_of(r), lo, lo + r->shard_bytes, first, n);
}

void *gv_run_owned_grad(struct gv_run *r, const struct gv_run_param *p, size_t first)
{
  const struct gv_run_zlayer *z = gv_run_zl(r, p);
  int64_t es = (int64_t)es_of(r);
  if (z)
    return r->bases[GV_MEM_GRADS] + z->gshard + es * z3_elem(r, p, z, first);
  if (gv_run_zero2_param(r, p))
    return r->bases[GV_MEM_GRADS] + p->goff + es * (int64_t)(first - (size_t)p->dp_rank * gv_run_zero2_chunk(p));
  return r->bases[GV_MEM_GRADS] + p->goff + es * (int64_t)first - (r->zero ? (int64_t)r->dp_rank * r->shard_bytes : 0);
}

int gv_run_state_blocks(const struct gv_run *r) { return gv_prog_state_blocks(r->fdt != GV_DTYPE_F32); }

size_t gv_run_flat_shard_numel(const struct gv_run *r) { return (size_t)r->shard_bytes / es_of(r); }

float *gv_run_flat_state(struct gv_run *r)
{
  size_t bytes = sizeof(float) * (size_t)gv_run_state_blocks(r) * gv_run_flat_shard_numel(r);
  return (float *)(r->bases[GV_MEM_OPTIM] + r->plan.arena_bytes[GV_MEM_OPTIM] - bytes);
}

size_t gv_run_z3_numel(const struct gv_run *r, const struct gv_run_zlayer *z)
{
  return (size_t)(z->range / z->dp_size) / es_of(r);
}

float *gv_run_owned_state(struct gv_run *r, const struct gv_run_param *p, size_t first, enum gv_prog_state k)
{
  const struct gv_run_zlayer *z = gv_run_zl(r, p);
  if (z)
    return (float *)(r->bases[GV_MEM_OPTIM] + z->mshard) + (size_t)k * gv_run_z3_numel(r, z) + z3_elem(r, p, z, first);
  float *base = (float *)(r->bases[GV_MEM_OPTIM] + p->moff);
  if (!r->zero)
    return base + (size_t)k * gv_run_shard_numel(p) + first;
  if (gv_run_zero2_param(r, p)) {
    size_t c = gv_run_zero2_chunk(p);
    return base + (size_t)k * c + (first - (size_t)p->dp_rank * c);
  }
  int64_t rel = (p->goff - (int64_t)r->dp_rank * r->shard_bytes) / (int64_t)es_of(r) + (int64_t)first;
  return gv_run_flat_state(r) + (size_t)k * gv_run_flat_shard_numel(r) + rel;
}

/* The lowest stage holding a tied weight counts it. */
static int first_tied_stage(const struct gv_run *r, const struct gv_run_param *p)
{
  for (int t = 0; t < r->ntied; t++)
    if (!strcmp(r->tied[t].name, p->name))
      return (r->tied[t].stages & ((1ull << r->stage) - 1)) == 0;
  return 1;
}

int gv_run_unique_owner(const struct gv_run *r, const struct gv_run_param *p)
{
  int dp_counts = r->zero || p->dp_rank == 0 || gv_run_zl(r, p);
  return dp_counts && (p->split_dim >= 0 || p->tp_rank == 0) && first_tied_stage(r, p);
}

size_t gv_run_saved_part(const struct gv_run_param *p, size_t first, size_t n, int64_t *rows)
{
  int64_t keep = p->saved_rows - p->row0;
  keep = keep < 0 ? 0 : keep > p->shard_rows ? p->shard_rows : keep;
  *rows = keep;
  size_t end = (size_t)(keep * p->shard_cols);
  return first >= end ? 0 : first + n < end ? n : end - first;
}

int gv_run_read_part(struct gv_st *st, const struct gv_st_tensor *t, const struct gv_run_param *p, size_t first, size_t n,
                     float *h, char *err, size_t errn)
{
  return gv_run_read_part_crc(st, t, p, first, n, h, NULL, NULL, err, errn);
}

/* An expert weight [experts, out, in] as [numel / cols, cols]: the file's description
 * ([experts x out, in], [experts, out x in] or 3-d) regrouped as the parameter's (whole
 * experts when tensor parallelism splits each expert's outputs); any other tensor unchanged. */
static struct gv_st_tensor as_cols(const struct gv_st_tensor *t, const struct gv_run_param *p)
{
  struct gv_st_tensor v = *t;
  int64_t c = gv_st_cols(t), n = gv_st_numel(t);
  if (p->expert && c > 0 && n == p->rows * p->cols && (p->cols % c == 0 || c % p->cols == 0)) {
    v.ndim = 2;
    v.shape[0] = p->rows;
    v.shape[1] = p->cols;
  }
  return v;
}

int gv_run_read_part_crc(struct gv_st *st, const struct gv_st_tensor *tensor, const struct gv_run_param *p,
                         size_t first, size_t n, float *h, size_t *read, uint32_t *crc, char *err, size_t errn)
{
  struct gv_st_tensor view = as_cols(tensor, p);
  const struct gv_st_tensor *t = &view;
  if (gv_st_numel(t) != p->saved_rows * p->cols || gv_st_cols(t) != p->cols) {
    snprintf(err, errn, "%s: tensor '%s': shape of %lld x %lld elements, this program's parameter is %lld x %lld",
             gv_st_path(st), t->name, (long long)(gv_st_numel(t) / (gv_st_cols(t) ? gv_st_cols(t) : 1)),
             (long long)gv_st_cols(t), (long long)p->saved_rows, (long long)p->cols);
    return 1;
  }
  int64_t rows;
  size_t m = gv_run_saved_part(p, first, n, &rows);
  memset(h + m, 0, sizeof *h * (n - m)); /* vocabulary padding: zero */
  if (read)
    *read = m;
  return m && gv_st_read_part_crc(st, t, p->row0, rows, p->col0, p->shard_cols, (int64_t)first, (int64_t)m, GV_ST_F32,
                                  h, crc, err, errn);
}
