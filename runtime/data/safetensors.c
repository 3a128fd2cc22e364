/* safetensors.c - the safetensors reader and writer of gvrt_safetensors.h: the header
 * parsed and checked with cJSON, blocks of tensors read and written with pread/pwrite
 * and converted between F32, BF16 and F16 on the way (long reads with O_DIRECT, several
 * pieces at once); and the CRC-32 the checkpoints keep per tensor (zlib's crc32),
 * computed as the pieces of a long read come in. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "gvrt.h"
#include "gvrt_safetensors.h"

static const char *const dt_names[GV_ST_NDTYPES] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"};
static const size_t dt_sizes[GV_ST_NDTYPES] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};

const char *gv_st_dtype_name(enum gv_st_dtype t) { return (unsigned)t < GV_ST_NDTYPES ? dt_names[t] : "?"; }
size_t gv_st_dtype_size(enum gv_st_dtype t) { return (unsigned)t < GV_ST_NDTYPES ? dt_sizes[t] : 0; }

int gv_st_dtype_of(const char *name)
{
  for (int i = 0; i < GV_ST_NDTYPES; i++)
    if (!strcmp(name, dt_names[i]))
      return i;
  return -1;
}

int64_t gv_st_numel(const struct gv_st_tensor *t)
{
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++)
    n *= t->shape[d];
  return n;
}

int64_t gv_st_cols(const struct gv_st_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

static int fail(char *err, size_t n, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  if (err && n)
    vsnprintf(err, n, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- CRC-32: zlib's, with x86's carry-less multiply where the CPU has it ---- */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GV_CRC_CLMUL 1

/* The CRC-32 register (not inverted) continued over n bytes, n >= 64 and a multiple of 16:
 * four 128-bit lanes folded over 64-byte blocks with PCLMULQDQ, then one lane, reduced to
 * 32 bits (Barrett): "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ"
 * (Intel, 2009), with its constants for the bit-reflected polynomial 0x04C11DB7. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc32_clmul(uint32_t crc, const unsigned char *p, size_t n)
{
  const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4), k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
  const __m128i k5 = _mm_set_epi64x(0, 0x0163cd6124), poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
  const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);
  __m128i x[4];
  for (int i = 0; i < 4; i++)
    x[i] = _mm_loadu_si128((const __m128i *)(p + 16 * i));
  x[0] = _mm_xor_si128(x[0], _mm_cvtsi32_si128((int)crc));
  for (p += 64, n -= 64; n >= 64; p += 64, n -= 64)
    for (int i = 0; i < 4; i++)
      x[i] = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x[i], k1k2, 0x00), _mm_clmulepi64_si128(x[i], k1k2, 0x11)),
                           _mm_loadu_si128((const __m128i *)(p + 16 * i)));
  __m128i a = x[0];
  for (int i = 1; i < 4; i++)
    a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k3k4, 0x00), _mm_clmulepi64_si128(a, k3k4, 0x11)), x[i]);
  for (; n >= 16; p += 16, n -= 16)
    a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k3k4, 0x00), _mm_clmulepi64_si128(a, k3k4, 0x11)),
                      _mm_loadu_si128((const __m128i *)p));
  a = _mm_xor_si128(_mm_srli_si128(a, 8), _mm_clmulepi64_si128(a, k3k4, 0x10)); /* 128 -> 64 bits */
  a = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(a, low32), k5, 0x00), _mm_srli_si128(a, 4));
  __m128i b = _mm_and_si128(_mm_clmulepi64_si128(_mm_and_si128(a, low32), poly, 0x10), low32); /* Barrett */
  a = _mm_xor_si128(a, _mm_clmulepi64_si128(b, poly, 0x00));
  return (uint32_t)_mm_extract_epi32(a, 1);
}
#endif

uint32_t gv_st_crc32_update(uint32_t crc, const void *data, size_t n)
{
  const unsigned char *p = data;
#ifdef GV_CRC_CLMUL
  if (n >= 64 && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1")) {
    size_t k = n & ~(size_t)15;
    crc = ~crc32_clmul(~crc, p, k);
    p += k;
    n -= k;
  }
#endif
  for (size_t k; n; n -= k, p += k) { /* zlib takes 32-bit lengths */
    k = n < (1u << 30) ? n : (1u << 30);
    crc = (uint32_t)crc32(crc, p, (uInt)k);
  }
  return crc;
}

uint32_t gv_st_crc32_combine(uint32_t a, uint32_t b, int64_t len_b)
{
  return (uint32_t)crc32_combine64(a, b, (z_off64_t)len_b);
}

/* ---- conversion ---- */

static float f16_to_float(uint16_t h)
{
  uint32_t s = (uint32_t)(h & 0x8000) << 16, e = h >> 10 & 0x1f, m = h & 0x3ff, bits;
  if (e == 0x1f)
    bits = s | 0x7f800000u | m << 13;
  else if (e)
    bits = s | (e + 112) << 23 | m << 13;
  else if (!m)
    bits = s;
  else { /* subnormal: normalise */
    e = 113;
    while (!(m & 0x400)) {
      m <<= 1;
      e--;
    }
    bits = s | e << 23 | (m & 0x3ff) << 13;
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint16_t f16_from_float(float f)
{
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t s = x >> 16 & 0x8000, e = x >> 23 & 0xff, m = x & 0x7fffff;
  if (e == 0xff)
    return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
  int32_t ne = (int32_t)e - 112;
  if (ne >= 0x1f)
    return (uint16_t)(s | 0x7c00);
  if (ne <= 0) { /* subnormal or zero: shift the implicit bit in, round to nearest even */
    if (ne < -10)
      return (uint16_t)s;
    m |= 0x800000;
    int shift = 14 - ne;
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    r += rem > half || (rem == half && (r & 1));
    return (uint16_t)(s | r);
  }
  uint32_t r = (uint32_t)ne << 10 | m >> 13, rem = m & 0x1fff;
  r += rem > 0x1000 || (rem == 0x1000 && (r & 1)); /* a carry into the exponent is the right rounding */
  return (uint16_t)(s | r);
}

static int float_kind(enum gv_st_dtype t) { return t == GV_ST_F32 || t == GV_ST_BF16 || t == GV_ST_F16; }

static float load_f(enum gv_st_dtype t, const unsigned char *p, size_t i)
{
  uint16_t h;
  float f;
  if (t == GV_ST_F32) {
    memcpy(&f, p + 4 * i, 4);
    return f;
  }
  memcpy(&h, p + 2 * i, 2);
  return t == GV_ST_BF16 ? gv_bf16_to_float(h) : f16_to_float(h);
}

static void store_f(enum gv_st_dtype t, unsigned char *p, size_t i, float f)
{
  uint16_t h;
  if (t == GV_ST_F32) {
    memcpy(p + 4 * i, &f, 4);
    return;
  }
  h = t == GV_ST_BF16 ? gv_bf16_from_float(f) : f16_from_float(f);
  memcpy(p + 2 * i, &h, 2);
}

static void convert(enum gv_st_dtype from, const void *src, enum gv_st_dtype to, void *dst, size_t n)
{
  if (from == to) {
    memcpy(dst, src, n * gv_st_dtype_size(to));
    return;
  }
  for (size_t i = 0; i < n; i++)
    store_f(to, dst, i, load_f(from, src, i));
}

/* ---- the file ---- */

/* Long reads with O_DIRECT (see direct_read): the file opened again with it (-1 where the
 * file system refuses it), and the readers' aligned buffers, made on the first such read
 * and used by one read at a time (mu; a read from another thread meanwhile goes the
 * ordinary way). */
struct st_direct {
  int fd;
  unsigned char *bounce;
  pthread_mutex_t mu;
};

struct gv_st {
  char *path;
  int fd;
  struct st_direct dio;
  uint64_t data_at, data_bytes; /* the data's offset in the file (8 + header) and size */
  struct gv_st_tensor *ts;
  int n;
  cJSON *meta, *root;   /* names and metadata point into the header's JSON tree */
};

static int by_name(const void *a, const void *b)
{
  return strcmp(((const struct gv_st_tensor *)a)->name, ((const struct gv_st_tensor *)b)->name);
}

static int by_begin(const void *a, const void *b)
{
  const struct gv_st_tensor *x = *(const struct gv_st_tensor *const *)a, *y = *(const struct gv_st_tensor *const *)b;
  return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1 : x->end > y->end;
}

/* A JSON number that is an integer in [0, 2^53]. */
static int json_u64(const cJSON *v, uint64_t *out)
{
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
      v->valuedouble != (double)(uint64_t)v->valuedouble)
    return -1;
  *out = (uint64_t)v->valuedouble;
  return 0;
}

static int parse_tensor(gv_st *f, const cJSON *e, struct gv_st_tensor *t, char *err, size_t n)
{
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), *d;
  t->name = e->string;
  if (!cJSON_IsObject(e))
    return fail(err, n, "%s: tensor '%s': not a JSON object", f->path, t->name);
  int k = cJSON_IsString(dt) ? gv_st_dtype_of(dt->valuestring) : -1;
  if (k < 0)
    return fail(err, n, "%s: tensor '%s': field 'dtype' %s%s%s", f->path, t->name,
                cJSON_IsString(dt) ? "is the unknown dtype '" : "is missing or not a string",
                cJSON_IsString(dt) ? dt->valuestring : "", cJSON_IsString(dt) ? "'" : "");
  t->dtype = (enum gv_st_dtype)k;
  if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > GV_ST_MAX_DIMS)
    return fail(err, n, "%s: tensor '%s': field 'shape' is missing, not a list or has more than %d dimensions",
                f->path, t->name, GV_ST_MAX_DIMS);
  t->ndim = 0;
  double numel = 1;
  cJSON_ArrayForEach(d, shape) {
    uint64_t v;
    if (json_u64(d, &v))
      return fail(err, n, "%s: tensor '%s': field 'shape' has an entry that is not a non-negative integer", f->path,
                  t->name);
    t->shape[t->ndim++] = (int64_t)v;
    numel *= (double)v;
  }
  uint64_t b, en;
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || json_u64(cJSON_GetArrayItem(offs, 0), &b) ||
      json_u64(cJSON_GetArrayItem(offs, 1), &en) || b > en)
    return fail(err, n, "%s: tensor '%s': field 'data_offsets' is not [BEGIN, END] with 0 <= BEGIN <= END", f->path,
                t->name);
  t->begin = b;
  t->end = en;
  if (en > f->data_bytes)
    return fail(err, n, "%s: tensor '%s': field 'data_offsets' [%llu, %llu] runs past the end of the data (%llu "
                "bytes): the file is truncated or damaged", f->path, t->name, (unsigned long long)b,
                (unsigned long long)en, (unsigned long long)f->data_bytes);
  if (numel * (double)gv_st_dtype_size(t->dtype) != (double)(en - b))
    return fail(err, n, "%s: tensor '%s': field 'data_offsets' [%llu, %llu] holds %llu bytes, its shape and dtype "
                "%s need %.0f", f->path, t->name, (unsigned long long)b, (unsigned long long)en,
                (unsigned long long)(en - b), dt_names[k], numel * (double)gv_st_dtype_size(t->dtype));
  return 0;
}

/* The tensors tile the data exactly: no overlap, no byte outside every tensor. */
static int check_tiling(gv_st *f, char *err, size_t n)
{
  const struct gv_st_tensor **o = malloc(sizeof *o * (size_t)(f->n ? f->n : 1));
  if (!o)
    return fail(err, n, "%s: out of memory", f->path);
  for (int i = 0; i < f->n; i++)
    o[i] = &f->ts[i];
  qsort(o, (size_t)f->n, sizeof *o, by_begin);
  uint64_t at = 0;
  int rc = 0;
  for (int i = 0; i < f->n && !rc; i++) {
    if (o[i]->begin < at)
      rc = fail(err, n, "%s: tensors '%s' and '%s' overlap (data_offsets [%llu, %llu] and [%llu, %llu])", f->path,
                o[i - 1]->name, o[i]->name, (unsigned long long)o[i - 1]->begin, (unsigned long long)o[i - 1]->end,
                (unsigned long long)o[i]->begin, (unsigned long long)o[i]->end);
    else if (o[i]->begin > at)
      rc = fail(err, n, "%s: bytes [%llu, %llu) of the data belong to no tensor (before tensor '%s')", f->path,
                (unsigned long long)at, (unsigned long long)o[i]->begin, o[i]->name);
    at = o[i]->end > at ? o[i]->end : at;
  }
  if (!rc && at != f->data_bytes)
    rc = fail(err, n, "%s: bytes [%llu, %llu) of the data belong to no tensor (after the last one)", f->path,
              (unsigned long long)at, (unsigned long long)f->data_bytes);
  free(o);
  return rc;
}

static int check_meta(gv_st *f, char *err, size_t n)
{
  const cJSON *e;
  if (!f->meta)
    return 0;
  if (!cJSON_IsObject(f->meta))
    return fail(err, n, "%s: field '__metadata__' is not an object", f->path);
  cJSON_ArrayForEach(e, f->meta) if (!cJSON_IsString(e))
    return fail(err, n, "%s: field '__metadata__.%s' is not a string", f->path, e->string);
  return 0;
}

/* At least `want` of the n bytes at offset `at` (all n when want is n), read (write 0) or
 * written (write 1), retried on EINTR and short transfers; -1 with errno set (EIO for a file
 * that ends before `want`). */
static int transfer_min(int fd, void *buf, size_t n, size_t want, uint64_t at, int write)
{
  for (size_t done = 0; done < want;) {
    ssize_t k = write ? pwrite(fd, (const char *)buf + done, n - done, (off_t)(at + done))
                      : pread(fd, (char *)buf + done, n - done, (off_t)(at + done));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      if (!k)
        errno = EIO;
      return -1;
    }
    done += (size_t)k;
  }
  return 0;
}

/* n bytes at offset `at`, read (write 0) or written (write 1) whole (transfer_min). */
static int transfer_all(int fd, void *buf, size_t n, uint64_t at, int write)
{
  return transfer_min(fd, buf, n, n, at, write);
}

static int pread_all(int fd, void *buf, size_t n, uint64_t at) { return transfer_all(fd, buf, n, at, 0); }
static int pwrite_all(int fd, const void *buf, size_t n, uint64_t at) { return transfer_all(fd, (void *)buf, n, at, 1); }

static int parse_header(gv_st *f, cJSON *root, char *err, size_t n)
{
  const cJSON *e;
  if (!cJSON_IsObject(root))
    return fail(err, n, "%s: the header is not a JSON object (not a safetensors file, or damaged)", f->path);
  int count = 0;
  cJSON_ArrayForEach(e, root) count += strcmp(e->string, "__metadata__") != 0;
  f->ts = calloc((size_t)(count ? count : 1), sizeof *f->ts);
  if (!f->ts)
    return fail(err, n, "%s: out of memory", f->path);
  cJSON_ArrayForEach(e, root) {
    if (!strcmp(e->string, "__metadata__"))
      f->meta = (cJSON *)e;
    else if (parse_tensor(f, e, &f->ts[f->n++], err, n))
      return -1;
  }
  qsort(f->ts, (size_t)f->n, sizeof *f->ts, by_name);
  for (int i = 1; i < f->n; i++)
    if (!strcmp(f->ts[i - 1].name, f->ts[i].name))
      return fail(err, n, "%s: tensor '%s' appears twice in the header", f->path, f->ts[i].name);
  return check_meta(f, err, n) || check_tiling(f, err, n) ? -1 : 0;
}

int gv_st_open(gv_st **out, const char *path, char *err, size_t n)
{
  struct stat st;
  unsigned char len8[8];
  *out = NULL;
  gv_st *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path)))
    return free(f), fail(err, n, "%s: out of memory", path);
  f->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (f->fd >= 0) /* a larger readahead: the data is mostly read front to back */
    posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  f->dio.fd = f->fd >= 0 ? open(path, O_RDONLY | O_CLOEXEC | O_DIRECT) : -1;
  pthread_mutex_init(&f->dio.mu, NULL);
  int rc = -1;
  char *hdr = NULL;
  cJSON *root = NULL;
  if (f->fd < 0 || fstat(f->fd, &st))
    fail(err, n, "%s: cannot open (%s)", path, strerror(errno));
  else if (st.st_size < 8)
    fail(err, n, "%s: %lld bytes: too short for a safetensors header length", path, (long long)st.st_size);
  else if (pread_all(f->fd, len8, 8, 0))
    fail(err, n, "%s: cannot read (%s)", path, strerror(errno));
  else {
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
      hl = hl << 8 | len8[i];
    if (hl > (uint64_t)st.st_size - 8)
      fail(err, n, "%s: field 'header length' is %llu bytes, past the end of the file (%lld bytes): truncated or "
           "not a safetensors file", path, (unsigned long long)hl, (long long)st.st_size);
    else if (!(hdr = malloc(hl + 1)) || pread_all(f->fd, hdr, hl, 8))
      fail(err, n, "%s: cannot read the header (%s)", path, hdr ? strerror(errno) : "out of memory");
    else {
      f->data_at = 8 + hl;
      f->data_bytes = (uint64_t)st.st_size - f->data_at;
      root = cJSON_ParseWithLength(hdr, hl);
      rc = parse_header(f, root, err, n);
    }
  }
  free(hdr);
  f->root = root;
  if (rc) {
    gv_st_close(f);
    return -1;
  }
  *out = f;
  return 0;
}

void gv_st_close(gv_st *f)
{
  if (!f)
    return;
  if (f->fd >= 0)
    close(f->fd);
  if (f->dio.fd >= 0)
    close(f->dio.fd);
  free(f->dio.bounce);
  pthread_mutex_destroy(&f->dio.mu);
  cJSON_Delete(f->root);
  free(f->ts);
  free(f->path);
  free(f);
}

const char *gv_st_path(const gv_st *f) { return f->path; }
int gv_st_count(const gv_st *f) { return f->n; }
const struct gv_st_tensor *gv_st_at(const gv_st *f, int i) { return i >= 0 && i < f->n ? &f->ts[i] : NULL; }

const struct gv_st_tensor *gv_st_find(const gv_st *f, const char *name)
{
  struct gv_st_tensor key = {.name = name};
  return bsearch(&key, f->ts, (size_t)f->n, sizeof *f->ts, by_name);
}

const char *gv_st_meta(const gv_st *f, const char *key)
{
  const cJSON *v = f->meta ? cJSON_GetObjectItemCaseSensitive(f->meta, key) : NULL;
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- blocks: runs of consecutive elements of a tensor ---- */

/* Check a block part against the tensor and the conversion; 0 or -1 with the reason. */
static int check_part(const char *path, const struct gv_st_tensor *t, int64_t row0, int64_t rows, int64_t col0,
                      int64_t cols, int64_t first, int64_t count, enum gv_st_dtype other, char *err, size_t n)
{
  int64_t C = gv_st_cols(t), R = C ? gv_st_numel(t) / C : 0;
  if (row0 < 0 || rows < 0 || col0 < 0 || cols < 0 || row0 + rows > R || col0 + cols > C || first < 0 ||
      count < 0 || first + count > rows * cols)
    return fail(err, n, "%s: tensor '%s': block of %lld x %lld at (%lld, %lld), elements [%lld, %lld), is outside "
                "its %lld x %lld", path, t->name, (long long)rows, (long long)cols, (long long)row0, (long long)col0,
                (long long)first, (long long)(first + count), (long long)R, (long long)C);
  if (other != t->dtype && !(float_kind(other) && float_kind(t->dtype)))
    return fail(err, n, "%s: tensor '%s': dtype %s, cannot convert to or from %s", path, t->name,
                gv_st_dtype_name(t->dtype), gv_st_dtype_name(other));
  return 0;
}

enum { STAGE_ELEMS = 1 << 20, PIECE_BYTES = 2 << 20 };

/* The CRC-32 of a buffer computed on a thread of its own while the buffer is being read
 * into: the reader says how many bytes are in (ready, then stop), the thread checks up to
 * there and waits for more, so the reader never waits for it. */
struct crc_follow {
  pthread_mutex_t mu;
  pthread_cond_t more;
  const unsigned char *buf;
  size_t ready;
  int stop;
  uint32_t crc; /* the thread's own until it is joined */
};

static void *crc_follow_main(void *arg)
{
  struct crc_follow *cf = arg;
  size_t done = 0;
  pthread_mutex_lock(&cf->mu);
  for (;;) {
    while (done == cf->ready && !cf->stop)
      pthread_cond_wait(&cf->more, &cf->mu);
    size_t upto = cf->ready;
    if (done == upto)
      break;
    pthread_mutex_unlock(&cf->mu);
    cf->crc = gv_st_crc32_update(cf->crc, cf->buf + done, upto - done);
    done = upto;
    pthread_mutex_lock(&cf->mu);
  }
  pthread_mutex_unlock(&cf->mu);
  return NULL;
}

static void crc_follow_tell(struct crc_follow *cf, size_t ready, int stop)
{
  pthread_mutex_lock(&cf->mu);
  cf->ready = ready;
  cf->stop = stop;
  pthread_cond_signal(&cf->more);
  pthread_mutex_unlock(&cf->mu);
}

/* A long read with O_DIRECT, in pieces that DIRECT_READERS threads (the caller one of them)
 * read at once: more of the disk's work in flight than one reader and its readahead give,
 * and no page cache between the disk and the memory (no copy out of it, no pages to find
 * and reclaim beside a checkpoint larger than the free memory). O_DIRECT needs aligned file
 * offsets, lengths and buffers, and a tensor's bytes have neither, so each reader reads the
 * aligned window around its piece into a buffer of its own, computes the piece's CRC-32
 * there and copies the piece out; the pieces' CRC-32s are combined in order. */
enum { DIRECT_READERS = 4, DIRECT_ALIGN = 4096, DIRECT_MIN = 1 << 20, DIRECT_PIECE = 4 << 20 };
#define DIRECT_BOUNCE ((size_t)DIRECT_PIECE + 2 * DIRECT_ALIGN)

struct direct_job {
  const struct st_direct *dio;
  unsigned char *buf;
  size_t n, piece;
  uint64_t at;
  int pieces, want_crc;
  uint32_t *crcs;
  atomic_int next, failed, e;
};

struct direct_reader {
  struct direct_job *job;
  unsigned char *bounce;
};

/* Bytes [at, at + n) of the file through the aligned buffer b into dst; -1 with errno. */
static int direct_piece(int fd, unsigned char *b, unsigned char *dst, size_t n, uint64_t at, uint32_t *crc)
{
  uint64_t a0 = at / DIRECT_ALIGN * DIRECT_ALIGN, want = at + n - a0;
  size_t len = (size_t)((want + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN);
  if (transfer_min(fd, b, len, (size_t)want, a0, 0)) /* the last window may end past the end of the file */
    return -1;
  if (crc)
    *crc = gv_st_crc32_update(0, b + (at - a0), n);
  memcpy(dst, b + (at - a0), n);
  return 0;
}

static void *direct_main(void *arg)
{
  struct direct_reader *me = arg;
  struct direct_job *j = me->job;
  for (int k; !atomic_load(&j->failed) && (k = atomic_fetch_add(&j->next, 1)) < j->pieces;) {
    size_t off = (size_t)k * j->piece, m = j->n - off < j->piece ? j->n - off : j->piece;
    if (direct_piece(j->dio->fd, me->bounce, j->buf + off, m, j->at + off, j->want_crc ? &j->crcs[k] : NULL)) {
      atomic_store(&j->e, errno);
      atomic_store(&j->failed, 1);
    }
  }
  return NULL;
}

/* direct_read with the buffers to itself. */
static int direct_read_locked(struct st_direct *dio, unsigned char *buf, size_t n, uint64_t at, uint32_t *crc)
{
  if (!dio->bounce && posix_memalign((void **)&dio->bounce, DIRECT_ALIGN, DIRECT_READERS * DIRECT_BOUNCE)) {
    dio->bounce = NULL;
    return -1;
  }
  size_t piece = (n / DIRECT_READERS + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN; /* every reader busy */
  piece = piece < DIRECT_MIN / 2 ? DIRECT_MIN / 2 : piece > DIRECT_PIECE ? DIRECT_PIECE : piece;
  struct direct_job j = {.dio = dio, .buf = buf, .n = n, .piece = piece, .at = at, .want_crc = crc != NULL};
  j.pieces = (int)((n + piece - 1) / piece);
  if (crc && !(j.crcs = malloc(sizeof *j.crcs * (size_t)j.pieces)))
    return -1;
  atomic_init(&j.next, 0);
  atomic_init(&j.failed, 0);
  atomic_init(&j.e, 0);
  struct direct_reader rd[DIRECT_READERS];
  pthread_t th[DIRECT_READERS];
  int started = 0;
  for (int i = 0; i < DIRECT_READERS; i++)
    rd[i] = (struct direct_reader){&j, dio->bounce + (size_t)i * DIRECT_BOUNCE};
  while (started < DIRECT_READERS - 1 && started + 1 < j.pieces &&
         !pthread_create(&th[started], NULL, direct_main, &rd[started + 1]))
    started++;
  direct_main(&rd[0]);
  for (int i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  int rc = atomic_load(&j.failed) ? -1 : 0;
  if (!rc && crc)
    for (int k = 0; k < j.pieces; k++)
      *crc = gv_st_crc32_combine(*crc, j.crcs[k], (int64_t)(k + 1 < j.pieces ? piece : n - (size_t)k * piece));
  free(j.crcs);
  if (rc)
    errno = atomic_load(&j.e);
  return rc;
}

/* n bytes at `at` into buf as described above, *crc (NULL: none) continued over them; -1
 * (errno set, nothing of *crc changed) when O_DIRECT cannot read them: the caller then reads
 * them the ordinary way. */
static int direct_read(struct st_direct *dio, unsigned char *buf, size_t n, uint64_t at, uint32_t *crc)
{
  if (dio->fd < 0 || n < DIRECT_MIN || pthread_mutex_trylock(&dio->mu))
    return -1;
  int rc = direct_read_locked(dio, buf, n, at, crc);
  pthread_mutex_unlock(&dio->mu);
  return rc;
}

/* n bytes at offset `at` read whole into buf, the CRC-32 *crc (NULL: none) continued over
 * them: a long one with O_DIRECT where the file allows it (direct_read, dio: NULL for none),
 * else in pieces of PIECE_BYTES whose CRC-32 a second thread computes (crc_follow) while the
 * next pieces are read, so that checking costs next to no time beside the disk's (only the
 * last piece's check follows the read). -1 with errno set, as pread_all. */
static int pread_crc(int fd, struct st_direct *dio, unsigned char *buf, size_t n, uint64_t at, uint32_t *crc)
{
  if (dio && !direct_read(dio, buf, n, at, crc))
    return 0;
  struct crc_follow cf = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, buf, 0, 0, crc ? *crc : 0};
  pthread_t th;
  if (!crc || n <= PIECE_BYTES || pthread_create(&th, NULL, crc_follow_main, &cf)) { /* serially */
    int rc = pread_all(fd, buf, n, at);
    if (!rc && crc)
      *crc = gv_st_crc32_update(*crc, buf, n);
    return rc;
  }
  int rc = 0, e = 0;
  size_t off = 0;
  for (size_t k; off < n && !rc; off += k) {
    k = n - off < PIECE_BYTES ? n - off : PIECE_BYTES;
    if ((rc = pread_all(fd, buf + off, k, at + off)))
      e = errno;
    else
      crc_follow_tell(&cf, off + k, 0);
  }
  crc_follow_tell(&cf, cf.ready, 1);
  pthread_join(th, NULL);
  pthread_mutex_destroy(&cf.mu);
  pthread_cond_destroy(&cf.more);
  if (rc)
    errno = e;
  else
    *crc = cf.crc;
  return rc;
}

/* Moves elements [first, first + count) of a block between the file (fd, the tensor's bytes
 * at base; dio: for long reads, NULL for none) and mem (dtype md), one run of consecutive
 * file elements at a time, through a staging buffer when the dtypes differ; crc (reading,
 * unless NULL): continued over the bytes read, as stored. */
static int move_part(int fd, struct st_direct *dio, int writing, uint64_t base, const struct gv_st_tensor *t,
                     int64_t row0, int64_t col0, int64_t cols, int64_t first, int64_t count, enum gv_st_dtype md,
                     void *mem, uint32_t *crc)
{
  int64_t C = gv_st_cols(t);
  size_t fs = gv_st_dtype_size(t->dtype), ms = gv_st_dtype_size(md);
  unsigned char *stage = md == t->dtype ? NULL : malloc(fs * STAGE_ELEMS), *m = mem;
  if (md != t->dtype && !stage) {
    errno = ENOMEM;
    return -1;
  }
  int rc = 0;
  for (int64_t k = first; k < first + count && !rc;) {
    int64_t r = k / cols, c = k % cols, run = cols == C ? first + count - k : cols - c;
    if (run > first + count - k)
      run = first + count - k;
    if (stage && run > STAGE_ELEMS)
      run = STAGE_ELEMS;
    uint64_t at = base + fs * (uint64_t)((row0 + r) * C + col0 + c);
    unsigned char *mp = m + ms * (size_t)(k - first);
    if (writing && !stage)
      rc = pwrite_all(fd, mp, fs * (size_t)run, at);
    else if (writing) {
      convert(md, mp, t->dtype, stage, (size_t)run);
      rc = pwrite_all(fd, stage, fs * (size_t)run, at);
    } else if (!(rc = pread_crc(fd, dio, stage ? stage : mp, fs * (size_t)run, at, crc)) && stage)
      convert(t->dtype, stage, md, mp, (size_t)run);
    k += run;
  }
  free(stage);
  return rc;
}

int gv_st_read_part_crc(gv_st *f, const struct gv_st_tensor *t, int64_t row0, int64_t rows, int64_t col0,
                        int64_t cols, int64_t first, int64_t count, enum gv_st_dtype want, void *dst, uint32_t *crc,
                        char *err, size_t n)
{
  if (check_part(f->path, t, row0, rows, col0, cols, first, count, want, err, n))
    return -1;
  if (count && move_part(f->fd, &f->dio, 0, f->data_at + t->begin, t, row0, col0, cols, first, count, want, dst, crc))
    return fail(err, n, "%s: tensor '%s': cannot read (%s)", f->path, t->name, strerror(errno));
  return 0;
}

int gv_st_read_part(gv_st *f, const struct gv_st_tensor *t, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                    int64_t first, int64_t count, enum gv_st_dtype want, void *dst, char *err, size_t n)
{
  return gv_st_read_part_crc(f, t, row0, rows, col0, cols, first, count, want, dst, NULL, err, n);
}

int gv_st_read_block(gv_st *f, const struct gv_st_tensor *t, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                     enum gv_st_dtype want, void *dst, char *err, size_t n)
{
  return gv_st_read_part(f, t, row0, rows, col0, cols, 0, rows * cols, want, dst, err, n);
}

int gv_st_crc32(gv_st *f, const struct gv_st_tensor *t, uint32_t *crc, char *err, size_t n)
{
  size_t chunk = 8u << 20;
  unsigned char *buf = malloc(chunk);
  if (!buf)
    return fail(err, n, "%s: out of memory", f->path);
  uint32_t c = 0;
  int rc = 0;
  for (uint64_t at = t->begin; at < t->end && !rc; at += chunk) {
    size_t k = t->end - at < chunk ? (size_t)(t->end - at) : chunk;
    if (pread_all(f->fd, buf, k, f->data_at + at))
      rc = fail(err, n, "%s: tensor '%s': cannot read (%s)", f->path, t->name, strerror(errno));
    else
      c = gv_st_crc32_update(c, buf, k);
  }
  free(buf);
  *crc = c;
  return rc;
}

/* ---- writing ---- */

struct gv_st_writer {
  char *path;
  int fd;
  uint64_t data_at;
  struct gv_st_tensor *ts;
  int n;
};

uint64_t gv_st_layout(struct gv_st_tensor *ts, int n)
{
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    ts[i].begin = at;
    at += (uint64_t)gv_st_numel(&ts[i]) * gv_st_dtype_size(ts[i].dtype);
    ts[i].end = at;
  }
  return at;
}

/* The header JSON, padded with spaces to a multiple of 8 bytes (as the reference writer does). */
static char *header_json(const struct gv_st_tensor *ts, int n, const char *const *meta, int nmeta, size_t *len)
{
  cJSON *root = cJSON_CreateObject(), *m = nmeta ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
  for (int k = 0; k < nmeta; k++)
    cJSON_AddStringToObject(m, meta[2 * k], meta[2 * k + 1]);
  for (int i = 0; i < n; i++) {
    cJSON *e = cJSON_AddObjectToObject(root, ts[i].name), *shape = cJSON_AddArrayToObject(e, "shape");
    cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddStringToObject(e, "dtype", gv_st_dtype_name(ts[i].dtype));
    for (int d = 0; d < ts[i].ndim; d++)
      cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)ts[i].shape[d]));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)ts[i].begin));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)ts[i].end));
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!s)
    return NULL;
  size_t l = strlen(s), pad = (8 - l % 8) % 8;
  char *out = realloc(s, l + pad + 1);
  if (!out) {
    free(s);
    return NULL;
  }
  memset(out + l, ' ', pad);
  out[l + pad] = '\0';
  *len = l + pad;
  return out;
}

void gv_st_abort(gv_st_writer *w)
{
  if (!w)
    return;
  if (w->fd >= 0)
    close(w->fd);
  for (int i = 0; i < w->n; i++)
    free((char *)(uintptr_t)w->ts[i].name);
  free(w->ts);
  free(w->path);
  free(w);
}

gv_st_writer *gv_st_create(const char *path, const struct gv_st_tensor *ts, int n, const char *const *meta, int nmeta,
                           int make, char *err, size_t errn)
{
  gv_st_writer *w = calloc(1, sizeof *w);
  size_t hl = 0;
  char *hdr = NULL;
  if (!w || !(w->path = strdup(path)) || !(w->ts = calloc((size_t)(n ? n : 1), sizeof *ts))) {
    fail(err, errn, "%s: out of memory", path);
    goto bad;
  }
  w->fd = -1;
  for (int i = 0; i < n; i++) {
    w->ts[i] = ts[i];
    if (!(w->ts[i].name = strdup(ts[i].name))) {
      w->n = i;
      fail(err, errn, "%s: out of memory", path);
      goto bad;
    }
  }
  w->n = n;
  uint64_t bytes = gv_st_layout(w->ts, n);
  if (!(hdr = header_json(w->ts, n, meta, nmeta, &hl))) {
    fail(err, errn, "%s: out of memory", path);
    goto bad;
  }
  w->data_at = 8 + hl;
  w->fd = open(path, make ? O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC : O_WRONLY | O_CLOEXEC, 0644);
  unsigned char len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  if (w->fd < 0 || (make && (pwrite_all(w->fd, len8, 8, 0) || pwrite_all(w->fd, hdr, hl, 8) ||
                             ftruncate(w->fd, (off_t)(w->data_at + bytes))))) {
    fail(err, errn, "%s: cannot write (%s)", path, strerror(errno));
    goto bad;
  }
  free(hdr);
  return w;
bad:
  free(hdr);
  gv_st_abort(w);
  return NULL;
}

int gv_st_write_part(gv_st_writer *w, int i, int64_t row0, int64_t rows, int64_t col0, int64_t cols, int64_t first,
                     int64_t count, enum gv_st_dtype have, const void *src, char *err, size_t n)
{
  if (i < 0 || i >= w->n)
    return fail(err, n, "%s: no tensor %d", w->path, i);
  const struct gv_st_tensor *t = &w->ts[i];
  if (check_part(w->path, t, row0, rows, col0, cols, first, count, have, err, n))
    return -1;
  if (count && move_part(w->fd, NULL, 1, w->data_at + t->begin, t, row0, col0, cols, first, count, have,
                         (void *)(uintptr_t)src, NULL))
    return fail(err, n, "%s: tensor '%s': cannot write (%s)", w->path, t->name, strerror(errno));
  return 0;
}

int gv_st_finish(gv_st_writer *w, char *err, size_t errn)
{
  int rc = fsync(w->fd) ? -1 : 0, e = errno;
  if (close(w->fd) && !rc) {
    rc = -1;
    e = errno;
  }
  w->fd = -1;
  if (rc)
    fail(err, errn, "%s: cannot write (%s)", w->path, strerror(e));
  gv_st_abort(w);
  errno = e;
  return rc;
}
