/* test_data_reader.c - the MMIDIDX reader against fixtures written by an independent
 * writer (tests/reference/megatron_writer.py), every corrupted fixture giving a
 * format error that names the file and the field, and the C writer round-tripping
 * through the reader (files renamed into place, nothing left behind on abort).
 * Usage: test_data_reader FIXTURES_DIR TMP_DIR
 *        test_data_reader --listing PREFIX LISTING.txt   (compare any dataset) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gvrt_data.h"
#include "../../testutil.h"

static const char *fixtures, *tmpdir;

static const char *path_of(const char *dir, const char *name)
{
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* Compares a dataset with a listing in megatron_writer.py's format: docs, sequences, tokens. */
static void check_listing(const char *prefix, const char *txt)
{
  FILE *f = fopen(txt, "r");
  CHECK(f != NULL);
  if (!f)
    return;
  gv_mmidx *ix;
  char err[512] = "";
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_open(prefix, &ix, err, sizeof err));
  long long ndoc, nseq;
  CHECK(fscanf(f, "docs %lld seqs %lld", &ndoc, &nseq) == 2);
  CHECK_EQ_INT(ndoc, gv_mmidx_num_docs(ix));
  CHECK_EQ_INT(nseq, gv_mmidx_num_seqs(ix));
  int64_t seq = 0, total = 0;
  for (long long d = 0; d < ndoc; d++) {
    long long dd, nd;
    CHECK(fscanf(f, " doc %lld %lld", &dd, &nd) == 2);
    int64_t first, end;
    gv_mmidx_doc_seqs(ix, d, &first, &end);
    CHECK_EQ_INT(seq, first);
    CHECK_EQ_INT(seq + nd, end);
    for (long long s = 0; s < nd; s++, seq++) {
      long long len;
      CHECK(fscanf(f, "%lld", &len) == 1);
      CHECK_EQ_INT(len, gv_mmidx_seq_len(ix, seq));
      int32_t *tok = malloc(sizeof(int32_t) * (size_t)(len + 1));
      gv_mmidx_read(ix, seq, 0, len, tok);
      for (long long i = 0; i < len; i++) {
        long long want;
        CHECK(fscanf(f, "%lld", &want) == 1);
        CHECK_EQ_INT(want, tok[i]);
      }
      free(tok);
      total += len;
    }
  }
  CHECK_EQ_INT(total, gv_mmidx_num_tokens(ix));
  gv_mmidx_free(&ix);
  CHECK(ix == NULL);
  fclose(f);
}

/* A corrupted fixture: format error, message names the .idx/.bin and the field. */
static void check_fixture(const char *name)
{
  char txt[1100];
  snprintf(txt, sizeof txt, "%s.txt", path_of(fixtures, name));
  check_listing(path_of(fixtures, name), txt);
}

static void check_corrupt(const char *name, const char *field)
{
  gv_mmidx *ix = (gv_mmidx *)&ix;
  char err[512] = "";
  gv_data_status st = gv_mmidx_open(path_of(fixtures, name), &ix, err, sizeof err);
  CHECK_EQ_INT(GV_DATA_ERR_FORMAT, st);
  CHECK(ix == NULL);
  CHECK(strstr(err, name) != NULL);
  CHECK(strstr(err, field) != NULL);
  if (!strstr(err, field))
    fprintf(stderr, "  message was: %s\n", err);
}

static void test_corrupt(void)
{
  check_corrupt("bad_magic", "'magic'");
  check_corrupt("bad_version", "'version' is 2");
  check_corrupt("bad_dtype", "'dtype' has unknown code 9");
  check_corrupt("truncated", "truncated");
  check_corrupt("short_header", "truncated header");
  check_corrupt("bad_count", "'sequence_count'");
  check_corrupt("bad_pointer", "'sequence_pointers[4]'");
  check_corrupt("bad_docidx", "'document_indices[2]'");
  char err[512] = "";
  gv_mmidx *ix;
  CHECK_EQ_INT(GV_DATA_ERR_IO, gv_mmidx_open(path_of(fixtures, "no_such_dataset"), &ix, err, sizeof err));
  CHECK(strstr(err, "no_such_dataset.idx: cannot open") != NULL);
}

/* The C writer: written files read back equal; the .idx is byte-identical to the
 * independent writer's for the same content. */
static void test_writer(void)
{
  const char *prefix = path_of(tmpdir, "w_small");
  gv_mmidx_writer *w;
  char err[512] = "";
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_open(prefix, GV_DATA_DTYPE_U16, &w, err, sizeof err));
  const int32_t d0[] = {72, 101, 108, 108, 111, 256}, d1a[] = {1, 2, 3}, d1c[] = {65535, 0, 7};
  int32_t d2[10];
  for (int i = 0; i < 10; i++)
    d2[i] = 9;
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_add(w, d0, 6, err, sizeof err));
  gv_mmidx_writer_end_doc(w);
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_add(w, d1a, 3, err, sizeof err));
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_add(w, d1a, 0, err, sizeof err));
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_add(w, d1c, 3, err, sizeof err));
  gv_mmidx_writer_end_doc(w);
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_add(w, d2, 10, err, sizeof err));
  const int32_t too_big[] = {65536};
  CHECK_EQ_INT(GV_DATA_ERR_ARG, gv_mmidx_writer_add(w, too_big, 1, err, sizeof err));
  CHECK(strstr(err, "does not fit dtype uint16") != NULL);
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.idx", prefix);
  CHECK(access(tmp, F_OK) != 0);                          /* nothing in place before close */
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_close(&w, err, sizeof err));   /* closes the last document */
  CHECK(w == NULL);
  snprintf(tmp, sizeof tmp, "%s.bin.tmp", prefix);
  CHECK(access(tmp, F_OK) != 0);
  for (int ext = 0; ext < 2; ext++) {   /* same bytes as the Python writer's small.* */
    const char *e = ext ? ".bin" : ".idx";
    char a[1100], b[1100];
    snprintf(a, sizeof a, "%s%s", prefix, e);
    snprintf(b, sizeof b, "%s/small%s", fixtures, e);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    CHECK(fa && fb);
    if (!fa || !fb)
      continue;
    int ca, cb, same = 1;
    do {
      ca = fgetc(fa);
      cb = fgetc(fb);
      same &= ca == cb;
    } while (ca != EOF && cb != EOF);
    CHECK(same);
    fclose(fa);
    fclose(fb);
  }

  const char *ab = path_of(tmpdir, "w_abort");
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_open(ab, GV_DATA_DTYPE_I32, &w, err, sizeof err));
  CHECK_EQ_INT(GV_DATA_OK, gv_mmidx_writer_add(w, d0, 6, err, sizeof err));
  gv_mmidx_writer_abort(&w);
  snprintf(tmp, sizeof tmp, "%s.bin.tmp", ab);
  CHECK(access(tmp, F_OK) != 0);
  CHECK_EQ_INT(GV_DATA_ERR_ARG, gv_mmidx_writer_open(ab, GV_DATA_DTYPE_F32, &w, err, sizeof err));
}

static void test_dtypes(void)
{
  CHECK_STR("uint16", gv_data_dtype_name(GV_DATA_DTYPE_U16));
  CHECK(gv_data_dtype_name(0) == NULL && gv_data_dtype_name(9) == NULL);
  CHECK_EQ_INT(8, gv_data_dtype_size(GV_DATA_DTYPE_I64));
  CHECK_EQ_INT(GV_DATA_DTYPE_U16, gv_data_dtype_for_vocab(257));
  CHECK_EQ_INT(GV_DATA_DTYPE_I32, gv_data_dtype_for_vocab(50257 + 15300));
}

int main(int argc, char **argv)
{
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: test_data_reader FIXTURES_DIR TMP_DIR | --listing PREFIX LISTING\n");
    return 2;
  }
  fixtures = argv[1];
  tmpdir = argv[2];
  if (argc == 4 && !strcmp(argv[1], "--listing")) {   /* a dataset gvc data wrote */
    check_listing(argv[2], argv[3]);
    return tu_report("test_data_reader --listing");
  }
  check_fixture("small");
  check_fixture("i32");
  check_fixture("gpt");
  test_corrupt();
  test_writer();
  test_dtypes();
  return tu_report("test_data_reader");
}
