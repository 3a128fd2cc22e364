/* safetensors.h - reading and writing safetensors files (Hugging Face's format): an
 * 8-byte little-endian header length N, N bytes of JSON {"NAME": {"dtype": "F32",
 * "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}, then
 * the data (offsets relative to its start, row-major, little endian).
 *
 * gv_st_open checks the whole header before anything is read: the header length within
 * the file, a known dtype, offsets inside the data and agreeing with the shape, no two
 * tensors overlapping; every failure is a gv_data_err message naming the file and the
 * tensor. gv_st_read_f32 reads a run of elements converting F32, F16, BF16 (and F64) to
 * f32. The writer keeps the caller's pointers until gv_st_writer_write, which writes
 * PATH.tmp and renames it into place. Used by `gvc convert` and by training binaries'
 * --init_from. */
#ifndef GV_SAFETENSORS_H
#define GV_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "gvrt_data.h"

enum gv_st_dtype { GV_ST_F32, GV_ST_F16, GV_ST_BF16, GV_ST_F64, GV_ST_I64, GV_ST_I32, GV_ST_I16, GV_ST_I8,
                   GV_ST_U8, GV_ST_BOOL, GV_ST_NDTYPES };
enum { GV_ST_MAX_DIMS = 8 };

struct gv_st_tensor {
  const char *name;
  int dtype, ndim;
  int64_t shape[GV_ST_MAX_DIMS];
  uint64_t begin, end; /* byte offsets in the data section */
};

typedef struct gv_st_file gv_st_file;

const char *gv_st_dtype_name(int dtype);   /* "F32", ... */
size_t gv_st_dtype_size(int dtype);
size_t gv_st_numel(const struct gv_st_tensor *t);

gv_data_status gv_st_open(const char *path, gv_st_file **out, struct gv_data_err *err);
void gv_st_close(gv_st_file **f);
const char *gv_st_path(const gv_st_file *f);
int gv_st_count(const gv_st_file *f);                                  /* tensors, in file order */
const struct gv_st_tensor *gv_st_at(const gv_st_file *f, int i);
const struct gv_st_tensor *gv_st_find(const gv_st_file *f, const char *name);
const char *gv_st_metadata(const gv_st_file *f, const char *key);      /* NULL when absent */
/* Elements [first, first + n) of t, converted to f32 (F32, F16, BF16, F64). */
gv_data_status gv_st_read_f32(gv_st_file *f, const struct gv_st_tensor *t, size_t first, size_t n, float *out,
                              struct gv_data_err *err);

typedef struct gv_st_writer gv_st_writer;
gv_data_status gv_st_writer_new(gv_st_writer **out, struct gv_data_err *err);
/* data (numel * dtype size bytes) must stay valid until gv_st_writer_write. */
gv_data_status gv_st_writer_add(gv_st_writer *w, const char *name, int dtype, int ndim, const int64_t *shape,
                                const void *data, struct gv_data_err *err);
gv_data_status gv_st_writer_metadata(gv_st_writer *w, const char *key, const char *value, struct gv_data_err *err);
gv_data_status gv_st_writer_write(gv_st_writer *w, const char *path, struct gv_data_err *err);
void gv_st_writer_free(gv_st_writer **w);

/* IEEE half -> f32, exact (subnormals, infinities and NaN included). */
float gv_st_half_to_f32(uint16_t h);

#endif
