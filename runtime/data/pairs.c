/* pairs.c - a sequence-to-sequence dataset (docs/data.md §4): PREFIX_src and PREFIX_tgt,
 * two Megatron indexed datasets of one record per pair, each side padded to its own fixed
 * length by `gvc data --src-key K --tgt-key K`. Opened together: both sides must hold the
 * same number of records, and every record of a side the same length (the message names
 * the file and the record otherwise). Pair i gives the encoder's tokens, the decoder's input
 * (the target shifted right behind the start token, Hugging Face T5's
 * decoder_start_token_id) and the labels (the target, padding ignored as -1). */
#include <stdlib.h>

#include "data/data_err.h"

struct gv_pairs {
  gv_mmidx *side[2];     /* source, target */
  int32_t len[2];
};

/* Opens PREFIX + suffix; every record one sequence of one length. */
static gv_data_status open_side(const char *prefix, const char *suffix, gv_mmidx **ix, int32_t *len, char *err,
                                size_t errn)
{
  char *p = gv_data_path(prefix, suffix);
  if (!p)
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "out of memory");
  gv_data_status st = gv_mmidx_open(p, ix, err, errn);
  int64_t n = st ? 0 : gv_mmidx_num_seqs(*ix);
  if (!st && (n == 0 || gv_mmidx_num_docs(*ix) != n))
    st = gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s.idx: %lld records in %lld documents: a pair dataset holds "
                      "one record per document and at least one", p, (long long)n, (long long)gv_mmidx_num_docs(*ix));
  for (int64_t i = 0; !st && i < n; i++)
    if (gv_mmidx_seq_len(*ix, i) != gv_mmidx_seq_len(*ix, 0))
      st = gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s.idx: record %lld has %d tokens, record 0 %d: the records "
                        "of a pair dataset's side are padded to one length (gvc data --src-seq/--tgt-seq)", p,
                        (long long)i, gv_mmidx_seq_len(*ix, i), gv_mmidx_seq_len(*ix, 0));
  if (!st)
    *len = gv_mmidx_seq_len(*ix, 0);
  free(p);
  return st;
}

gv_data_status gv_pairs_open(const char *prefix, gv_pairs **out, char *err, size_t errn)
{
  gv_pairs *p = calloc(1, sizeof *p);
  gv_data_status st;
  *out = NULL;
  if (!p)
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "out of memory");
  GV_DATA_TRY(open_side(prefix, "_src", &p->side[0], &p->len[0], err, errn), st, fail);
  GV_DATA_TRY(open_side(prefix, "_tgt", &p->side[1], &p->len[1], err, errn), st, fail);
  if (gv_mmidx_num_seqs(p->side[0]) != gv_mmidx_num_seqs(p->side[1])) {
    st = gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s_src.idx has %lld records and %s_tgt.idx %lld: the two sides "
                      "of a pair dataset must have as many", prefix, (long long)gv_mmidx_num_seqs(p->side[0]), prefix,
                      (long long)gv_mmidx_num_seqs(p->side[1]));
    goto fail;
  }
  *out = p;
  return GV_DATA_OK;
fail:
  gv_pairs_free(&p);
  return st;
}

void gv_pairs_free(gv_pairs **p)
{
  if (!p || !*p)
    return;
  gv_mmidx_free(&(*p)->side[0]);
  gv_mmidx_free(&(*p)->side[1]);
  free(*p);
  *p = NULL;
}

int64_t gv_pairs_count(const gv_pairs *p) { return gv_mmidx_num_seqs(p->side[0]); }
int32_t gv_pairs_src_len(const gv_pairs *p) { return p->len[0]; }
int32_t gv_pairs_tgt_len(const gv_pairs *p) { return p->len[1]; }

void gv_pairs_get(const gv_pairs *p, int64_t i, int32_t pad, int32_t start, int32_t *src, int32_t *dec_in,
                  int32_t *labels)
{
  int64_t r = i % gv_pairs_count(p);
  gv_mmidx_read(p->side[0], r, 0, p->len[0], src);
  gv_mmidx_read(p->side[1], r, 0, p->len[1], labels);
  dec_in[0] = start;
  for (int32_t t = 1; t < p->len[1]; t++) dec_in[t] = labels[t - 1];
  for (int32_t t = 0; t < p->len[1]; t++) labels[t] = labels[t] == pad ? -1 : labels[t];
}
