/* gpt_samples.c - GPT training samples from an indexed dataset, built the way Megatron's
 * GPTDataset builds them (gpt_dataset.py + helpers.cpp; docs/data.md §3):
 *   document_index  the split's sequence ids tiled over E epochs, shuffled
 *   sample_index    (position in document_index, token offset) where each sample starts
 *   shuffle_index   a permutation of the samples
 * all drawn from one numpy RandomState(seed) stream, which this file re-implements bit
 * for bit (MT19937 + legacy Fisher-Yates), so the samples equal Megatron's. A sample is
 * seq+1 tokens; consecutive samples share one token; samples span document boundaries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_err.h"

struct gv_data {
  gv_mmidx *ix;
  int seq, epochs;
  int64_t *doc_index, ndoc_index;   /* sequence ids */
  int64_t *sample_index;            /* [n+1][2] */
  int64_t *shuffle_index, n;        /* [n] */
};

/* ---- numpy RandomState (MT19937, legacy seeding and shuffle) ---- */

void gv_data_mt_seed(struct gv_data_mt *mt, uint32_t seed)
{
  for (int i = 0; i < 624; i++) {
    mt->key[i] = seed;
    seed = 1812433253u * (seed ^ (seed >> 30)) + (uint32_t)i + 1u;
  }
  mt->pos = 624;
}

static void mt_refill(struct gv_data_mt *mt)
{
  static const uint32_t mag[2] = {0u, 0x9908b0dfu};
  for (int i = 0; i < 624; i++) {
    uint32_t y = (mt->key[i] & 0x80000000u) | (mt->key[(i + 1) % 624] & 0x7fffffffu);
    mt->key[i] = mt->key[(i + 397) % 624] ^ (y >> 1) ^ mag[y & 1u];
  }
  mt->pos = 0;
}

uint32_t gv_data_mt_next(struct gv_data_mt *mt)
{
  if (mt->pos == 624)
    mt_refill(mt);
  uint32_t y = mt->key[mt->pos++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  return y ^ (y >> 18);
}

/* Uniform in [0, max] by masked rejection (numpy random_interval). */
static uint64_t mt_interval(struct gv_data_mt *mt, uint64_t max)
{
  uint64_t mask = max, v;
  for (int s = 1; s < 64; s <<= 1)
    mask |= mask >> s;
  if (max <= 0xffffffffu) {
    while ((v = gv_data_mt_next(mt) & mask) > max) {}
  } else {
    do {
      uint64_t hi = gv_data_mt_next(mt);
      v = ((hi << 32) | gv_data_mt_next(mt)) & mask;
    } while (v > max);
  }
  return v;
}

void gv_data_mt_shuffle(struct gv_data_mt *mt, int64_t *x, int64_t n)
{
  for (int64_t i = n - 1; i >= 1; i--) {
    int64_t j = (int64_t)mt_interval(mt, (uint64_t)i);
    int64_t t = x[i];
    x[i] = x[j];
    x[j] = t;
  }
}

/* ---- index construction ---- */

struct plan {
  int64_t lo, hi;            /* split: sequences [lo, hi) */
  int64_t tokens_per_epoch;
  int epochs;
  int separate_final;        /* the last epoch is shuffled on its own */
  int64_t n, n_first;        /* samples; samples before the final epoch */
};

/* Megatron _get_num_epochs and the separate_final_epoch rule (threshold 0.80). */
static void plan_epochs(struct plan *p, int seq, int64_t num_samples)
{
  int64_t tpe = p->tokens_per_epoch;
  p->epochs = 1;
  if (num_samples > 0)
    while ((int64_t)p->epochs * tpe < num_samples * seq + 1)
      p->epochs++;
  p->n = ((int64_t)p->epochs * tpe - 1) / seq;
  p->n_first = p->n;
  p->separate_final = 0;
  if (p->epochs > 1) {
    int64_t sans = ((int64_t)(p->epochs - 1) * tpe - 1) / seq;
    int64_t per_epoch = (tpe - 1) / seq;
    if (num_samples - sans < (int64_t)(0.80 * (double)per_epoch)) {
      p->separate_final = 1;
      p->n_first = sans;
    }
  }
}

/* The split's ids tiled `epochs` times at x, then shuffled (_build_document_index). */
static void tile_shuffle(struct gv_data_mt *mt, int64_t *x, const struct plan *p, int epochs)
{
  int64_t count = p->hi - p->lo;
  for (int e = 0; e < epochs; e++)
    for (int64_t i = 0; i < count; i++)
      x[e * count + i] = p->lo + i;
  gv_data_mt_shuffle(mt, x, (int64_t)epochs * count);
}

/* helpers.cpp build_sample_idx with add_extra_token = 1 and drop_last. */
static void build_sample_index(gv_data *ds)
{
  int64_t pos = 0, off = 0;
  ds->sample_index[0] = ds->sample_index[1] = 0;
  for (int64_t s = 1; s <= ds->n; s++) {
    int64_t remaining = ds->seq + 1;
    while (remaining != 0) {
      int64_t doc_len = gv_mmidx_seq_len(ds->ix, ds->doc_index[pos]) - off;
      remaining -= doc_len;
      if (remaining <= 0) {
        off += remaining + doc_len - 1;   /* the next sample starts on this one's last token */
        remaining = 0;
      } else if (pos == ds->ndoc_index - 1) {
        remaining = 0;                    /* unreachable with drop_last; kept for safety */
      } else {
        pos++;
        off = 0;
      }
    }
    ds->sample_index[2 * s] = pos;
    ds->sample_index[2 * s + 1] = off;
  }
}

/* ---- split (blended_megatron_dataset_builder: parse_and_normalize_split,
 * _get_split_indices) ---- */

static int parse_weights(const char *s, double w[3])
{
  int n = 0;
  double sum = 0;
  w[0] = w[1] = w[2] = 0;
  while (*s) {
    char *end;
    if (n == 3 || *s == '-')
      return -1;
    w[n] = strtod(s, &end);
    if (end == s || !(w[n] >= 0))
      return -1;
    sum += w[n++];
    s = end + (*end == ',');
    if (*end && *end != ',')
      return -1;
  }
  if (!(sum > 0))
    return -1;
  for (int i = 0; i < 3; i++)
    w[i] /= sum;
  return 0;
}

gv_data_status gv_data_split_range(const char *split, int split_index, int64_t nseq, int64_t *lo,
                                   int64_t *hi, char *err, size_t errn)
{
  double w[3];
  if (parse_weights(split ? split : "1", w) || split_index < 0 || split_index > 2)
    return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "split \"%s\" index %d: expected up to 3 non-negative weights such as \"949,50,1\" and an index 0..2",
                        split ? split : "1", split_index);
  int64_t idx[4] = {0};
  for (int i = 0; i < 3; i++)   /* Python int(round(x)): half to even */
    idx[i + 1] = idx[i] + (int64_t)rint(w[i] * (double)nseq);
  int64_t shift = idx[3] - nseq;   /* rounding drift comes off every boundary */
  *lo = split_index == 0 ? 0 : idx[split_index] - shift;
  *hi = idx[split_index + 1] - shift;
  *lo = *lo < 0 ? 0 : *lo;   /* only for degenerate weights such as "0,1,1" on 3 sequences */
  return GV_DATA_OK;
}

static gv_data_status check_opts(const char *prefix, const gv_mmidx *ix, const struct gv_data_opts *o,
                                 struct plan *p, char *err, size_t errn)
{
  if (o->seq < 1 || o->seq > (1 << 30))
    return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "%s: seq is %d, must be in 1..2^30", prefix, o->seq);
  if (o->num_samples < 0)
    return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "%s: num_samples is negative", prefix);
  char split_err[512] = "";
  gv_data_status st = gv_data_split_range(o->split, o->split_index, gv_mmidx_num_seqs(ix), &p->lo, &p->hi, split_err, sizeof split_err);
  if (st)
    return gv_data_fail(err, errn, st, "%s: %s", prefix, split_err);
  p->tokens_per_epoch = 0;
  for (int64_t i = p->lo; i < p->hi; i++)
    p->tokens_per_epoch += gv_mmidx_seq_len(ix, i);
  if (p->tokens_per_epoch < o->seq + 1)
    return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "%s: split %d of \"%s\" (sequences %lld..%lld) has %lld tokens, fewer than seq+1 = %d",
                        prefix, o->split_index, o->split ? o->split : "1", (long long)p->lo, (long long)p->hi,
                        (long long)p->tokens_per_epoch, o->seq + 1);
  plan_epochs(p, o->seq, o->num_samples);
  if ((int64_t)p->epochs * (p->hi - p->lo) > INT32_MAX)
    return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "%s: %d epochs of %lld sequences exceed Megatron's int32 document_index",
                        prefix, p->epochs, (long long)(p->hi - p->lo));
  return GV_DATA_OK;
}

static gv_data_status build_indices(gv_data *ds, const struct plan *p, uint32_t seed,
                                    const char *prefix, char *err, size_t errn)
{
  int64_t count = p->hi - p->lo;
  ds->ndoc_index = (int64_t)p->epochs * count;
  ds->n = p->n;
  ds->doc_index = malloc((size_t)ds->ndoc_index * sizeof(int64_t));
  ds->sample_index = malloc((size_t)(ds->n + 1) * 2 * sizeof(int64_t));
  ds->shuffle_index = malloc((size_t)ds->n * sizeof(int64_t));
  if (!ds->doc_index || !ds->sample_index || !ds->shuffle_index)
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory for %lld samples", prefix, (long long)ds->n);
  struct gv_data_mt mt;
  gv_data_mt_seed(&mt, seed);
  int whole = p->separate_final ? p->epochs - 1 : p->epochs;
  tile_shuffle(&mt, ds->doc_index, p, whole);
  if (p->separate_final)
    tile_shuffle(&mt, ds->doc_index + (int64_t)whole * count, p, 1);
  build_sample_index(ds);
  for (int64_t i = 0; i < ds->n; i++)
    ds->shuffle_index[i] = i;
  gv_data_mt_shuffle(&mt, ds->shuffle_index, p->n_first);
  gv_data_mt_shuffle(&mt, ds->shuffle_index + p->n_first, ds->n - p->n_first);
  return GV_DATA_OK;
}

/* ---- API ---- */

struct gv_data_opts gv_data_opts_default(int seq, uint32_t seed)
{
  return (struct gv_data_opts){.seq = seq, .seed = seed, .num_samples = 0, .split = NULL, .split_index = 0};
}

gv_data_status gv_data_open(const char *prefix, const struct gv_data_opts *opts, gv_data **out,
                            char *err, size_t errn)
{
  *out = NULL;
  gv_data *ds = calloc(1, sizeof *ds);
  if (!ds)
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", prefix);
  gv_data_status st;
  struct plan p;
  GV_DATA_TRY(gv_mmidx_open(prefix, &ds->ix, err, errn), st, out_free);
  GV_DATA_TRY(check_opts(prefix, ds->ix, opts, &p, err, errn), st, out_free);
  ds->seq = opts->seq;
  ds->epochs = p.epochs;
  GV_DATA_TRY(build_indices(ds, &p, opts->seed, prefix, err, errn), st, out_free);
  *out = ds;
  return GV_DATA_OK;
out_free:
  gv_data_free(&ds);
  return st;
}

void gv_data_free(gv_data **pds)
{
  gv_data *ds = *pds;
  if (!ds)
    return;
  gv_mmidx_free(&ds->ix);
  free(ds->doc_index);
  free(ds->sample_index);
  free(ds->shuffle_index);
  free(ds);
  *pds = NULL;
}

int64_t gv_data_num_samples(const gv_data *ds) { return ds->n; }
int gv_data_seq(const gv_data *ds) { return ds->seq; }
int gv_data_epochs(const gv_data *ds) { return ds->epochs; }
const gv_mmidx *gv_data_index(const gv_data *ds) { return ds->ix; }

/* GPTDataset._query_document_sample_shuffle_indices: tokens from (b, bo) to (e, eo)
 * inclusive, walking document_index. */
void gv_data_get_sample(const gv_data *ds, int64_t idx, int32_t *tokens)
{
  int64_t j = ds->shuffle_index[((idx % ds->n) + ds->n) % ds->n];
  int64_t b = ds->sample_index[2 * j], bo = ds->sample_index[2 * j + 1];
  int64_t e = ds->sample_index[2 * j + 2], eo = ds->sample_index[2 * j + 3];
  for (int64_t pos = b; pos <= e; pos++) {
    int64_t seq_id = ds->doc_index[pos];
    int64_t from = pos == b ? bo : 0;
    int64_t to = pos == e ? eo + 1 : gv_mmidx_seq_len(ds->ix, seq_id);
    gv_mmidx_read(ds->ix, seq_id, from, to - from, tokens);
    tokens += to - from;
  }
}

gv_data_status gv_data_get_batch(const gv_data *ds, int64_t step, int global_batch, int dp_rank,
                                 int dp_size, int32_t *tokens, char *err, size_t errn)
{
  if (dp_size < 1 || global_batch < 1 || global_batch % dp_size || dp_rank < 0 || dp_rank >= dp_size)
    return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "data: global batch %d cannot be split over %d data-parallel ranks (rank %d)",
                        global_batch, dp_size, dp_rank);
  int local = global_batch / dp_size;
  for (int i = 0; i < local; i++)
    gv_data_get_sample(ds, gv_data_batch_index(step, global_batch, dp_rank, dp_size, i),
                       tokens + (int64_t)i * (ds->seq + 1));
  return GV_DATA_OK;
}
