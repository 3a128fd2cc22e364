/* test_safetensors.c - runtime/data/safetensors.c: a written file read back (names,
 * dtypes, shapes, metadata, partial reads, F16/BF16/F64 widened to f32 exactly), and
 * hand-made bad files refused with a message naming the file and the tensor: header
 * length past the end, offsets out of range, overlapping tensors, an unknown dtype, a
 * size that disagrees with the shape, a header that is not JSON.
 * Usage: test_safetensors TMP_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/safetensors.h"
#include "../../testutil.h"

static char path[1024];

static void write_raw(const char *header, uint64_t hlen_override, size_t data_bytes)
{
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (!f)
    return;
  uint64_t hlen = hlen_override ? hlen_override : strlen(header);
  unsigned char len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (unsigned char)(hlen >> (8 * i));
  fwrite(len8, 1, 8, f);
  fwrite(header, 1, strlen(header), f);
  for (size_t i = 0; i < data_bytes; i++)
    fputc(0, f);
  fclose(f);
}

/* Opening the file must fail with a message holding every one of the words. */
static void refused(const char *header, uint64_t hlen, size_t data_bytes, const char *w1, const char *w2)
{
  write_raw(header, hlen, data_bytes);
  gv_st_file *f = NULL;
  struct gv_data_err err = {0};
  CHECK(gv_st_open(path, &f, &err) != GV_DATA_OK);
  CHECK(f == NULL);
  CHECK(strstr(err.msg, path) != NULL);
  CHECK(strstr(err.msg, w1) != NULL);
  CHECK(!w2 || strstr(err.msg, w2) != NULL);
  printf("refused: %s\n", err.msg);
}

static void round_trip(void)
{
  float a[6] = {1.5f, -2.25f, 3.0f, 1e-3f, -0.0f, 65504.0f};
  uint16_t h[4] = {0x3c00, 0xc000, 0x0001, 0x7bff};      /* 1, -2, smallest subnormal, 65504 */
  uint16_t b[3] = {0x3f80, 0xbfc0, 0x4049};              /* 1, -1.5, 3.140625 */
  double d[2] = {0.1, -7.0};
  int32_t ids[3] = {7, 8, 9};
  int64_t sa[2] = {2, 3}, sh[1] = {4}, sb[1] = {3}, sd[2] = {1, 2}, si[1] = {3};
  gv_st_writer *w;
  struct gv_data_err err = {0};
  CHECK_EQ_INT(GV_DATA_OK, gv_st_writer_new(&w, &err));
  CHECK_EQ_INT(GV_DATA_OK, gv_st_writer_add(w, "layers.0.attn.q.weight", GV_ST_F32, 2, sa, a, &err));
  CHECK_EQ_INT(GV_DATA_OK, gv_st_writer_add(w, "h", GV_ST_F16, 1, sh, h, &err));
  CHECK_EQ_INT(GV_DATA_OK, gv_st_writer_add(w, "b", GV_ST_BF16, 1, sb, b, &err));
  CHECK_EQ_INT(GV_DATA_OK, gv_st_writer_add(w, "d", GV_ST_F64, 2, sd, d, &err));
  CHECK_EQ_INT(GV_DATA_OK, gv_st_writer_add(w, "ids", GV_ST_I32, 1, si, ids, &err));
  CHECK(gv_st_writer_add(w, "h", GV_ST_F32, 1, sh, a, &err) != GV_DATA_OK); /* twice */
  CHECK_EQ_INT(GV_DATA_OK, gv_st_writer_metadata(w, "format", "pt", &err));
  CHECK_EQ_INT(GV_DATA_OK, gv_st_writer_write(w, path, &err));
  gv_st_writer_free(&w);

  gv_st_file *f;
  CHECK_EQ_INT(GV_DATA_OK, gv_st_open(path, &f, &err));
  if (!f)
    return;
  CHECK_EQ_INT(5, gv_st_count(f));
  CHECK_STR("pt", gv_st_metadata(f, "format"));
  CHECK(gv_st_metadata(f, "nothing") == NULL);
  const struct gv_st_tensor *t = gv_st_find(f, "layers.0.attn.q.weight");
  CHECK(t && t->dtype == GV_ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
  float out[6];
  CHECK_EQ_INT(GV_DATA_OK, gv_st_read_f32(f, t, 0, 6, out, &err));
  CHECK(!memcmp(out, a, sizeof a));
  CHECK_EQ_INT(GV_DATA_OK, gv_st_read_f32(f, t, 4, 2, out, &err)); /* a run from the middle */
  CHECK(!memcmp(out, a + 4, 2 * sizeof(float)));
  CHECK(gv_st_read_f32(f, t, 5, 2, out, &err) != GV_DATA_OK);
  CHECK_EQ_INT(GV_DATA_OK, gv_st_read_f32(f, gv_st_find(f, "h"), 0, 4, out, &err));
  CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 5.9604644775390625e-8f && out[3] == 65504.0f);
  CHECK_EQ_INT(GV_DATA_OK, gv_st_read_f32(f, gv_st_find(f, "b"), 0, 3, out, &err));
  CHECK(out[0] == 1.0f && out[1] == -1.5f && out[2] == 3.140625f);
  CHECK_EQ_INT(GV_DATA_OK, gv_st_read_f32(f, gv_st_find(f, "d"), 0, 2, out, &err));
  CHECK(out[0] == 0.1f && out[1] == -7.0f);
  CHECK(gv_st_read_f32(f, gv_st_find(f, "ids"), 0, 3, out, &err) != GV_DATA_OK);
  CHECK(strstr(err.msg, "'ids'") != NULL);
  CHECK(gv_st_find(f, "missing") == NULL);
  gv_st_close(&f);
  CHECK(f == NULL);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: test_safetensors TMP_DIR\n");
    return 2;
  }
  snprintf(path, sizeof path, "%s/t.safetensors", argv[1]);
  round_trip();
  refused("{}", 1000, 0, "header length 1000", "past the end");
  refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 4, "'w'", "past the end");
  refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
          "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, 12, "overlaps", "'w'");
  refused("{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, "'w'", "unknown dtype 'Q4'");
  refused("{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 8, "'w'", "need 6");
  refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 0, 8, "'w'", "data_offsets");
  refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 0, 8, "'w'", "shape");
  refused("not json", 0, 0, "not a JSON object", NULL);
  refused("", 0, 0, "not a JSON object", NULL);
  return tu_report("test_safetensors");
}
