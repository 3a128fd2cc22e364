/* profile_model.c - what `gvc profile computation` and `gvc profile memory` share: their
 * options and the points they profile, the checks of both (each error names the argument,
 * before anything is run or written), the timed run of one compiled program in a child
 * process (`gvc run ... -- --data synthetic --step_json F`, or compile + run without the
 * LLVM JIT), the progress line and the atomic file writes. */
#define _POSIX_C_SOURCE 200809L

#include "profile_model.h"

#include "cost.h"
#include "diag.h"

#include "cli_opts.h"
#include "ctx.h"
#include "emit.h"
#include "frontend.h"
#include "lower.h"
#include "parplan.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)

double pm_now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- options and points ---- */

static void defaults(PmOptions *o)
{
  memset(o, 0, sizeof *o);
  o->mode = "static";
  o->precision = "bf16";
  o->device = "cpu";
  o->out_dir = "profiles";
  o->bsz = 8;
  o->min_bsz = 1, o->max_bsz = 8, o->bsz_step = 1;
  o->min_seq = 128, o->max_seq = 1024, o->seq_step = 128;
  o->layernum_min = 1, o->layernum_max = 2;
  o->max_tp_deg = 8;
  o->sequence_parallel = 1;
  o->warmup = 1, o->repeats = 3;
  o->context_ranks = 1;
  o->concurrent = 1;
  o->vary = -1;
  o->mpiexec = "mpirun";
}

static void usage(const char *what, const CliOpt *opts)
{
  printf("usage: gvc profile %s FILE.gvm --model NAME [options]\n\n", what);
  if (!strcmp(what, "computation"))
    printf("Compiles the model with --layernum_min and --layernum_max layers, runs each for --warmup +\n"
           "--repeats steps on the backend and writes the forward time per layer and of the rest\n"
           "(embedding, head, loss) per batch size or sequence length, in Galvatron's keys, with the\n"
           "measured backward in gvc's own (computation_profiling_{precision}_{model}_all.json).\n");
  else
    printf("Lowers the model per tp degree (with and without checkpointing and sequence parallelism) and\n"
           "per pipeline position and writes the memory plan's exact sizes in Galvatron's keys, plus\n"
           "the memory measured outside the plan in one run (memory_profiling_{precision}_{model}_all.json).\n");
  printf("A model of several layer types (T5) is profiled type by type: each top-level repeat loop (stack)\n"
         "at --layernum_max with the others at --layernum_min (Galvatron's layertype_0, layertype_1, ...).\n\n");
  printf("options:\n");
  cli_opts_help(opts);
}

/* lo..hi by step, each > 0; 1 after an error naming the arguments. */
static int range(const char *lo_name, int lo, const char *hi_name, int hi, const char *step_name, int step, int *out, int *n)
{
  if (lo < 1) { diag_plain(NULL, "--%s %d: expected an integer >= 1", lo_name, lo); return 1; }
  if (step < 1) { diag_plain(NULL, "--%s %d: expected an integer >= 1", step_name, step); return 1; }
  if (lo > hi) { diag_plain(NULL, "--%s %d > --%s %d: the profile range is empty", lo_name, lo, hi_name, hi); return 1; }
  if ((hi - lo) % step) {
    diag_plain(NULL, "--%s %d - --%s %d = %d is not a multiple of --%s %d", hi_name, hi, lo_name, lo, hi - lo,
            step_name, step);
    return 1;
  }
  if ((hi - lo) / step + 1 > PM_MAXPTS) { diag_plain(NULL, "--%s: more than %d points", step_name, PM_MAXPTS); return 1; }
  *n = 0;
  for (int v = lo; v <= hi; v += step) out[(*n)++] = v;
  return 0;
}

static int seq_list(const char *name, const char *s, int *out, int *n)
{
  *n = 0;
  for (const char *p = s; *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > (1 << 24) || (*end && *end != ',') || *n == PM_MAXPTS) {
      diag_plain(NULL, "--%s '%s': expected a comma list of sequence lengths >= 1", name, s);
      return 1;
    }
    out[(*n)++] = (int)v;
    p = *end ? end + 1 : end;
  }
  if (!*n) { diag_plain(NULL, "--%s '': the profile range is empty", name); return 1; }
  return 0;
}

/* The option that gave the source length, as typed ("--src_seq 64", "--seq_length 64,32"). */
static const char *src_given(const PmOptions *o, char *buf, size_t n)
{
  if (!strcmp(o->src_opt, "src_seq")) snprintf(buf, n, "--src_seq %d", o->src_seq);
  else snprintf(buf, n, "--%s %s", o->src_opt, o->seq_arg);
  return buf;
}

/* --seq_length T, or an encoder-decoder's S,T (Galvatron's list for its two lengths), and
 * --src_seq S; 1 after an error naming the argument. */
static int parse_lengths(PmOptions *o)
{
  int v[PM_MAXPTS], n = 0;
  if (o->src_seq) o->src_opt = "src_seq";
  if (!o->seq_arg) return 0;
  if (seq_list("seq_length", o->seq_arg, v, &n)) return 1;
  if (n > 2) {
    diag_plain(NULL, "--seq_length %s: expected one length, or an encoder-decoder's two (S,T: the source's, the target's)", o->seq_arg);
    return 1;
  }
  if (n == 2 && o->src_seq) {
    diag_plain(NULL, "--seq_length %s with --src_seq %d: give the source length once", o->seq_arg, o->src_seq);
    return 1;
  }
  if (n == 2) o->src_seq = v[0], o->src_opt = "seq_length";
  o->seq = v[n - 1];
  return 0;
}

static int one_of(const char *name, const char *v, const char *a, const char *b, const char *c)
{
  if (!strcmp(v, a) || !strcmp(v, b) || (c && !strcmp(v, c))) return 0;
  diag_plain(NULL, "--%s '%s': expected %s%s%s or %s", name, v, a, c ? ", " : "", c ? b : "", c ? c : b);
  return 1;
}

/* The checks that need the model: its sequence limit, and its layer types (several are
 * profiled stack by stack: static and batch mode, no --tp_ranks). */
static int check_model(PmOptions *o, const PmPoint *pts, int n)
{
  Ctx *cx = ctx_new();
  const IrModel *m = frontend_load_model(cx, o->file, o->model);
  int rc = !m;
  if (m) {
    CostModel cm = {0};
    unsigned char *types = malloc((size_t)(m->nblocks > 0 ? m->nblocks : 1));
    int T = cost_types_from_ir(&cm, m, types, o->type_names);
    o->ntypes = T, o->nstacks = m->nstacks, o->vary = -1;
    if (T > 0) cost_types_src(m, types, o->type_src);
    if (T < 0) { diag_plain(NULL, "%s: model '%s' has more than %d layer types", o->file, o->model, PROF_MAXTYPES); rc = 1; }
    else if (o->src_seq && m->src_value < 0) {
      char given[128], msg[384];
      parplan_no_source(msg, sizeof msg, src_given(o, given, sizeof given), o->model);
      diag_plain(NULL, "%s", msg);
      rc = 1;
    }
    else if (T > 1 && (o->tp_ranks || !strcmp(o->mode, "sequence"))) {
      diag_plain(NULL, "%s: model '%s' has %d layer types: %s profiles one layer type", o->file, o->model, T,
                 o->tp_ranks ? "--tp_ranks" : "--profile_mode sequence");
      rc = 1;
    }
    free(types);
  }
  if (m && !rc && m->max_seq && o->src_seq > m->max_seq) {
    char given[128];
    diag_plain(NULL, "%s: the source length exceeds %s's %lld positions", src_given(o, given, sizeof given), o->model, (long long)m->max_seq);
    rc = 1;
  }
  for (int i = 0; m && !rc && i < n; i++)
    if (m->max_seq && pts[i].seq > m->max_seq) {
      diag_plain(NULL, "--%s %d exceeds %s's %lld positions",
              !strcmp(o->mode, "sequence") ? "profile_max_seq_length" : "seq_length", pts[i].seq, o->model, (long long)m->max_seq);
      rc = 1;
    }
  ctx_free(&cx);
  return rc;
}

/* The model's default sequence length (as gvc compile: its positions, at most 1024). */
static int default_seq(const PmOptions *o)
{
  Ctx *cx = ctx_new();
  const IrModel *m = frontend_load_model(cx, o->file, o->model);
  int s = !m ? -1 : m->max_seq && m->max_seq < 1024 ? (int)m->max_seq : 1024;
  ctx_free(&cx);
  return s;
}

/* The options that are single values; 1 after an error naming the argument. */
static int check_scalars(PmOptions *o)
{
  if (one_of("profile_mode", o->mode, "static", "batch", "sequence") || one_of("mixed_precision", o->precision, "fp32", "bf16", NULL) ||
      one_of("device", o->device, "cpu", "cuda", NULL))
    return 1;
  if (o->layernum_min < 1) { diag_plain(NULL, "--layernum_min %d: expected an integer >= 1", o->layernum_min); return 1; }
  if (o->layernum_max <= o->layernum_min) {
    diag_plain(NULL, "--layernum_max %d: must be above --layernum_min %d (the per-layer figures are the difference)",
            o->layernum_max, o->layernum_min);
    return 1;
  }
  if (o->max_tp_deg < 1 || (o->max_tp_deg & (o->max_tp_deg - 1))) { diag_plain(NULL, "--max_tp_deg %d: expected a power of two >= 1", o->max_tp_deg); return 1; }
  if (o->warmup < 0 || o->repeats < 1) { diag_plain(NULL, "--%s: expected %s", o->repeats < 1 ? "repeats" : "warmup", o->repeats < 1 ? "an integer >= 1" : "an integer >= 0"); return 1; }
  if (o->concurrent < 1 || o->concurrent > PM_MAXCOPIES) { diag_plain(NULL, "--concurrent %d: expected an integer in [1, %d]", o->concurrent, PM_MAXCOPIES); return 1; }
  if (o->tp_ranks < 0 || o->tp_ranks == 1 || o->tp_ranks > 64 || (o->tp_ranks & (o->tp_ranks - 1))) { diag_plain(NULL, "--tp_ranks %d: expected 0 or a power of two in [2, 64]", o->tp_ranks); return 1; }
  if (o->context_ranks < 0 || o->context_ranks > 64) { diag_plain(NULL, "--context_ranks %d: expected an integer in [0, 64]", o->context_ranks); return 1; }
  if (o->bsz < 1) { diag_plain(NULL, "--profile_batch_size %d: expected an integer >= 1", o->bsz); return 1; }
  if (parse_lengths(o)) return 1;
  if (o->src_seq < 0) { diag_plain(NULL, "--src_seq %d: expected an integer >= 1", o->src_seq); return 1; }
  if (o->src_seq && !strcmp(o->mode, "sequence")) {
    char given[128];
    diag_plain(NULL, "%s: --profile_mode sequence profiles one length per point, not an encoder-decoder's two", src_given(o, given, sizeof given));
    return 1;
  }
  if (o->seq == 0 && (o->seq = default_seq(o)) < 0) return 1;
  if (o->seq < 1) { diag_plain(NULL, "--seq_length %d: expected an integer >= 1", o->seq); return 1; }
  return 0;
}

/* The (batch, sequence) points of the mode; 1 after an error naming the argument. */
static int list_points(const char *what, const PmOptions *o, PmPoint *pts, int *npts)
{
  int v[PM_MAXPTS], n = 0, batch = !strcmp(o->mode, "batch") && !strcmp(what, "computation");
  int sequence = !strcmp(o->mode, "sequence");
  if (batch) {
    if (range("profile_min_batch_size", o->min_bsz, "profile_max_batch_size", o->max_bsz, "profile_batch_size_step", o->bsz_step, v, &n)) return 1;
    if (n < 8) { diag_plain(NULL, "--profile_min_batch_size %d .. --profile_max_batch_size %d step %d gives %d batch sizes: batch mode needs at least 8 (the readers fit a line through them)", o->min_bsz, o->max_bsz, o->bsz_step, n); return 1; }
    for (int i = 0; i < n; i++) pts[i] = (PmPoint){v[i], o->seq};
  } else if (sequence) {
    if (o->seq_list ? seq_list("profile_seq_length_list", o->seq_list, v, &n)
                    : range("profile_min_seq_length", o->min_seq, "profile_max_seq_length", o->max_seq, "profile_seq_length_step", o->seq_step, v, &n))
      return 1;
    if (n < 3 && !strcmp(what, "computation")) { diag_plain(NULL, "--profile_%s gives %d sequence length(s): sequence mode needs at least 3 (the readers fit a quadratic)", o->seq_list ? "seq_length_list" : "min/max_seq_length", n); return 1; }
    for (int i = 0; i < n; i++) pts[i] = (PmPoint){strcmp(what, "computation") ? o->bsz : 1, v[i]};
  } else {
    n = 1;
    pts[0] = (PmPoint){o->bsz, o->seq};
  }
  *npts = n;
  return 0;
}

int pm_parse(const char *what, int argc, char **argv, PmOptions *o, PmPoint *pts, int *npts)
{
  defaults(o);
  const CliOpt opts[] = {
      {"model", CLI_STR, &o->model, "model (size) name in FILE (required)"},
      {"model_size", CLI_STR, &o->model_size, "model name in the file names (default: --model)"},
      {"profile_mode", CLI_STR, &o->mode, "static | batch | sequence (static)"},
      {"profile_batch_size", CLI_INT, &o->bsz, "static and memory: the batch size (8)"},
      {"profile_min_batch_size", CLI_INT, &o->min_bsz, "batch mode: smallest batch (1)"},
      {"profile_max_batch_size", CLI_INT, &o->max_bsz, "batch mode: largest batch (8; at least 8 sizes)"},
      {"profile_batch_size_step", CLI_INT, &o->bsz_step, "batch mode: step (1)"},
      {"seq_length", CLI_STR, &o->seq_arg, "static and batch modes: sequence length (the model's, at most 1024); an encoder-decoder's S,T: the encoder's layer types at S, the decoder's at T"},
      {"profile_fixed_seq_length_list", CLI_STR, &o->seq_arg, "Galvatron's name of --seq_length T or S,T"},
      {"src_seq", CLI_INT, &o->src_seq, "an encoder-decoder's source length S (--src_seq S --seq_length T is --seq_length S,T; default T)"},
      {"profile_min_seq_length", CLI_INT, &o->min_seq, "sequence mode: shortest (128)"},
      {"profile_max_seq_length", CLI_INT, &o->max_seq, "sequence mode: longest (1024)"},
      {"profile_seq_length_step", CLI_INT, &o->seq_step, "sequence mode: step (128)"},
      {"profile_seq_length_list", CLI_STR, &o->seq_list, "sequence mode: these lengths instead (a comma list)"},
      {"layernum_min", CLI_INT, &o->layernum_min, "layers of the smaller program (1)"},
      {"layernum_max", CLI_INT, &o->layernum_max, "layers of the larger program (2)"},
      {"max_tp_deg", CLI_INT, &o->max_tp_deg, "memory: tp degrees 1, 2, 4 .. this (8)"},
      {"mixed_precision", CLI_STR, &o->precision, "fp32 | bf16 (bf16)"},
      {"sequence_parallel", CLI_SW, &o->sequence_parallel, "0|1 (1): accepted; both variants are written"},
      {"device", CLI_STR, &o->device, "cpu | cuda (cpu)"},
      {"warmup", CLI_INT, &o->warmup, "untimed steps per run (1)"},
      {"repeats", CLI_INT, &o->repeats, "timed steps per run, the median is kept (3)"},
      {"concurrent", CLI_INT, &o->concurrent, "computation: time N copies side by side, as N ranks of one machine share its cores and memory (1)"},
      {"tp_ranks", CLI_INT, &o->tp_ranks, "computation: also time the layers split over N ranks (tp, tp + sequence parallelism, Ulysses) at the largest batch, for gvc's calibrated model (0: not)"},
      {"context_ranks", CLI_INT, &o->context_ranks, "memory: measure outside the plan on N data-parallel ranks (1; MPI's buffers need 2 or more; 0: no run)"},
      {"mpiexec", CLI_STR, &o->mpiexec, "memory: how --context_ranks N > 1 are launched (mpirun)"},
      {"quiet", CLI_SW, &o->quiet, "no progress line"},
      {NULL, 0, NULL, NULL}};
  int rc = cli_opts_parse(opts, argc, argv, &o->out_dir, &o->file);
  if (rc == 2) { usage(what, opts); return 2; }
  if (rc) return 1;
  if (!o->file || !o->model) { diag_plain(NULL, "gvc profile %s needs FILE.gvm and --model NAME (see --help)", what); return 1; }
  if (!o->model_size) o->model_size = o->model;
  int n = 0;
  if (check_scalars(o) || list_points(what, o, pts, &n)) return 1;
  *npts = n;
  return check_model(o, pts, n);
}

/* ---- the program at one point ---- */

/* Each stack's layer count in the program of L layers (o->vary). */
static int stack_counts(const PmOptions *o, int L, int *c)
{
  int S = o->ntypes > 1 && o->nstacks > 1 ? (o->nstacks < CTX_MAXSTACKS ? o->nstacks : CTX_MAXSTACKS) : 0;
  for (int t = 0; t < S; t++) c[t] = o->vary < 0 || o->vary == t ? L : o->layernum_min;
  return S;
}

/* The model with the program's layer counts: every stack's loop set when it has several
 * layer types in several stacks, else its `layers` argument. */
static const IrModel *load_program(Ctx *cx, const PmOptions *o, int L)
{
  cx->nstack_layers = stack_counts(o, L, cx->stack_layers);
  cx->layers_override = cx->nstack_layers ? 0 : L;
  return frontend_load_model(cx, o->file, o->model);
}

/* The program's blocks by layer type (*types, malloc'd): its types must be the model's, in
 * the same order, or the differences would mix them; 1 with *why otherwise. */
static int program_types(const PmOptions *o, int L, const IrModel *m, unsigned char **types, const char **why, char *buf, size_t n)
{
  CostModel cm = {0};
  char names[PROF_MAXTYPES][64];
  *types = malloc((size_t)(m->nblocks > 0 ? m->nblocks : 1));
  int T = cost_types_from_ir(&cm, m, *types, names), same = T == (o->ntypes > 0 ? o->ntypes : 1);
  for (int k = 0; same && o->ntypes > 1 && k < T; k++) same = !strcmp(names[k], o->type_names[k]);
  if (same || o->ntypes <= 1) return 0;
  char list[512] = "";
  for (int k = 0, at = 0; k < o->ntypes && at < (int)sizeof list; k++)
    at += snprintf(list + at, sizeof list - (size_t)at, "%s%d: %s", k ? ", " : "", k, o->type_names[k]);
  snprintf(buf, n, "with %d layer%s per stack its layer types (%d) are not the model's %d (%s), as when a stack's first "
                   "block is a type of its own: raise --layernum_min", L, L == 1 ? "" : "s", T, o->ntypes, list);
  *why = buf;
  free(*types);
  *types = NULL;
  return 1;
}

int pm_programs(const PmOptions *o, PmPrograms *pg)
{
  int G = o->ntypes > 1 && o->nstacks > 1 ? o->nstacks : 1;
  if (G + 1 > PM_MAXPROGS) { diag_plain(NULL, "%s: model '%s' has more than %d stacks of blocks", o->file, o->model, PM_MAXPROGS - 1); return 1; }
  pg->n = 1 + G;
  for (int i = 0; i < pg->n; i++) {
    pg->vary[i] = i == 0 || G == 1 ? -1 : i - 1;
    pg->layers[i] = i ? o->layernum_max : o->layernum_min;
    PmOptions po = pm_program_opts(o, pg, i);
    Ctx *cx = ctx_new();
    const IrModel *m = load_program(cx, &po, pg->layers[i]);
    unsigned char *types = NULL;
    char buf[512];
    const char *why = "the model does not load";
    int bad = !m || program_types(&po, pg->layers[i], m, &types, &why, buf, sizeof buf);
    if (bad) diag_plain(NULL, "%s --model %s: %s", o->file, o->model, why);
    for (int k = 0; k < PROF_MAXTYPES; k++) pg->blocks[i][k] = 0;
    for (int b = 0; !bad && b < m->nblocks; b++) pg->blocks[i][types[b]]++;
    int at = 0, T = o->ntypes > 1 ? o->ntypes : 1;
    for (int k = 0; k < T && o->ntypes > 1; k++) at += snprintf(pg->label[i] + at, sizeof pg->label[i] - (size_t)at, "%s%d", k ? "," : "", pg->blocks[i][k]);
    if (o->ntypes <= 1) snprintf(pg->label[i], sizeof pg->label[i], "%d", pg->layers[i]);
    free(types);
    ctx_free(&cx);
    if (bad) return 1;
  }
  return 0;
}

PmOptions pm_program_opts(const PmOptions *o, const PmPrograms *pg, int i)
{
  PmOptions po = *o;
  po.vary = pg->vary[i];
  return po;
}

int pm_type_seq(const PmOptions *o, int k, int seq)
{
  return o->src_seq > 0 && k >= 0 && k < PROF_MAXTYPES && o->type_src[k] ? o->src_seq : seq;
}

void pm_seq_key(const PmOptions *o, int seq, char *buf, size_t n)
{
  if (o->ntypes <= 1) { snprintf(buf, n, "%d", seq); return; }
  int at = snprintf(buf, n, "[");
  for (int k = 0; k < o->ntypes && at < (int)n; k++) at += snprintf(buf + at, n - (size_t)at, "%s%d", k ? "," : "", pm_type_seq(o, k, seq));
  if (at < (int)n) snprintf(buf + at, n - (size_t)at, "]");
}

void pm_per_type(const PmOptions *o, const PmPrograms *pg, const double *v, int b, const char *what, PmPoint p, int fallback,
                 double *per, double *other)
{
  int T = o->ntypes > 1 ? o->ntypes : 1;
  double r[PM_MAXPROGS], sum[PROF_MAXTYPES] = {0};
  int cnt[PROF_MAXTYPES] = {0};
  for (int i = 1; i < pg->n; i++) {
    int added = 0, all = 0;
    for (int k = 0; k < T; k++) added += pg->blocks[i][k] - pg->blocks[0][k], all += pg->blocks[i][k];
    r[i] = (v[i] - v[0]) / b / (added > 0 ? added : 1);
    if (fallback && !(r[i] > 0)) {
      double up = v[i] / b / (all > 0 ? all : 1);
      diag_plain_warning(NULL, "batch %d, seq %d: the %s of layernum[%s] (%.3f) is not above that of layernum[%s] (%.3f): timing "
                               "noise; kept as %.4f per layer and sample, the larger program's per layer (more --repeats help)",
                         p.bsz, p.seq, what, pg->label[i], v[i], pg->label[0], v[0], up);
      r[i] = up;
    }
    for (int k = 0; k < T; k++)
      if (pg->blocks[i][k] > pg->blocks[0][k]) sum[k] += r[i], cnt[k]++;
  }
  for (int k = 0; k < T; k++) per[k] = cnt[k] ? sum[k] / cnt[k] : NAN;
  for (int k = 0; k < T; k++) /* a type no program adds: that of the next type its stack adds */
    for (int d = 1; isnan(per[k]) && d < T; d++) {
      if (k + d < T && cnt[k + d]) per[k] = sum[k + d] / cnt[k + d];
      else if (k - d >= 0 && cnt[k - d]) per[k] = sum[k - d] / cnt[k - d];
    }
  double rest = v[0] / b;
  for (int k = 0; k < T; k++) rest -= pg->blocks[0][k] * (isnan(per[k]) ? 0 : per[k]);
  *other = fmax(0, rest);
}

int pm_lower(const PmOptions *o, int L, int pp, int tp, int sp, int ckpt, PmPoint p, PmStage *st, const char **why, char *buf, size_t n)
{
  Ctx *cx = ctx_new();
  const IrModel *m = load_program(cx, o, L);
  unsigned char *types = NULL;
  int rc = 1;
  *why = "the model does not load";
  if (m && program_types(o, L, m, &types, why, buf, n)) m = NULL;
  if (m) {
    Arena *a = arena_new(1 << 20);
    ParPlan lo = {.micro_batch = p.bsz, .seq = p.seq, .src_seq = o->src_seq, .world = pp * tp, .pp = pp, .pipeline_1f1b = 1, .chunks = 1,
                  .tp = tp, .tp_consec = 1, .sp = sp && tp > 1, .vtp = tp, .bf16 = !strcmp(o->precision, "bf16")};
    parplan_layers(a, m, &lo);
    for (int i = 0; i < m->nlayers; i++) lo.layer[i].ckpt = ckpt && m->layers[i].kind == IR_LAYER_BLOCK;
    LowerError lerr = {NULL, -1};
    const char *err = NULL;
    Lowered *lw = lower_model(a, m, &lo, &lerr);
    if (!lw)
      err = lerr.msg;
    if (lw) {
      for (int s = 0; s < pp; s++) {
        const Plan *pl = lw->plans ? lw->plans[s] : lw->plan;
        st[s] = (PmStage){(double)(pl->arena_bytes[PLAN_PARAMS] + pl->arena_bytes[PLAN_GRADS] + pl->arena_bytes[PLAN_OPTIM]) / MIB,
                          (double)pl->slot_bytes / MIB, (double)pl->transient_bytes / MIB,
                          (double)plan_total_bytes(pl) / MIB, 0, {0}};
        for (int i = 0, b = 0; i < m->nlayers; i++) {
          if (m->layers[i].kind != IR_LAYER_BLOCK) continue;
          if (lw->strategy->layer[i].stage == s) st[s].blocks++, st[s].type_blocks[types[b]]++;
          b++;
        }
      }
      rc = 0;
    } else {
      snprintf(buf, n, "%s", err ? err : "cannot be lowered");
      *why = buf;
    }
    arena_free(&a);
  }
  free(types);
  ctx_free(&cx);
  return rc;
}

double pm_planned_mb(const PmOptions *o, int layers, PmPoint p)
{
  PmStage st;
  char buf[512];
  const char *why;
  if (!pm_lower(o, layers, 1, 1, 0, 0, p, &st, &why, buf, sizeof buf)) return st.total;
  diag_plain(NULL, "%s --model %s with %d layer%s, batch %d, seq %d: %s", o->file, o->model, layers, layers == 1 ? "" : "s", p.bsz, p.seq, why);
  return -1;
}

int pm_check_fit(const PmOptions *o, int layers, const PmPoint *pts, int n)
{
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  double avail = pages > 0 && psz > 0 ? (double)pages * (double)psz / (1024.0 * 1024.0) : 0;
  const char *arg = !strcmp(o->mode, "batch") ? "profile_max_batch_size" : !strcmp(o->mode, "sequence") ? "profile_max_seq_length"
                                                                                                       : "profile_batch_size";
  for (int i = 0; i < n; i++) {
    double mb = pm_planned_mb(o, layers, pts[i]);
    if (mb < 0) return 1;
    if (strcmp(o->device, "cpu") == 0 && avail > 0 && mb > 0.8 * avail) {
      diag_plain(NULL, "--%s: the program of %s with %d layer%s at batch %d, seq %d plans %.0f MB, "
                      "more than 80%% of this machine's %.0f MB: the model does not fit", arg, o->model, layers, layers == 1 ? "" : "s",
              pts[i].bsz, pts[i].seq, mb, avail);
      return 1;
    }
  }
  return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of entries [skip, n) of a JSON array of numbers. */
static double median_of(const cJSON *arr, int skip)
{
  double v[4096];
  int n = 0;
  for (const cJSON *it = arr ? arr->child : NULL; it && n < 4096; it = it->next, skip--)
    if (skip <= 0 && cJSON_IsNumber(it)) v[n++] = it->valuedouble;
  if (!n) return NAN;
  qsort(v, (size_t)n, sizeof(double), cmp_dbl);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double num_of(const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int pm_read_steps(const char *path, int skip, PmRun *r, int *nsteps)
{
  FILE *f = fopen(path, "rb");
  if (!f) { diag_plain(NULL, "%s: cannot open", path); return 1; }
  char *buf = malloc(1 << 22);
  size_t got = fread(buf, 1, (1 << 22) - 1, f);
  fclose(f);
  buf[got] = 0;
  cJSON *j = cJSON_Parse(buf);
  free(buf);
  cJSON *steps = j ? cJSON_GetObjectItemCaseSensitive(j, "step_ms") : NULL;
  cJSON *ranks = j ? cJSON_GetObjectItemCaseSensitive(j, "ranks") : NULL;
  cJSON *r0 = ranks ? cJSON_GetArrayItem(ranks, 0) : NULL;
  const char *key = !j ? NULL : !cJSON_IsArray(steps) ? "step_ms" : !r0 ? "ranks" : NULL;
  if (!j || key) {
    diag_plain(NULL, "%s: %s%s%s (expected a training binary's --step_json file)", path, j ? "key '" : "not valid JSON",
            j ? key : "", j ? "' missing" : "");
    cJSON_Delete(j);
    return 1;
  }
  if (nsteps) *nsteps = cJSON_GetArraySize(steps);
  r->step_ms = median_of(steps, skip);
  r->fwd_ms = median_of(cJSON_GetObjectItemCaseSensitive(r0, "fwd_ms"), skip);
  r->bwd_ms = median_of(cJSON_GetObjectItemCaseSensitive(r0, "bwd_ms"), skip);
  r->rss_before_mb = num_of(r0, "rss_before_arenas_mb");
  r->arena_mb = r->peak_rss_mb = r->device_used_mb = 0;
  for (cJSON *it = ranks->child; it; it = it->next) { /* memory: the largest rank's */
    r->arena_mb = fmax(r->arena_mb, num_of(it, "arena_mb"));
    r->peak_rss_mb = fmax(r->peak_rss_mb, num_of(it, "peak_rss_mb"));
    r->device_used_mb = fmax(r->device_used_mb, num_of(it, "device_used_mb"));
  }
  cJSON *dev = cJSON_GetObjectItemCaseSensitive(j, "device");
  r->on_device = cJSON_IsString(dev) && strcmp(dev->valuestring, "cpu") != 0;
  int rc = isnan(r->step_ms) || isnan(r->fwd_ms) || isnan(r->bwd_ms);
  if (rc) diag_plain(NULL, "%s: key 'step_ms': no step after the first %d", path, skip);
  cJSON_Delete(j);
  return rc;
}

/* Starts argv with stdout and stderr into log; its pid, or -1. (fork and exec: the
 * compiler's sched.h shadows the one spawn.h includes.) */
static pid_t spawn_start(char **argv, const char *log)
{
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
    execvp(argv[0], argv);
    _exit(127);
  }
  return pid;
}

/* The exit status of a started child (-1: it could not start). */
static int spawn_wait(pid_t pid)
{
  int st = 0;
  if (pid < 0) return -1;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void show_tail(const char *log)
{
  FILE *f = fopen(log, "r");
  char line[512], last[6][512];
  int n = 0;
  while (f && fgets(line, sizeof line, f)) snprintf(last[n++ % 6], sizeof last[0], "%s", line);
  if (f) fclose(f);
  for (int i = n > 6 ? n - 6 : 0; i < n; i++) fprintf(stderr, "  | %s", last[i % 6]);
}

/* The runs' medians averaged over the copies (memory: the first copy's). */
static int read_copies(const PmOptions *o, const char *tmpdir, int copies, PmRun *r)
{
  char json[4200];
  PmRun one;
  for (int c = 0; c < copies; c++) {
    snprintf(json, sizeof json, "%s/steps%d.json", tmpdir, c);
    if (pm_read_steps(json, o->warmup, c ? &one : r, NULL)) return 1;
    if (!c) continue;
    r->fwd_ms += one.fwd_ms, r->bwd_ms += one.bwd_ms, r->step_ms += one.step_ms;
  }
  r->fwd_ms /= copies, r->bwd_ms /= copies, r->step_ms /= copies;
  return 0;
}

int pm_run(const PmOptions *o, const char *tmpdir, int layers, PmPoint p, int binary, int ranks, const char *tp_mode, PmRun *r)
{
  char self[4096], L[96], S[16], B[16], GB[16], NR[16], iters[16], json[4200], log[4200], prog[4200];
  ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
  if (k <= 0) { diag_plain(NULL, "cannot find the gvc executable (/proc/self/exe)"); return 1; }
  self[k] = 0;
  int sc[CTX_MAXSTACKS], nsc = stack_counts(o, layers, sc);
  snprintf(L, sizeof L, "%d", layers);
  for (int t = 0, at = 0; t < nsc && at < (int)sizeof L; t++) at += snprintf(L + at, sizeof L - (size_t)at, "%s%d", t ? "," : "", sc[t]);
  snprintf(S, sizeof S, "%d", p.seq);
  snprintf(B, sizeof B, "%d", p.bsz);
  snprintf(GB, sizeof GB, "%d", tp_mode ? p.bsz : p.bsz * ranks); /* split over the ranks, else data-parallel */
  snprintf(NR, sizeof NR, "%d", ranks);
  snprintf(iters, sizeof iters, "%d", o->warmup + o->repeats);
  snprintf(log, sizeof log, "%s/run0.log", tmpdir);
  snprintf(prog, sizeof prog, "%s/program", tmpdir);
  int jit = !binary && ranks == 1 && emit_llvm_available(), copies = !binary && ranks == 1 ? o->concurrent : 1;
  char *cargv[] = {self, jit ? "run" : "compile", (char *)o->file, "--model", (char *)o->model, "--num_layers", L, "--seq", S,
                   "--micro-batch", B, "--mixed_precision", (char *)o->precision, "--num_gpus_per_node", NR, NULL};
  char SS[16];
  snprintf(SS, sizeof SS, "%d", o->src_seq);
  char *targs[] = {"--data", "synthetic", "--iters", iters, "--global_train_batch_size", GB, "--quiet", "--step_json", json,
                   "--device", (char *)o->device, "--mixed_precision", (char *)o->precision, NULL};
  char *argv[64];
  int n = 0, rc = 0;
  for (int i = 0; cargv[i]; i++) argv[n++] = cargv[i];
  if (o->src_seq > 0) argv[n++] = "--src_seq", argv[n++] = SS; /* an encoder-decoder's source length */
  if (tp_mode) { /* "tp", "tp_sp" (Megatron-SP) or "ulysses" over all the ranks */
    char *split[] = {"--global_tp_deg", NR, !strcmp(tp_mode, "ulysses") ? "--use_ulysses" : "--sequence_parallel",
                     !strcmp(tp_mode, "tp") ? "0" : "1"};
    for (int i = 0; i < 4; i++) argv[n++] = split[i];
  }
  if (ranks == 1) setenv("GV_COMM", "self", 1); /* one rank: no MPI */
  else unsetenv("GV_COMM");
  if (jit) {
    argv[n++] = "--";
  } else { /* compile a binary, then run it */
    argv[n++] = "-o";
    argv[n++] = prog;
    argv[n] = NULL;
    rc = spawn_wait(spawn_start(argv, log));
    n = 0;
    if (ranks > 1) {
      argv[n++] = (char *)o->mpiexec;
      argv[n++] = "-n";
      argv[n++] = NR;
    }
    argv[n++] = prog;
  }
  for (int i = 0; !rc && targs[i]; i++) argv[n++] = targs[i];
  argv[n] = NULL;
  pid_t pids[PM_MAXCOPIES];
  int started = 0;
  for (; !rc && started < copies; started++) { /* side by side, as ranks of one machine */
    snprintf(json, sizeof json, "%s/steps%d.json", tmpdir, started);
    snprintf(log, sizeof log, "%s/run%d.log", tmpdir, started);
    remove(json);
    pids[started] = spawn_start(argv, log);
  }
  for (int c = 0; c < started; c++) { /* every child is waited for; the first failure is reported */
    int st = spawn_wait(pids[c]);
    if (st && !rc) { rc = st; snprintf(log, sizeof log, "%s/run%d.log", tmpdir, c); }
  }
  if (!rc && read_copies(o, tmpdir, copies, r)) rc = 1;
  if (rc) {
    diag_plain(NULL, "the program of %s with %d layer%s, batch %d, seq %d did not run (%s %d); its last lines:",
            o->model, layers, layers == 1 ? "" : "s", p.bsz, p.seq, rc < 0 ? "could not start" : "exit", rc);
    show_tail(log);
  }
  return rc != 0;
}

/* ---- files ---- */

int pm_mkdir(const PmOptions *o)
{
  if (mkdir(o->out_dir, 0777) && errno != EEXIST) {
    diag_plain(NULL, "%s: cannot create the folder (%s)", o->out_dir, strerror(errno));
    return 1;
  }
  return 0;
}

int pm_mktmp(const PmOptions *o, char *dir, size_t n)
{
  if (pm_mkdir(o)) return 1;
  snprintf(dir, n, "%s/.gvc_profile_XXXXXX", o->out_dir);
  if (!mkdtemp(dir)) { diag_plain(NULL, "%s: cannot create a temporary folder (%s)", o->out_dir, strerror(errno)); return 1; }
  return 0;
}

void pm_rmtmp(const char *dir)
{
  const char *names[] = {"steps%d.json", "steps%d.json.tmp", "run%d.log", "program", "program.o", "program.c"};
  char p[4200], name[32];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    for (int c = 0; c < PM_MAXCOPIES; c++) {
      snprintf(name, sizeof name, names[i], c);
      snprintf(p, sizeof p, "%s/%s", dir, name);
      remove(p);
    }
  rmdir(dir);
}

void pm_path(const PmOptions *o, const char *prefix, const char *ext, char *buf, size_t n)
{
  snprintf(buf, n, "%s/%s_%s_%s_all.%s", o->out_dir, prefix, o->precision, o->model_size, ext);
}

int pm_write_atomic(const char *path, const char *text, size_t len)
{
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int bad = !f || fwrite(text, 1, len, f) != len;
  if (f) bad |= fclose(f) != 0;
  if (bad || rename(tmp, path)) {
    remove(tmp);
    diag_plain(NULL, "%s: cannot write the file", path);
    return 1;
  }
  return 0;
}

/* One file of out_dir from a writer, through a memory stream; also to stdout when echo. */
static int write_one(const PmOptions *o, const char *prefix, const char *ext, PmWriter w, const void *arg, int echo)
{
  char path[4200], *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  w(f, o, arg);
  fclose(f);
  if (echo) fwrite(text, 1, len, stdout);
  pm_path(o, prefix, ext, path, sizeof path);
  int rc = pm_write_atomic(path, text, len);
  free(text);
  if (!rc && !echo) printf("written: %s\n", path);
  return rc;
}

int pm_write_files(const PmOptions *o, const char *prefix, PmWriter json, PmWriter table, const void *arg)
{
  return pm_mkdir(o) || write_one(o, prefix, "json", json, arg, 0) || write_one(o, prefix, "txt", table, arg, 1);
}

void pm_progress(PmProgress *p, const char *item)
{
  double t = pm_now_s(), el = t - p->t0;
  if (item) p->done++;
  int last = p->done >= p->total;
  if (p->quiet || p->finished || (!last && t - p->last < 0.5 && p->done > 1)) return;
  p->finished = last;
  p->last = t;
  double eta = p->done ? el / p->done * (p->total - p->done) : 0;
  fprintf(stderr, "\rgvc profile %s: %3.0f%% %-36s %.1fs elapsed, ETA %.1fs ", p->what, 100.0 * p->done / p->total,
          last ? "done" : item ? item : "", el, eta);
  if (last) fprintf(stderr, "\n");
}
