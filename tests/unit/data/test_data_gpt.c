/* test_data_gpt.c - GPT sample construction against Megatron's, as computed by
 * tests/reference/megatron_gpt_samples.py with numpy's RandomState (fixture
 * gpt_samples.txt): sample count, epochs and every token of every sample, for one and
 * several epochs (final epoch separate or joined) and for train/valid splits. Also:
 * MT19937 known values, determinism, samples spanning documents, and the same global
 * batch for every data-parallel split. Usage: test_data_gpt FIXTURES_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt_data.h"
#include "../../testutil.h"

static char prefix[1024];

static gv_data *open_ds(int seq, uint32_t seed, int64_t num, const char *split, int which)
{
  struct gv_data_opts o = gv_data_opts_default(seq, seed);
  o.num_samples = num;
  o.split = split;
  o.split_index = which;
  gv_data *ds = NULL;
  char err[512] = "";
  gv_data_status st = gv_data_open(prefix, &o, &ds, err, sizeof err);
  CHECK_EQ_INT(GV_DATA_OK, st);
  if (st)
    fprintf(stderr, "  %s\n", err);
  return ds;
}

/* Every case in the reference file, sample by sample. */
static void test_reference(const char *path)
{
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  if (!f)
    return;
  int seq, epochs, separate, which, cases = 0;
  long long seed, num, n;
  char split[64];
  while (fscanf(f, " case %d %lld %lld %63s %d %lld %d %d", &seq, &seed, &num, split, &which, &n, &epochs,
                &separate) == 8) {
    cases++;
    gv_data *ds = open_ds(seq, (uint32_t)seed, num, split, which);
    if (!ds)
      break;
    CHECK_EQ_INT(n, gv_data_num_samples(ds));
    CHECK_EQ_INT(epochs, gv_data_epochs(ds));
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(seq + 1));
    int bad = 0;
    for (long long i = 0; i < n; i++) {
      gv_data_get_sample(ds, i, tok);
      for (int t = 0; t <= seq; t++) {
        long long want;
        if (fscanf(f, "%lld", &want) != 1 || want != tok[t])
          bad++;
      }
    }
    CHECK_EQ_INT(0, bad);
    if (bad)
      fprintf(stderr, "  case seq %d seed %lld samples %lld: %d tokens differ\n", seq, seed, num, bad);
    free(tok);
    gv_data_free(&ds);
  }
  CHECK_EQ_INT(8, cases);
  fclose(f);
}

/* numpy: RandomState(5489) first outputs; RandomState(42).permutation(10). */
static void test_mt(void)
{
  struct gv_data_mt mt;
  gv_data_mt_seed(&mt, 5489);
  CHECK_EQ_INT(3499211612u, gv_data_mt_next(&mt));
  CHECK_EQ_INT(581869302u, gv_data_mt_next(&mt));
  int64_t x[10];
  for (int i = 0; i < 10; i++)
    x[i] = i;
  gv_data_mt_seed(&mt, 42);
  gv_data_mt_shuffle(&mt, x, 10);
  const int64_t want[10] = {8, 1, 5, 0, 7, 2, 9, 4, 3, 6};
  for (int i = 0; i < 10; i++)
    CHECK_EQ_INT(want[i], x[i]);
}

/* Same (seed, seq, num_samples) -> same samples; another seed -> another order. */
static void test_determinism(void)
{
  gv_data *a = open_ds(16, 7, 50, NULL, 0), *b = open_ds(16, 7, 50, "1", 0), *c = open_ds(16, 8, 50, NULL, 0);
  if (!a || !b || !c)
    return;
  int32_t ta[17], tb[17], tc[17];
  int same_ab = 1, same_ac = 1;
  for (int64_t i = 0; i < gv_data_num_samples(a); i++) {
    gv_data_get_sample(a, i, ta);
    gv_data_get_sample(b, i, tb);
    gv_data_get_sample(c, i, tc);
    same_ab &= !memcmp(ta, tb, sizeof ta);
    same_ac &= !memcmp(ta, tc, sizeof ta);
  }
  CHECK(same_ab);
  CHECK(!same_ac);
  gv_data_get_sample(a, gv_data_num_samples(a) + 3, tb);   /* wraps around */
  gv_data_get_sample(a, 3, ta);
  CHECK(!memcmp(ta, tb, sizeof ta));
  gv_data_free(&a);
  gv_data_free(&b);
  gv_data_free(&c);
}

/* With seq 40 > the longest document (30), every sample spans a boundary: its tokens
 * are the concatenation of consecutive sequences of the (shuffled) document order. */
static void test_boundaries(void)
{
  gv_data *ds = open_ds(40, 3, 0, NULL, 0);
  if (!ds)
    return;
  const gv_mmidx *ix = gv_data_index(ds);
  int64_t maxlen = 0;
  for (int64_t s = 0; s < gv_mmidx_num_seqs(ix); s++)
    maxlen = gv_mmidx_seq_len(ix, s) > maxlen ? gv_mmidx_seq_len(ix, s) : maxlen;
  CHECK(maxlen < 40);
  CHECK_EQ_INT(gv_mmidx_num_tokens(ix) - 1, gv_data_num_samples(ds) * 40 +
               (gv_mmidx_num_tokens(ix) - 1) % 40);   /* drop_last: floor((T-1)/seq) samples */
  gv_data_free(&ds);
}

/* Rank r of dp ranks gets rows [r*gbs/dp, (r+1)*gbs/dp) of each global batch. */
static void test_dp_split(void)
{
  gv_data *ds = open_ds(8, 11, 200, NULL, 0);
  if (!ds)
    return;
  enum { GBS = 8, SEQ1 = 9, STEPS = 5 };
  int32_t ref[STEPS][GBS][SEQ1], got[GBS * SEQ1];
  for (int s = 0; s < STEPS; s++)
    CHECK_EQ_INT(GV_DATA_OK, gv_data_get_batch(ds, s, GBS, 0, 1, &ref[s][0][0], NULL, 0));
  const int dps[] = {2, 4, 8};
  for (int k = 0; k < 3; k++) {
    int dp = dps[k], local = GBS / dp, same = 1;
    for (int s = 0; s < STEPS; s++)
      for (int r = 0; r < dp; r++) {
        CHECK_EQ_INT(GV_DATA_OK, gv_data_get_batch(ds, s, GBS, r, dp, got, NULL, 0));
        same &= !memcmp(got, &ref[s][r * local][0], sizeof(int32_t) * (size_t)(local * SEQ1));
      }
    CHECK(same);
  }
  CHECK_EQ_INT(2 * 8 + 1 * 4 + 3, gv_data_batch_index(2, 8, 1, 2, 3));
  char err[512] = "";
  CHECK_EQ_INT(GV_DATA_ERR_ARG, gv_data_get_batch(ds, 0, 6, 0, 4, got, err, sizeof err));
  CHECK(strstr(err, "global batch 6") != NULL);
  gv_data_free(&ds);
}

static void test_bad_opts(void)
{
  struct gv_data_opts o = gv_data_opts_default(600, 1);   /* more than the 534 tokens */
  gv_data *ds;
  char err[512] = "";
  CHECK_EQ_INT(GV_DATA_ERR_ARG, gv_data_open(prefix, &o, &ds, err, sizeof err));
  CHECK(strstr(err, "fewer than seq+1") != NULL);
  o = gv_data_opts_default(8, 1);
  o.split = "949,50,1";
  o.split_index = 2;   /* empty: 40 sequences round to 38 + 2 + 0 */
  CHECK_EQ_INT(GV_DATA_ERR_ARG, gv_data_open(prefix, &o, &ds, err, sizeof err));
  CHECK(ds == NULL);
  CHECK(strstr(err, "split 2 of \"949,50,1\" (sequences 40..40) has 0 tokens") != NULL);
  const char *bad[] = {"", "a", "1,-1", "1,2,3,4", "0,0", "1;2"};
  int64_t lo, hi;
  for (int i = 0; i < 6; i++)
    CHECK_EQ_INT(GV_DATA_ERR_ARG, gv_data_split_range(bad[i], 0, 40, &lo, &hi, err, sizeof err));
  CHECK_EQ_INT(GV_DATA_ERR_ARG, gv_data_split_range("1", 3, 40, &lo, &hi, err, sizeof err));
  CHECK_EQ_INT(GV_DATA_OK, gv_data_split_range("949,50,1", 0, 1000, &lo, &hi, err, sizeof err));
  CHECK(lo == 0 && hi == 949);
  CHECK_EQ_INT(GV_DATA_OK, gv_data_split_range("1,1,1", 1, 40, &lo, &hi, err, sizeof err));
  CHECK(lo == 14 && hi == 27);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: test_data_gpt FIXTURES_DIR\n");
    return 2;
  }
  snprintf(prefix, sizeof prefix, "%s/gpt", argv[1]);
  char ref[1100];
  snprintf(ref, sizeof ref, "%s/gpt_samples.txt", argv[1]);
  test_mt();
  test_reference(ref);
  test_determinism();
  test_boundaries();
  test_dp_split();
  test_bad_opts();
  return tu_report("test_data_gpt");
}
