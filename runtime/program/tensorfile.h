/* tensorfile.h - named-tensor files: checkpoints (magic "GVCK") and the reference
 * fixtures of tests/reference ("GVRF") share one layout, so a fixture's weights can
 * initialise a program and a checkpoint can be compared with a fixture.
 *
 * Layout (little endian): int32 header[64] ([0] magic, [1] version 1, [13] record count;
 * checkpoints: [2] step, [3..4] the seed as two uint32), then records: int32 name_len,
 * name bytes, int32 dtype (0 f32, 1 f64, 2 i32), int32 ndim, int32 dims[ndim], data.
 * Files written here end with one more record, "crc32" (i32 [count - 1]): the CRC-32
 * (zlib's polynomial) of each earlier record's bytes, name to data. gv_tf_read checks it
 * when present (fixtures written by Python have none) and leaves it out of the records. */
#ifndef GV_TENSORFILE_H
#define GV_TENSORFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { GV_TF_F32 = 0, GV_TF_F64 = 1, GV_TF_I32 = 2 };
#define GV_TF_MAGIC_FIXTURE 0x46525647 /* "GVRF" */
#define GV_TF_MAGIC_CKPT 0x4b435647    /* "GVCK" */
#define GV_TF_CRC_RECORD "crc32"

struct gv_tf_record { char *name; int dtype, ndim; int64_t dims[8]; size_t numel; void *data; };
struct gv_tf { int32_t header[64]; int count, cap; struct gv_tf_record *rec; };

/* Reads a whole file; on failure returns -1 with a message naming the file and field
 * (and the record, for a checksum that does not match) in err (err_len bytes). */
int gv_tf_read(struct gv_tf *tf, const char *path, char *err, size_t err_len);
void gv_tf_free(struct gv_tf *tf);
const struct gv_tf_record *gv_tf_find(const struct gv_tf *tf, const char *name);

/* Writing: records are streamed to PATH.tmp; gv_tf_finish appends the checksums and
 * closes it, gv_tf_rename moves it into place (gv_tf_commit does both), so a reader never
 * sees a half-written file; gv_tf_abort closes and removes PATH.tmp. On failure (the
 * runtime's convention, gvrt.h) gv_tf_begin returns NULL and the others -1, with
 * "PATH: cannot write (why)" in err (errn bytes; NULL: no message). */
struct gv_tf_writer;
struct gv_tf_writer *gv_tf_begin(const char *path, const int32_t header[64], char *err, size_t errn);
int gv_tf_put(struct gv_tf_writer *w, const char *name, int dtype, int ndim, const int64_t *dims, const void *data,
              char *err, size_t errn);
int gv_tf_finish(struct gv_tf_writer *w, char *err, size_t errn);   /* frees w; PATH.tmp is removed on failure */
int gv_tf_rename(const char *path, char *err, size_t errn);         /* PATH.tmp -> PATH */
int gv_tf_commit(struct gv_tf_writer *w, char *err, size_t errn);   /* finish, then rename */
void gv_tf_abort(struct gv_tf_writer *w);
/* CRC-32 of n bytes, continuing from crc (0 to start). */
uint32_t gv_tf_crc32(uint32_t crc, const void *data, size_t n);

#endif
