/* images.c - the data of an image program (a ViT; gv_prog_images): a .gvimg dataset
 * (gvrt_data.h) read in one seeded shuffle, repeated as epochs, or synthetic images; each
 * micro-batch's images normalised into the slot in the program's float type, and its labels
 * one a sample. The dataset must hold the model's image shape and labels below its classes. */
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
  if (r->args.eval_only || r->args.eval_interval > 0)
    gv_fatalf(__FILE__, __LINE__, "--eval_interval", "gvrt", "an image model is trained without a validation "
              "split here: give --eval_interval 0 and no --eval_only");
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
  r->img.order = malloc(sizeof(int64_t) * (size_t)i->count);
  GV_CHECK(r->img.order != NULL, "out of host memory");
  for (int64_t k = 0; k < i->count; k++) r->img.order[k] = k;
  struct gv_data_mt mt;
  gv_data_mt_seed(&mt, (uint32_t)r->args.seed);
  gv_data_mt_shuffle(&mt, r->img.order, i->count);
}

void gv_run_images_free(struct gv_run *r)
{
  gv_images_free(&r->img.ds);
  free(r->img.order);
  r->img.order = NULL;
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
  const struct gv_images_info *i = gv_images_info(r->img.ds);
  const uint8_t *p = gv_images_get(r->img.ds, r->img.order[sample % i->count], &label);
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
