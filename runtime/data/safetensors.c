/* safetensors.c - the safetensors reader and writer of safetensors.h. The reader keeps
 * the file open and the parsed table of tensors; data is read on demand with pread, so a
 * large file is never held in memory whole. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_err.h"
#include "data/safetensors.h"
#include "gvrt.h"

static const struct { const char *name; size_t size; } DTYPES[GV_ST_NDTYPES] = {
  [GV_ST_F32] = {"F32", 4}, [GV_ST_F16] = {"F16", 2}, [GV_ST_BF16] = {"BF16", 2}, [GV_ST_F64] = {"F64", 8},
  [GV_ST_I64] = {"I64", 8}, [GV_ST_I32] = {"I32", 4}, [GV_ST_I16] = {"I16", 2},  [GV_ST_I8] = {"I8", 1},
  [GV_ST_U8] = {"U8", 1},   [GV_ST_BOOL] = {"BOOL", 1},
};
/* Headers larger than this are refused (the format's own reader caps it at 100 MB). */
#define GV_ST_MAX_HEADER (100u << 20)

struct gv_st_file {
  char *path;
  int fd;
  uint64_t data_start, data_len;
  int count;
  struct gv_st_tensor *t;
  char **meta_keys, **meta_vals;
  int nmeta;
};

const char *gv_st_dtype_name(int dtype) { return dtype >= 0 && dtype < GV_ST_NDTYPES ? DTYPES[dtype].name : "?"; }
size_t gv_st_dtype_size(int dtype) { return dtype >= 0 && dtype < GV_ST_NDTYPES ? DTYPES[dtype].size : 0; }

size_t gv_st_numel(const struct gv_st_tensor *t)
{
  size_t n = 1;
  for (int d = 0; d < t->ndim; d++)
    n *= (size_t)t->shape[d];
  return n;
}

float gv_st_half_to_f32(uint16_t h)
{
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man) { /* subnormal: normalise */
    int e = -1;
    do {
      e++;
      man <<= 1;
    } while (!(man & 0x400));
    bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
  } else {
    bits = sign;
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* ---- reader ---- */

static int dtype_of(const char *s)
{
  for (int d = 0; d < GV_ST_NDTYPES; d++)
    if (!strcmp(s, DTYPES[d].name))
      return d;
  return -1;
}

static int read_all(int fd, void *buf, size_t n, uint64_t off)
{
  char *p = buf;
  while (n) {
    ssize_t k = pread(fd, p, n, (off_t)off);
    if (k <= 0)
      return -1;
    p += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 0;
}

static gv_data_status parse_metadata(gv_st_file *f, const cJSON *m, struct gv_data_err *err)
{
  const cJSON *e;
  int n = cJSON_GetArraySize(m);
  f->meta_keys = calloc((size_t)n + 1, sizeof(char *));
  f->meta_vals = calloc((size_t)n + 1, sizeof(char *));
  if (!f->meta_keys || !f->meta_vals)
    return gv_data_fail(err, GV_DATA_ERR_NOMEM, "%s: out of memory", f->path);
  cJSON_ArrayForEach(e, m) {
    if (!cJSON_IsString(e))
      return gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: __metadata__ entry '%s' is not a string", f->path, e->string);
    f->meta_keys[f->nmeta] = strdup(e->string);
    f->meta_vals[f->nmeta++] = strdup(e->valuestring);
  }
  return GV_DATA_OK;
}

static gv_data_status parse_tensor(gv_st_file *f, const cJSON *e, struct gv_st_tensor *t, struct gv_data_err *err)
{
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), *d;
  t->name = strdup(e->string);
  if (!t->name)
    return gv_data_fail(err, GV_DATA_ERR_NOMEM, "%s: out of memory", f->path);
  if (!cJSON_IsString(dt))
    return gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: tensor '%s': field 'dtype' is missing", f->path, t->name);
  if ((t->dtype = dtype_of(dt->valuestring)) < 0)
    return gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", f->path, t->name,
                        dt->valuestring);
  if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > GV_ST_MAX_DIMS)
    return gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: tensor '%s': field 'shape' is not a list of at most %d sizes",
                        f->path, t->name, GV_ST_MAX_DIMS);
  double numel = 1;
  cJSON_ArrayForEach(d, sh) {
    if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble != (double)(int64_t)d->valuedouble)
      return gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: tensor '%s': field 'shape' holds a size that is not a "
                          "non-negative integer", f->path, t->name);
    t->shape[t->ndim++] = (int64_t)d->valuedouble;
    numel *= d->valuedouble;
  }
  if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !cJSON_IsNumber(off->child) ||
      !cJSON_IsNumber(off->child->next) || off->child->valuedouble < 0 ||
      off->child->next->valuedouble < off->child->valuedouble)
    return gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: tensor '%s': field 'data_offsets' is not [begin, end] with "
                        "0 <= begin <= end", f->path, t->name);
  t->begin = (uint64_t)off->child->valuedouble;
  t->end = (uint64_t)off->child->next->valuedouble;
  if (t->end > f->data_len)
    return gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of "
                        "the data (%llu bytes)", f->path, t->name, (unsigned long long)t->begin,
                        (unsigned long long)t->end, (unsigned long long)f->data_len);
  if ((double)(t->end - t->begin) != numel * (double)DTYPES[t->dtype].size)
    return gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: tensor '%s': data_offsets hold %llu bytes, its shape and "
                        "dtype %s need %.0f", f->path, t->name, (unsigned long long)(t->end - t->begin),
                        DTYPES[t->dtype].name, numel * (double)DTYPES[t->dtype].size);
  return GV_DATA_OK;
}

static int by_begin(const void *a, const void *b)
{
  const struct gv_st_tensor *x = *(struct gv_st_tensor *const *)a, *y = *(struct gv_st_tensor *const *)b;
  return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1 : x->end > y->end;
}

static gv_data_status check_overlaps(gv_st_file *f, struct gv_data_err *err)
{
  if (f->count < 2)
    return GV_DATA_OK;
  struct gv_st_tensor **s = malloc(sizeof *s * (size_t)f->count);
  if (!s)
    return gv_data_fail(err, GV_DATA_ERR_NOMEM, "%s: out of memory", f->path);
  for (int i = 0; i < f->count; i++)
    s[i] = &f->t[i];
  qsort(s, (size_t)f->count, sizeof *s, by_begin);
  gv_data_status st = GV_DATA_OK;
  for (int i = 1; i < f->count && !st; i++)
    if (s[i]->begin < s[i - 1]->end && s[i]->end > s[i]->begin)
      st = gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: tensor '%s' (bytes %llu..%llu) overlaps tensor '%s' (bytes "
                        "%llu..%llu)", f->path, s[i]->name, (unsigned long long)s[i]->begin,
                        (unsigned long long)s[i]->end, s[i - 1]->name, (unsigned long long)s[i - 1]->begin,
                        (unsigned long long)s[i - 1]->end);
  free(s);
  return st;
}

static gv_data_status parse_header(gv_st_file *f, const char *text, size_t len, struct gv_data_err *err)
{
  cJSON *root = cJSON_ParseWithLength(text, len), *e;
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: the header is not a JSON object", f->path);
  }
  gv_data_status st = GV_DATA_OK;
  f->t = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof *f->t);
  if (!f->t)
    st = gv_data_fail(err, GV_DATA_ERR_NOMEM, "%s: out of memory", f->path);
  cJSON_ArrayForEach(e, root) {
    if (st)
      break;
    if (!strcmp(e->string, "__metadata__"))
      st = cJSON_IsObject(e) ? parse_metadata(f, e, err)
                             : gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: __metadata__ is not an object", f->path);
    else if (!cJSON_IsObject(e))
      st = gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: tensor '%s' is not an object", f->path, e->string);
    else
      st = parse_tensor(f, e, &f->t[f->count++], err);
  }
  cJSON_Delete(root);
  return st ? st : check_overlaps(f, err);
}

gv_data_status gv_st_open(const char *path, gv_st_file **out, struct gv_data_err *err)
{
  *out = NULL;
  gv_st_file *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    return gv_data_fail(err, GV_DATA_ERR_NOMEM, "%s: out of memory", path);
  }
  struct stat sb;
  unsigned char len8[8];
  char *text = NULL;
  gv_data_status st = GV_DATA_OK;
  f->fd = open(path, O_RDONLY);
  if (f->fd < 0 || fstat(f->fd, &sb)) {
    st = gv_data_fail(err, GV_DATA_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    goto done;
  }
  uint64_t size = (uint64_t)sb.st_size, hlen = 0;
  if (size < 8 || read_all(f->fd, len8, 8, 0)) {
    st = gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: %llu bytes, too short for a safetensors header length", path,
                      (unsigned long long)size);
    goto done;
  }
  for (int i = 7; i >= 0; i--)
    hlen = hlen << 8 | len8[i];
  if (hlen > size - 8 || hlen > GV_ST_MAX_HEADER) {
    st = gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%llu bytes)",
                      path, (unsigned long long)hlen, (unsigned long long)size);
    goto done;
  }
  f->data_start = 8 + hlen;
  f->data_len = size - f->data_start;
  if (!(text = malloc(hlen + 1))) {
    st = gv_data_fail(err, GV_DATA_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path,
                      (unsigned long long)hlen);
    goto done;
  }
  if (read_all(f->fd, text, hlen, 8)) {
    st = gv_data_fail(err, GV_DATA_ERR_IO, "%s: cannot read the header (%s)", path, strerror(errno));
    goto done;
  }
  text[hlen] = 0;
  st = parse_header(f, text, hlen, err);
done:
  free(text);
  if (st)
    gv_st_close(&f);
  *out = f;
  return st;
}

void gv_st_close(gv_st_file **pf)
{
  gv_st_file *f = *pf;
  if (!f)
    return;
  if (f->fd >= 0)
    close(f->fd);
  for (int i = 0; i < f->count; i++)
    free((char *)f->t[i].name);
  for (int i = 0; i < f->nmeta; i++) {
    free(f->meta_keys[i]);
    free(f->meta_vals[i]);
  }
  free(f->meta_keys);
  free(f->meta_vals);
  free(f->t);
  free(f->path);
  free(f);
  *pf = NULL;
}

const char *gv_st_path(const gv_st_file *f) { return f->path; }
int gv_st_count(const gv_st_file *f) { return f->count; }
const struct gv_st_tensor *gv_st_at(const gv_st_file *f, int i) { return i >= 0 && i < f->count ? &f->t[i] : NULL; }

const struct gv_st_tensor *gv_st_find(const gv_st_file *f, const char *name)
{
  for (int i = 0; i < f->count; i++)
    if (!strcmp(f->t[i].name, name))
      return &f->t[i];
  return NULL;
}

const char *gv_st_metadata(const gv_st_file *f, const char *key)
{
  for (int i = 0; i < f->nmeta; i++)
    if (!strcmp(f->meta_keys[i], key))
      return f->meta_vals[i];
  return NULL;
}

static float element_f32(int dtype, const unsigned char *p)
{
  uint16_t h;
  float x;
  double d;
  switch (dtype) {
  case GV_ST_F16: memcpy(&h, p, 2); return gv_st_half_to_f32(h);
  case GV_ST_BF16: memcpy(&h, p, 2); return gv_bf16_to_float(h);
  case GV_ST_F64: memcpy(&d, p, 8); return (float)d;
  default: memcpy(&x, p, 4); return x;
  }
}

gv_data_status gv_st_read_f32(gv_st_file *f, const struct gv_st_tensor *t, size_t first, size_t n, float *out,
                              struct gv_data_err *err)
{
  if (t->dtype != GV_ST_F32 && t->dtype != GV_ST_F16 && t->dtype != GV_ST_BF16 && t->dtype != GV_ST_F64)
    return gv_data_fail(err, GV_DATA_ERR_FORMAT, "%s: tensor '%s' has dtype %s, not a floating-point type", f->path,
                        t->name, DTYPES[t->dtype].name);
  if (first > gv_st_numel(t) || n > gv_st_numel(t) - first)
    return gv_data_fail(err, GV_DATA_ERR_ARG, "%s: tensor '%s': elements %zu..%zu are outside its %zu", f->path,
                        t->name, first, first + n, gv_st_numel(t));
  size_t es = DTYPES[t->dtype].size, chunk = 1 << 16;
  unsigned char *buf = t->dtype == GV_ST_F32 ? NULL : malloc(chunk * es);
  if (t->dtype != GV_ST_F32 && !buf)
    return gv_data_fail(err, GV_DATA_ERR_NOMEM, "%s: out of memory", f->path);
  uint64_t off = f->data_start + t->begin + first * es;
  for (size_t done = 0; done < n;) {
    size_t k = buf ? (n - done < chunk ? n - done : chunk) : n;
    if (read_all(f->fd, buf ? (void *)buf : (void *)(out + done), k * es, off + done * es)) {
      free(buf);
      return gv_data_fail(err, GV_DATA_ERR_IO, "%s: tensor '%s': cannot read its data (%s)", f->path, t->name,
                          errno ? strerror(errno) : "end of file");
    }
    for (size_t i = 0; buf && i < k; i++)
      out[done + i] = element_f32(t->dtype, buf + i * es);
    done += k;
  }
  free(buf);
  return GV_DATA_OK;
}

/* ---- writer ---- */

struct gv_st_writer {
  int count, cap;
  struct gv_st_tensor *t;
  const void **data;
  cJSON *meta;
};

gv_data_status gv_st_writer_new(gv_st_writer **out, struct gv_data_err *err)
{
  *out = calloc(1, sizeof **out);
  if (!*out || !((*out)->meta = cJSON_CreateObject())) {
    free(*out);
    *out = NULL;
    return gv_data_fail(err, GV_DATA_ERR_NOMEM, "safetensors writer: out of memory");
  }
  return GV_DATA_OK;
}

gv_data_status gv_st_writer_add(gv_st_writer *w, const char *name, int dtype, int ndim, const int64_t *shape,
                                const void *data, struct gv_data_err *err)
{
  if (dtype < 0 || dtype >= GV_ST_NDTYPES || ndim < 0 || ndim > GV_ST_MAX_DIMS || !strcmp(name, "__metadata__"))
    return gv_data_fail(err, GV_DATA_ERR_ARG, "safetensors writer: tensor '%s': bad dtype, rank or name", name);
  for (int i = 0; i < w->count; i++)
    if (!strcmp(w->t[i].name, name))
      return gv_data_fail(err, GV_DATA_ERR_ARG, "safetensors writer: tensor '%s' added twice", name);
  if (w->count == w->cap) {
    int cap = w->cap ? 2 * w->cap : 64;
    struct gv_st_tensor *t = realloc(w->t, sizeof *t * (size_t)cap);
    if (t)
      w->t = t;
    const void **d = realloc(w->data, sizeof *d * (size_t)cap);
    if (d)
      w->data = d;
    if (!t || !d)
      return gv_data_fail(err, GV_DATA_ERR_NOMEM, "safetensors writer: out of memory");
    w->cap = cap;
  }
  struct gv_st_tensor *t = &w->t[w->count];
  memset(t, 0, sizeof *t);
  if (!(t->name = strdup(name)))
    return gv_data_fail(err, GV_DATA_ERR_NOMEM, "safetensors writer: out of memory");
  t->dtype = dtype;
  t->ndim = ndim;
  memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
  t->begin = w->count ? w->t[w->count - 1].end : 0;
  t->end = t->begin + gv_st_numel(t) * DTYPES[dtype].size;
  w->data[w->count++] = data;
  return GV_DATA_OK;
}

gv_data_status gv_st_writer_metadata(gv_st_writer *w, const char *key, const char *value, struct gv_data_err *err)
{
  cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
  if (!cJSON_AddStringToObject(w->meta, key, value))
    return gv_data_fail(err, GV_DATA_ERR_NOMEM, "safetensors writer: out of memory");
  return GV_DATA_OK;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes (as the reference writer). */
static char *header_text(const gv_st_writer *w, size_t *len)
{
  cJSON *root = cJSON_CreateObject();
  if (!root)
    return NULL;
  if (cJSON_GetArraySize(w->meta))
    cJSON_AddItemReferenceToObject(root, "__metadata__", w->meta);
  for (int i = 0; i < w->count; i++) {
    const struct gv_st_tensor *t = &w->t[i];
    cJSON *e = cJSON_AddObjectToObject(root, t->name), *sh, *off;
    if (!e || !cJSON_AddStringToObject(e, "dtype", DTYPES[t->dtype].name) ||
        !(sh = cJSON_AddArrayToObject(e, "shape")) || !(off = cJSON_AddArrayToObject(e, "data_offsets"))) {
      cJSON_Delete(root);
      return NULL;
    }
    for (int d = 0; d < t->ndim; d++)
      cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)t->begin));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)t->end));
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!s)
    return NULL;
  size_t n = strlen(s), padded = (n + 7) / 8 * 8;
  char *p = realloc(s, padded + 1);
  if (!p) {
    free(s);
    return NULL;
  }
  memset(p + n, ' ', padded - n);
  p[padded] = 0;
  *len = padded;
  return p;
}

gv_data_status gv_st_writer_write(gv_st_writer *w, const char *path, struct gv_data_err *err)
{
  size_t hlen = 0;
  char *text = header_text(w, &hlen), *tmp = gv_data_path(path, ".tmp");
  if (!text || !tmp) {
    free(text);
    free(tmp);
    return gv_data_fail(err, GV_DATA_ERR_NOMEM, "%s: out of memory", path);
  }
  FILE *f = fopen(tmp, "wb");
  int ok = f != NULL;
  unsigned char len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  ok = ok && fwrite(len8, 1, 8, f) == 8 && fwrite(text, 1, hlen, f) == hlen;
  for (int i = 0; ok && i < w->count; i++) {
    size_t n = (size_t)(w->t[i].end - w->t[i].begin);
    ok = fwrite(w->data[i], 1, n, f) == n;
  }
  int e = errno;
  if (f && fclose(f))
    ok = 0, e = errno;
  if (ok && rename(tmp, path))
    ok = 0, e = errno;
  if (!ok)
    remove(tmp);
  free(text);
  free(tmp);
  return ok ? GV_DATA_OK : gv_data_fail(err, GV_DATA_ERR_IO, "%s: cannot write (%s)", path, strerror(e));
}

void gv_st_writer_free(gv_st_writer **pw)
{
  gv_st_writer *w = *pw;
  if (!w)
    return;
  for (int i = 0; i < w->count; i++)
    free((char *)w->t[i].name);
  free(w->t);
  free(w->data);
  cJSON_Delete(w->meta);
  free(w);
  *pw = NULL;
}
