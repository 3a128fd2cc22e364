/* gvrt_safetensors.h - safetensors files (the Hugging Face format): read and write named
 * tensors, and cut a row/column block out of one. Used by checkpoints (--save / --load,
 * runtime/program/checkpoint.c) and meant for importing and exporting Hugging Face
 * weights.
 *
 * The format: an 8-byte little-endian header length N, N bytes of JSON
 *   {"NAME": {"dtype": "F32", "shape": [R, C], "data_offsets": [BEGIN, END]}, ...,
 *    "__metadata__": {"key": "string value", ...}}
 * (padded with spaces), then the data: each tensor's bytes, row-major, little-endian, at
 * [BEGIN, END) counted from the end of the header. gv_st_open checks everything a reader
 * relies on and refuses a bad file with a message naming the file and the tensor or field:
 * a header length past the end of the file, a header that is not a JSON object, an unknown
 * dtype, a shape that is not a list of non-negative integers, data_offsets out of range or
 * not the size the shape and dtype need, overlapping tensors, bytes of the data no tensor
 * covers, a duplicate name, metadata that is not string to string.
 *
 * Reading (every function returns 0, or -1 with a one-line message in err):
 *   gv_st *f; char err[512];
 *   if (gv_st_open(&f, "model.safetensors", err, sizeof err)) { puts(err); ... }
 *   for (int i = 0; i < gv_st_count(f); i++) { const struct gv_st_tensor *t = gv_st_at(f, i); ... }
 *   const struct gv_st_tensor *w = gv_st_find(f, "wte.weight");
 *   gv_st_read_block(f, w, row0, rows, col0, cols, GV_ST_F32, buf, err, sizeof err);
 *   gv_st_close(f);
 * A tensor is addressed as a matrix: rows = the product of all dimensions but the last,
 * cols = the last (a 1-D tensor is one row, a scalar 1 x 1). Values are converted to the
 * dtype asked for: F32, BF16 and F16 to any of the three (to BF16/F16 rounded to nearest
 * even), any other dtype only to itself. Reads use pread on the open file: the library
 * never maps or loads the whole file.
 *
 * Writing: the tensors' names, dtypes and shapes (in the order given; gv_st_layout fills
 * their data_offsets) define the header, so several processes can write one file
 * together: one calls gv_st_create with make = 1 (header written, file sized), the others
 * with make = 0 after it (same tensors, same metadata: same layout), each writes its
 * parts with gv_st_write_part (pwrite), and gv_st_finish syncs and closes. */
#ifndef GVRT_SAFETENSORS_H
#define GVRT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifndef GV_API
#if defined(__GNUC__)
#define GV_API __attribute__((visibility("default")))
#else
#define GV_API
#endif
#endif

enum gv_st_dtype {
  GV_ST_F32, GV_ST_F16, GV_ST_BF16, GV_ST_F64, GV_ST_I64, GV_ST_I32, GV_ST_I16, GV_ST_I8, GV_ST_U8, GV_ST_BOOL,
  GV_ST_NDTYPES
};
#define GV_ST_MAX_DIMS 8

struct gv_st_tensor {
  const char *name;
  enum gv_st_dtype dtype;
  int ndim;
  int64_t shape[GV_ST_MAX_DIMS];
  uint64_t begin, end; /* data_offsets: bytes from the start of the data */
};

typedef struct gv_st gv_st;

/* "F32", "BF16", ...; the size of one element in bytes; a name's dtype (-1 if unknown). */
GV_API const char *gv_st_dtype_name(enum gv_st_dtype t);
GV_API size_t gv_st_dtype_size(enum gv_st_dtype t);
GV_API int gv_st_dtype_of(const char *name);
/* Elements of a tensor, and its matrix view (header comment). */
GV_API int64_t gv_st_numel(const struct gv_st_tensor *t);
GV_API int64_t gv_st_cols(const struct gv_st_tensor *t);

/* ---- reading ---- */
GV_API int gv_st_open(gv_st **out, const char *path, char *err, size_t errn);
GV_API void gv_st_close(gv_st *f);
GV_API const char *gv_st_path(const gv_st *f);
/* The tensors, sorted by name; NULL when i is out of range or name absent. */
GV_API int gv_st_count(const gv_st *f);
GV_API const struct gv_st_tensor *gv_st_at(const gv_st *f, int i);
GV_API const struct gv_st_tensor *gv_st_find(const gv_st *f, const char *name);
/* A "__metadata__" value (NULL when absent). */
GV_API const char *gv_st_meta(const gv_st *f, const char *key);
/* Rows [row0, row0 + rows) x columns [col0, col0 + cols) of t into dst (row-major, rows x
 * cols elements of dtype want). */
GV_API int gv_st_read_block(gv_st *f, const struct gv_st_tensor *t, int64_t row0, int64_t rows, int64_t col0,
                            int64_t cols, enum gv_st_dtype want, void *dst, char *err, size_t errn);
/* Elements [first, first + count) (row-major order) of that block: a flat part of a block,
 * as a ZeRO shard of a tensor-parallel block holds. */
GV_API int gv_st_read_part(gv_st *f, const struct gv_st_tensor *t, int64_t row0, int64_t rows, int64_t col0,
                           int64_t cols, int64_t first, int64_t count, enum gv_st_dtype want, void *dst, char *err,
                           size_t errn);
/* The same, continuing *crc over the bytes read as stored (in file order; the CRC-32 of
 * that range of the tensor when the part is contiguous in the file). */
GV_API int gv_st_read_part_crc(gv_st *f, const struct gv_st_tensor *t, int64_t row0, int64_t rows, int64_t col0,
                               int64_t cols, int64_t first, int64_t count, enum gv_st_dtype want, void *dst,
                               uint32_t *crc, char *err, size_t errn);
/* CRC-32 (zlib's polynomial) of n bytes, continuing from crc (0 to start); of t's bytes as stored. */
GV_API uint32_t gv_st_crc32_update(uint32_t crc, const void *data, size_t n);
GV_API int gv_st_crc32(gv_st *f, const struct gv_st_tensor *t, uint32_t *crc, char *err, size_t errn);
/* The CRC-32 of bytes A then B from CRC a of A, CRC b of B and B's length (zlib's combine). */
GV_API uint32_t gv_st_crc32_combine(uint32_t a, uint32_t b, int64_t len_b);

/* ---- writing ---- */
typedef struct gv_st_writer gv_st_writer;
/* Fills ts[i].begin/end: the tensors back to back in the order given; returns the data's bytes. */
GV_API uint64_t gv_st_layout(struct gv_st_tensor *ts, int n);
/* meta: nmeta key/value pairs (meta[2k], meta[2k + 1]) for "__metadata__". make 1: create
 * (truncate) the file, write the header and size it; make 0: open the file another
 * process made with the same arguments. ts is copied (its begin/end filled as gv_st_layout). */
GV_API gv_st_writer *gv_st_create(const char *path, const struct gv_st_tensor *ts, int n, const char *const *meta,
                                  int nmeta, int make, char *err, size_t errn);
/* Elements [first, first + count) of the block rows x cols at (row0, col0) of tensor i, from
 * src of dtype have (converted as reads convert). */
GV_API int gv_st_write_part(gv_st_writer *w, int i, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                            int64_t first, int64_t count, enum gv_st_dtype have, const void *src, char *err,
                            size_t errn);
/* fsync and close: 0, or -1 with "PATH: cannot write (why)" in err (errno kept); abort
 * closes without syncing. */
GV_API int gv_st_finish(gv_st_writer *w, char *err, size_t errn);
GV_API void gv_st_abort(gv_st_writer *w);

#endif
