/* images.c - the data of an image program (a ViT; gv_prog_images): a .gvimg dataset
 * (gvrt_data.h) split by --split as token data is, each split read in one seeded shuffle
 * repeated as epochs (data.c), or synthetic images; each micro-batch's images normalised
 * into the slot in the program's float type, and its labels one a sample. The dataset must
 * hold the model's image shape and labels below its classes. An evaluation counts the
 * labels the logits predict (the accuracy). */
#include <stdlib.h>
#include <string.h>

#include "gvrt_data.h"
#include "program/run.h"

void gv_prog_images(void *ctx, int64_t stage, int64_t pixels_off, int64_t channels, int64_t side)
{
  struct gv_run *r = ctx;
  if (stage != r->stage)
    return;
  r->img.off = pixels_off;
  r->img.channels = channels;
  r->img.side = side;
}

static int synthetic(const struct gv_run *r) { return r->args.data && !strcmp(r->args.data, "synthetic"); }

void gv_run_images_check_args(const struct gv_run *r)
{
  if (!r->img.channels)
    return;
  if (r->args.batch_from)
    gv_fatalf(__FILE__, __LINE__, "--batch_from", "gvrt", "an image model reads images, not a fixed token batch: give "
              "--data FILE.gvimg (gvc data --images)");
  if (r->args.sample_tokens > 0)
    gv_fatalf(__FILE__, __LINE__, "--sample", "gvrt", "an image model classifies images; it does not generate tokens");
}

void gv_run_images_open(struct gv_run *r)
{
  if (synthetic(r))
    return;
  if (!r->args.data)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "no training data: an image model needs --data FILE.gvimg (see "
              "gvc data --images)");
  char err[512];
  if (gv_images_open(r->args.data, &r->img.ds, err, sizeof err))
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s", err);
  const struct gv_images_info *i = gv_images_info(r->img.ds);
  if (i->channels != r->img.channels || i->height != r->img.side || i->width != r->img.side)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s: images of %lldx%lldx%lld (channels x height x width), but the "
              "model reads %lldx%lldx%lld", r->args.data, (long long)i->channels, (long long)i->height,
              (long long)i->width, (long long)r->img.channels, (long long)r->img.side, (long long)r->img.side);
  if (i->classes > r->vocab)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s: labels of %lld classes, but the model's classifier has %lld",
              r->args.data, (long long)i->classes, (long long)r->vocab);
  if (i->count == 0)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s: holds no image", r->args.data);
  gv_run_splits_open(r, r->args.data, "images", i->count, r->img.split);
}

void gv_run_images_free(struct gv_run *r)
{
  gv_images_free(&r->img.ds);
  gv_run_split_free(r->img.split);
}

static uint64_t mix(uint64_t z)
{
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Image `sample` (global index) into px (fp32, normalised) and its label. */
static int32_t image(const struct gv_run *r, int64_t sample, float *px, int64_t n)
{
  if (synthetic(r)) {
    uint64_t base = r->args.seed * 0x9E3779B97F4A7C15ull + (uint64_t)sample * 0xBF58476D1CE4E5B9ull;
    for (int64_t k = 0; k < n; k++) px[k] = (float)(mix(base + (uint64_t)k) & 255) / 127.5f - 1.0f;
    return (int32_t)(mix(base ^ 0x5bd1e995u) % (uint64_t)r->vocab);
  }
  int32_t label;
  const uint8_t *p = gv_images_get(r->img.ds, gv_run_split_record(r, r->img.split, sample), &label);
  for (int64_t k = 0; k < n; k++) px[k] = (float)p[k] / 127.5f - 1.0f;
  return label;
}

void gv_run_images_load(struct gv_run *r, int64_t first, int64_t slot)
{
  int64_t B = r->micro_batch, n = r->img.channels * r->img.side * r->img.side;
  float *px = gv_run_host_scratch(r, sizeof(float) * (size_t)(B * n) + sizeof(int32_t) * (size_t)B);
  int32_t *lab = (int32_t *)(px + B * n);
  for (int64_t b = 0; b < B; b++) lab[b] = image(r, first + b, px + b * n, n);
  char *base = r->bases[GV_MEM_ACTS] + slot * r->io_stride;
  gv_dev_memcpy(&r->be, base + r->labels_off, lab, sizeof(int32_t) * (size_t)B, GV_COPY_H2D);
  gv_run_from_host_f32(r, base + r->img.off, px, (size_t)(B * n));
}

/* The first largest of the model's classes in a row of logits. */
static int32_t predicted(const float *row, int64_t classes)
{
  int32_t best = 0;
  for (int64_t c = 1; c < classes; c++)
    if (row[c] > row[best])
      best = (int32_t)c;
  return best;
}

int64_t gv_run_images_correct(struct gv_run *r, int64_t slot)
{
  int64_t B = r->micro_batch, V = r->logits_cols, correct = 0;
  const char *base = r->bases[GV_MEM_ACTS] + slot * r->io_stride;
  int split = r->logits_rows > 0 || r->logits_split_cols > 0;
  if (r->logits_split_cols > 0 && r->logits_vtp != r->tp)
    gv_fatalf(__FILE__, __LINE__, "--eval_interval", "gvrt", "the accuracy of logits split by vocabulary over %d of "
              "the tp group's %d ranks is not supported: compile with --vocab_tp %d or 1", r->logits_vtp, r->tp, r->tp);
  float *whole = calloc((size_t)(B * V), sizeof *whole);
  int32_t *lab = malloc(sizeof(int32_t) * (size_t)B);
  GV_CHECK(whole && lab, "out of host memory");
  gv_dev_memcpy(&r->be, lab, base + r->labels_off, sizeof(int32_t) * (size_t)B, GV_COPY_D2H);
  if (r->logits_rows > 0) { /* vsp: this rank's rows of the tp group's */
    const float *mine = gv_run_to_host_f32(r, base + r->logits_off, (size_t)(r->logits_rows * V));
    memcpy(whole + r->tp_rank * r->logits_rows * V, mine, sizeof(float) * (size_t)(r->logits_rows * V));
  } else if (r->logits_split_cols > 0) { /* vocabulary tp: this rank's columns of every row */
    int64_t c = r->logits_split_cols;
    const float *mine = gv_run_to_host_f32(r, base + r->logits_off, (size_t)(B * c));
    for (int64_t b = 0; b < B; b++) memcpy(whole + b * V + r->tp_rank * c, mine + b * c, sizeof(float) * (size_t)c);
  } else {
    memcpy(whole, gv_run_to_host_f32(r, base + r->logits_off, (size_t)(B * V)), sizeof(float) * (size_t)(B * V));
  }
  if (split && r->tp > 1)
    gv_comm_all_reduce_host(r->tp_group, whole, (size_t)(B * V), GV_DTYPE_F32, GV_REDUCE_SUM);
  for (int64_t b = 0; b < B; b++) correct += predicted(whole + b * V, r->vocab) == lab[b];
  free(whole);
  free(lab);
  return correct;
}
