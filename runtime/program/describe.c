/* describe.c - the gv_prog_* calls by which a generated program's gvp_describe()
 * declares itself to the runtime (gvrt_program.h). They only record into the run, and a
 * rank keeps only what concerns its own pipeline stage. */
#include <stdlib.h>
#include <string.h>

#include "program/run.h"

void gv_prog_model(void *ctx, const char *name, int64_t world, int64_t pp, int64_t micro_batch, int64_t seq,
                   int64_t vocab)
{
  struct gv_run *r = ctx;
  r->model = name;
  r->world_size = world;
  r->pp = pp;
  r->micro_batch = micro_batch;
  r->seq = seq;
  r->vocab = r->logits_cols = vocab;
  int rank = r->world ? gv_comm_rank(r->world) : 0;
  r->stage = world > 0 && pp > 0 && world % pp == 0 ? (int)(rank / (world / pp)) : 0;
}

void gv_prog_pipeline(void *ctx, int64_t one_f_one_b, int64_t chunks)
{
  struct gv_run *r = ctx;
  r->one_f_one_b = (int)one_f_one_b;
  r->chunks = chunks;
}

void gv_prog_arena(void *ctx, int64_t stage, int64_t kind, int64_t bytes)
{
  struct gv_run *r = ctx;
  GV_CHECK(kind >= 0 && kind < GV_MEM_KINDS, "arena kind %lld out of range", (long long)kind);
  if (stage == r->stage)
    r->plan.arena_bytes[kind] = (size_t)bytes;
}

static void note_tied(struct gv_run *r, const char *name, int64_t stage)
{
  for (int i = 0; i < r->ntied; i++)
    if (!strcmp(r->tied[i].name, name)) {
      r->tied[i].stages |= 1ull << stage;
      return;
    }
  if (r->ntied == r->cap_tied) {
    r->cap_tied = r->cap_tied ? 2 * r->cap_tied : 64;
    r->tied = realloc(r->tied, sizeof *r->tied * (size_t)r->cap_tied);
    GV_CHECK(r->tied != NULL, "out of host memory");
  }
  r->tied[r->ntied++] = (struct gv_run_tied){name, 1ull << stage};
}

void gv_prog_param(void *ctx, const char *name, int64_t stage, int64_t rows, int64_t cols, int64_t split_dim,
                   int64_t zero3_layer, int64_t poff, int64_t goff, int64_t moff, int64_t decay, int64_t init, double std)
{
  struct gv_run *r = ctx;
  GV_CHECK(stage >= 0 && stage < 64, "stage %lld out of range", (long long)stage);
  if (r->pp > 1)
    note_tied(r, name, stage);
  if (stage != r->stage)
    return;
  if (r->nparams == r->cap_params) {
    r->cap_params = r->cap_params ? 2 * r->cap_params : 64;
    r->params = realloc(r->params, sizeof *r->params * (size_t)r->cap_params);
    GV_CHECK(r->params != NULL, "out of host memory");
  }
  /* the shard is resolved once the tp rank is known (gv_run_resolve_shards) */
  r->params[r->nparams++] = (struct gv_run_param){name, stage, rows, cols, 0, 0, rows, cols, poff, goff, moff, decay,
                                                  init, std, (int)split_dim, (int)zero3_layer, 0, -1, NULL, 0,
                                                  NULL, NULL, 0, 0, 0, rows};
}

void gv_prog_vocab(void *ctx, int64_t vocab)
{
  struct gv_run *r = ctx;
  GV_CHECK(vocab > 0 && vocab <= r->logits_cols, "vocabulary %lld of a program whose logits have %lld columns",
           (long long)vocab, (long long)r->logits_cols);
  r->vocab = vocab;
}

/* Parameter `name` of this rank's stage, declared before a call (who) that adds to it. */
static struct gv_run_param *declared(struct gv_run *r, const char *name, int64_t stage, const char *who)
{
  for (int i = 0; i < r->nparams; i++)
    if (!strcmp(r->params[i].name, name))
      return &r->params[i];
  gv_fatalf(__FILE__, __LINE__, who, "gvrt", "parameter %s was not declared on stage %lld", name, (long long)stage);
  return NULL;
}

void gv_prog_vocab_param(void *ctx, const char *name, int64_t stage, int64_t rows)
{
  struct gv_run *r = ctx;
  if (stage != r->stage)
    return;
  struct gv_run_param *p = declared(r, name, stage, "gv_prog_vocab_param");
  GV_CHECK(rows > 0 && rows <= p->rows, "parameter %s: %lld saved rows of %lld", name, (long long)rows,
           (long long)p->rows);
  p->saved_rows = rows;
}

void gv_prog_param_expert(void *ctx, const char *name, int64_t stage)
{
  struct gv_run *r = ctx;
  if (stage == r->stage)
    declared(r, name, stage, "gv_prog_param_expert")->expert = 1;
}

void gv_prog_ep(void *ctx, int64_t ep)
{
  struct gv_run *r = ctx;
  r->ep = (int)ep;
}

void gv_prog_tp_of_ep(void *ctx, int64_t tp_of_ep)
{
  struct gv_run *r = ctx;
  GV_CHECK(tp_of_ep >= 1, "gv_prog_tp_of_ep: degree %lld", (long long)tp_of_ep);
  r->tp_of_ep = (int)tp_of_ep;
}

void gv_prog_param_layer(void *ctx, const char *name, int64_t stage, int64_t layer, int64_t tp)
{
  struct gv_run *r = ctx;
  GV_CHECK(tp >= 0 && layer >= 0, "parameter %s: layer %lld, tp degree %lld", name, (long long)layer, (long long)tp);
  if (tp > 0)
    r->per_layer_tp = 1;
  if (stage != r->stage)
    return;
  struct gv_run_param *p = declared(r, name, stage, "gv_prog_param_layer");
  p->tp = (int)tp;
  p->layer = (int)layer;
}

void gv_prog_grad_reduce(void *ctx, int64_t stage, int64_t per_micro_batch, int64_t acc_off)
{
  struct gv_run *r = ctx;
  if (stage != r->stage)
    return;
  r->grad_per_micro = (int)per_micro_batch;
  r->grad_acc_off = acc_off;
}

void gv_prog_precision(void *ctx, const char *dtype)
{
  struct gv_run *r = ctx;
  GV_CHECK(!strcmp(dtype, "bf16") || !strcmp(dtype, "fp32"), "gv_prog_precision: unknown precision '%s'", dtype);
  r->fdt = strcmp(dtype, "bf16") ? GV_DTYPE_F32 : GV_DTYPE_BF16;
}

void gv_prog_tp(void *ctx, int64_t tp, int64_t consecutive)
{
  struct gv_run *r = ctx;
  r->tp = (int)tp;
  r->tp_consec = (int)consecutive;
}

void gv_prog_cp(void *ctx, int64_t cp)
{
  struct gv_run *r = ctx;
  r->cp = (int)cp;
}

void gv_prog_io(void *ctx, int64_t stage, int64_t tokens_off, int64_t labels_off, int64_t loss_off,
                int64_t slot_stride, int64_t slots)
{
  struct gv_run *r = ctx;
  if (stage != r->stage)
    return;
  r->tokens_off = tokens_off;
  r->labels_off = labels_off;
  r->loss_off = loss_off;
  r->io_stride = slot_stride;
  r->slots = slots;
}

void gv_prog_src(void *ctx, int64_t stage, int64_t src_off, int64_t src_seq)
{
  struct gv_run *r = ctx;
  r->s2s.seq = src_seq;
  if (stage == r->stage)
    r->s2s.src_off = src_off;
}

void gv_prog_boundary(void *ctx, int64_t stage, int64_t in_act, int64_t in_grad, int64_t out_act, int64_t out_grad,
                      int64_t in_elems, int64_t out_elems)
{
  struct gv_run *r = ctx;
  if (stage != r->stage)
    return;
  r->in_act = in_act;
  r->in_grad = in_grad;
  r->out_act = out_act;
  r->out_grad = out_grad;
  r->in_elems = in_elems;
  r->out_elems = out_elems;
}

void gv_prog_stage(void *ctx, int64_t stage, void *fwd, void *bwd, void *zero_grads)
{
  struct gv_run *r = ctx;
  if (stage == r->stage)
    r->fns = (struct gv_run_stage){(gv_prog_fn)fwd, (gv_prog_fn)bwd, (gv_prog_fn)zero_grads};
}

void gv_prog_logits(void *ctx, int64_t stage, int64_t logits_off)
{
  struct gv_run *r = ctx;
  if (stage != r->stage)
    return;
  r->logits_off = logits_off;
  r->has_logits = 1;
}

void gv_prog_logits_rows(void *ctx, int64_t stage, int64_t rows)
{
  struct gv_run *r = ctx;
  if (stage == r->stage)
    r->logits_rows = rows;
}

void gv_prog_logits_cols(void *ctx, int64_t stage, int64_t cols, int64_t vtp)
{
  struct gv_run *r = ctx;
  GV_CHECK(cols > 0 && vtp > 1, "vocabulary-split logits: %lld columns over %lld ranks", (long long)cols, (long long)vtp);
  if (stage == r->stage) {
    r->logits_split_cols = cols;
    r->logits_vtp = (int)vtp;
  }
}

void gv_prog_decode(void *ctx, int64_t stage, void *fn, int64_t tokens_off, int64_t logits_off, int64_t acts_bytes,
                    int64_t caches, int64_t positions)
{
  struct gv_run *r = ctx;
  if (stage != r->stage)
    return;
  r->dec = (struct gv_run_decode){.fn = (gv_prog_fn)fn, .tokens_off = tokens_off, .logits_off = logits_off,
                                  .acts_bytes = acts_bytes, .caches = caches, .positions = positions};
}

void gv_prog_attention(void *ctx, int64_t B, int64_t T, int64_t S, int64_t H, int64_t KV, int64_t D)
{
  struct gv_run *r = ctx;
  int64_t a[6] = {B, T, S, H, KV, D};
  memcpy(r->attn, a, sizeof a);
}

void gv_prog_zero(void *ctx, int64_t stage, int64_t level, int64_t shard_bytes)
{
  struct gv_run *r = ctx;
  if (stage != r->stage)
    return;
  r->zero = (int)level;
  r->shard_bytes = shard_bytes;
}

void gv_prog_batch(void *ctx, int64_t global_batch)
{
  ((struct gv_run *)ctx)->default_global_batch = (int)global_batch;
}

void gv_prog_zero3_layer(void *ctx, int64_t stage, int64_t layer, int64_t pshard_off, int64_t gshard_off,
                         int64_t mshard_off, int64_t range)
{
  struct gv_run *r = ctx;
  if (stage != r->stage)
    return;
  GV_CHECK(layer >= 0 && layer < 1000000, "ZeRO-3 layer %lld out of range", (long long)layer);
  if (layer >= r->nzl) {
    r->zl = realloc(r->zl, sizeof *r->zl * (size_t)(layer + 1));
    GV_CHECK(r->zl != NULL, "out of host memory");
    memset(r->zl + r->nzl, 0, sizeof *r->zl * (size_t)(layer + 1 - r->nzl));
    r->nzl = (int)layer + 1;
  }
  r->zl[layer] = (struct gv_run_zlayer){pshard_off, gshard_off, mshard_off, range, NULL, 0, 1};
}
