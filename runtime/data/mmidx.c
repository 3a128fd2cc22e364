/* mmidx.c - reader of Megatron indexed datasets (PREFIX.idx + PREFIX.bin, "MMIDIDX").
 * Both files are mmap'd read-only. Every header field and every array entry is checked
 * at open (counts against the file size, pointers against the .bin size, document
 * indices monotonic from 0 to S), so the accessors below never read out of bounds and
 * need no checks of their own. Arrays sit at unaligned offsets (34 + ...), hence memcpy. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_err.h"

#define IDX_MAGIC "MMIDIDX\x00\x00"
#define IDX_HEADER 34  /* magic 9, version 8, dtype 1, S 8, D 8 */

struct gv_mmidx {
  char *idx_path, *bin_path;
  const unsigned char *idx, *bin;
  size_t idx_size, bin_size;
  int dtype, itemsize;
  int64_t nseq, ndoc_idx;          /* S, D (= documents + 1) */
  const unsigned char *sizes;      /* i32[S] */
  const unsigned char *pointers;   /* i64[S] */
  const unsigned char *doc_idx;    /* i64[D] */
  int64_t ntokens;
};

/* ---- errors and dtypes ---- */

gv_data_status gv_data_fail(char *err, size_t errn, gv_data_status st, const char *fmt, ...)
{
  if (err && errn) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errn, fmt, ap);
    va_end(ap);
  }
  return st;
}

static const struct { const char *name; int size; } dtypes[] = {
  [GV_DATA_DTYPE_U8] = {"uint8", 1},   [GV_DATA_DTYPE_I8] = {"int8", 1},
  [GV_DATA_DTYPE_I16] = {"int16", 2},  [GV_DATA_DTYPE_I32] = {"int32", 4},
  [GV_DATA_DTYPE_I64] = {"int64", 8},  [GV_DATA_DTYPE_F64] = {"float64", 8},
  [GV_DATA_DTYPE_F32] = {"float32", 4}, [GV_DATA_DTYPE_U16] = {"uint16", 2},
};

const char *gv_data_dtype_name(int code)
{
  return code >= GV_DATA_DTYPE_U8 && code <= GV_DATA_DTYPE_U16 ? dtypes[code].name : NULL;
}

int gv_data_dtype_size(int code)
{
  return code >= GV_DATA_DTYPE_U8 && code <= GV_DATA_DTYPE_U16 ? dtypes[code].size : 0;
}

int gv_data_dtype_for_vocab(int64_t vocab)
{
  return vocab < 65500 ? GV_DATA_DTYPE_U16 : GV_DATA_DTYPE_I32;
}

static int64_t rd_i64(const unsigned char *p) { int64_t v; memcpy(&v, p, 8); return v; }
static int32_t rd_i32(const unsigned char *p) { int32_t v; memcpy(&v, p, 4); return v; }

/* One token of dtype at p, as int32 (the dtypes a token file may use). */
static int32_t load_token(const unsigned char *p, int dtype)
{
  switch (dtype) {
  case GV_DATA_DTYPE_U8: return p[0];
  case GV_DATA_DTYPE_I8: return (int8_t)p[0];
  case GV_DATA_DTYPE_I16: { int16_t v; memcpy(&v, p, 2); return v; }
  case GV_DATA_DTYPE_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
  case GV_DATA_DTYPE_I32: return rd_i32(p);
  default: return (int32_t)rd_i64(p);   /* int64: validated as integer dtype at open */
  }
}

/* ---- files ---- */

static gv_data_status map_file(const char *path, const unsigned char **data, size_t *size,
                               char *err, size_t errn)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  gv_data_status st = GV_DATA_OK;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    st = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: not a regular file", path);
    goto out_close;
  }
  *size = (size_t)sb.st_size;
  *data = NULL;
  if (*size > 0) {
    void *m = mmap(NULL, *size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
      st = gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: cannot mmap: %s", path, strerror(errno));
    else
      *data = m;
  }
out_close:
  close(fd);
  return st;
}

char *gv_data_path(const char *prefix, const char *ext)
{
  size_t n = strlen(prefix), m = strlen(ext);
  char *p = malloc(n + m + 1);
  if (p) {
    memcpy(p, prefix, n);
    memcpy(p + n, ext, m + 1);
  }
  return p;
}

/* ---- validation ---- */

static gv_data_status check_header(gv_mmidx *ix, char *err, size_t errn)
{
  const char *f = ix->idx_path;
  if (ix->idx_size < IDX_HEADER)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: truncated header: file has %zu bytes, the header needs %d",
                        f, ix->idx_size, IDX_HEADER);
  if (memcmp(ix->idx, IDX_MAGIC, 9))
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'magic' is not \"MMIDIDX\\0\\0\": not a Megatron indexed dataset", f);
  int64_t version = rd_i64(ix->idx + 9);
  if (version != 1)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'version' is %lld, expected 1", f, (long long)version);
  ix->dtype = ix->idx[17];
  ix->itemsize = gv_data_dtype_size(ix->dtype);
  if (!ix->itemsize)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'dtype' has unknown code %d (valid: 1..8)", f, ix->dtype);
  if (ix->dtype == GV_DATA_DTYPE_F32 || ix->dtype == GV_DATA_DTYPE_F64)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'dtype' is %s, not an integer token type", f,
                        gv_data_dtype_name(ix->dtype));
  ix->nseq = rd_i64(ix->idx + 18);
  ix->ndoc_idx = rd_i64(ix->idx + 26);
  uint64_t room = ix->idx_size - IDX_HEADER;
  if (ix->nseq < 0 || (uint64_t)ix->nseq > room / 12)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'sequence_count' is %lld, more than a file of %zu bytes holds",
                        f, (long long)ix->nseq, ix->idx_size);
  room -= 12 * (uint64_t)ix->nseq;
  if (ix->ndoc_idx < 1)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'document_count' is %lld, must be at least 1 (documents + 1)",
                        f, (long long)ix->ndoc_idx);
  if ((uint64_t)ix->ndoc_idx > room / 8)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: truncated: file has %zu bytes, but sequence_count %lld and document_count %lld need %llu",
                        f, ix->idx_size, (long long)ix->nseq, (long long)ix->ndoc_idx,
                        (unsigned long long)IDX_HEADER + 12ull * (uint64_t)ix->nseq + 8ull * (uint64_t)ix->ndoc_idx);
  room -= 8 * (uint64_t)ix->ndoc_idx;
  if (room != 0 && room != (uint64_t)ix->nseq)   /* the optional i8[S] sequence_modes */
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: file size %zu does not match sequence_count %lld and document_count %lld (expected %llu bytes)",
                        f, ix->idx_size, (long long)ix->nseq, (long long)ix->ndoc_idx,
                        (unsigned long long)(ix->idx_size - room));
  ix->sizes = ix->idx + IDX_HEADER;
  ix->pointers = ix->sizes + 4 * ix->nseq;
  ix->doc_idx = ix->pointers + 8 * ix->nseq;
  return GV_DATA_OK;
}

static gv_data_status check_sequences(gv_mmidx *ix, char *err, size_t errn)
{
  ix->ntokens = 0;
  for (int64_t i = 0; i < ix->nseq; i++) {
    int32_t len = rd_i32(ix->sizes + 4 * i);
    int64_t ptr = rd_i64(ix->pointers + 8 * i);
    if (len < 0)
      return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'sequence_lengths[%lld]' is negative (%d)",
                          ix->idx_path, (long long)i, len);
    if (ptr < 0 || (uint64_t)ptr > ix->bin_size ||
        (uint64_t)len * (uint64_t)ix->itemsize > ix->bin_size - (uint64_t)ptr)
      return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'sequence_pointers[%lld]' = %lld + %d tokens of %d bytes is beyond the end of %s (%zu bytes)",
                          ix->idx_path, (long long)i, (long long)ptr, len, ix->itemsize, ix->bin_path, ix->bin_size);
    ix->ntokens += len;
  }
  return GV_DATA_OK;
}

static gv_data_status check_documents(const gv_mmidx *ix, char *err, size_t errn)
{
  int64_t prev = 0;
  for (int64_t d = 0; d < ix->ndoc_idx; d++) {
    int64_t v = rd_i64(ix->doc_idx + 8 * d);
    if ((d == 0 && v != 0) || v < prev || v > ix->nseq)
      return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'document_indices[%lld]' is %lld: must rise monotonically from 0 to sequence_count %lld",
                          ix->idx_path, (long long)d, (long long)v, (long long)ix->nseq);
    prev = v;
  }
  if (prev != ix->nseq)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'document_indices' ends at %lld, expected sequence_count %lld",
                        ix->idx_path, (long long)prev, (long long)ix->nseq);
  return GV_DATA_OK;
}

/* ---- API ---- */

gv_data_status gv_mmidx_open(const char *prefix, gv_mmidx **out, char *err, size_t errn)
{
  *out = NULL;
  gv_mmidx *ix = calloc(1, sizeof *ix);
  if (!ix)
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", prefix);
  gv_data_status st = GV_DATA_OK;
  ix->idx_path = gv_data_path(prefix, ".idx");
  ix->bin_path = gv_data_path(prefix, ".bin");
  if (!ix->idx_path || !ix->bin_path) {
    st = gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "%s: out of memory", prefix);
    goto out_free;
  }
  GV_DATA_TRY(map_file(ix->idx_path, &ix->idx, &ix->idx_size, err, errn), st, out_free);
  GV_DATA_TRY(check_header(ix, err, errn), st, out_free);
  GV_DATA_TRY(map_file(ix->bin_path, &ix->bin, &ix->bin_size, err, errn), st, out_free);
  GV_DATA_TRY(check_sequences(ix, err, errn), st, out_free);
  GV_DATA_TRY(check_documents(ix, err, errn), st, out_free);
  *out = ix;
  return GV_DATA_OK;
out_free:
  gv_mmidx_free(&ix);
  return st;
}

void gv_mmidx_free(gv_mmidx **pix)
{
  gv_mmidx *ix = *pix;
  if (!ix)
    return;
  if (ix->idx)
    munmap((void *)ix->idx, ix->idx_size);
  if (ix->bin)
    munmap((void *)ix->bin, ix->bin_size);
  free(ix->idx_path);
  free(ix->bin_path);
  free(ix);
  *pix = NULL;
}

int64_t gv_mmidx_num_seqs(const gv_mmidx *ix) { return ix->nseq; }
int64_t gv_mmidx_num_docs(const gv_mmidx *ix) { return ix->ndoc_idx - 1; }
int64_t gv_mmidx_num_tokens(const gv_mmidx *ix) { return ix->ntokens; }
int gv_mmidx_dtype(const gv_mmidx *ix) { return ix->dtype; }
int32_t gv_mmidx_seq_len(const gv_mmidx *ix, int64_t seq) { return rd_i32(ix->sizes + 4 * seq); }

void gv_mmidx_doc_seqs(const gv_mmidx *ix, int64_t doc, int64_t *first, int64_t *end)
{
  *first = rd_i64(ix->doc_idx + 8 * doc);
  *end = rd_i64(ix->doc_idx + 8 * (doc + 1));
}

void gv_mmidx_read(const gv_mmidx *ix, int64_t seq, int64_t off, int64_t n, int32_t *out)
{
  const unsigned char *p = ix->bin + rd_i64(ix->pointers + 8 * seq) + off * ix->itemsize;
  for (int64_t i = 0; i < n; i++)
    out[i] = load_token(p + i * ix->itemsize, ix->dtype);
}

int32_t gv_mmidx_max_token(const gv_mmidx *ix, int64_t *seq_of_max, int32_t *min_token)
{
  int32_t hi = INT32_MIN, lo = INT32_MAX;
  *seq_of_max = -1;
  for (int64_t s = 0; s < ix->nseq; s++) {
    const unsigned char *p = ix->bin + rd_i64(ix->pointers + 8 * s);
    int64_t n = gv_mmidx_seq_len(ix, s);
    for (int64_t i = 0; i < n; i++) {
      int32_t t = load_token(p + i * ix->itemsize, ix->dtype);
      lo = t < lo ? t : lo;
      if (t > hi) {
        hi = t;
        *seq_of_max = s;
      }
    }
  }
  *min_token = lo;
  return hi;
}
