/* images.c - image datasets (PREFIX.gvimg, gvrt_data.h): fixed-size u8 images with one
 * class label each, mapped read-only and checked whole when opened; and their writer
 * (`gvc data --images`). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_err.h"

enum { HDR = 32, VERSION = 1 };
static const char MAGIC[8] = {'G', 'V', 'I', 'M', 'A', 'G', 'E', 'S'};

struct gv_images {
  struct gv_images_info info;
  const uint8_t *map;
  size_t bytes;
};

struct gv_images_writer {
  struct gv_images_info info; /* classes 0: one more than the largest label, set at close */
  int32_t top;                /* the largest label written */
  FILE *f;
  char *path, *tmp;
};

static uint32_t get_u32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put_u32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24); }
static int64_t record_bytes(const struct gv_images_info *s) { return 4 + s->channels * s->height * s->width; }

static gv_data_status check(gv_images *d, const char *path, char *err, size_t errn)
{
  const uint8_t *h = d->map;
  if (d->bytes < HDR || memcmp(h, MAGIC, 8))
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: not an image dataset (no GVIMAGES header; build one with "
                        "gvc data --images)", path);
  if (get_u32(h + 8) != VERSION)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: version %u, this build reads version %d", path,
                        get_u32(h + 8), VERSION);
  struct gv_images_info *s = &d->info;
  *s = (struct gv_images_info){get_u32(h + 12), get_u32(h + 16), get_u32(h + 20), get_u32(h + 24), get_u32(h + 28)};
  if (s->channels <= 0 || s->height <= 0 || s->width <= 0 || s->classes <= 0)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: header: channels %lld, height %lld, width %lld, classes "
                        "%lld must all be positive", path, (long long)s->channels, (long long)s->height,
                        (long long)s->width, (long long)s->classes);
  int64_t want = HDR + s->count * record_bytes(s);
  if ((int64_t)d->bytes != want)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: %zu bytes, but %lld images of %lldx%lldx%lld need %lld "
                        "(truncated or not this format)", path, d->bytes, (long long)s->count, (long long)s->channels,
                        (long long)s->height, (long long)s->width, (long long)want);
  for (int64_t i = 0; i < s->count; i++) {
    uint32_t lab = get_u32(h + HDR + i * record_bytes(s));
    if (lab >= (uint32_t)s->classes)
      return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: image %lld has label %u, outside the %lld classes", path,
                          (long long)i, lab, (long long)s->classes);
  }
  return GV_DATA_OK;
}

gv_data_status gv_images_open(const char *path, gv_images **out, char *err, size_t errn)
{
  *out = NULL;
  int fd = open(path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st)) {
    gv_data_status e = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return e;
  }
  gv_images *d = calloc(1, sizeof *d);
  if (!d) {
    close(fd);
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", path);
  }
  d->bytes = (size_t)st.st_size;
  void *m = d->bytes ? mmap(NULL, d->bytes, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  close(fd);
  if (m == MAP_FAILED) {
    free(d);
    return gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: mmap: %s", path, strerror(errno));
  }
  d->map = m;
  gv_data_status s = check(d, path, err, errn);
  if (s != GV_DATA_OK) {
    gv_images_free(&d);
    return s;
  }
  *out = d;
  return GV_DATA_OK;
}

const struct gv_images_info *gv_images_info(const gv_images *d) { return &d->info; }

const uint8_t *gv_images_get(const gv_images *d, int64_t i, int32_t *label)
{
  const uint8_t *r = d->map + HDR + (i % d->info.count) * record_bytes(&d->info);
  *label = (int32_t)get_u32(r);
  return r + 4;
}

void gv_images_free(gv_images **d)
{
  if (!*d)
    return;
  if ((*d)->map)
    munmap((void *)(*d)->map, (*d)->bytes);
  free(*d);
  *d = NULL;
}

static void header(uint8_t h[HDR], const struct gv_images_info *s)
{
  memcpy(h, MAGIC, 8);
  put_u32(h + 8, VERSION);
  const int64_t v[5] = {s->count, s->channels, s->height, s->width, s->classes};
  for (int k = 0; k < 5; k++) put_u32(h + 12 + 4 * k, (uint32_t)v[k]);
}

gv_data_status gv_images_writer_open(const char *path, const struct gv_images_info *shape, gv_images_writer **out,
                                     char *err, size_t errn)
{
  *out = NULL;
  if (shape->channels <= 0 || shape->height <= 0 || shape->width <= 0 || shape->classes < 0 ||
      shape->channels * shape->height * shape->width > (1 << 28))
    return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "%s: images of %lldx%lldx%lld in %lld classes are not a valid "
                        "shape", path, (long long)shape->channels, (long long)shape->height, (long long)shape->width,
                        (long long)shape->classes);
  gv_images_writer *w = calloc(1, sizeof *w);
  char *tmp = gv_data_path(path, ".tmp");
  if (!w || !tmp || !(w->path = strdup(path))) {
    free(tmp);
    if (w) free(w);
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", path);
  }
  w->tmp = tmp;
  w->info = *shape;
  w->info.count = 0;
  uint8_t h[HDR] = {0};
  if (!(w->f = fopen(tmp, "wb")) || fwrite(h, 1, HDR, w->f) != HDR) {
    gv_data_status e = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: %s", tmp, strerror(errno));
    gv_images_writer_close(&w, 0, NULL, 0);
    return e;
  }
  *out = w;
  return GV_DATA_OK;
}

gv_data_status gv_images_writer_add(gv_images_writer *w, const uint8_t *pixels, int32_t label, char *err, size_t errn)
{
  if (label < 0 || (w->info.classes && label >= w->info.classes))
    return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "%s: image %lld has label %d, outside the %lld classes", w->path,
                        (long long)w->info.count, label, (long long)w->info.classes);
  uint8_t l[4];
  put_u32(l, (uint32_t)label);
  size_t n = (size_t)(record_bytes(&w->info) - 4);
  if (fwrite(l, 1, 4, w->f) != 4 || fwrite(pixels, 1, n, w->f) != n)
    return gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: %s", w->tmp, strerror(errno));
  w->info.count++;
  w->top = label > w->top ? label : w->top;
  return GV_DATA_OK;
}

gv_data_status gv_images_writer_close(gv_images_writer **wp, int keep, char *err, size_t errn)
{
  gv_images_writer *w = *wp;
  gv_data_status st = GV_DATA_OK;
  if (!w)
    return st;
  if (w->f && keep) {
    uint8_t h[HDR];
    if (!w->info.classes)
      w->info.classes = w->top + 1;
    header(h, &w->info);
    if (fseek(w->f, 0, SEEK_SET) || fwrite(h, 1, HDR, w->f) != HDR)
      st = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: %s", w->tmp, strerror(errno));
  }
  if (w->f && fclose(w->f) && st == GV_DATA_OK && keep)
    st = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: %s", w->tmp, strerror(errno));
  if (keep && st == GV_DATA_OK && rename(w->tmp, w->path))
    st = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: rename: %s", w->path, strerror(errno));
  if (!keep || st != GV_DATA_OK)
    remove(w->tmp);
  free(w->tmp);
  free(w->path);
  free(w);
  *wp = NULL;
  return st;
}
