/* tensorfile.c - reading and atomically writing named-tensor files (tensorfile.h). */
#include "program/tensorfile.h"

#include <stdlib.h>
#include <string.h>

static size_t dtype_bytes(int dtype) { return dtype == GV_TF_F64 ? 8 : 4; }

static int fail(char *err, size_t n, const char *path, const char *what, long at)
{
  snprintf(err, n, "%s: %s (at byte %ld)", path, what, at);
  return -1;
}

static int read_record(FILE *f, struct gv_tf_record *r, const char *path, char *err, size_t n)
{
  int32_t len, dtype, ndim;
  long at = ftell(f);
  if (fread(&len, 4, 1, f) != 1 || len <= 0 || len > 4096)
    return fail(err, n, path, "bad record name length", at);
  r->name = calloc((size_t)len + 1, 1);
  if (fread(r->name, 1, (size_t)len, f) != (size_t)len)
    return fail(err, n, path, "truncated record name", at);
  if (fread(&dtype, 4, 1, f) != 1 || dtype < 0 || dtype > 2)
    return fail(err, n, path, "bad dtype of a record", at);
  if (fread(&ndim, 4, 1, f) != 1 || ndim < 0 || ndim > 8)
    return fail(err, n, path, "bad ndim of a record", at);
  r->dtype = dtype;
  r->ndim = ndim;
  r->numel = 1;
  for (int i = 0; i < ndim; i++) {
    int32_t d;
    if (fread(&d, 4, 1, f) != 1 || d < 0)
      return fail(err, n, path, "bad dims of a record", at);
    r->dims[i] = d;
    r->numel *= (size_t)d;
  }
  size_t bytes = r->numel * dtype_bytes(dtype);
  r->data = malloc(bytes ? bytes : 1);
  if (!r->data || fread(r->data, 1, bytes, f) != bytes)
    return fail(err, n, path, "truncated record data", at);
  return 0;
}

int gv_tf_read(struct gv_tf *tf, const char *path, char *err, size_t n)
{
  memset(tf, 0, sizeof *tf);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, n, "%s: cannot open", path);
    return -1;
  }
  int rc = -1;
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
  for (int i = 0; i < count; i++) {
    tf->count = i + 1;
    if (read_record(f, &tf->rec[i], path, err, n))
      goto out;
  }
  rc = 0;
out:
  fclose(f);
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

FILE *gv_tf_begin(const char *path, const int32_t header[64])
{
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (f && fwrite(header, 4, 64, f) != 64) {
    fclose(f);
    return NULL;
  }
  return f;
}

int gv_tf_put(FILE *f, const char *name, int dtype, int ndim, const int64_t *dims, const void *data)
{
  int32_t len = (int32_t)strlen(name), dt = dtype, nd = ndim;
  size_t numel = 1;
  int ok = fwrite(&len, 4, 1, f) == 1 && fwrite(name, 1, (size_t)len, f) == (size_t)len &&
           fwrite(&dt, 4, 1, f) == 1 && fwrite(&nd, 4, 1, f) == 1;
  for (int i = 0; ok && i < ndim; i++) {
    int32_t d = (int32_t)dims[i];
    numel *= (size_t)dims[i];
    ok = fwrite(&d, 4, 1, f) == 1;
  }
  size_t bytes = numel * dtype_bytes(dtype);
  return ok && fwrite(data, 1, bytes, f) == bytes ? 0 : -1;
}

int gv_tf_commit(FILE *f, const char *path, int count)
{
  int32_t c = count;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int ok = fseek(f, 13 * 4, SEEK_SET) == 0 && fwrite(&c, 4, 1, f) == 1 && fflush(f) == 0;
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return -1;
  }
  return 0;
}
