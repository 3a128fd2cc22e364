/* test_data_pairs.c - a sequence-to-sequence pair dataset read as an encoder-decoder trains
 * on it, against Hugging Face T5 (tests/reference/gen_t5_s2s.py's fixture): the fixture's
 * padded sources and targets written as PREFIX_src/_tgt with the indexed writer, then
 * gv_pairs_get's decoder input equal to T5's _shift_right (start token 0) and its labels
 * equal to the target with pads ignored, for every pair and wrapping past the last; sides
 * of different record counts refused.
 * Usage: test_data_pairs FIXTURE(t5_s2s.bin) TMP_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt_data.h"
#include "program/tensorfile.h"
#include "../../testutil.h"

static const struct gv_tf_record *rec(const struct gv_tf *fx, const char *name, size_t n)
{
  const struct gv_tf_record *r = gv_tf_find(fx, name);
  if (!r || r->numel != n) {
    fprintf(stderr, "fixture: record '%s' missing or not of %zu elements\n", name, n);
    exit(2);
  }
  return r;
}

/* rows x len tokens of x as PREFIX (one record per document); count rows only. */
static void write_side(const char *prefix, const int32_t *x, int64_t rows, int64_t len)
{
  gv_mmidx_writer *w;
  char err[512] = "";
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_open(prefix, GV_DATA_DTYPE_U16, &w, err, sizeof err));
  for (int64_t r = 0; r < rows; r++) {
    CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_add(w, x + r * len, len, err, sizeof err));
    gv_mmidx_writer_end_doc(w);
  }
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_close(&w, err, sizeof err));
}

int main(int argc, char **argv)
{
  struct gv_tf fx;
  char err[512] = "", prefix[1024], side[1100];
  if (argc < 3 || gv_tf_read(&fx, argv[1], err, sizeof err)) {
    fprintf(stderr, "%s\n", argc < 3 ? "usage: test_data_pairs FIXTURE TMP_DIR" : err);
    return 2;
  }
  int64_t B = fx.header[10], S = fx.header[11], T = fx.header[12];
  const int32_t *src = rec(&fx, "src_tokens", (size_t)(B * S))->data, *tgt = rec(&fx, "target", (size_t)(B * T))->data,
                *dec = rec(&fx, "tokens", (size_t)(B * T))->data, *lab = rec(&fx, "labels", (size_t)(B * T))->data;
  snprintf(prefix, sizeof prefix, "%s/t5", argv[2]);
  snprintf(side, sizeof side, "%s_src", prefix);
  write_side(side, src, B, S);
  snprintf(side, sizeof side, "%s_tgt", prefix);
  write_side(side, tgt, B, T);
  gv_pairs *p;
  CHECK_EQ_INT(GV_DATA_OK, gv_pairs_open(prefix, &p, err, sizeof err));
  if (!p) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  CHECK_EQ_INT(B, gv_pairs_count(p));
  CHECK_EQ_INT(S, gv_pairs_src_len(p));
  CHECK_EQ_INT(T, gv_pairs_tgt_len(p));
  int32_t *s = malloc(sizeof(int32_t) * (size_t)(S + 2 * T)), *d = s + S, *l = d + T;
  for (int64_t i = 0; i < 2 * B; i++) { /* past the last pair: from the first again */
    int64_t r = i % B;
    gv_pairs_get(p, i, 0, 0, s, d, l);
    CHECK(!memcmp(s, src + r * S, sizeof(int32_t) * (size_t)S));
    CHECK(!memcmp(d, dec + r * T, sizeof(int32_t) * (size_t)T));   /* T5's _shift_right */
    CHECK(!memcmp(l, lab + r * T, sizeof(int32_t) * (size_t)T));   /* pads ignored (-1) */
  }
  free(s);
  gv_pairs_free(&p);
  /* a target side with one record fewer */
  snprintf(side, sizeof side, "%s_tgt", prefix);
  write_side(side, tgt, B - 1, T);
  CHECK_EQ_INT(GV_DATA_ERR_FORMAT, gv_pairs_open(prefix, &p, err, sizeof err));
  CHECK(strstr(err, "t5_src.idx has 3 records and") && strstr(err, "t5_tgt.idx 2"));
  gv_tf_free(&fx);
  return tu_report("test_data_pairs");
}
