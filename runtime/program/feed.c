/* feed.c - the input feed table: how each kind of program input fills a micro-batch's
 * slot (beside gv_prog_io's tokens and labels, gv_prog_images declares a program's pixels
 * and gv_prog_src an encoder-decoder's source). One row per kind: token data (a Megatron
 * dataset, a fixed --batch_from batch or synthetic tokens), images (images.c), source/target
 * pairs (s2s.c) and the sampler's prompt, each with open (its data), sample (the samples
 * [first, first + B) into a slot), loss_scale (1 / what the global batch's loss is the mean
 * over) and free. The program's row is the first whose reads() holds: a new input kind is a
 * new row, not a branch of the loader. A classifier's row also counts the labels its logits
 * predict, for the accuracy of an evaluation. The token kinds stage their ids on the host
 * and copy them into the slot (under context parallelism, this rank's zigzag rows). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "program/run.h"
#include "program/tensorfile.h"

struct gv_run_input {
  const char *name;
  int (*reads)(const struct gv_run *r);
  void (*open)(struct gv_run *r, struct gv_run_feed *fd);
  void (*sample)(struct gv_run *r, struct gv_run_feed *fd, int64_t first, int64_t slot);
  float (*loss_scale)(struct gv_run *r, int64_t first, int64_t n);
  void (*free)(struct gv_run *r, struct gv_run_feed *fd);
  /* a classifier: the labels of micro-batch slot `slot` its logits predict (NULL: none) */
  int64_t (*correct)(struct gv_run *r, int64_t slot);
};

/* ---- token ids on the host, into a slot ---- */

/* The source length S of an encoder-decoder (0 for other programs). */
static int64_t src_seq(const struct gv_run *r) { return r->s2s.src_off >= 0 ? r->s2s.seq : 0; }

/* Host buffers of B x T ids (tokens, labels) and B x S (source) in the host scratch. */
static int32_t *ids_scratch(struct gv_run *r)
{
  return gv_run_host_scratch(r, sizeof(int32_t) * (size_t)(r->micro_batch * (2 * r->seq + src_seq(r))));
}

/* Context parallelism: this rank's zigzag rows of each of the n / T samples, in place. */
static void zigzag_rows(const struct gv_run *r, int32_t *x, size_t n)
{
  int64_t T = r->seq, Tl = T / r->cp, c = Tl / 2;
  for (int64_t b = 0; b < (int64_t)n / T; b++)
    for (int h = 0; h < 2; h++) {
      int64_t chunk = h ? 2 * r->cp - 1 - r->cp_rank : r->cp_rank;
      memmove(x + b * Tl + h * c, x + b * T + chunk * c, sizeof(int32_t) * (size_t)c);
    }
}

/* The micro-batch's tokens and labels, B x T each (and source, B x S, src not NULL), into slot. */
static void put_ids(struct gv_run *r, int64_t slot, int32_t *tok, int32_t *lab, const int32_t *src)
{
  size_t n = (size_t)(r->micro_batch * r->seq), bytes = sizeof(int32_t) * n;
  if (src)
    gv_dev_memcpy(&r->be, r->bases[GV_MEM_ACTS] + r->s2s.src_off + slot * r->io_stride, src,
                  sizeof(int32_t) * (size_t)(r->micro_batch * src_seq(r)), GV_COPY_H2D);
  if (r->cp > 1) { /* forward order keeps every row's source ahead of or at its destination */
    zigzag_rows(r, tok, n);
    zigzag_rows(r, lab, n);
    bytes /= (size_t)r->cp;
  }
  gv_dev_memcpy(&r->be, r->bases[GV_MEM_ACTS] + r->tokens_off + slot * r->io_stride, tok, bytes, GV_COPY_H2D);
  gv_dev_memcpy(&r->be, r->bases[GV_MEM_ACTS] + r->labels_off + slot * r->io_stride, lab, bytes, GV_COPY_H2D);
}

static void read_fixed_batch(struct gv_run *r, struct gv_run_feed *fd)
{
  char err[512];
  fd->tf = calloc(1, sizeof *fd->tf);
  GV_CHECK(fd->tf != NULL, "out of host memory");
  if (gv_tf_read(fd->tf, r->args.batch_from, err, sizeof err))
    gv_fatalf(__FILE__, __LINE__, "--batch_from", "gvrt", "%s", err);
}

static void free_fixed_batch(struct gv_run_feed *fd)
{
  if (fd->tf)
    gv_tf_free(fd->tf);
  free(fd->tf);
  fd->tf = NULL;
}

/* ---- token data (data.c), or a fixed batch of tokens and labels ---- */

static int reads_tokens(const struct gv_run *r) { (void)r; return 1; }

static void tokens_open(struct gv_run *r, struct gv_run_feed *fd)
{
  if (!r->args.batch_from) {
    gv_run_data_open(r);
    return;
  }
  read_fixed_batch(r, fd);
  const struct gv_tf_record *t = gv_tf_find(fd->tf, "tokens"), *l = gv_tf_find(fd->tf, "labels");
  if (!t || !l || t->dtype != GV_TF_I32 || t->ndim != 2 || t->numel != l->numel || t->dims[1] < r->seq)
    gv_fatalf(__FILE__, __LINE__, "--batch_from", "gvrt", "%s: needs i32 'tokens' and 'labels' [rows, >= %lld]",
              r->args.batch_from, (long long)r->seq);
  fd->tokens = t->data;
  fd->labels = l->data;
  fd->rows = t->dims[0];
  fd->cols = t->dims[1];
}

static void tokens_sample(struct gv_run *r, struct gv_run_feed *fd, int64_t first, int64_t slot)
{
  int64_t B = r->micro_batch, T = r->seq;
  int32_t *tok = ids_scratch(r), *lab = tok + B * T;
  if (fd->tokens) {
    for (int64_t b = 0; b < B; b++) {
      int64_t row = (first + b) % fd->rows;
      memcpy(tok + b * T, fd->tokens + row * fd->cols, sizeof(int32_t) * (size_t)T);
      memcpy(lab + b * T, fd->labels + row * fd->cols, sizeof(int32_t) * (size_t)T);
    }
  } else {
    int32_t *buf = malloc(sizeof(int32_t) * (size_t)(T + 1));
    GV_CHECK(buf != NULL, "out of host memory");
    for (int64_t b = 0; b < B; b++) {
      gv_run_data_sample(r, first + b, buf);
      memcpy(tok + b * T, buf, sizeof(int32_t) * (size_t)T);
      memcpy(lab + b * T, buf + 1, sizeof(int32_t) * (size_t)T);
    }
    free(buf);
  }
  put_ids(r, slot, tok, lab, NULL);
}

/* The mean over every label of the global batch: T a sample. */
static float tokens_loss_scale(struct gv_run *r, int64_t first, int64_t n)
{
  (void)first;
  return 1.0f / (float)((double)n * (double)r->seq);
}

static void tokens_free(struct gv_run *r, struct gv_run_feed *fd)
{
  free_fixed_batch(fd);
  gv_run_data_free(r);
}

/* ---- images (images.c): a label a sample ---- */

static int reads_images(const struct gv_run *r) { return r->img.channels != 0; }
static void images_open(struct gv_run *r, struct gv_run_feed *fd) { (void)fd; gv_run_images_open(r); }
static void images_sample(struct gv_run *r, struct gv_run_feed *fd, int64_t first, int64_t slot)
{
  (void)fd;
  gv_run_images_load(r, first, slot);
}
static float images_loss_scale(struct gv_run *r, int64_t first, int64_t n)
{
  (void)r, (void)first;
  return 1.0f / (float)(double)n;
}
static void images_free(struct gv_run *r, struct gv_run_feed *fd) { (void)fd; gv_run_images_free(r); }

/* ---- source/target pairs (s2s.c): a fixed batch's rows or a pair dataset ---- */

static int reads_pairs(const struct gv_run *r) { return r->s2s.src_off >= 0; }

static void pairs_open(struct gv_run *r, struct gv_run_feed *fd)
{
  if (!r->args.batch_from) {
    gv_run_s2s_open(r);
    if (r->s2s.pairs) /* (not --data synthetic) */
      gv_run_splits_open(r, r->args.data, "pairs", gv_pairs_count(r->s2s.pairs), r->s2s.split);
    return;
  }
  read_fixed_batch(r, fd);
  gv_run_s2s_fixture(r, fd->tf);
  fd->tokens = r->s2s.tokens;
}

static void pairs_sample(struct gv_run *r, struct gv_run_feed *fd, int64_t first, int64_t slot)
{
  (void)fd;
  int64_t B = r->micro_batch, T = r->seq;
  int32_t *tok = ids_scratch(r), *lab = tok + B * T, *src = lab + B * T;
  for (int64_t b = 0; b < B; b++)
    gv_run_s2s_sample(r, first + b, src + b * src_seq(r), tok + b * T, lab + b * T);
  put_ids(r, slot, tok, lab, src);
}

static void pairs_free(struct gv_run *r, struct gv_run_feed *fd)
{
  free_fixed_batch(fd);
  gv_run_split_free(r->s2s.split);
  gv_run_s2s_free(r);
}

/* ---- the sampler's prompt: the sequence so far in row 0 (an encoder-decoder's decoder
 * input, its source in row 0 of the source; the other rows 0) ---- */

static void prompt_sample(struct gv_run *r, struct gv_run_feed *fd, int64_t first, int64_t slot)
{
  (void)first;
  int64_t B = r->micro_batch, T = r->seq;
  int32_t *tok = ids_scratch(r), *lab = tok + B * T, *src = lab + B * T;
  memset(tok, 0, sizeof(int32_t) * (size_t)(B * (2 * T + src_seq(r))));
  memcpy(tok, fd->prompt, sizeof(int32_t) * (size_t)T);
  if (fd->prompt_src)
    memcpy(src, fd->prompt_src, sizeof(int32_t) * (size_t)src_seq(r));
  put_ids(r, slot, tok, lab, r->s2s.src_off >= 0 ? src : NULL);
}

/* ---- the table ---- */

static const struct gv_run_input inputs[] = {
    {"images", reads_images, images_open, images_sample, images_loss_scale, images_free, gv_run_images_correct},
    {"pairs", reads_pairs, pairs_open, pairs_sample, gv_run_s2s_loss_scale, pairs_free, NULL},
    {"tokens", reads_tokens, tokens_open, tokens_sample, tokens_loss_scale, tokens_free, NULL},
};
static const struct gv_run_input prompt_input = {"prompt", NULL, NULL, prompt_sample, NULL, NULL, NULL};

void gv_run_feed_open(struct gv_run *r, struct gv_run_feed *fd)
{
  memset(fd, 0, sizeof *fd);
  for (size_t k = 0; k < sizeof inputs / sizeof inputs[0] && !fd->in; k++)
    if (inputs[k].reads(r))
      fd->in = &inputs[k];
  fd->in->open(r, fd);
}

void gv_run_feed_free(struct gv_run *r, struct gv_run_feed *fd)
{
  fd->in->free(r, fd);
}

float gv_run_feed_loss_scale(struct gv_run *r, const struct gv_run_feed *fd, int64_t first, int64_t n)
{
  return fd->in->loss_scale(r, first, n);
}

void gv_run_feed_load(struct gv_run *r, int64_t i, int64_t slot, void *arg)
{
  struct gv_run_feed *fd = arg;
  fd->in->sample(r, fd, fd->first + i * r->micro_batch, slot);
}

void gv_run_feed_scored(struct gv_run *r, int64_t i, int64_t slot, void *arg)
{
  const struct gv_run_feed *fd = arg;
  (void)i;
  if (!fd->in->correct || !r->has_logits || r->stage != r->pp - 1)
    return;
  int64_t c = fd->in->correct(r, slot);
  if (r->tp_rank == 0) { /* the tp group's ranks predict alike */
    r->eval_correct += c;
    r->eval_counted += r->micro_batch;
  }
}

double gv_run_feed_accuracy(struct gv_run *r, const struct gv_run_feed *fd)
{
  if (!fd->in->correct)
    return -1;
  double n[2] = {(double)r->eval_correct, (double)r->eval_counted};
  gv_comm_all_reduce_host(r->world, n, 2, GV_DTYPE_F64, GV_REDUCE_SUM);
  return n[1] > 0 ? n[0] / n[1] : NAN; /* (no rank held its logits) */
}

void gv_run_forward_tokens(struct gv_run *r, const int32_t *tokens, const int32_t *src)
{
  struct gv_run_feed one = {.in = &prompt_input, .prompt = tokens, .prompt_src = src};
  gv_pipe_step(r, 1, 0, gv_run_feed_load, NULL, &one);
}
