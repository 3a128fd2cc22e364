/* tensorfile.h - named-tensor files: checkpoints (magic "GVCK") and the reference
 * fixtures of tests/reference ("GVRF") share one layout, so a fixture's weights can
 * initialise a program and a checkpoint can be compared with a fixture.
 *
 * Layout (little endian): int32 header[64] ([0] magic, [1] version 1, [13] record count;
 * checkpoints: [2] step, [3..4] the seed as two uint32), then records: int32 name_len,
 * name bytes, int32 dtype (0 f32, 1 f64, 2 i32), int32 ndim, int32 dims[ndim], data. */
#ifndef GV_TENSORFILE_H
#define GV_TENSORFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { GV_TF_F32 = 0, GV_TF_F64 = 1, GV_TF_I32 = 2 };
#define GV_TF_MAGIC_FIXTURE 0x46525647 /* "GVRF" */
#define GV_TF_MAGIC_CKPT 0x4b435647    /* "GVCK" */

struct gv_tf_record { char *name; int dtype, ndim; int64_t dims[8]; size_t numel; void *data; };
struct gv_tf { int32_t header[64]; int count, cap; struct gv_tf_record *rec; };

/* Reads a whole file; on failure returns -1 with a message naming the file and field. */
int gv_tf_read(struct gv_tf *tf, const char *path, char *err, size_t err_len);
void gv_tf_free(struct gv_tf *tf);
const struct gv_tf_record *gv_tf_find(const struct gv_tf *tf, const char *name);

/* Writing: records are streamed to PATH.tmp, and gv_tf_commit renames it into place,
 * so a reader never sees a half-written file. */
FILE *gv_tf_begin(const char *path, const int32_t header[64]);
int gv_tf_put(FILE *f, const char *name, int dtype, int ndim, const int64_t *dims, const void *data);
int gv_tf_commit(FILE *f, const char *path, int count);

#endif
