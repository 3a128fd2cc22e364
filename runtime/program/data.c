/* data.c - the Megatron dataset behind a training program's --data: GPT samples of
 * seq + 1 tokens built as Megatron's GPTDataset does (runtime/data/), seeded by --seed,
 * split by --split (train = split 0, validation = split 1). */
#include <stdio.h>
#include <stdlib.h>

#include "gvrt_data.h"
#include "program/run.h"

static gv_data *open_split(struct gv_run *r, int index, int64_t samples)
{
  struct gv_data_opts o = gv_data_opts_default((int)r->seq, (uint32_t)r->args.seed);
  o.num_samples = samples;
  o.split = r->args.split;
  o.split_index = index;
  struct gv_data_err err;
  gv_data *ds = NULL;
  if (gv_data_open(r->args.data, &o, &ds, &err) != GV_DATA_OK)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s", err.msg);
  return ds;
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

void gv_run_data_open(struct gv_run *r)
{
  if (!r->args.data)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt",
              "no training data: give --data PREFIX (a Megatron dataset PREFIX.bin/.idx, see 'gvc data')");
  r->train = open_split(r, 0, (int64_t)r->args.iters * r->args.global_batch);
  check_vocab(r, r->train);
  if (r->args.eval_interval > 0)
    r->valid = open_split(r, 1, (int64_t)r->args.eval_iters * r->args.global_batch);
}

void gv_run_data_free(struct gv_run *r)
{
  gv_data_free(&r->train);
  gv_data_free(&r->valid);
}

void gv_run_data_sample(struct gv_run *r, int64_t sample, int32_t *tokens)
{
  gv_data *ds = r->evaluating ? r->valid : r->train;
  gv_data_get_sample(ds, sample, tokens);
  for (int64_t i = 0; i <= r->seq; i++)
    if (tokens[i] < 0 || tokens[i] >= r->vocab)
      gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s: token %d of sample %lld is outside the model's vocabulary of %lld",
                r->args.data, tokens[i], (long long)sample, (long long)r->vocab);
}
