/* test_fixture.c - the fixture reader on the committed files and on damaged copies: the
 * header and record table of tiny_gpt.bin are what gen_fixtures.py documents, lookups
 * check dtype and size, and a truncated file or a wrong magic is refused (not read past).
 * Usage: test_fixture FIXTURE_DIR SCRATCH_DIR */
#include <stdio.h>
#include <stdlib.h>

#include "../fixture.h"
#include "testutil.h"

static long copy_prefix(const char *src, const char *dst, long keep, int bad_magic)
{
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  long n = 0;
  if (in && out) {
    for (int ch; (keep < 0 || n < keep) && (ch = fgetc(in)) != EOF; n++)
      fputc(n == 0 && bad_magic ? ch ^ 0xff : ch, out);
  }
  if (in)
    fclose(in);
  if (out)
    fclose(out);
  return n;
}

int main(int argc, char **argv)
{
  if (argc != 3)
    return 2;
  char path[1024], tmp[1024];
  snprintf(path, sizeof path, "%s/tiny_gpt.bin", argv[1]);
  snprintf(tmp, sizeof tmp, "%s/fixture_damaged.bin", argv[2]);

  struct ref_fixture fx;
  CHECK(ref_fixture_load(&fx, path) == 0);
  CHECK_EQ_INT(REF_MODEL_GPT, fx.model);
  CHECK(fx.V == 256 && fx.C == 64 && fx.L == 2 && fx.H == 4 && fx.F == 256 && fx.S == 64);
  CHECK(fx.B == 2 && fx.T == 32 && fx.steps == 10);
  CHECK_EQ_INT(3 + 2 * 36 + 2 + 4, fx.count);               /* hparams tokens labels, params, grads, ... */
  CHECK_STR("param/embedding.weight", fx.rec[3].name);
  CHECK(ref_fixture_f32(&fx, "param/layers.1.mlp.down.weight", 64 * 256) != NULL);
  CHECK(ref_fixture_f32(&fx, "param/layers.1.mlp.down.weight", 7) == NULL);   /* wrong size */
  CHECK(ref_fixture_f64(&fx, "param/embedding.weight", 256 * 64) == NULL);     /* wrong dtype */
  CHECK(ref_fixture_get(&fx, "no/such/record", REF_F32) == NULL);
  const int32_t *tok = ref_fixture_i32(&fx, "tokens", 64), *lab = ref_fixture_i32(&fx, "labels", 64);
  CHECK(tok && lab && tok[1] == lab[0] && tok[31] == lab[30]);                 /* labels = tokens shifted */
  const double *hp = ref_fixture_f64(&fx, "hparams", 10);
  CHECK(hp && hp[0] == 1e-3 && hp[5] == 1.0 && hp[9] == 10000.0);
  ref_fixture_free(&fx);

  long size = copy_prefix(path, tmp, -1, 0);
  CHECK(size > 1000);
  copy_prefix(path, tmp, size - 100, 0);
  CHECK(ref_fixture_load(&fx, tmp) == -1);                  /* truncated in the last record */
  copy_prefix(path, tmp, 200, 0);
  CHECK(ref_fixture_load(&fx, tmp) == -1);                  /* truncated header */
  copy_prefix(path, tmp, -1, 1);
  CHECK(ref_fixture_load(&fx, tmp) == -1);                  /* wrong magic */
  remove(tmp);
  return tu_report("test_fixture");
}
