/* cmd_data_images.c - `gvc data --images`: builds an image dataset (FILE.gvimg,
 * gvrt_data.h) from an array file (CSV, gzipped or not: one image a line, its C x H x W
 * pixel values then its label; the layout of the 8x8 digits shipped in tests/data/digits)
 * or from a folder of binary PGM/PPM images in one subfolder a class (named 0, 1, ...).
 * Every bad record is exit 1 with a message naming the file and the record. Format:
 * docs/data.md. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cmd.h"
#include "cmd_data.h"
#include "gvrt_data.h"

struct img_opts {
  const char *in, *out;
  struct gv_images_info shape;  /* channels/height/width from --shape; classes from --classes (0: labels) */
  long pixel_max;
  int quiet;
};

static void img_usage(FILE *f)
{
  fprintf(f,
    "usage: gvc data --images INPUT -o FILE.gvimg [--shape C,H,W] [--classes N] [--pixel-max M]\n\n"
    "Builds an image dataset: fixed-size u8 images with one class label each (docs/data.md).\n"
    "INPUT is\n"
    "  FILE.csv or FILE.csv.gz  one image a line: C*H*W integer pixels (channel-major, rows top\n"
    "                           to bottom) then the label, separated by commas; needs --shape\n"
    "  FOLDER                   subfolders 0, 1, ... (the labels), each of binary PGM (P5, grey)\n"
    "                           or PPM (P6, RGB) images of one size, taken in name order\n"
    "options:\n"
    "  -o, --output FILE        the dataset to write (atomically: tmp + rename)\n"
    "  --shape C,H,W            channels, height, width of every image (a folder: checked)\n"
    "  --classes N              labels must be below N (default: the largest label + 1)\n"
    "  --pixel-max M            the inputs' largest pixel value, scaled to 255 (default 255;\n"
    "                           the digits: 16)\n"
    "  --quiet                  no summary\n"
    "  -h, --help               this help\n");
}

static int parse_shape(const char *s, struct gv_images_info *sh)
{
  long long c, h, w;
  char end;
  if (sscanf(s, "%lld,%lld,%lld%c", &c, &h, &w, &end) != 3 || c <= 0 || h <= 0 || w <= 0 || c * h * w > (1 << 26))
    return cmd_data_fail("--shape wants C,H,W (positive), got '%s'", s);
  sh->channels = c, sh->height = h, sh->width = w;
  return 0;
}

/* Returns -1 on success, else the exit code. */
static int img_args(int argc, char **argv, struct img_opts *o)
{
  *o = (struct img_opts){.pixel_max = 255};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      img_usage(stdout);
      return 0;
    } else if (!strcmp(a, "--images") && more) {
      o->in = argv[++i];
    } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && more) {
      o->out = argv[++i];
    } else if (!strcmp(a, "--shape") && more) {
      if (parse_shape(argv[++i], &o->shape))
        return 1;
    } else if (!strcmp(a, "--classes") && more) {
      char *e;
      o->shape.classes = strtol(argv[++i], &e, 10);
      if (*e || o->shape.classes <= 0)
        return cmd_data_fail("--classes wants a positive count, got '%s'", argv[i]);
    } else if (!strcmp(a, "--pixel-max") && more) {
      char *e;
      o->pixel_max = strtol(argv[++i], &e, 10);
      if (*e || o->pixel_max <= 0 || o->pixel_max > 65535)
        return cmd_data_fail("--pixel-max wants 1..65535, got '%s'", argv[i]);
    } else if (!strcmp(a, "--quiet")) {
      o->quiet = 1;
    } else {
      img_usage(stderr);
      return cmd_data_fail("unknown or incomplete option '%s'", a);
    }
  }
  if (!o->in || !o->out) {
    img_usage(stderr);
    return cmd_data_fail("--images INPUT and -o FILE are both needed");
  }
  return -1;
}

static uint8_t scaled(long v, long max) { return (uint8_t)((v * 255 + max / 2) / max); }

/* ---- CSV ---- */

static int from_csv(const struct img_opts *o, gv_images_writer *w)
{
  const struct gv_images_info *s = &o->shape;
  if (!s->channels)
    return cmd_data_fail("%s: an array file needs --shape C,H,W", o->in);
  gzFile f = gzopen(o->in, "rb");
  if (!f)
    return cmd_data_fail("%s: %s", o->in, strerror(errno));
  int64_t n = s->channels * s->height * s->width;
  size_t cap = (size_t)(n + 1) * 8 + 64;
  char *line = malloc(cap), err[512];
  uint8_t *px = malloc((size_t)n);
  int rc = 0;
  for (long ln = 1; !rc && gzgets(f, line, (int)cap); ln++) {
    if (!strchr(line, '\n') && !gzeof(f)) {
      rc = cmd_data_fail("%s:%ld: line longer than an image of %lldx%lldx%lld and its label", o->in, ln,
                         (long long)s->channels, (long long)s->height, (long long)s->width);
      break;
    }
    char *p = line, *e;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\n' || *p == '\r' || !*p)
      continue;
    int64_t k = 0;
    long v = 0;
    for (;; k++) {
      errno = 0;
      v = strtol(p, &e, 10);
      if (e == p || errno) {
        rc = cmd_data_fail("%s:%ld: value %lld is not an integer", o->in, ln, (long long)k + 1);
        break;
      }
      if (k < n) {
        if (v < 0 || v > o->pixel_max) {
          rc = cmd_data_fail("%s:%ld: pixel %lld is %ld, outside 0..%ld (--pixel-max)", o->in, ln, (long long)k + 1, v,
                             o->pixel_max);
          break;
        }
        px[k] = scaled(v, o->pixel_max);
      }
      p = e;
      while (*p == ' ' || *p == '\t' || *p == '\r') p++;
      if (*p != ',')
        break;
      p++;
    }
    if (!rc && k + 1 != n + 1)
      rc = cmd_data_fail("%s:%ld: %lld values, but an image of %lldx%lldx%lld and its label are %lld "
                         "(wrong image size?)", o->in, ln, (long long)k + 1, (long long)s->channels,
                         (long long)s->height, (long long)s->width, (long long)n + 1);
    if (!rc && (v < 0 || (s->classes && v >= s->classes)))
      rc = cmd_data_fail("%s:%ld: label %ld is outside 0..%lld", o->in, ln, v,
                         (long long)(s->classes ? s->classes - 1 : 2147483647));
    if (!rc && gv_images_writer_add(w, px, (int32_t)v, err, sizeof err))
      rc = cmd_data_fail("%s", err);
  }
  gzclose(f);
  free(line);
  free(px);
  return rc;
}

/* ---- a folder of PGM/PPM images ---- */

static int pnm_int(FILE *f, long *v)
{
  int c;
  for (;;) { /* whitespace and comments */
    c = fgetc(f);
    if (c == '#')
      while (c != '\n' && c != EOF) c = fgetc(f);
    else if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
  }
  if (c < '0' || c > '9')
    return -1;
  for (*v = 0; c >= '0' && c <= '9'; c = fgetc(f)) *v = *v * 10 + (c - '0');
  return 0; /* the one whitespace after the number is consumed */
}

/* One binary P5/P6 image into px (channel-major); checks its size against the dataset's. */
static int read_pnm(const char *path, const struct img_opts *o, struct gv_images_info *s, uint8_t **px)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return cmd_data_fail("%s: %s", path, strerror(errno));
  char m[2] = {0};
  long w, h, max;
  int rc = 0;
  if (fread(m, 1, 2, f) != 2 || m[0] != 'P' || (m[1] != '5' && m[1] != '6') || pnm_int(f, &w) || pnm_int(f, &h) ||
      pnm_int(f, &max) || w <= 0 || h <= 0 || max <= 0 || max > 255)
    rc = cmd_data_fail("%s: not a binary PGM (P5) or PPM (P6) image of 8-bit pixels", path);
  long c = m[1] == '6' ? 3 : 1;
  if (!rc && !s->channels) {
    s->channels = c, s->height = h, s->width = w;
    *px = malloc((size_t)(c * h * w));
  } else if (!rc && (c != s->channels || h != s->height || w != s->width)) {
    rc = cmd_data_fail("%s: a %ldx%ldx%ld image (channels x height x width), but the dataset's are %lldx%lldx%lld",
                       path, c, h, w, (long long)s->channels, (long long)s->height, (long long)s->width);
  }
  uint8_t *raw = rc ? NULL : malloc((size_t)(c * h * w));
  if (!rc && fread(raw, 1, (size_t)(c * h * w), f) != (size_t)(c * h * w))
    rc = cmd_data_fail("%s: truncated: fewer than %ldx%ldx%ld pixels", path, c, h, w);
  for (long i = 0; !rc && i < h * w; i++) /* interleaved RGB -> channel-major */
    for (long k = 0; k < c; k++) (*px)[k * h * w + i] = scaled(raw[i * c + k], o->pixel_max == 255 ? max : o->pixel_max);
  free(raw);
  fclose(f);
  return rc;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sorted entries of a folder (malloc'd names), or -1 after a message. */
static int list_dir(const char *path, char ***names)
{
  DIR *d = opendir(path);
  if (!d) {
    cmd_data_fail("%s: %s", path, strerror(errno));
    return -1;
  }
  int n = 0, cap = 64;
  *names = malloc(sizeof(char *) * (size_t)cap);
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap)
      *names = realloc(*names, sizeof(char *) * (size_t)(cap *= 2));
    (*names)[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(*names, (size_t)n, sizeof(char *), by_name);
  return n;
}

static void free_names(char **names, int n)
{
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

static int from_folder(const struct img_opts *o, gv_images_writer **w, struct gv_images_info *s)
{
  char **classes, err[512];
  int nc = list_dir(o->in, &classes), rc = 0;
  if (nc < 0)
    return 1;
  uint8_t *px = NULL;
  for (int ci = 0; !rc && ci < nc; ci++) {
    char *e, dir[4096];
    long lab = strtol(classes[ci], &e, 10);
    snprintf(dir, sizeof dir, "%s/%s", o->in, classes[ci]);
    if (*e || lab < 0 || (s->classes && lab >= s->classes)) {
      rc = cmd_data_fail("%s: a class folder must be named by its label, 0..%lld", dir,
                         (long long)(s->classes ? s->classes - 1 : 2147483647));
      break;
    }
    char **files;
    int nf = list_dir(dir, &files);
    if (nf < 0)
      rc = 1;
    for (int fi = 0; !rc && fi < nf; fi++) {
      char path[8192];
      snprintf(path, sizeof path, "%s/%s", dir, files[fi]);
      int64_t had = s->channels;
      rc = read_pnm(path, o, s, &px);
      if (!rc && !had && !*w && gv_images_writer_open(o->out, s, w, err, sizeof err))
        rc = cmd_data_fail("%s", err);
      if (!rc && gv_images_writer_add(*w, px, (int32_t)lab, err, sizeof err))
        rc = cmd_data_fail("%s", err);
    }
    if (nf >= 0)
      free_names(files, nf);
  }
  if (!rc && !*w)
    rc = cmd_data_fail("%s: no images (expected subfolders 0, 1, ... of PGM/PPM files)", o->in);
  free(px);
  free_names(classes, nc);
  return rc;
}

int cmd_data_images(int argc, char **argv)
{
  struct img_opts o;
  int rc = img_args(argc, argv, &o);
  if (rc >= 0)
    return rc;
  struct stat st;
  if (stat(o.in, &st))
    return cmd_data_fail("%s: %s", o.in, strerror(errno));
  gv_images_writer *w = NULL;
  char err[512];
  struct gv_images_info s = o.shape;
  if (S_ISDIR(st.st_mode)) {
    struct gv_images_info want = s;
    s.channels = s.height = s.width = 0; /* from the first image; --shape checked after */
    rc = from_folder(&o, &w, &s);
    if (!rc && want.channels && (want.channels != s.channels || want.height != s.height || want.width != s.width))
      rc = cmd_data_fail("%s: the images are %lldx%lldx%lld, not --shape %lld,%lld,%lld", o.in, (long long)s.channels,
                         (long long)s.height, (long long)s.width, (long long)want.channels, (long long)want.height,
                         (long long)want.width);
  } else if (gv_images_writer_open(o.out, &s, &w, err, sizeof err)) {
    return cmd_data_fail("%s", err);
  } else {
    rc = from_csv(&o, w);
  }
  if (!rc && w) {
    s = (struct gv_images_info){0};
    if (gv_images_writer_close(&w, 1, err, sizeof err))
      return cmd_data_fail("%s", err);
    gv_images *d = NULL;
    if (gv_images_open(o.out, &d, err, sizeof err))
      return cmd_data_fail("%s", err);
    const struct gv_images_info *i = gv_images_info(d);
    if (!o.quiet)
      printf("%s: %lld image%s of %lldx%lldx%lld (channels x height x width), %lld classes\n", o.out,
             (long long)i->count, i->count == 1 ? "" : "s", (long long)i->channels, (long long)i->height, (long long)i->width,
             (long long)i->classes);
    gv_images_free(&d);
    return 0;
  }
  gv_images_writer_close(&w, 0, NULL, 0);
  return rc ? rc : 1;
}
