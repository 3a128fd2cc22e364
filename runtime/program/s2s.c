/* s2s.c - the micro-batches of an encoder-decoder (a model reading src_tokens: gv_prog_src).
 * Every sample is a row of the source (the encoder's ids), the decoder's input and the
 * labels: the source padded to the program's source length S (gvc compile --src_seq; --seq
 * by default), the decoder's input and the labels to its sequence length T; the source and
 * the decoder's input with the pad id 0, the labels with -1 (ignored). They come from a fixed --batch_from batch
 * ("src_tokens", "tokens", "labels"; a fixture without "src_tokens" gives the tokens as the
 * source) or from a pair dataset --data PREFIX (PREFIX_src and PREFIX_tgt, docs/data.md §4,
 * read by gv_pairs_get; --data synthetic, for timing: a GPT sample's seeded tokens as
 * both). The loss is the mean over the real labels of the global batch, as Hugging Face's:
 * gv_run_s2s_loss_scale gives 1 / their count. */
#include <stdlib.h>
#include <string.h>

#include "program/run.h"
#include "program/tensorfile.h"

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* A record of tf: i32 [rows, cols] with cols <= T (the source's: S), or a fatal error naming it. */
static const struct gv_tf_record *rows_of(const struct gv_run *r, const struct gv_tf *tf, const char *name, int need)
{
  const struct gv_tf_record *x = gv_tf_find(tf, name);
  int src = !strcmp(name, "src_tokens");
  int64_t T = src ? r->s2s.seq : r->seq;
  if (!x && !need)
    return NULL;
  if (!x || x->dtype != GV_TF_I32 || x->ndim != 2 || x->dims[1] > T)
    gv_fatalf(__FILE__, __LINE__, "--batch_from", "gvrt", "%s: an encoder-decoder needs i32 '%s' [rows, <= %lld] "
              "(the program's %s; shorter rows are padded)", r->args.batch_from, name, (long long)T,
              src ? "--src_seq" : "--seq");
  return x;
}

void gv_run_s2s_fixture(struct gv_run *r, const struct gv_tf *tf)
{
  struct gv_run_s2s *s = &r->s2s;
  const struct gv_tf_record *t = rows_of(r, tf, "tokens", 1), *l = rows_of(r, tf, "labels", 1),
                            *src = rows_of(r, tf, "src_tokens", 0);
  if (!src) {
    src = t;
    if (t->dims[1] > r->s2s.seq)
      gv_fatalf(__FILE__, __LINE__, "--batch_from", "gvrt", "%s: no 'src_tokens', and 'tokens' of %lld columns do not "
                "fit the program's --src_seq %lld as the source", r->args.batch_from, (long long)t->dims[1],
                (long long)r->s2s.seq);
  }
  if (l->numel != t->numel || src->dims[0] != t->dims[0])
    gv_fatalf(__FILE__, __LINE__, "--batch_from", "gvrt", "%s: 'tokens', 'labels' and 'src_tokens' must have as "
              "many rows (and 'tokens' and 'labels' as many columns)", r->args.batch_from);
  s->src = src->data;
  s->tokens = t->data;
  s->labels = l->data;
  s->rows = t->dims[0];
  s->src_cols = src->dims[1];
  s->cols = t->dims[1];
}

void gv_run_s2s_open(struct gv_run *r)
{
  struct gv_run_s2s *s = &r->s2s;
  char err[512] = "";
  if (!r->args.data)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "an encoder-decoder (its model reads src_tokens) trains on a pair "
              "dataset: give --data PREFIX for PREFIX_src and PREFIX_tgt (gvc data --src-key/--tgt-key), or --batch_from");
  if (!strcmp(r->args.data, "synthetic")) { /* timing: a GPT sample's tokens as the source and the decoder's input */
    s->row = malloc(sizeof(int32_t) * (size_t)(r->seq + 1));
    GV_CHECK(s->row != NULL, "out of host memory");
    s->cols = r->seq;
    s->src_cols = r->s2s.seq < r->seq ? r->s2s.seq : r->seq;
    return;
  }
  if (gv_pairs_open(r->args.data, &s->pairs, err, sizeof err) != GV_DATA_OK)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s", err);
  if (gv_pairs_src_len(s->pairs) > r->s2s.seq)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s: sources of %d tokens do not fit the program's source length "
              "%lld (compile with --src_seq at least %d)", r->args.data, gv_pairs_src_len(s->pairs), (long long)r->s2s.seq,
              gv_pairs_src_len(s->pairs));
  if (gv_pairs_tgt_len(s->pairs) > r->seq)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s: targets of %d tokens do not fit the program's --seq %lld "
              "(compile with --seq at least %d)", r->args.data, gv_pairs_tgt_len(s->pairs), (long long)r->seq,
              gv_pairs_tgt_len(s->pairs));
  s->src_cols = gv_pairs_src_len(s->pairs);
  s->cols = gv_pairs_tgt_len(s->pairs);
  s->row = malloc(sizeof(int32_t) * (size_t)(s->src_cols + 2 * s->cols));
  GV_CHECK(s->row != NULL, "out of host memory");
}

void gv_run_s2s_free(struct gv_run *r)
{
  gv_pairs_free(&r->s2s.pairs);
  free(r->s2s.row);
  r->s2s.row = NULL;
}

/* n ids of x into dst, padded to T with pad. */
static void padded(int32_t *dst, const int32_t *x, int64_t n, int64_t T, int32_t pad)
{
  memcpy(dst, x, sizeof(int32_t) * (size_t)min64(n, T));
  for (int64_t t = n; t < T; t++) dst[t] = pad;
}

void gv_run_s2s_sample(struct gv_run *r, int64_t sample, int32_t *src, int32_t *tok, int32_t *lab)
{
  struct gv_run_s2s *s = &r->s2s;
  const int32_t *xs, *xt, *xl;
  if (s->pairs) {
    gv_pairs_get(s->pairs, gv_run_split_record(r, s->split, sample), 0, 0, s->row, s->row + s->src_cols,
                 s->row + s->src_cols + s->cols);
    xs = s->row, xt = s->row + s->src_cols, xl = s->row + s->src_cols + s->cols;
  } else if (s->row) { /* --data synthetic */
    gv_run_data_sample(r, sample, s->row);
    xs = xt = s->row, xl = s->row + 1;
  } else {
    int64_t row = sample % s->rows;
    xs = s->src + row * s->src_cols, xt = s->tokens + row * s->cols, xl = s->labels + row * s->cols;
  }
  padded(src, xs, s->src_cols, s->seq, 0);
  padded(tok, xt, s->cols, r->seq, 0);
  padded(lab, xl, s->cols, r->seq, -1);
  for (int64_t t = 0; t < (s->seq > r->seq ? s->seq : r->seq); t++)
    if ((t < s->seq && (src[t] < 0 || src[t] >= r->vocab)) ||
        (t < r->seq && (tok[t] < 0 || tok[t] >= r->vocab || lab[t] >= r->vocab)))
      gv_fatalf(__FILE__, __LINE__, s->pairs ? "--data" : "--batch_from", "gvrt", "%s: sample %lld holds a token id "
                "outside the model's vocabulary of %lld", s->pairs ? r->args.data : r->args.batch_from,
                (long long)sample, (long long)r->vocab);
}

float gv_run_s2s_loss_scale(struct gv_run *r, int64_t first, int64_t n)
{
  int64_t T = r->seq, S = r->s2s.seq, count = 0;
  int32_t *buf = malloc(sizeof(int32_t) * (size_t)(S + 2 * T));
  GV_CHECK(buf != NULL, "out of host memory");
  for (int64_t i = first; i < first + n; i++) {
    gv_run_s2s_sample(r, i, buf, buf + S, buf + S + T);
    for (int64_t t = 0; t < T; t++) count += buf[S + T + t] >= 0;
  }
  free(buf);
  return count ? 1.0f / (float)count : 0.0f;
}
