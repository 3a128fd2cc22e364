/* mmidx_writer.c - writer of Megatron indexed datasets, byte for byte what Megatron's
 * IndexedDatasetBuilder/_IndexWriter produce (docs/data.md). Tokens stream to
 * PREFIX.bin.tmp; sizes, pointers and document indices stay in memory and go to
 * PREFIX.idx.tmp at close. Both are renamed into place only after every write has
 * succeeded, the .idx last, so an existing dataset is replaced atomically. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/data_err.h"

struct i64_vec { int64_t *v; int64_t n, cap; };

struct gv_mmidx_writer {
  char *paths[4];            /* bin, idx, bin.tmp, idx.tmp */
  FILE *bin;
  int dtype, itemsize;
  struct i64_vec sizes, pointers, docs;
  int64_t bin_bytes, ntokens;
  unsigned char *buf;        /* one sequence converted to dtype */
  int64_t buf_cap;
};

enum { P_BIN, P_IDX, P_BIN_TMP, P_IDX_TMP };

static int vec_push(struct i64_vec *a, int64_t x)
{
  if (a->n == a->cap) {
    int64_t cap = a->cap ? 2 * a->cap : 1024;
    int64_t *v = realloc(a->v, (size_t)cap * sizeof *v);
    if (!v)
      return -1;
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = x;
  return 0;
}

static void writer_free(gv_mmidx_writer *w)
{
  if (w->bin)
    fclose(w->bin);
  for (int i = 0; i < 4; i++)
    free(w->paths[i]);
  free(w->sizes.v);
  free(w->pointers.v);
  free(w->docs.v);
  free(w->buf);
  free(w);
}

gv_data_status gv_mmidx_writer_open(const char *prefix, int dtype, gv_mmidx_writer **out,
                                    char *err, size_t errn)
{
  *out = NULL;
  if (dtype == GV_DATA_DTYPE_F32 || dtype == GV_DATA_DTYPE_F64 || !gv_data_dtype_size(dtype))
    return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "%s: dtype code %d is not an integer token type", prefix, dtype);
  gv_mmidx_writer *w = calloc(1, sizeof *w);
  if (!w)
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", prefix);
  static const char *ext[4] = {".bin", ".idx", ".bin.tmp", ".idx.tmp"};
  gv_data_status st = GV_DATA_OK;
  for (int i = 0; i < 4; i++)
    if (!(w->paths[i] = gv_data_path(prefix, ext[i]))) {
      st = gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", prefix);
      goto out_free;
    }
  w->dtype = dtype;
  w->itemsize = gv_data_dtype_size(dtype);
  if (vec_push(&w->docs, 0)) {
    st = gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", prefix);
    goto out_free;
  }
  w->bin = fopen(w->paths[P_BIN_TMP], "wb");
  if (!w->bin) {
    st = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: cannot create: %s", w->paths[P_BIN_TMP], strerror(errno));
    goto out_free;
  }
  *out = w;
  return GV_DATA_OK;
out_free:
  writer_free(w);
  return st;
}

/* The inclusive range of values dtype holds (int64 is clamped to int32 tokens). */
static void dtype_range(int dtype, int64_t *lo, int64_t *hi)
{
  switch (dtype) {
  case GV_DATA_DTYPE_U8: *lo = 0; *hi = 255; break;
  case GV_DATA_DTYPE_I8: *lo = -128; *hi = 127; break;
  case GV_DATA_DTYPE_I16: *lo = -32768; *hi = 32767; break;
  case GV_DATA_DTYPE_U16: *lo = 0; *hi = 65535; break;
  default: *lo = INT32_MIN; *hi = INT32_MAX; break;
  }
}

/* Stores token t as dtype at p (little-endian host). */
static void store_token(unsigned char *p, int dtype, int32_t t)
{
  switch (dtype) {
  case GV_DATA_DTYPE_U8: case GV_DATA_DTYPE_I8: p[0] = (unsigned char)t; break;
  case GV_DATA_DTYPE_I16: case GV_DATA_DTYPE_U16: { uint16_t v = (uint16_t)t; memcpy(p, &v, 2); break; }
  case GV_DATA_DTYPE_I32: memcpy(p, &t, 4); break;
  default: { int64_t v = t; memcpy(p, &v, 8); break; }
  }
}

gv_data_status gv_mmidx_writer_add(gv_mmidx_writer *w, const int32_t *tokens, int64_t n,
                                   char *err, size_t errn)
{
  if (n < 0 || n > INT32_MAX)
    return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "%s: sequence of %lld tokens does not fit field 'sequence_lengths' (int32)",
                        w->paths[P_IDX], (long long)n);
  if (n * w->itemsize > w->buf_cap) {
    unsigned char *b = realloc(w->buf, (size_t)(n * w->itemsize));
    if (!b)
      return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", w->paths[P_BIN]);
    w->buf = b;
    w->buf_cap = n * w->itemsize;
  }
  int64_t lo, hi;
  dtype_range(w->dtype, &lo, &hi);
  for (int64_t i = 0; i < n; i++) {
    if (tokens[i] < lo || tokens[i] > hi)
      return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "%s: token %d does not fit dtype %s",
                          w->paths[P_BIN], tokens[i], gv_data_dtype_name(w->dtype));
    store_token(w->buf + i * w->itemsize, w->dtype, tokens[i]);
  }
  if (n && fwrite(w->buf, (size_t)w->itemsize, (size_t)n, w->bin) != (size_t)n)
    return gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: write failed: %s", w->paths[P_BIN_TMP], strerror(errno));
  if (vec_push(&w->sizes, n) || vec_push(&w->pointers, w->bin_bytes))
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", w->paths[P_IDX]);
  w->bin_bytes += n * w->itemsize;
  w->ntokens += n;
  return GV_DATA_OK;
}

void gv_mmidx_writer_end_doc(gv_mmidx_writer *w)
{
  if (vec_push(&w->docs, w->sizes.n))
    w->docs.n = -1;   /* reported as out of memory at close */
}

int64_t gv_mmidx_writer_tokens(const gv_mmidx_writer *w) { return w->ntokens; }
int64_t gv_mmidx_writer_docs(const gv_mmidx_writer *w) { return w->docs.n - 1; }

/* ---- close ---- */

static int put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

static int write_index(const gv_mmidx_writer *w, FILE *f)
{
  uint64_t version = 1, s = (uint64_t)w->sizes.n, d = (uint64_t)w->docs.n;
  unsigned char code = (unsigned char)w->dtype;
  int rc = put(f, "MMIDIDX\x00\x00", 9) | put(f, &version, 8) | put(f, &code, 1) |
           put(f, &s, 8) | put(f, &d, 8);
  for (int64_t i = 0; i < w->sizes.n && !rc; i++) {
    int32_t len = (int32_t)w->sizes.v[i];
    rc = put(f, &len, 4);
  }
  if (!rc && w->pointers.n)
    rc = put(f, w->pointers.v, (size_t)w->pointers.n * 8);
  if (!rc)
    rc = put(f, w->docs.v, (size_t)w->docs.n * 8);
  return rc;
}

/* fflush + fsync + fclose; -1 if any fails. */
static int finish_file(FILE *f)
{
  int rc = fflush(f) | fsync(fileno(f));
  return fclose(f) | rc;
}

gv_data_status gv_mmidx_writer_close(gv_mmidx_writer **pw, char *err, size_t errn)
{
  gv_mmidx_writer *w = *pw;
  gv_data_status st = GV_DATA_OK;
  if (w->docs.n < 0) {
    st = gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", w->paths[P_IDX]);
    goto out_abort;
  }
  if (w->docs.v[w->docs.n - 1] != w->sizes.n)   /* sequences after the last end_doc */
    gv_mmidx_writer_end_doc(w);
  FILE *bin = w->bin;
  w->bin = NULL;
  if (finish_file(bin)) {
    st = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: write failed: %s", w->paths[P_BIN_TMP], strerror(errno));
    goto out_abort;
  }
  FILE *idx = fopen(w->paths[P_IDX_TMP], "wb");
  if (!idx) {
    st = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: cannot create: %s", w->paths[P_IDX_TMP], strerror(errno));
    goto out_abort;
  }
  if ((write_index(w, idx) | finish_file(idx)) != 0) {
    st = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: write failed: %s", w->paths[P_IDX_TMP], strerror(errno));
    goto out_abort;
  }
  if (rename(w->paths[P_BIN_TMP], w->paths[P_BIN]) || rename(w->paths[P_IDX_TMP], w->paths[P_IDX])) {
    st = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: cannot rename into place: %s", w->paths[P_IDX], strerror(errno));
    goto out_abort;
  }
  writer_free(w);
  *pw = NULL;
  return GV_DATA_OK;
out_abort:
  gv_mmidx_writer_abort(pw);
  return st;
}

void gv_mmidx_writer_abort(gv_mmidx_writer **pw)
{
  gv_mmidx_writer *w = *pw;
  if (!w)
    return;
  if (w->bin) {
    fclose(w->bin);
    w->bin = NULL;
  }
  remove(w->paths[P_BIN_TMP]);
  remove(w->paths[P_IDX_TMP]);
  writer_free(w);
  *pw = NULL;
}
