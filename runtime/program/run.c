/* run.c - gv_main: the training loop every generated program runs. The program's
 * gvp_describe() declares the plan and its stage functions; this file allocates this
 * rank's arenas once, initialises parameters by global name (the same values for every
 * strategy), feeds micro-batches through the pipeline schedule, reduces gradients over
 * data-parallel replicas and tied weights, clips by the global norm over distinct
 * shards, steps AdamW (stopping at a non-finite loss or norm), logs, evaluates, generates
 * text (sample.c) and writes the step-0 dump for the tests.
 * The arenas may be device memory (--device cuda): this file only computes addresses in
 * them; every value it reads or writes (init, batches, losses, logits, dumps) goes through
 * a host buffer and gv_dev_memcpy, and every operation on them through the backend. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "gvrt_safetensors.h"
#include "program/run.h"
#include "program/tensorfile.h"


static size_t shard_numel(const struct gv_run_param *p) { return gv_run_shard_numel(p); }


/* ---- parameters ---- */

/* Elements [first, first + n) of p (held here) from fp32 host values h (clobbered): the
 * parameter, and under bf16 mixed precision the fp32 master weights of the owned ones, the
 * parameter then being their rounding. */
static void store_param(struct gv_run *r, const struct gv_run_param *p, size_t first, float *h, size_t n)
{
  size_t of, on;
  if (r->fdt != GV_DTYPE_F32 && gv_run_owned(r, p, &of, &on) && of >= first && of + on <= first + n)
    gv_dev_memcpy(&r->be, gv_run_owned_state(r, p, of, GV_STATE_MASTER), h + (of - first), sizeof(float) * on,
                  GV_COPY_H2D);
  gv_run_from_host_f32(r, gv_run_param_at(r, p, first), h, n);
}

/* Each shard is generated on the host and copied into the parameter arena. */
static void init_params(struct gv_run *r)
{
  for (int i = 0; i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    size_t first, n;
    if (!gv_run_held(r, p, &first, &n))
      continue;
    float *w = gv_run_host_scratch(r, sizeof(float) * n);
    if (p->init == GV_INIT_ZEROS || p->init == GV_INIT_ONES)
      gv_init_fill(w, n, p->init == GV_INIT_ONES ? 1.0f : 0.0f);
    else if (gv_run_zl(r, p)) /* a flat part of this rank's (tp) block: element by element, by global index */
      for (size_t e = 0; e < n; e++) {
        size_t k = first + e, row = (size_t)p->row0 + k / (size_t)p->shard_cols, col = (size_t)p->col0 + k % (size_t)p->shard_cols;
        w[e] = gv_init_normal_at(gv_init_key(r->args.seed, p->name), row * (size_t)p->cols + col, 0.0f, (float)p->std);
      }
    else
      gv_init_normal_block(w, (size_t)p->shard_rows, (size_t)p->shard_cols, (size_t)p->row0, (size_t)p->col0,
                           (size_t)p->cols, gv_init_key(r->args.seed, p->name), 0.0f, (float)p->std);
    store_param(r, p, first, w, n);
  }
}

/* Copy this rank's shard of a global rows x cols record into the parameter. */
static void load_shard(const struct gv_run_param *p, const float *global, float *dst)
{
  for (int64_t i = 0; i < p->shard_rows; i++)
    memcpy(dst + i * p->shard_cols, global + (p->row0 + i) * p->cols + p->col0, sizeof(float) * (size_t)p->shard_cols);
}

/* Is PATH a named-tensor file (tensorfile.h: a fixture or checkpoint), by its magic? */
static int is_tensorfile(const char *path)
{
  int32_t magic = 0;
  FILE *f = fopen(path, "rb");
  if (f) {
    if (fread(&magic, 4, 1, f) != 1)
      magic = 0;
    fclose(f);
  }
  return magic == GV_TF_MAGIC_FIXTURE || magic == GV_TF_MAGIC_CKPT;
}

static void init_from_fail(const char *path, const char *key, const struct gv_run_param *p)
{
  gv_fatalf(__FILE__, __LINE__, "--init_from", "gvrt", "%s: no f32 record '%s' with %lld elements", path, key,
            (long long)(p->rows * p->cols));
}

/* A safetensors file keyed by global parameter names (gvc convert --from-hf): this
 * rank's elements [first, first + n) of each parameter's block (F32, BF16 or F16 in the
 * file), read with pread: no rank reads more than its own part. */
static void init_from_safetensors(struct gv_run *r, const char *path)
{
  gv_st *f;
  char err[1024];
  if (gv_st_open(&f, path, err, sizeof err))
    gv_fatalf(__FILE__, __LINE__, "--init_from", "gvrt", "%s", err);
  for (int i = 0; i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    const struct gv_st_tensor *t = gv_st_find(f, p->name);
    if (!t)
      init_from_fail(path, p->name, p);
    size_t first = 0, n = shard_numel(p);
    if (gv_run_zl(r, p) && !gv_run_held(r, p, &first, &n))
      continue;
    float *h = gv_run_host_scratch(r, sizeof(float) * (n ? n : 1));
    if (gv_run_read_part(f, t, p, first, n, h, err, sizeof err))
      gv_fatalf(__FILE__, __LINE__, "--init_from", "gvrt", "%s", err);
    store_param(r, p, first, h, n);
  }
  gv_st_close(f);
}

static void init_from_file(struct gv_run *r, const char *path)
{
  if (!is_tensorfile(path)) {
    init_from_safetensors(r, path);
    return;
  }
  struct gv_tf tf;
  char err[512], key[512];
  if (gv_tf_read(&tf, path, err, sizeof err))
    gv_fatalf(__FILE__, __LINE__, "--init_from", "gvrt", "%s", err);
  for (int i = 0; i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    snprintf(key, sizeof key, "param/%s", p->name);
    const struct gv_tf_record *rec = gv_tf_find(&tf, key);
    if (!rec || rec->dtype != GV_TF_F32 || rec->numel != (size_t)(p->rows * p->cols))
      init_from_fail(path, key, p);
    size_t first = 0, n = shard_numel(p);
    float *h = gv_run_host_scratch(r, sizeof(float) * n);
    if (gv_run_zl(r, p)) {
      if (!gv_run_held(r, p, &first, &n))
        continue;
      for (size_t e = 0; e < n; e++) {
        size_t k = first + e, row = (size_t)p->row0 + k / (size_t)p->shard_cols;
        h[e] = ((const float *)rec->data)[row * (size_t)p->cols + (size_t)p->col0 + k % (size_t)p->shard_cols];
      }
    } else {
      load_shard(p, rec->data, h);
    }
    store_param(r, p, first, h, n);
  }
  gv_tf_free(&tf);
}

/* ---- reductions across ranks ---- */

/* Gradients of weights held by several stages (tied): summed over the ranks holding them. */
static void reduce_tied(struct gv_run *r)
{
  int world = gv_comm_size(r->world), per_stage = world / (int)r->pp;
  int *colors = malloc(sizeof(int) * (size_t)world);
  for (int t = 0; t < r->ntied; t++) {
    uint64_t set = r->tied[t].stages;
    if (!(set & (set - 1)))
      continue; /* on one stage only */
    for (int k = 0; k < world; k++)
      colors[k] = set >> (k / per_stage) & 1 ? k % per_stage : per_stage + k;
    struct gv_comm *g = gv_comm_partition(r->world, colors);
    for (int i = 0; i < r->nparams; i++)
      if (!strcmp(r->params[i].name, r->tied[t].name))
        gv_comm_all_reduce(g, gv_run_grad(r, &r->params[i]), shard_numel(&r->params[i]), r->fdt, GV_REDUCE_SUM);
  /* (a tied weight is never a ZeRO-3 block parameter: those are read by their block only) */
  }
  free(colors);
}

/* ---- one step ---- */

static double run_step(struct gv_run *r, struct gv_run_feed *fd, int step, int backward)
{
  int64_t nmicro = r->args.global_batch / r->data_size / r->micro_batch;
  fd->first = (int64_t)step * r->args.global_batch + (int64_t)r->data_rank * nmicro * r->micro_batch;
  r->step_first_sample = fd->first;
  r->nmicro = nmicro;
  if (backward)
    gv_run_tl_begin(r);
  r->loss_scale = gv_run_feed_loss_scale(r, fd, (int64_t)step * r->args.global_batch, r->args.global_batch);
  double loss = gv_pipe_step(r, nmicro, backward, gv_run_feed_load, r->evaluating ? gv_run_feed_scored : NULL, fd);
  if (r->dp_size > 1 || r->pp > 1 || r->tp > 1) { /* the loss is scaled by 1/global tokens: sums give the mean */
    float lf = (float)loss;          /* fp32 sum over ranks: relative error ~1e-7 */
    gv_comm_all_reduce_host(r->world, &lf, 1, GV_DTYPE_F32, GV_REDUCE_SUM); /* only last stages hold a loss */
    loss = lf / r->tp;                                                  /* every tp rank computes it */
  }
  if (backward) { /* ddp: wait for the reductions started in backward (or finish them) */
    gv_run_tl_reduce(r, 0);
    gv_run_reduce_grads(r);
  }
  if (backward && r->pp > 1)
    reduce_tied(r);
  for (int i = 0; backward && r->tp > 1 && i < r->nparams; i++) /* sequence parallel: norms saw their rows only */
    if (r->params[i].split_dim == -2)
      gv_comm_all_reduce(r->tp_group, gv_run_grad(r, &r->params[i]), shard_numel(&r->params[i]), r->fdt,
                         GV_REDUCE_SUM);
  if (backward) {
    gv_run_reduce_zero2(r);
    gv_run_tl_reduce(r, 1);
  }
  return loss;
}

/* The global gradient norm, the same on every rank. */
static double grad_norm(struct gv_run *r)
{
  size_t first, n;
  int ng = 0;
  /* the norm over distinct shards: a replica (dp without ZeRO, tp-replicated weights, the
   * second copy of a tied weight) is counted on one rank only */
  for (int i = 0; i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    if (gv_run_unique_owner(r, p) && gv_run_owned(r, p, &first, &n))
      r->norm_ts[ng++] = gv_run_vals(r, gv_run_owned_grad(r, p, first), n);
  }
  double sq = gv_sumsq_multi(&r->be, r->norm_ts, ng); /* cpu: gv_optim_sq_sum_multi itself */
  if (gv_comm_size(r->world) > 1) {
    double f = sq;
    gv_comm_all_reduce_host(r->world, &f, 1, GV_DTYPE_F64, GV_REDUCE_SUM);
    sq = f;
  }
  return sqrt(sq);
}

/* The optimizer step on gradients of global norm `norm`, clipped by --clip_grad. */
static void clip_and_step(struct gv_run *r, const struct gv_lr_schedule *sched, int step, double norm)
{
  size_t first, n;
  float coef = r->args.clip_grad > 0 ? gv_optim_clip_coef(norm, (float)r->args.clip_grad) : 1.0f;
  struct gv_adamw opt = {(float)r->args.beta1, (float)r->args.beta2, (float)r->args.eps, (float)r->args.weight_decay};
  float lr = (float)gv_lr_at(sched, step);
  /* one multi-tensor AdamW over this rank's owned parts, the clipping coefficient applied
   * to the gradients on the way; mixed precision: the fp32 masters step and the bf16
   * parameters are rewritten as their rounding (only addresses are computed here: the
   * arenas may be device memory) */
  struct gv_adamw_tensor *ts = r->opt_ts;
  int nt = 0;
  for (int i = 0; i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    if (!gv_run_owned(r, p, &first, &n))
      continue;
    int low = r->fdt != GV_DTYPE_F32;
    ts[nt++] = (struct gv_adamw_tensor){low ? gv_run_owned_state(r, p, first, GV_STATE_MASTER) : gv_run_param_at(r, p, first),
                                        gv_run_owned_grad(r, p, first), gv_run_owned_state(r, p, first, GV_STATE_M),
                                        gv_run_owned_state(r, p, first, GV_STATE_V),
                                        low ? gv_run_param_at(r, p, first) : NULL, (int64_t)n,
                                        r->args.decay_all || p->decay};
  }
  gv_adamw_multi(&r->be, &opt, ts, nt, r->fdt, step + 1, lr, coef < 1.0f ? coef : 1.0f);
  if (r->zero && r->shard_bytes) /* every replica gets the updated parameters back */
    gv_comm_all_gather(r->dp, r->bases[GV_MEM_PARAMS], r->bases[GV_MEM_PARAMS] + (int64_t)r->dp_rank * r->shard_bytes,
                       gv_run_flat_shard_numel(r), r->fdt);
  for (int i = 0; i < r->nparams; i++) /* per parameter, over its own dp group */
    if (gv_run_zero2_param(r, &r->params[i])) {
      char *w = r->bases[GV_MEM_PARAMS] + r->params[i].poff;
      size_t c = gv_run_zero2_chunk(&r->params[i]);
      gv_comm_all_gather(r->params[i].dp_group, w, w + (size_t)r->params[i].dp_rank * c * gv_run_fsz(r), c, r->fdt);
    }
}

/* A step whose loss or gradient norm is not finite: stopped before its optimizer step and
 * before any save, or (--skip_nonfinite_steps) skipped as Megatron does. Returns 1 to skip.
 * Loss and norm are all-reduced, so every rank decides the same. */
static int nonfinite_step(struct gv_run *r, int step, double loss, double norm)
{
  if (isfinite(loss) && isfinite(norm))
    return 0;
  if (!r->args.skip_nonfinite_steps)
    gv_fatalf(__FILE__, __LINE__, "training", "gvrt", "step %d: loss %g, gradient norm %g: not finite; stopped "
              "before its optimizer step and before any later save (a lower --lr, --clip_grad, or "
              "--skip_nonfinite_steps to skip such steps)", step, loss, norm);
  gv_log0(GV_LOG_WARN, "step %d: loss %g, gradient norm %g: not finite; step skipped (--skip_nonfinite_steps)", step,
          loss, norm);
  return 1;
}

/* An evaluation: the mean loss over --eval_iters batches of a split (forward only), and a
 * classifier's accuracy over them (-1: the program does not classify; NaN: no logits kept). */
struct eval { double loss, accuracy; };

static struct eval evaluate(struct gv_run *r, struct gv_run_feed *fd, int split)
{
  double total = 0;
  r->eval_split = split;
  r->evaluating = 1;
  r->eval_correct = r->eval_counted = 0;
  for (int i = 0; i < r->args.eval_iters; i++)
    total += run_step(r, fd, i, 0);
  r->evaluating = 0;
  return (struct eval){total / r->args.eval_iters, gv_run_feed_accuracy(r, fd)};
}

/* "PPL P" (what a language model's loss means), or a classifier's "ACC A" into buf. */
static const char *eval_metric(const struct eval *e, const char *ppl, const char *acc, char *buf, size_t n)
{
  if (e->accuracy < 0)
    snprintf(buf, n, "%s %.6g", ppl, exp(e->loss));
  else if (isnan(e->accuracy))
    snprintf(buf, n, "%s n/a (no rank keeps the logits)", acc);
  else
    snprintf(buf, n, "%s %.6f", acc, e->accuracy);
  return buf;
}

/* --eval_only: loss and perplexity (or accuracy) on the validation and test splits that exist. */
static void eval_only(struct gv_run *r, struct gv_run_feed *fd, int step)
{
  char m[64];
  if (!r->has_split[1] && !r->has_split[2])
    gv_fatalf(__FILE__, __LINE__, "--eval_only", "gvrt", "needs --data PREFIX (its validation and test splits), "
              "not a fixed --batch_from batch");
  for (int i = 1; i < 3; i++) {
    if (!r->has_split[i])
      continue;
    struct eval e = evaluate(r, fd, i);
    gv_log0(GV_LOG_INFO, "eval_only (weights of step %d) | %s loss %.9g | %s | %d batches of %d samples", step,
            i == 2 ? "test" : "validation", e.loss, eval_metric(&e, "perplexity", "accuracy", m, sizeof m),
            r->args.eval_iters, r->args.global_batch);
  }
}

/* The file of a test dump: PATH itself on one rank, PATH.rank<r> on each of several. */
static void rank_path(const struct gv_run *r, const char *path, char *file, size_t n)
{
  if (gv_comm_size(r->world) > 1)
    snprintf(file, n, "%s.rank%d", path, gv_comm_rank(r->world));
  else
    snprintf(file, n, "%s", path);
}

/* ---- outputs: the test dumps (samples: sample.c) ---- */

/* A test dump's file into place, or a fatal error saying why (ok 0: a record failed, err
 * says why). */
static void commit_or_fail(struct gv_tf_writer *f, int ok, char *err, size_t errn, const char *option)
{
  if (ok && !gv_tf_commit(f, err, errn))
    return;
  if (!ok)
    gv_tf_abort(f);
  gv_fatalf(__FILE__, __LINE__, option, "gvrt", "%s", err);
}

static void dump_state(struct gv_run *r, const char *path, double loss)
{
  int32_t header[64] = {GV_TF_MAGIC_CKPT, 1};
  char file[4096], key[512], err[4200];
  rank_path(r, path, file, sizeof file);
  struct gv_tf_writer *f = gv_tf_begin(file, header, err, sizeof err);
  int ok = f != NULL;
  int64_t one = 1, ldims[3] = {r->micro_batch, r->img.channels ? 1 : r->seq, r->logits_cols}; /* images: a row each */
  if (ok && r->has_logits && !r->logits_rows && !r->logits_split_cols) { /* (vsp, vtp: some rows or columns only) */
    size_t n = (size_t)(ldims[0] * ldims[1] * ldims[2]);
    ok = !gv_tf_put(f, "logits", GV_TF_F32, 3, ldims, gv_run_to_host_f32(r, r->bases[GV_MEM_ACTS] + r->logits_off, n),
                   err, sizeof err);
  }
  ok = ok && !gv_tf_put(f, "loss", GV_TF_F64, 1, &one, &loss, err, sizeof err);
  for (int i = 0; ok && i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    int64_t dims[2] = {p->shard_rows, p->shard_cols};
    snprintf(key, sizeof key, "grad/%s", p->name);
    ok = !gv_tf_put(f, key, GV_TF_F32, p->rows == 1 ? 1 : 2, p->rows == 1 ? dims + 1 : dims,
                    gv_run_to_host_f32(r, gv_run_grad(r, p), shard_numel(p)), err, sizeof err);
  }
  commit_or_fail(f, ok, err, sizeof err, "--dump");
}

/* --dump_params: this rank's part of every parameter after training, with where it sits in
 * the whole tensor: "at/NAME" = i32 {rows, cols, row0, col0, shard_rows, shard_cols, first,
 * n} (a tp block of shard_rows x shard_cols at (row0, col0), of which elements
 * [first, first + n) of its row-major order are here: all of them, or a ZeRO-3 rank's part)
 * and "param/NAME" = those n floats. One file per rank (PATH.rank<r>) when there are several. */
static void dump_params(struct gv_run *r, const char *path)
{
  int32_t header[64] = {GV_TF_MAGIC_CKPT, 1};
  char file[4096], key[600], err[4200];
  rank_path(r, path, file, sizeof file);
  struct gv_tf_writer *f = gv_tf_begin(file, header, err, sizeof err);
  int ok = f != NULL;
  for (int i = 0; ok && i < r->nparams; i++) {
    const struct gv_run_param *p = &r->params[i];
    size_t first, n;
    if (!gv_run_held(r, p, &first, &n))
      continue;
    int32_t at[8] = {(int32_t)p->rows, (int32_t)p->cols, (int32_t)p->row0, (int32_t)p->col0,
                     (int32_t)p->shard_rows, (int32_t)p->shard_cols, (int32_t)first, (int32_t)n};
    int64_t eight = 8, dn = (int64_t)n;
    snprintf(key, sizeof key, "at/%s", p->name);
    ok = !gv_tf_put(f, key, GV_TF_I32, 1, &eight, at, err, sizeof err);
    snprintf(key, sizeof key, "param/%s", p->name);
    ok = ok && !gv_tf_put(f, key, GV_TF_F32, 1, &dn, gv_run_to_host_f32(r, gv_run_param_at(r, p, first), n),
                          err, sizeof err);
  }
  commit_or_fail(f, ok, err, sizeof err, "--dump_params");
}

/* ---- main ---- */

/* Per-layer tp: the tp and data-parallel groups of every degree dividing the base degree,
 * and the row-exchange groups of each pair small < large (colour: the stage, the rank's
 * large-degree group and its small-degree index), all made on every rank in one order. */
static void setup_degree_groups(struct gv_run *r)
{
  struct gv_run_degree_groups *d = &r->degs;
  int W = (int)r->world_size, per = W / (int)r->pp;
  for (int t = 1; t <= r->tp; t++)
    if (r->tp % t == 0) {
      GV_CHECK(d->n < GV_RUN_MAX_DEGREES, "more than %d tp degrees", GV_RUN_MAX_DEGREES);
      struct gv_layout l = {W, (int)r->pp, t, r->tp_consec};
      d->deg[d->n] = t;
      d->tp[d->n] = gv_comm_layout_group(r->world, &l, GV_GROUP_TP);
      d->dp[d->n] = gv_comm_layout_group(r->world, &l, GV_GROUP_DP);
      d->n++;
    }
  int *colors = malloc(sizeof *colors * (size_t)W);
  GV_CHECK(colors != NULL, "out of host memory");
  for (int a = 0; a < d->n; a++)
    for (int b = a + 1; b < d->n; b++) {
      int ts = d->deg[a], tl = d->deg[b];
      for (int w = 0; w < W; w++) {
        int off = w % per;
        colors[w] = (w / per) * per + (off / tl) * ts + off % ts;
      }
      d->rows[a][b] = gv_comm_partition(r->world, colors);
    }
  free(colors);
}

static int degree_index(const struct gv_run *r, int64_t t)
{
  for (int i = 0; i < r->degs.n; i++)
    if (r->degs.deg[i] == t)
      return i;
  gv_fatalf(__FILE__, __LINE__, "degree_index", "gvrt", "no tp groups of degree %lld (base degree %d)", (long long)t, r->tp);
}

struct gv_comm *gv_run_tp_group(struct gv_run *r, int64_t group)
{
  return group <= 0 ? r->tp_group : r->degs.tp[degree_index(r, group)];
}

struct gv_comm *gv_run_rows_group(struct gv_run *r, int64_t small, int64_t large)
{
  int a = degree_index(r, small), b = degree_index(r, large);
  GV_CHECK(a < b, "row exchange between degrees %lld and %lld", (long long)small, (long long)large);
  return r->degs.rows[a][b];
}

/* A partition of every stage's and tp index's dp group by its ranks' dp index d: into the
 * groups of k consecutive indices (d / k), or, strided, of the indices equal modulo k
 * (d % k). Every rank makes it, in the same order. */
static struct gv_comm *dp_partition(struct gv_run *r, int k, int strided)
{
  int W = (int)r->world_size, *colors = malloc(sizeof *colors * (size_t)W);
  GV_CHECK(colors != NULL, "out of host memory");
  struct gv_layout l = {W, (int)r->pp, r->tp, r->tp_consec};
  int per = strided ? k : r->dp_size / k;
  for (int w = 0; w < W; w++) {
    int s, t, d;
    gv_layout_coords(&l, w, &s, &t, &d);
    colors[w] = (s * r->tp + t) * per + (strided ? d % k : d / k);
  }
  struct gv_comm *c = gv_comm_partition(r->world, colors);
  free(colors);
  return c;
}

/* Context parallelism: dp-group rank q is cp index q % cp and data index q / cp; the cp group
 * is the ranks of one dp group with the same data index (gvrt_entries.h, prog_cp). */
static void setup_cp_group(struct gv_run *r)
{
  if (r->cp < 1)
    r->cp = 1;
  GV_CHECK(r->dp_size % r->cp == 0, "the %d data-parallel ranks of a stage are not divisible by cp=%d", r->dp_size,
           r->cp);
  r->cp_rank = r->dp_rank % r->cp;
  r->data_rank = r->dp_rank / r->cp;
  r->data_size = r->dp_size / r->cp;
  if (r->cp > 1)
    r->cp_group = dp_partition(r, r->cp, 0);
}

/* Expert parallelism: dp-group rank q is ep index q % ep of the ep group q / ep; the
 * expert-data-parallel group is the ranks of one stage and tp index with the same ep index
 * (gvrt_entries.h, prog_ep). */
static void setup_ep_groups(struct gv_run *r)
{
  if (r->ep <= 1) {
    r->ep = 1;
    return;
  }
  GV_CHECK(r->dp_size % r->ep == 0 && r->cp == 1, "the %d data-parallel ranks of a stage are not divisible by ep=%d "
           "(or cp=%d is set)", r->dp_size, r->ep, r->cp);
  r->ep_group = dp_partition(r, r->ep, 0);
  r->edp_group = dp_partition(r, r->ep, 1);
  r->ep_rank = gv_comm_rank(r->ep_group);
}

static void setup_groups(struct gv_run *r)
{
  if (gv_comm_size(r->world) == 1 && r->world_size > 1) /* started without a launcher */
    gv_fatalf(__FILE__, __LINE__, "gv_main", "gvrt",
              "this program runs on %lld ranks but was started as one process: launch it with mpirun -n %lld %s ...",
              (long long)r->world_size, (long long)r->world_size, r->argv[0]);
  if (gv_comm_size(r->world) != r->world_size)
    gv_fatalf(__FILE__, __LINE__, "gv_main", "gvrt",
              "this program was compiled for %lld ranks but runs with %d: launch it with mpirun -n %lld, or recompile "
              "for %d ranks with --num_nodes/--num_gpus_per_node", (long long)r->world_size, gv_comm_size(r->world),
              (long long)r->world_size, gv_comm_size(r->world));
  if (r->tp < 1)
    r->tp = 1;
  struct gv_layout l = {(int)r->world_size, (int)r->pp, r->tp, r->tp_consec};
  r->dp = gv_comm_layout_group(r->world, &l, GV_GROUP_DP);
  r->pp_group = gv_comm_layout_group(r->world, &l, GV_GROUP_PP);
  r->tp_group = gv_comm_layout_group(r->world, &l, GV_GROUP_TP);
  r->dp_rank = gv_comm_rank(r->dp);
  r->dp_size = gv_comm_size(r->dp);
  r->tp_rank = gv_comm_rank(r->tp_group);
  setup_cp_group(r);
  setup_ep_groups(r);
  if (r->per_layer_tp)
    setup_degree_groups(r);
  for (int i = 0; i < r->nparams; i++) { /* this rank's block of each tp-split parameter */
    struct gv_run_param *p = &r->params[i];
    int t = p->tp > 0 ? p->tp : r->tp;
    p->tp_group = r->per_layer_tp ? r->degs.tp[degree_index(r, t)] : r->tp_group;
    p->dp_group = r->per_layer_tp ? r->degs.dp[degree_index(r, t)] : p->expert && r->ep > 1 ? r->edp_group : r->dp;
    p->tp_rank = gv_comm_rank(p->tp_group);
    p->dp_rank = gv_comm_rank(p->dp_group);
    if (p->zlayer >= 0 && p->zlayer < r->nzl) { /* a ZeRO-3 layer is sharded over its own dp group */
      struct gv_run_zlayer *z = &r->zl[p->zlayer];
      z->dp = p->dp_group;
      z->dp_rank = p->dp_rank;
      z->dp_size = gv_comm_size(p->dp_group);
    }
    if (p->split_dim == 0) {
      p->shard_rows = p->rows / t;
      p->row0 = p->tp_rank * p->shard_rows;
    } else if (p->split_dim == 1) {
      p->shard_cols = p->cols / t;
      p->col0 = p->tp_rank * p->shard_cols;
    }
    if (p->expert && r->ep > 1) { /* this ep rank's experts: a block of rows */
      GV_CHECK(p->rows % r->ep == 0, "expert parameter %s: %lld rows over ep=%d", p->name, (long long)p->rows, r->ep);
      p->shard_rows = p->rows / r->ep;
      p->row0 = r->ep_rank * p->shard_rows;
    }
  }
}

static void check_program(struct gv_run *r)
{
  if (!r->fns.fwd || !r->fns.bwd || !r->fns.zero_grads)
    gv_fatalf(__FILE__, __LINE__, "gvp_describe", "gvrt", "the program declared no functions for stage %d", r->stage);
  if (r->args.global_batch <= 0)
    r->args.global_batch = r->default_global_batch > 0 ? r->default_global_batch
                                                      : (int)(r->micro_batch * r->data_size * (r->chunks > 0 ? r->chunks : 1));
  if (r->args.global_batch % (r->micro_batch * r->data_size))
    gv_fatalf(__FILE__, __LINE__, "--global_train_batch_size", "gvrt",
              "global batch %d is not a multiple of micro-batch %lld x data-parallel degree %d", r->args.global_batch,
              (long long)r->micro_batch, r->data_size);
}

static size_t planned_bytes(const struct gv_run *r)
{
  size_t planned = 0;
  for (int k = 0; k < GV_MEM_KINDS; k++)
    planned += r->plan.arena_bytes[k];
  return planned;
}

/* Every rank: the process's real peak resident set (getrusage's ru_maxrss, /proc's VmHWM)
 * beside the plan's arenas, and on a GPU the device memory in use: the arenas are only
 * part of what a rank holds (libraries, staging buffers, the CUDA context, cuBLAS, NCCL). */
static void log_memory(struct gv_run *r, const char *when)
{
  struct rusage ru;
  size_t used = 0, total = 0;
  double mib = 1048576.0, peak = getrusage(RUSAGE_SELF, &ru) ? 0.0 : (double)ru.ru_maxrss * 1024.0;
  char dev[256] = "";
  gv_backend_mem_info(&r->be, &used, &total);
  if (total)
    snprintf(dev, sizeof dev, "; device memory in use %.0f of %.0f MiB (the rest beside the arenas: CUDA context, "
             "cuBLAS, NCCL communicators, other processes on this GPU)", (double)used / mib, (double)total / mib);
  gv_log(GV_LOG_INFO, "memory %s: peak resident set %.1f MiB (host, VmHWM); the plan's arenas %.2f MiB (%.2f MiB "
         "allocated)%s", when, peak / mib, (double)planned_bytes(r) / mib, (double)r->be.allocated_bytes / mib, dev);
}

static void log_step(struct gv_run *r, const struct gv_lr_schedule *sched, int step, double loss, double norm,
                     double dt, double elapsed)
{
  gv_log0(GV_LOG_INFO,
          "step %d/%d | loss %.9g | lr %.4e | grad_norm %.6g | %.1f ms/step | %.0f tokens/s | mem %.2f/%.2f MiB "
          "(used/planned) | ETA %.0fs",
          step, r->args.iters, loss, gv_lr_at(sched, step), norm, 1e3 * dt,
          (double)r->args.global_batch * (double)r->seq / dt, (double)r->be.allocated_bytes / 1048576.0,
          (double)planned_bytes(r) / 1048576.0, elapsed / (step + 1) * (r->args.iters - step - 1));
  if (step == 0) /* after a whole step: cuBLAS and NCCL have made their buffers */
    log_memory(r, "after step 0");
}

/* Every arena starts at zero through the backend: AdamW's moments must, and device
 * allocations (cudaMalloc) are not cleared (on the cpu backend this writes zeros over
 * fresh pages: no value changes). */
static void zero_arenas(struct gv_run *r)
{
  for (int k = 0; k < GV_MEM_KINDS; k++)
    if (r->arenas.bytes[k] >= sizeof(float)) {
      struct gv_tensor t = gv_tensor_4d(r->arenas.base[k], GV_DTYPE_F32, (int64_t)(r->arenas.bytes[k] / sizeof(float)), 0, 0, 0);
      gv_fill(&r->be, &t, 0.0f);
    }
}

/* The kernel backend on this rank's GPU (node-local rank % device count; cpu ignores it),
 * checked against the collective backend: device arenas need device collectives (nccl)
 * and host arenas host ones. With nccl, collectives are ordered on the compute stream. */
static void start_backend(struct gv_run *r)
{
  int local = gv_comm_local_rank(r->world), on_host = !strcmp(r->args.device, "cpu");
  int dev_comm = gv_comm_device_buffers(r->world), world = gv_comm_size(r->world);
  if (on_host && dev_comm)
    gv_fatalf(__FILE__, __LINE__, "--device", "gvrt",
              "--device cpu needs a host collective backend: run with GV_COMM=mpi (or self for one rank)");
  if (!on_host && !dev_comm && world > 1) /* e.g. several ranks on one GPU, for testing */
    gv_log0(GV_LOG_INFO, "--device %s with %d ranks on %s collectives: each is staged through host memory "
            "(GV_COMM=nccl runs them on the device)", r->args.device, world, gv_comm_backend_name(r->world));
  gv_backend_init(&r->be, r->args.device, on_host ? 0 : local); /* cpu logs device 0, as before */
  if (r->args.matmul_precision)
    gv_backend_set_matmul_precision(&r->be, r->args.matmul_precision);
  const char *compiled = r->fdt == GV_DTYPE_BF16 ? "bf16" : "fp32";
  if (r->args.mixed_precision && strcmp(r->args.mixed_precision, compiled))
    gv_fatalf(__FILE__, __LINE__, "--mixed_precision", "gvrt",
              "--mixed_precision %s: this program was compiled for %s (the memory plan depends on it); recompile "
              "with gvc compile --mixed_precision %s", r->args.mixed_precision, compiled, r->args.mixed_precision);
  gv_comm_set_backend(r->world, &r->be); /* groups of one copy arena memory through it */
  if (gv_backend_stream(&r->be))
    gv_comm_set_stream(r->world, gv_backend_stream(&r->be));
}

int gv_main(int argc, char **argv, gv_prog_fn describe)
{
  struct gv_run r;
  memset(&r, 0, sizeof r);
  r.s2s.src_off = -1;
  r.world = gv_comm_init_world(&argc, &argv, NULL);
  gv_log_set_rank(gv_comm_rank(r.world), gv_comm_size(r.world));
  describe(&r, NULL, 0);
  int rc = gv_run_parse_args(&r.args, argc, argv, r.model);
  if (rc) {
    gv_comm_free_world(&r.world);
    return rc < 0 ? 1 : 0;
  }
  r.argc = argc;
  r.argv = argv;
  setup_groups(&r);
  check_program(&r);
  gv_run_images_check_args(&r); /* an image model refuses --sample before its prompt is read */
  gv_run_check_sample_args(&r);
  r.opt_ts = calloc((size_t)(r.nparams ? r.nparams : 1), sizeof *r.opt_ts);
  r.norm_ts = calloc((size_t)(r.nparams ? r.nparams : 1), sizeof *r.norm_ts);
  GV_CHECK(r.opt_ts != NULL && r.norm_ts != NULL, "out of host memory");
  start_backend(&r);
  if (r.attn[0])
    r.plan.arena_bytes[GV_MEM_WORKSPACE] =
        gv_backend_workspace_bytes(&r.be, r.attn[0], r.attn[1], r.attn[2], r.attn[3], r.attn[4], r.attn[5]);
  if (r.args.iters == 0 || r.args.eval_only) /* no step: no gradients (a 1.5 B model saves in 12 bytes a parameter) */
    r.plan.arena_bytes[GV_MEM_GRADS] = 0;
  gv_run_sl_start(&r);
  gv_arenas_init(&r.arenas, &r.be, &r.plan);
  for (int k = 0; k < GV_MEM_KINDS; k++)
    r.bases[k] = r.arenas.base[k];
  zero_arenas(&r);
  if (r.nzl && r.args.dump)
    gv_fatalf(__FILE__, __LINE__, "--dump", "gvrt", "not supported yet for ZeRO-3 (sharded parameters) programs");
  if (r.args.initialize_on_meta && !r.args.init_from && !r.args.load)
    gv_fatalf(__FILE__, __LINE__, "--initialize_on_meta", "gvrt",
              "--initialize_on_meta 1 skips the random init: give the weights with --init_from FILE or --load DIR");
  /* a checkpoint writes every held element and owned state (the init is counter-based: it
   * leaves no random state behind), so the random init is skipped; none there: a fatal error */
  int from_ckpt = r.args.load && gv_run_load_found(r.args.load);
  if (r.args.init_from)
    init_from_file(&r, r.args.init_from);
  else if (from_ckpt && !r.args.initialize_on_meta)
    gv_log0(GV_LOG_INFO, "random init skipped: the checkpoint in %s sets every parameter", r.args.load);
  else if (!r.args.initialize_on_meta)
    init_params(&r);
  if (r.args.save)
    gv_run_check_save_dir(&r, r.args.save);
  int first_step = r.args.load ? gv_run_load(&r, r.args.load) : 0;
  struct gv_run_feed fd;
  gv_run_feed_open(&r, &fd);

  struct gv_lr_schedule sched = {r.args.lr, r.args.min_lr, r.args.warmup,
                                 r.args.lr_decay_iters ? r.args.lr_decay_iters : r.args.iters,
                                 !strcmp(r.args.lr_decay_style, "linear") ? GV_LR_LINEAR
                                 : !strcmp(r.args.lr_decay_style, "constant") ? GV_LR_CONSTANT : GV_LR_COSINE};
  double t_start = gv_run_now_s(), loss = 0;
  int skipped = 0;
  r.tl.step = first_step + 1 < r.args.iters ? first_step + 1 : first_step; /* after warm-up */
  if (first_step >= r.args.iters && !r.args.eval_only)
    gv_log0(GV_LOG_INFO, "the checkpoint is at step %d: nothing left of --iters %d", first_step, r.args.iters);
  if (r.args.eval_only)
    eval_only(&r, &fd, first_step);
  if (r.args.save && r.args.iters == 0 && !r.args.eval_only) /* the initial, imported or loaded state */
    gv_run_save(&r, r.args.save, first_step);
  for (int step = first_step; !r.args.eval_only && step < r.args.iters; step++) {
    double t0 = gv_run_now_s();
    r.step = step;
    r.optime.counting = r.optime.enabled && step > first_step; /* --time_ops: the steps after the first */
    r.optime.cur = -1;
    r.fns.zero_grads(&r, r.bases, 0);
    loss = run_step(&r, &fd, step, 1);
    gv_run_tl_end(&r);
    if (step == 0 && r.args.dump)
      dump_state(&r, r.args.dump, loss);
    double norm = grad_norm(&r);
    if (nonfinite_step(&r, step, loss, norm))
      skipped++;
    else
      clip_and_step(&r, &sched, step, norm);
    if (r.optime.counting) {
      if (r.be.ops->sync)
        gv_backend_sync(&r.be);
      r.optime.counting = 0;
      r.optime.steps++;
      r.optime.step_s += gv_run_now_s() - t0;
    }
    gv_run_sl_step(&r, gv_run_now_s() - t0);
    if (!r.args.quiet && (step % r.args.log_interval == 0 || step == r.args.iters - 1))
      log_step(&r, &sched, step, loss, norm, gv_run_now_s() - t0, gv_run_now_s() - t_start);
    int exiting = r.args.exit_interval > 0 && (step + 1) % r.args.exit_interval == 0 && step < r.args.iters - 1;
    if (r.args.save && ((r.args.save_interval > 0 && (step + 1) % r.args.save_interval == 0) || step == r.args.iters - 1 ||
                        exiting))
      gv_run_save(&r, r.args.save, step + 1);
    if (r.has_split[1] && ((step + 1) % r.args.eval_interval == 0 || step == r.args.iters - 1)) {
      char m[64];
      struct eval e = evaluate(&r, &fd, 1);
      gv_log0(GV_LOG_INFO, "eval after step %d | val_loss %.9g | %s", step, e.loss, eval_metric(&e, "val_ppl", "val_acc", m, sizeof m));
    }
    if (exiting) { /* Megatron's --exit_interval: saved (with --save) and stopped */
      gv_log0(GV_LOG_INFO, "exiting after step %d (--exit_interval %d)", step + 1, r.args.exit_interval);
      break;
    }
  }
  if (!r.args.quiet)
    log_memory(&r, "at the end");
  gv_run_optime_report(&r);
  if (!r.args.eval_only)
    gv_log0(GV_LOG_INFO, "done: %d steps in %.2fs, final loss %.9g%s", r.args.iters, gv_run_now_s() - t_start, loss,
            skipped ? " (steps with a non-finite loss or gradient norm were skipped)" : "");
  gv_run_sl_write(&r);
  if (r.args.dump_params)
    dump_params(&r, r.args.dump_params);
  gv_run_generate(&r, gv_run_forward_tokens);
  gv_run_feed_free(&r, &fd);
  gv_comm_set_stream(r.world, NULL);
  gv_comm_set_backend(r.world, NULL);
  gv_arenas_free(&r.arenas);
  gv_backend_free(&r.be);
  free(r.host_scratch);
  free(r.params);
  free(r.opt_ts);
  free(r.norm_ts);
  free(r.tied);
  free(r.zl);
  gv_comm_free_world(&r.world);
  return 0;
}
