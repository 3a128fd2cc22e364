/* data.c - the Megatron dataset behind a training program's --data: GPT samples of
 * seq + 1 tokens built as Megatron's GPTDataset does (runtime/data/), seeded by --seed,
 * split by --split (train = split 0, validation = split 1). `--data synthetic` gives
 * tokens drawn from (seed, sample, position) instead, for timing runs (gvc profile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int synthetic(const struct gv_run *r)
{
  return r->args.data && !strcmp(r->args.data, "synthetic");
}

void gv_run_data_open(struct gv_run *r)
{
  if (synthetic(r))
    return;
  if (!r->args.data)
    gv_fatalf(__FILE__, __LINE__, "--data", "gvrt",
              "no training data: give --data PREFIX (a Megatron dataset PREFIX.bin/.idx, see 'gvc data')");
  r->train = open_split(r, 0, (int64_t)r->args.iters * r->args.global_batch);
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
  if (synthetic(r)) { /* splitmix64 of (seed, sample, position) */
    for (int64_t i = 0; i <= r->seq; i++) {
      uint64_t z = r->args.seed * 0x9E3779B97F4A7C15ull + (uint64_t)sample * 0xBF58476D1CE4E5B9ull + (uint64_t)i;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      tokens[i] = (int32_t)((z ^ (z >> 31)) % (uint64_t)r->vocab);
    }
    return;
  }
  gv_data *ds = r->evaluating ? r->valid : r->train;
  gv_data_get_sample(ds, sample, tokens);
  for (int64_t i = 0; i <= r->seq; i++)
    if (tokens[i] < 0 || tokens[i] >= r->vocab)
      gv_fatalf(__FILE__, __LINE__, "--data", "gvrt", "%s: token %d of sample %lld is outside the model's vocabulary of %lld",
                r->args.data, tokens[i], (long long)sample, (long long)r->vocab);
}
