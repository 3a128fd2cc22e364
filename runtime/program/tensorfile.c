/* tensorfile.c - reading and atomically writing named-tensor files (tensorfile.h), with a
 * CRC-32 per record. */
#include "program/tensorfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gvrt_safetensors.h"

static size_t dtype_bytes(int dtype) { return dtype == GV_TF_F64 ? 8 : 4; }

uint32_t gv_tf_crc32(uint32_t crc, const void *data, size_t n) { return gv_st_crc32_update(crc, data, n); }

static int fail(char *err, size_t n, const char *path, const char *what, long at)
{
  snprintf(err, n, "%s: %s (at byte %ld)", path, what, at);
  return -1;
}

/* fread of n bytes that also adds them to *crc. */
static int rd(FILE *f, void *buf, size_t n, uint32_t *crc)
{
  if (fread(buf, 1, n, f) != n)
    return -1;
  *crc = gv_tf_crc32(*crc, buf, n);
  return 0;
}

static int read_record(FILE *f, struct gv_tf_record *r, uint32_t *crc, const char *path, char *err, size_t n)
{
  int32_t len, dtype, ndim;
  long at = ftell(f);
  *crc = 0;
  if (rd(f, &len, 4, crc) || len <= 0 || len > 4096)
    return fail(err, n, path, "bad record name length", at);
  r->name = calloc((size_t)len + 1, 1);
  if (!r->name || rd(f, r->name, (size_t)len, crc))
    return fail(err, n, path, "truncated record name", at);
  if (rd(f, &dtype, 4, crc) || dtype < 0 || dtype > 2)
    return fail(err, n, path, "bad dtype of a record", at);
  if (rd(f, &ndim, 4, crc) || ndim < 0 || ndim > 8)
    return fail(err, n, path, "bad ndim of a record", at);
  r->dtype = dtype;
  r->ndim = ndim;
  r->numel = 1;
  for (int i = 0; i < ndim; i++) {
    int32_t d;
    if (rd(f, &d, 4, crc) || d < 0)
      return fail(err, n, path, "bad dims of a record", at);
    r->dims[i] = d;
    r->numel *= (size_t)d;
  }
  size_t bytes = r->numel * dtype_bytes(dtype);
  r->data = malloc(bytes ? bytes : 1);
  if (!r->data || rd(f, r->data, bytes, crc))
    return fail(err, n, path, "truncated record data", at);
  return 0;
}

/* The trailing checksum record, if the file has one: every earlier record's CRC must match. */
static int check_crcs(struct gv_tf *tf, const uint32_t *crc, const char *path, char *err, size_t n)
{
  const struct gv_tf_record *c = &tf->rec[tf->count - 1];
  if (strcmp(c->name, GV_TF_CRC_RECORD))
    return 0;
  if (c->dtype != GV_TF_I32 || c->numel != (size_t)(tf->count - 1)) {
    snprintf(err, n, "%s: record '%s' holds %zu values for %d records: the file is damaged", path, c->name, c->numel,
             tf->count - 1);
    return -1;
  }
  const uint32_t *want = c->data;
  for (int i = 0; i < tf->count - 1; i++)
    if (want[i] != crc[i]) {
      snprintf(err, n, "%s: record '%s' is damaged: its CRC-32 is %08x, the file recorded %08x when it was written",
               path, tf->rec[i].name, crc[i], want[i]);
      return -1;
    }
  free(c->name);
  free(c->data);
  tf->count--;
  return 0;
}

int gv_tf_read(struct gv_tf *tf, const char *path, char *err, size_t n)
{
  memset(tf, 0, sizeof *tf);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, n, "%s: cannot open (%s)", path, strerror(errno));
    return -1;
  }
  int rc = -1;
  uint32_t *crc = NULL;
  if (fread(tf->header, 4, 64, f) != 64) {
    fail(err, n, path, "truncated header", 0);
    goto out;
  }
  if (tf->header[0] != GV_TF_MAGIC_FIXTURE && tf->header[0] != GV_TF_MAGIC_CKPT) {
    fail(err, n, path, "bad magic (not a gvc checkpoint or fixture)", 0);
    goto out;
  }
  if (tf->header[1] != 1) {
    fail(err, n, path, "unsupported version", 4);
    goto out;
  }
  int count = tf->header[13];
  if (count < 0 || count > 1000000) {
    fail(err, n, path, "bad record count", 52);
    goto out;
  }
  tf->rec = calloc((size_t)(count ? count : 1), sizeof *tf->rec);
  crc = calloc((size_t)(count ? count : 1), sizeof *crc);
  if (!tf->rec || !crc) {
    fail(err, n, path, "out of host memory", 0);
    goto out;
  }
  for (int i = 0; i < count; i++) {
    tf->count = i + 1;
    if (read_record(f, &tf->rec[i], &crc[i], path, err, n))
      goto out;
  }
  rc = count ? check_crcs(tf, crc, path, err, n) : 0;
out:
  fclose(f);
  free(crc);
  if (rc)
    gv_tf_free(tf);
  return rc;
}

void gv_tf_free(struct gv_tf *tf)
{
  for (int i = 0; i < tf->count; i++) {
    free(tf->rec[i].name);
    free(tf->rec[i].data);
  }
  free(tf->rec);
  memset(tf, 0, sizeof *tf);
}

const struct gv_tf_record *gv_tf_find(const struct gv_tf *tf, const char *name)
{
  for (int i = 0; i < tf->count; i++)
    if (!strcmp(tf->rec[i].name, name))
      return &tf->rec[i];
  return NULL;
}

struct gv_tf_writer {
  FILE *f;
  char tmp[4096];
  uint32_t *crc;
  int count, cap;
};

/* "PATH: cannot write (why)" into err, from errno (e, or ENOMEM when 0); returns -1. */
static int write_failed(const char *path, int e, char *err, size_t errn)
{
  if (err && errn)
    snprintf(err, errn, "%s: cannot write (%s)", path, strerror(e ? e : ENOMEM));
  return -1;
}

struct gv_tf_writer *gv_tf_begin(const char *path, const int32_t header[64], char *err, size_t errn)
{
  struct gv_tf_writer *w = calloc(1, sizeof *w);
  if (!w) {
    write_failed(path, ENOMEM, err, errn);
    return NULL;
  }
  snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path);
  w->f = fopen(w->tmp, "wb");
  if (!w->f)
    w->tmp[0] = '\0'; /* not ours to remove (a folder of that name, say) */
  if (!w->f || fwrite(header, 4, 64, w->f) != 64) {
    int e = errno;
    gv_tf_abort(w);
    write_failed(path, e, err, errn);
    return NULL;
  }
  return w;
}

/* The path a writer commits to (its temporary name without ".tmp"). */
static void final_path(const struct gv_tf_writer *w, char *path, size_t n)
{
  snprintf(path, n, "%.*s", (int)(strlen(w->tmp) - 4), w->tmp);
}

/* fwrite of n bytes that also adds them to *crc. */
static int wr(FILE *f, const void *buf, size_t n, uint32_t *crc)
{
  *crc = gv_tf_crc32(*crc, buf, n);
  return fwrite(buf, 1, n, f) == n ? 0 : -1;
}

static int put_raw(struct gv_tf_writer *w, const char *name, int dtype, int ndim, const int64_t *dims,
                   const void *data, uint32_t *crc)
{
  int32_t len = (int32_t)strlen(name), dt = dtype, nd = ndim;
  size_t numel = 1;
  *crc = 0;
  int ok = !wr(w->f, &len, 4, crc) && !wr(w->f, name, (size_t)len, crc) && !wr(w->f, &dt, 4, crc) &&
           !wr(w->f, &nd, 4, crc);
  for (int i = 0; ok && i < ndim; i++) {
    int32_t d = (int32_t)dims[i];
    numel *= (size_t)dims[i];
    ok = !wr(w->f, &d, 4, crc);
  }
  return ok && !wr(w->f, data, numel * dtype_bytes(dtype), crc) ? 0 : -1;
}

int gv_tf_put(struct gv_tf_writer *w, const char *name, int dtype, int ndim, const int64_t *dims, const void *data,
              char *err, size_t errn)
{
  char path[4096];
  final_path(w, path, sizeof path);
  if (w->count == w->cap) {
    int cap = w->cap ? 2 * w->cap : 64;
    uint32_t *c = realloc(w->crc, sizeof *c * (size_t)cap);
    if (!c)
      return write_failed(path, ENOMEM, err, errn);
    w->crc = c;
    w->cap = cap;
  }
  if (put_raw(w, name, dtype, ndim, dims, data, &w->crc[w->count++]))
    return write_failed(path, errno, err, errn);
  return 0;
}

int gv_tf_finish(struct gv_tf_writer *w, char *err, size_t errn)
{
  char path[4096];
  final_path(w, path, sizeof path);
  uint32_t unused;
  int64_t n = w->count;
  int32_t c = w->count + 1;
  int ok = !put_raw(w, GV_TF_CRC_RECORD, GV_TF_I32, 1, &n, w->crc ? (const void *)w->crc : "", &unused) &&
           fseek(w->f, 13 * 4, SEEK_SET) == 0 && fwrite(&c, 4, 1, w->f) == 1 && fflush(w->f) == 0;
  int e = errno;
  ok = fclose(w->f) == 0 && ok;
  e = ok ? 0 : e ? e : errno;
  w->f = NULL;
  if (!ok) {
    gv_tf_abort(w);
    return write_failed(path, e, err, errn);
  }
  free(w->crc);
  free(w);
  return 0;
}

int gv_tf_rename(const char *path, char *err, size_t errn)
{
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (rename(tmp, path) == 0)
    return 0;
  int e = errno;
  unlink(tmp);
  return write_failed(path, e, err, errn);
}

int gv_tf_commit(struct gv_tf_writer *w, char *err, size_t errn)
{
  char path[4096];
  final_path(w, path, sizeof path);
  return gv_tf_finish(w, err, errn) ? -1 : gv_tf_rename(path, err, errn);
}

void gv_tf_abort(struct gv_tf_writer *w)
{
  if (!w)
    return;
  if (w->f)
    fclose(w->f);
  if (w->tmp[0])
    unlink(w->tmp);
  free(w->crc);
  free(w);
}
