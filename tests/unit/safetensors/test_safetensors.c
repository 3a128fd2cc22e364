/* test_safetensors.c - gvrt_safetensors.h: a file written here reads back (names, dtypes,
 * shapes, offsets, metadata, blocks, flat parts, F32/BF16/F16 conversions, CRC-32); a
 * file written by hand from the format's description reads as expected; two writers fill
 * one file; and every bad input (too short, a header length past the end, a header that
 * is not JSON, an unknown dtype, a bad shape, offsets out of range or of the wrong size,
 * overlapping tensors, a hole, a duplicate name, bad metadata, a block outside the
 * tensor, an impossible conversion) is refused with the file and the tensor or field
 * named. F16 and BF16 read as F32 exactly (subnormals, the largest half, infinity); F64
 * and integers convert to nothing else. A read of several pieces gives the bytes and the
 * CRC-32 as stored, and a flipped byte changes it. Usage: test_safetensors TMPDIR */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gvrt.h"
#include "gvrt_safetensors.h"
#include "testutil.h"

static const char *dir;

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* A file of raw bytes: the 8-byte length of header, the header, then data_len bytes 0..255. */
static void write_raw(const char *path, const char *header, uint64_t claimed_len, size_t data_len)
{
  FILE *f = fopen(path, "wb");
  unsigned char len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (unsigned char)(claimed_len >> (8 * i));
  fwrite(len8, 1, 8, f);
  fputs(header, f);
  for (size_t i = 0; i < data_len; i++)
    fputc((int)(i & 0xff), f);
  fclose(f);
}

/* A hand-made file must be refused with a message containing want (and the path). */
static void refused(const char *name, const char *header, int64_t claimed, size_t data_len, const char *want)
{
  char path[512], err[1024] = "";
  gv_st *f = NULL;
  path_of(path, sizeof path, name);
  write_raw(path, header, claimed < 0 ? strlen(header) : (uint64_t)claimed, data_len);
  int rc = gv_st_open(&f, path, err, sizeof err);
  CHECK(rc == -1 && f == NULL);
  CHECK(strstr(err, path) != NULL);
  if (!strstr(err, want))
    fprintf(stderr, "%s: expected '%s' in: %s\n", name, want, err);
  CHECK(strstr(err, want) != NULL);
}

static void test_bad_inputs(void)
{
  char path[512], err[1024];
  gv_st *f;
  path_of(path, sizeof path, "short.safetensors");
  FILE *s = fopen(path, "wb");
  fputs("abc", s);
  fclose(s);
  CHECK(gv_st_open(&f, path, err, sizeof err) == -1 && strstr(err, "too short"));
  path_of(path, sizeof path, "absent.safetensors");
  CHECK(gv_st_open(&f, path, err, sizeof err) == -1 && strstr(err, "cannot open"));
  refused("past_end.safetensors", "{}", 4096, 0, "field 'header length' is 4096 bytes, past the end of the file");
  refused("not_json.safetensors", "{\"a\": [", -1, 0, "the header is not a JSON object");
  refused("array.safetensors", "[1, 2]", -1, 0, "the header is not a JSON object");
  refused("dtype.safetensors", "{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", -1, 1,
          "tensor 'w': field 'dtype' is the unknown dtype 'Q4'");
  refused("no_dtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4,
          "tensor 'w': field 'dtype' is missing");
  refused("shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", -1, 4,
          "tensor 'w': field 'shape' has an entry that is not a non-negative integer");
  refused("shape2.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", -1, 4,
          "tensor 'w': field 'shape' is missing, not a list");
  refused("offsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 4,
          "tensor 'w': field 'data_offsets' [0, 8] runs past the end of the data (4 bytes)");
  refused("reversed.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", -1, 4,
          "tensor 'w': field 'data_offsets' is not [BEGIN, END]");
  refused("size.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8,
          "tensor 'w': field 'data_offsets' [0, 8] holds 8 bytes, its shape and dtype F32 need 12");
  refused("overlap.safetensors",
          "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", -1, 12, "tensors 'a' and 'b' overlap");
  refused("hole.safetensors",
          "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
          "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", -1, 12,
          "bytes [4, 8) of the data belong to no tensor (before tensor 'b')");
  refused("tail.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 6,
          "bytes [4, 6) of the data belong to no tensor (after the last one)");
  refused("dup.safetensors",
          "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
          "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8, "tensor 'a' appears twice");
  refused("meta.safetensors", "{\"__metadata__\":{\"k\":3},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
          -1, 1, "field '__metadata__.k' is not a string");
}

/* Hand-made from the format's description: U8 [2,3] then BF16 [2] (1.0, -2.5), metadata. */
static void test_handmade(void)
{
  char path[512], err[1024];
  gv_st *f;
  path_of(path, sizeof path, "hand.safetensors");
  const char *h = "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[6,10]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[2,3],\"data_offsets\":[0,6]}}";
  FILE *o = fopen(path, "wb");
  uint64_t len = strlen(h);
  unsigned char len8[8], data[10] = {1, 2, 3, 4, 5, 6, 0x80, 0x3f, 0x20, 0xc0};
  for (int i = 0; i < 8; i++)
    len8[i] = (unsigned char)(len >> (8 * i));
  fwrite(len8, 1, 8, o);
  fputs(h, o);
  fwrite(data, 1, 10, o);
  fclose(o);
  CHECK_EQ_INT(0, gv_st_open(&f, path, err, sizeof err));
  if (!f)
    return;
  CHECK_EQ_INT(2, gv_st_count(f));
  CHECK_STR("a", gv_st_at(f, 0)->name); /* sorted by name */
  CHECK_STR("pt", gv_st_meta(f, "format"));
  const struct gv_st_tensor *a = gv_st_find(f, "a"), *b = gv_st_find(f, "b");
  CHECK(a && a->dtype == GV_ST_U8 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->begin == 0 && a->end == 6);
  unsigned char col[2];
  CHECK_EQ_INT(0, gv_st_read_block(f, a, 0, 2, 1, 1, GV_ST_U8, col, err, sizeof err));
  CHECK(col[0] == 2 && col[1] == 5);
  float bf[2];
  CHECK_EQ_INT(0, gv_st_read_block(f, b, 0, 1, 0, 2, GV_ST_F32, bf, err, sizeof err));
  CHECK(bf[0] == 1.0f && bf[1] == -2.5f);
  /* U8 to F32: no such conversion */
  CHECK_EQ_INT(-1, gv_st_read_block(f, a, 0, 1, 0, 1, GV_ST_F32, bf, err, sizeof err));
  CHECK(strstr(err, "tensor 'a': dtype U8, cannot convert to or from F32") != NULL);
  /* a block outside the tensor */
  CHECK_EQ_INT(-1, gv_st_read_block(f, a, 1, 2, 0, 3, GV_ST_U8, data, err, sizeof err));
  CHECK(strstr(err, "tensor 'a': block of 2 x 3 at (1, 0)") && strstr(err, "is outside its 2 x 3"));
  CHECK(gv_st_find(f, "c") == NULL);
  gv_st_close(f);
}

/* Written here (two writers, one file), read back with every conversion. */
static void test_round_trip(void)
{
  char path[512], err[1024];
  path_of(path, sizeof path, "rt.safetensors");
  struct gv_st_tensor ts[3] = {{.name = "w", .dtype = GV_ST_F32, .ndim = 2, .shape = {4, 6}},
                               {.name = "h", .dtype = GV_ST_BF16, .ndim = 1, .shape = {5}},
                               {.name = "g", .dtype = GV_ST_F16, .ndim = 2, .shape = {2, 2}}};
  const char *meta[2] = {"step", "7"};
  float w[24], h[5] = {1.0f, 0.5f, -3.0f, 1.00390625f, 65504.0f}, g[4] = {1.0f, -0.0009765625f, 6.103515625e-05f, 2049.0f};
  for (int i = 0; i < 24; i++)
    w[i] = (float)i * 0.25f - 1.0f;
  gv_st_writer *a = gv_st_create(path, ts, 3, meta, 1, 1, err, sizeof err);
  gv_st_writer *b = gv_st_create(path, ts, 3, meta, 1, 0, err, sizeof err);
  CHECK(a && b);
  if (!a || !b)
    return;
  /* writer a: the left 4 x 3 block of w, b the right one (a column split), as flat parts */
  float left[12], right[12];
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 3; c++) {
      left[r * 3 + c] = w[r * 6 + c];
      right[r * 3 + c] = w[r * 6 + 3 + c];
    }
  CHECK_EQ_INT(0, gv_st_write_part(a, 0, 0, 4, 0, 3, 0, 7, GV_ST_F32, left, err, sizeof err));
  CHECK_EQ_INT(0, gv_st_write_part(b, 0, 0, 4, 0, 3, 7, 5, GV_ST_F32, left + 7, err, sizeof err));
  CHECK_EQ_INT(0, gv_st_write_part(b, 0, 0, 4, 3, 3, 0, 12, GV_ST_F32, right, err, sizeof err));
  CHECK_EQ_INT(0, gv_st_write_part(a, 1, 0, 1, 0, 5, 0, 5, GV_ST_F32, h, err, sizeof err));
  CHECK_EQ_INT(0, gv_st_write_part(b, 2, 0, 2, 0, 2, 0, 4, GV_ST_F32, g, err, sizeof err));
  CHECK_EQ_INT(-1, gv_st_write_part(b, 2, 1, 2, 0, 2, 0, 4, GV_ST_F32, g, err, sizeof err));
  CHECK_EQ_INT(0, gv_st_finish(a, NULL, 0));
  CHECK_EQ_INT(0, gv_st_finish(b, NULL, 0));
  gv_st *f;
  CHECK_EQ_INT(0, gv_st_open(&f, path, err, sizeof err));
  if (!f)
    return;
  CHECK_STR("7", gv_st_meta(f, "step"));
  const struct gv_st_tensor *tw = gv_st_find(f, "w"), *th = gv_st_find(f, "h"), *tg = gv_st_find(f, "g");
  CHECK(tw && th && tg && tw->end - tw->begin == 96 && th->end - th->begin == 10 && tg->end - tg->begin == 8);
  float all[24], blk[6], part[5];
  CHECK_EQ_INT(0, gv_st_read_block(f, tw, 0, 4, 0, 6, GV_ST_F32, all, err, sizeof err));
  CHECK(!memcmp(all, w, sizeof w));
  CHECK_EQ_INT(0, gv_st_read_block(f, tw, 1, 2, 2, 3, GV_ST_F32, blk, err, sizeof err));
  CHECK(blk[0] == w[8] && blk[2] == w[10] && blk[3] == w[14] && blk[5] == w[16]);
  CHECK_EQ_INT(0, gv_st_read_part(f, tw, 1, 3, 3, 3, 2, 5, GV_ST_F32, part, err, sizeof err)); /* crosses rows */
  CHECK(part[0] == w[11] && part[1] == w[15] && part[4] == w[21]);
  float hb[5], gb[4];
  CHECK_EQ_INT(0, gv_st_read_block(f, th, 0, 1, 0, 5, GV_ST_F32, hb, err, sizeof err));
  CHECK(hb[0] == 1.0f && hb[1] == 0.5f && hb[2] == -3.0f && hb[3] == 1.0f /* rounded to even */ && hb[4] == 65536.0f);
  CHECK_EQ_INT(0, gv_st_read_block(f, tg, 0, 2, 0, 2, GV_ST_F32, gb, err, sizeof err));
  CHECK(gb[0] == 1.0f && gb[1] == g[1] && gb[2] == g[2] && gb[3] == 2048.0f /* 2049 rounds to even */);
  uint16_t wb[2], hh[1];
  CHECK_EQ_INT(0, gv_st_read_block(f, tw, 0, 1, 4, 2, GV_ST_BF16, wb, err, sizeof err)); /* F32 -> BF16 */
  CHECK(gv_bf16_to_float(wb[0]) == w[4] && gv_bf16_to_float(wb[1]) == w[5]);
  CHECK_EQ_INT(0, gv_st_read_block(f, th, 0, 1, 2, 1, GV_ST_F16, hh, err, sizeof err)); /* BF16 -> F16 */
  CHECK(hh[0] == 0xc200); /* -3.0 */
  uint32_t crc;
  CHECK_EQ_INT(0, gv_st_crc32(f, tw, &crc, err, sizeof err));
  CHECK(crc == gv_st_crc32_update(0, w, sizeof w));
  CHECK(gv_st_crc32_update(0, "123456789", 9) == 0xcbf43926u); /* the CRC-32 check value */
  /* a read continues a CRC-32 over the bytes as stored: two flat parts of w (rows 0-1, then
   * 2-3) give w's, read as they are or converted (through the staging buffer) */
  for (int k = 0; k < 2; k++) {
    uint32_t c0 = 0, c1 = 0, one = 0;
    uint16_t bf[24];
    void *lo = k ? (void *)bf : (void *)all, *hi = k ? (void *)(bf + 12) : (void *)(all + 12);
    enum gv_st_dtype want = k ? GV_ST_BF16 : GV_ST_F32;
    CHECK_EQ_INT(0, gv_st_read_part_crc(f, tw, 0, 4, 0, 6, 0, 12, want, lo, &c0, err, sizeof err));
    CHECK_EQ_INT(0, gv_st_read_part_crc(f, tw, 0, 4, 0, 6, 12, 12, want, hi, &c1, err, sizeof err));
    CHECK(gv_st_crc32_combine(c0, c1, 48) == crc);
    CHECK_EQ_INT(0, gv_st_read_part_crc(f, th, 0, 1, 0, 5, 0, 5, GV_ST_F32, hb, &one, err, sizeof err));
    CHECK_EQ_INT(0, gv_st_crc32(f, th, &c0, err, sizeof err));
    CHECK(one == c0);
  }
  CHECK(!memcmp(all, w, sizeof w));
  gv_st_close(f);
}

/* Stored F16/BF16 bit patterns widened to F32 exactly; F64 and I32 read only as themselves. */
static void test_exact_widening(void)
{
  char path[512], err[1024];
  path_of(path, sizeof path, "widen.safetensors");
  struct gv_st_tensor ts[4] = {{.name = "h", .dtype = GV_ST_F16, .ndim = 1, .shape = {6}},
                               {.name = "b", .dtype = GV_ST_BF16, .ndim = 1, .shape = {3}},
                               {.name = "d", .dtype = GV_ST_F64, .ndim = 2, .shape = {1, 2}},
                               {.name = "ids", .dtype = GV_ST_I32, .ndim = 1, .shape = {3}}};
  /* 1, -2, the smallest subnormal, the largest subnormal, 65504, -infinity */
  uint16_t h[6] = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0xfc00};
  uint16_t b[3] = {0x3f80, 0xbfc0, 0x4049}; /* 1, -1.5, 3.140625 */
  double d[2] = {0.1, -7.0};
  int32_t ids[3] = {7, 8, 9};
  gv_st_writer *w = gv_st_create(path, ts, 4, NULL, 0, 1, err, sizeof err);
  CHECK(w != NULL);
  if (!w)
    return;
  CHECK_EQ_INT(0, gv_st_write_part(w, 0, 0, 1, 0, 6, 0, 6, GV_ST_F16, h, err, sizeof err));
  CHECK_EQ_INT(0, gv_st_write_part(w, 1, 0, 1, 0, 3, 0, 3, GV_ST_BF16, b, err, sizeof err));
  CHECK_EQ_INT(0, gv_st_write_part(w, 2, 0, 1, 0, 2, 0, 2, GV_ST_F64, d, err, sizeof err));
  CHECK_EQ_INT(0, gv_st_write_part(w, 3, 0, 1, 0, 3, 0, 3, GV_ST_I32, ids, err, sizeof err));
  CHECK_EQ_INT(0, gv_st_finish(w, NULL, 0));
  gv_st *f;
  CHECK_EQ_INT(0, gv_st_open(&f, path, err, sizeof err));
  if (!f)
    return;
  CHECK(gv_st_meta(f, "format") == NULL);
  float out[6];
  CHECK_EQ_INT(0, gv_st_read_block(f, gv_st_find(f, "h"), 0, 1, 0, 6, GV_ST_F32, out, err, sizeof err));
  CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 5.9604644775390625e-8f && out[3] == 6.0975551605224609375e-5f &&
        out[4] == 65504.0f && out[5] == -INFINITY);
  CHECK_EQ_INT(0, gv_st_read_block(f, gv_st_find(f, "b"), 0, 1, 0, 3, GV_ST_F32, out, err, sizeof err));
  CHECK(out[0] == 1.0f && out[1] == -1.5f && out[2] == 3.140625f);
  double dd[2];
  CHECK_EQ_INT(0, gv_st_read_block(f, gv_st_find(f, "d"), 0, 1, 0, 2, GV_ST_F64, dd, err, sizeof err));
  CHECK(dd[0] == 0.1 && dd[1] == -7.0);
  CHECK_EQ_INT(-1, gv_st_read_block(f, gv_st_find(f, "d"), 0, 1, 0, 2, GV_ST_F32, out, err, sizeof err));
  CHECK(strstr(err, path) && strstr(err, "tensor 'd': dtype F64, cannot convert to or from F32"));
  CHECK_EQ_INT(-1, gv_st_read_block(f, gv_st_find(f, "ids"), 0, 1, 0, 3, GV_ST_F32, out, err, sizeof err));
  CHECK(strstr(err, "tensor 'ids': dtype I32, cannot convert to or from F32") != NULL);
  gv_st_close(f);
}

/* The CRC-32 of two parts combined is the CRC-32 of the whole (a save's contiguous parts). */
static void test_crc_combine(void)
{
  unsigned char buf[1000];
  for (int i = 0; i < 1000; i++)
    buf[i] = (unsigned char)(i * 7 + 3);
  uint32_t whole = gv_st_crc32_update(0, buf, sizeof buf);
  for (int cut = 0; cut <= 1000; cut += 250)
    CHECK(gv_st_crc32_combine(gv_st_crc32_update(0, buf, (size_t)cut), gv_st_crc32_update(0, buf + cut, 1000 - (size_t)cut),
                              1000 - cut) == whole);
}

/* The CRC-32 (carry-less multiplies where the CPU has them) is zlib's, over every length
 * and alignment around its 16- and 64-byte blocks, continued from any CRC-32, and long. */
static void test_crc_is_zlibs(void)
{
  static unsigned char buf[3 << 20];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char)((i * 2654435761u) >> 13);
  int bad = 0;
  for (size_t at = 0; at < 16; at++)
    for (size_t n = 0; n <= 300; n++)
      bad += gv_st_crc32_update(0x12345678u, buf + at, n) != (uint32_t)crc32(0x12345678u, buf + at, (uInt)n);
  CHECK_EQ_INT(0, bad);
  CHECK(gv_st_crc32_update(0, buf + 3, sizeof buf - 3) == (uint32_t)crc32(0, buf + 3, (uInt)(sizeof buf - 3)));
}

/* A read longer than one piece (with O_DIRECT where the file system has it: pieces read at
 * once through aligned buffers, the last one's window past the end of the file; else its
 * CRC-32 computed while the next piece is read) gives the bytes and the CRC-32 as stored,
 * whole or from an odd element on, as it is or converted, and a block of long rows from an
 * odd column; a byte flipped in its last piece (in the page cache, not yet on the disk)
 * changes that CRC-32. */
static void test_long_read(void)
{
  enum { R = 3, C = 1000003, N = R * C };
  char path[512], err[1024];
  path_of(path, sizeof path, "long.safetensors");
  struct gv_st_tensor ts[1] = {{.name = "big", .dtype = GV_ST_F32, .ndim = 2, .shape = {R, C}}};
  float *w = malloc(sizeof(float) * N), *back = malloc(sizeof(float) * N);
  uint16_t *bf = malloc(sizeof(uint16_t) * N);
  CHECK(w && back && bf);
  if (!w || !back || !bf)
    return;
  for (int i = 0; i < N; i++)
    w[i] = (float)(i % 977) * 0.5f - (float)(i % 13);
  gv_st_writer *wr = gv_st_create(path, ts, 1, NULL, 0, 1, err, sizeof err);
  CHECK(wr != NULL);
  if (!wr)
    return;
  CHECK_EQ_INT(0, gv_st_write_part(wr, 0, 0, R, 0, C, 0, N, GV_ST_F32, w, err, sizeof err));
  CHECK_EQ_INT(0, gv_st_finish(wr, NULL, 0));
  gv_st *f;
  CHECK_EQ_INT(0, gv_st_open(&f, path, err, sizeof err));
  if (!f)
    return;
  const struct gv_st_tensor *t = gv_st_find(f, "big");
  uint32_t whole = gv_st_crc32_update(0, w, sizeof(float) * N), c = 0, part = 0, conv = 0, again = 0;
  CHECK_EQ_INT(0, gv_st_read_part_crc(f, t, 0, R, 0, C, 0, N, GV_ST_F32, back, &c, err, sizeof err));
  CHECK(c == whole && !memcmp(back, w, sizeof(float) * N));
  CHECK_EQ_INT(0, gv_st_read_part_crc(f, t, 0, R, 0, C, 7, N - 9, GV_ST_F32, back, &part, err, sizeof err));
  CHECK(part == gv_st_crc32_update(0, w + 7, sizeof(float) * (N - 9)) && back[0] == w[7] && back[N - 10] == w[N - 3]);
  CHECK_EQ_INT(0, gv_st_read_part_crc(f, t, 0, R, 0, C, 0, N, GV_ST_BF16, bf, &conv, err, sizeof err));
  CHECK(conv == whole && gv_bf16_to_float(bf[N - 1]) == w[N - 1]);
  enum { COLS = 400001 }; /* rows of 1.6 MB, each one read */
  CHECK_EQ_INT(0, gv_st_read_block(f, t, 1, 2, 5, COLS, GV_ST_F32, back, err, sizeof err));
  CHECK(!memcmp(back, w + C + 5, sizeof(float) * COLS) && !memcmp(back + COLS, w + 2 * C + 5, sizeof(float) * COLS));
  gv_st_close(f);
  FILE *fp = fopen(path, "r+b"); /* flip one bit of the tensor's last element */
  CHECK(fp != NULL);
  if (!fp)
    return;
  fseek(fp, -1, SEEK_END);
  int b = fgetc(fp);
  fseek(fp, -1, SEEK_END);
  fputc(b ^ 1, fp);
  fclose(fp);
  CHECK_EQ_INT(0, gv_st_open(&f, path, err, sizeof err));
  if (!f)
    return;
  CHECK_EQ_INT(0, gv_st_read_part_crc(f, gv_st_find(f, "big"), 0, R, 0, C, 0, N, GV_ST_F32, back, &again, err, sizeof err));
  CHECK(again != whole && again == gv_st_crc32_update(0, back, sizeof(float) * N));
  gv_st_close(f);
  free(w);
  free(back);
  free(bf);
}

int main(int argc, char **argv)
{
  dir = argc > 1 ? argv[1] : ".";
  test_bad_inputs();
  test_handmade();
  test_round_trip();
  test_exact_widening();
  test_crc_combine();
  test_crc_is_zlibs();
  test_long_read();
  return tu_report("unit.safetensors");
}
