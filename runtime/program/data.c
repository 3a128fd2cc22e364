/* data.c - the Megatron dataset behind a training program's --data: GPT samples of
 * seq + 1 tokens built as Megatron's GPTDataset does (runtime/data/), seeded by --seed,
 * split by --split (train = split 0, validation = split 1, test = split 2). The token ids
 * are checked against the model's vocabulary when the data is opened. The splits a run
 * reads and their messages are shared with the datasets of records (images, pairs): each
 * such split is its records [lo, hi) of Megatron's split, shuffled with --seed (numpy's
 * RandomState(seed).shuffle) and repeated as epochs. `--data synthetic`
 * gives tokens drawn from (seed, sample, position) instead, for timing runs (gvc profile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt_data.h"
#include "program/run.h"

static const char *const split_names[3] = {"training", "validation", "test"};

/* Split `index` of --data, holding `samples` samples; an empty or too small split stops
 * the run before training, named. */
static gv_data *open_split(struct gv_run *r, int index, int64_t samples)
{
  struct gv_data_opts o = gv_data_opts_default((int)r->seq, (uint32_t)r->args.seed);
  o.num_samples = samples;
  o.split = r->args.split;
  o.split_index = index;
  char err[512] = "";
  gv_data *ds = NULL;
  if (gv_data_open(r->args.data, &o, &ds, err, sizeof err) != GV_DATA_OK)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "the %s split (--split %s): %s", split_names[index],
              r->args.split, err);
  return ds;
}

/* Is split `index` given a positive weight by --split (missing weights are 0)? */
static int split_weighted(const char *split, int index)
{
  const char *p = split;
  for (int i = 0; i < index && p; i++)
    p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
  return p && strtod(p, NULL) > 0;
}

/* Every token id of the dataset must be inside the model's vocabulary: checked once when
 * the data is opened, not when a bad sample is first drawn. */
static void check_vocab(const struct gv_run *r, const gv_data *ds)
{
  int64_t seq;
  int32_t lo, hi = gv_mmidx_max_token(gv_data_index(ds), &seq, &lo);
  if (hi >= r->vocab)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s.bin: token id %d (sequence %lld) is outside the model's "
              "vocabulary of %lld ids: the dataset was built with another tokenizer (see gvc data --inspect %s)",
              r->args.data, hi, (long long)seq, (long long)r->vocab, r->args.data);
  if (lo < 0)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s.bin: holds the negative token id %d", r->args.data, lo);
}

static int synthetic(const struct gv_run *r)
{
  return r->args.data && !strcmp(r->args.data, "synthetic");
}

void gv_run_wanted_splits(const struct gv_run *r, int want[3], int64_t samples[3])
{
  samples[0] = (int64_t)r->args.iters * r->args.global_batch;
  samples[1] = samples[2] = (int64_t)r->args.eval_iters * r->args.global_batch;
  want[0] = !r->args.eval_only;
  want[1] = r->args.eval_interval > 0 && !r->args.eval_only;
  want[2] = 0;
  if (!r->args.eval_only)
    return;
  for (int i = 1; i < 3; i++) /* the validation and test splits that --split weighs */
    if (!(want[i] = split_weighted(r->args.split, i)))
      gv_log0(GV_LOG_INFO, "the %s split has no weight in --split %s: not evaluated", split_names[i], r->args.split);
  if (!want[1] && !want[2])
    gv_fatalf(__FILE__, __LINE__, "--eval_only", "gvrt", "--split %s gives the validation and test splits no "
              "weight: nothing to evaluate", r->args.split);
}

/* Split `index` of count records into s, or a fatal error naming file. */
static void split_open(struct gv_run *r, const char *file, const char *records, int64_t count, int index,
                       struct gv_run_split *s)
{
  int64_t lo, hi;
  char err[512] = "";
  if (gv_data_split_range(r->args.split, index, count, &lo, &hi, err, sizeof err) != GV_DATA_OK)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "the %s split (--split %s): %s: %s", split_names[index],
              r->args.split, file, err);
  if (hi <= lo)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "the %s split (--split %s): %s: split %d of \"%s\" (%s %lld..%lld) "
              "has 0 %s", split_names[index], r->args.split, file, index, r->args.split, records, (long long)lo,
              (long long)hi, records);
  s->n = hi - lo;
  s->order = malloc(sizeof(int64_t) * (size_t)s->n);
  GV_CHECK(s->order != NULL, "out of host memory");
  for (int64_t k = 0; k < s->n; k++) s->order[k] = lo + k;
  struct gv_data_mt mt;
  gv_data_mt_seed(&mt, (uint32_t)r->args.seed);
  gv_data_mt_shuffle(&mt, s->order, s->n);
  r->has_split[index] = 1;
}

void gv_run_splits_open(struct gv_run *r, const char *file, const char *records, int64_t count,
                        struct gv_run_split s[3])
{
  int want[3];
  int64_t samples[3];
  gv_run_wanted_splits(r, want, samples);
  for (int i = 0; i < 3; i++)
    if (want[i])
      split_open(r, file, records, count, i, &s[i]);
}

void gv_run_split_free(struct gv_run_split s[3])
{
  for (int i = 0; i < 3; i++) {
    free(s[i].order);
    s[i] = (struct gv_run_split){0};
  }
}

int64_t gv_run_split_record(const struct gv_run *r, const struct gv_run_split s[3], int64_t sample)
{
  int k = r->evaluating ? r->eval_split : 0;
  GV_CHECK(s[k].n > 0, "the %s split of --data is read but was not opened", split_names[k]);
  return s[k].order[sample % s[k].n];
}

void gv_run_data_open(struct gv_run *r)
{
  if (synthetic(r))
    return;
  if (!r->args.data)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt",
              "no training data: give --data PREFIX (a Megatron dataset PREFIX.bin/.idx, see 'gvc data')");
  int want[3];
  int64_t samples[3];
  gv_run_wanted_splits(r, want, samples);
  gv_data **ds[3] = {&r->train, &r->valid, &r->test};
  for (int i = 0; i < 3; i++)
    if (want[i]) {
      *ds[i] = open_split(r, i, samples[i]);
      r->has_split[i] = 1;
    }
  check_vocab(r, r->train ? r->train : r->valid ? r->valid : r->test);
}

void gv_run_data_free(struct gv_run *r)
{
  gv_data_free(&r->train);
  gv_data_free(&r->valid);
  gv_data_free(&r->test);
}

void gv_run_data_sample(struct gv_run *r, int64_t sample, int32_t *tokens)
{
  if (synthetic(r)) { /* splitmix64 of (seed, sample, position) */
    for (int64_t i = 0; i <= r->seq; i++) {
      uint64_t z = r->args.seed * 0x9E3779B97F4A7C15ull + (uint64_t)sample * 0xBF58476D1CE4E5B9ull + (uint64_t)i;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      tokens[i] = (int32_t)((z ^ (z >> 31)) % (uint64_t)r->vocab);
    }
    return;
  }
  gv_data *ds = !r->evaluating ? r->train : r->eval_split == 2 ? r->test : r->valid;
  gv_data_get_sample(ds, sample, tokens);
  for (int64_t i = 0; i <= r->seq; i++)
    if (tokens[i] < 0 || tokens[i] >= r->vocab)
      gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s: token %d of sample %lld is outside the model's vocabulary of %lld",
                r->args.data, tokens[i], (long long)sample, (long long)r->vocab);
}
