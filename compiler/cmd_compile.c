/* cmd_compile.c - `gvc compile` and `gvc run`: front end -> lowering -> one of the two
 * emitters. compile writes C source, an object file or a linked training binary; run
 * JIT-compiles the program with LLVM and calls the runtime's main in this process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "emit.h"
#include "frontend.h"
#include "gvc_config.h"
#include "gvrt_program.h"
#include "config_input.h"
#include "ctx.h"
#include "lower.h"
#include "plan_picture.h"
#include "entries.h"
#include "search_cli.h"
#include "gvrt_num.h"
#include "options.h"
#include "diag.h"


typedef struct CompileArgs {
  const char *file, *model, *out, *emit, *via, *dump, *ckpt, *pipeline, *pp_division, *dp_type, *config;
  const char *zero3_layers, *tp_sizes, *precision;
  const char *svg, *device;  /* --svg FILE: the plan's picture; --device: its cost model's preset */
  double budget_gb;          /* --memory_constraint GB: the picture's budget line */
  int no_async;
  int64_t seq, micro_batch;
  int num_layers;            /* --num_layers: the model's `layers` argument replaced (0: the size's) */
  int opt, nodes, gpus_per_node, world_given, pp, chunks, global_ckpt, sdp, tp, tp_consec, sp, ulysses, vtp;
  int cp;                    /* --global_cp_deg: context parallelism (zigzag ring attention) */
  int run_argc;
  char **run_argv;
  /* --search: search the strategy in this process; the options compile does not know go to
   * the search (Galvatron's search flags), with the model, world, precision and sequence */
  int search, time_ops;
  const char *strategy_out;   /* --strategy_out FILE.json: also write the searched strategy */
  const char *sargv[256];
  int sargc;
  const GalConfig *searched;  /* the searched strategy, applied like --galvatron_config_path */
  const char *mem_text;       /* --memory_constraint as given */
  char snum[3][24];
  StrategyWhere strategy;    /* where the file's strategy blocks set options (block.file -1: none) */
  int user_argc;             /* the command line as given (its options override the blocks') */
  char **user_argv;
} CompileArgs;

static void usage(FILE *f, int run)
{
  if (run)
    fprintf(f, "usage: gvc run FILE --model NAME [compile options] [-- training options]\n\n"
               "JIT-compiles the training program with LLVM and trains at once; everything after\n"
               "'--' goes to the program (see the training options below, or '-- --help').\n\n");
  else
    fprintf(f, "usage: gvc compile FILE --model NAME [-o OUT] [options]\n\n"
               "Lowers a model to a per-rank training program linked against libgvrt.\n\n");
  fprintf(f, "options:\n"
             "  --model NAME              the size or model to compile (required)\n"
             "  --seq N                   sequence length (default: the model's, capped at 1024)\n"
             "  --num_layers N            the model's `layers` argument set to N (Galvatron's layer-number\n"
             "                            override; gvc profile compiles layernum_min and layernum_max)\n"
             "  --micro-batch N           micro-batch size (also --micro_batch; default 1, or global_bsz /\n"
             "                            (chunks x dp) of a --galvatron_config_path strategy)\n"
             "  --checkpoint none|all|L   activation checkpointing: none, all layers, or a comma list\n"
             "                            of layer names or indices (e.g. layers.0,layers.1)\n"
             "  --num_nodes N, --num_gpus_per_node N   world size the program is built for (1 x 1)\n"
             "  --pp_deg N                pipeline stages (Galvatron's GLOBAL mode; dp = world / pp)\n"
             "  --pp_division A,B,...     blocks per stage (default: even, remainder on the last stages)\n"
             "  --pipeline_type T         pipedream_flush (1F1B, default) or gpipe\n"
             "  --chunks N                micro-batches per step and data-parallel rank (default pp)\n"
             "  --global_checkpoint 0|1   checkpoint every block (same as --checkpoint all)\n"
             "  --galvatron_config_path F a Galvatron strategy (galvatron_config_*.json, e.g. from gvc search):\n"
             "                            pp, division, schedule, chunks, tp, dp type, per-layer checkpoints,\n"
             "                            global batch (also --strategy F)\n"
             "  --global_tp_deg N         Megatron tensor parallelism of every block (@col/@row linears)\n"
             "  --global_tp_consec 0|1    tp groups of adjacent ranks (1, default) or strided by dp (0)\n"
             "  --sequence_parallel 0|1   Megatron sequence parallelism in the tp blocks (norms, residuals on\n"
             "                            1/tp of the token rows; default 0)\n"
             "  --vocab_tp N              split the embedding and LM head by vocabulary over N ranks (1, the\n"
             "                            tp degree, or a multiple of it: the blocks then run per-layer tp)\n"
             "  --global_cp_deg N         context parallelism (Galvatron's cp_mode zigzag): every layer on 1/N\n"
             "                            of each sequence, causal attention as ring attention over N ranks\n"
             "  --use_ulysses 0|1         --global_tp_deg is a Ulysses degree instead: weights replicated,\n"
             "                            token rows split, all-to-all around attention\n"
             "  --default_dp_type T       ddp (default), zero2 (sharded gradients and optimizer state) or\n"
             "                            zero3 (the blocks' parameters sharded too, gathered layer by layer)\n"
             "  --sdp 0|1                 ZeRO-3 for the blocks (Galvatron's flag; same as zero3)\n"
             "  --zero3_layers all|L      ZeRO-3 for these blocks only (names or indices); the rest keep\n"
             "                            --default_dp_type (ddp, or ZeRO-2 per parameter)\n"
             "  --no_async_grad_reduce    reduce data-parallel gradients after every micro-batch's backward\n"
             "                            (default: overlapped with the last micro-batch's backward)\n"
             "  --tp_sizes_enc A,B,...    a tp degree per block (Galvatron's key; each divides the largest,\n"
             "                            which replaces --global_tp_deg); with ddp or ZeRO-2/3\n"
             "                            (Galvatron's per-layer dp_types_enc)\n"
             "  --mixed_precision P       fp32 (default) or bf16: parameters, activations and gradients in\n"
             "                            bf16, fp32 master weights and AdamW moments (Galvatron's flag)\n"
             "  --dump WHAT               print strategy (per layer), schedule (the schedule IR) or\n"
             "                            memory (the memory plan); a comma list\n"
             "  --svg FILE                the plan's picture: layers by stage, memory per stage, pipeline\n"
             "                            timeline of one step on the analytic cost model's times\n"
             "  --memory_constraint GB    budget line of the picture (stages over it are marked)\n"
             "  --device D                the picture's cost model preset: h100 (default), h200, a100, cpu\n"
             "  -O N                      LLVM optimisation level 0..3 (default 1)\n"
             "  --search [search options] search the fastest strategy within --memory_constraint GB first\n"
             "                            (gvc search's options: profile paths, --cost-model, --min_bsz, ...;\n"
             "                            see 'gvc search --help') and compile it, in one process\n"
             "  --strategy_out F.json     with --search: also write the searched Galvatron config\n"
             "  --time_ops                the program times each call of its steps and prints where a\n"
             "                            step's time goes, op by op, at the end of the run\n");
  if (!run)
    fprintf(f, "  -o OUT                    output path (default: the model name)\n"
               "  --emit exe|c|obj|ll       a linked binary (default), C source, an object file, LLVM IR\n"
               "  --via llvm|c              how an exe is built: LLVM object (default when built with\n"
               "                            LLVM) or C source through the system C compiler\n");
}

static const char *value(int *i, int argc, char **argv, const char *name)
{
  const char *a = argv[*i], *eq = strchr(a, '=');
  if (eq)
    return eq + 1;
  if (*i + 1 >= argc) {
    diag_plain(NULL, "option '%s' needs a value", name);
    return NULL;
  }
  return argv[++*i];
}

static int is_opt(const char *a, const char *name)
{
  size_t n = strlen(name);
  return !strncmp(a, name, n) && (a[n] == 0 || a[n] == '=');
}

/* An integer option into *dst (given, when not NULL, set to 1); 1 after printing why not. */
static int int_opt(const char *name, const char *v, int *dst, int *given)
{
  int64_t x;
  if (options_int(name, v, &x))
    return 1;
  *dst = (int)x;
  if (given)
    *given = 1;
  return 0;
}

/* v (when given) is an accepted value of option NAME; 1 after printing why not (and note). */
static int check_opt(const char *name, const char *v, const char *note)
{
  char want[128];
  const char *why = v ? options_check(options_find(name), v, want, sizeof want) : NULL;
  if (why)
    diag_plain(NULL, "--%s '%s': expected %s%s", name, v, why, note);
  return why != NULL;
}


/* The options the search shares with compile: the model, the world, the precision of the
 * program and its sequence length, the memory budget. */
static void search_args(CompileArgs *c)
{
  const char **v = c->sargv;
  int n = c->sargc;
  snprintf(c->snum[0], sizeof c->snum[0], "%d", c->nodes);
  snprintf(c->snum[1], sizeof c->snum[1], "%d", c->gpus_per_node);
  snprintf(c->snum[2], sizeof c->snum[2], "%lld", (long long)c->seq);
  v[n++] = c->file, v[n++] = "--model", v[n++] = c->model;
  v[n++] = "--num_nodes", v[n++] = c->snum[0], v[n++] = "--num_gpus_per_node", v[n++] = c->snum[1];
  v[n++] = "--mixed_precision", v[n++] = c->precision ? c->precision : "fp32";
  if (c->seq)
    v[n++] = "--seq_length", v[n++] = c->snum[2];
  if (c->mem_text)
    v[n++] = "--memory_constraint", v[n++] = c->mem_text;
  c->sargc = n;
}

/* 0 ok, 1 help shown, -1 error */
static int parse(CompileArgs *c, int argc, char **argv, int run)
{
  memset(c, 0, sizeof *c);
  for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
    c->search |= !strcmp(argv[i], "--search");
  c->sargv[c->sargc++] = "search";
  c->strategy.block.file = -1;
  c->micro_batch = 0; /* default 1, or what --galvatron_config_path implies */
  c->opt = 1;
  c->nodes = c->gpus_per_node = 1;
  c->emit = "exe";
  c->pp = 1;
  c->tp = 1;
  c->cp = 1;
  c->tp_consec = 1;
  c->pipeline = "pipedream_flush";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    int bad = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout, run);
      return 1;
    }
    if (!strcmp(a, "--")) {
      c->run_argc = argc - i;
      c->run_argv = argv + i;
      break;
    }
    if (!strcmp(a, "--search"))
      continue;
    if (!strcmp(a, "--time_ops")) {
      c->time_ops = 1;
      continue;
    }
    if (!strcmp(a, "--no_async_grad_reduce")) { /* Galvatron's bare flag; a strategy block passes 0|1 */
      c->no_async = 1;
      if (i + 1 < argc && (!strcmp(argv[i + 1], "0") || !strcmp(argv[i + 1], "1")))
        c->no_async = atoi(argv[++i]);
      continue;
    }
#define OPT(name) (is_opt(a, name) && (v = value(&i, argc, argv, name)) != NULL)
    if (OPT("--model")) c->model = v;
    else if (OPT("-o")) c->out = v;
    else if (OPT("--emit")) c->emit = v;
    else if (OPT("--via")) c->via = v;
    else if (OPT("--dump")) c->dump = v;
    else if (OPT("--svg")) c->svg = v;
    else if (OPT("--device")) c->device = v;
    else if (OPT("--memory_constraint")) {
      static const struct gv_num_range gb = {0, 1e6, 0, 1, 0};   /* (0, 1e6] GB */
      c->mem_text = v;
      if ((bad = gv_num_parse(v, &gb, &c->budget_gb)))
        diag_plain(NULL, "--memory_constraint '%s': expected a number of GB above 0", v);
    }
    else if (OPT("--checkpoint")) c->ckpt = v;
    else if (OPT("--zero3_layers")) c->zero3_layers = v;
    else if (OPT("--tp_sizes_enc")) c->tp_sizes = v;
    else if (OPT("--mixed_precision")) c->precision = v;
    else if (OPT("--seq") || OPT("--seq_length")) bad = options_int("seq", v, &c->seq);
    else if (OPT("--micro-batch") || OPT("--micro_batch")) bad = options_int("micro_batch", v, &c->micro_batch);
    else if (OPT("--num_nodes")) bad = int_opt("num_nodes", v, &c->nodes, &c->world_given);
    else if (OPT("--pp_deg")) bad = int_opt("pp_deg", v, &c->pp, NULL);
    else if (OPT("--pp_division")) c->pp_division = v;
    else if (OPT("--pipeline_type")) c->pipeline = v;
    else if (OPT("--chunks")) bad = int_opt("chunks", v, &c->chunks, NULL);
    else if (OPT("--global_checkpoint")) bad = int_opt("global_checkpoint", v, &c->global_ckpt, NULL);
    else if (OPT("--default_dp_type")) c->dp_type = v;
    else if (OPT("--sdp")) bad = int_opt("sdp", v, &c->sdp, NULL);
    else if (OPT("--global_tp_deg")) bad = int_opt("global_tp_deg", v, &c->tp, NULL);
    else if (OPT("--galvatron_config_path") || OPT("--strategy")) c->config = v;
    else if (OPT("--global_tp_consec")) bad = int_opt("global_tp_consec", v, &c->tp_consec, NULL);
    else if (OPT("--sequence_parallel")) bad = int_opt("sequence_parallel", v, &c->sp, NULL);
    else if (OPT("--global_cp_deg")) bad = int_opt("global_cp_deg", v, &c->cp, NULL);
    else if (OPT("--use_ulysses")) bad = int_opt("use_ulysses", v, &c->ulysses, NULL);
    else if (OPT("--vocab_tp")) bad = int_opt("vocab_tp", v, &c->vtp, NULL);
    else if (OPT("--num_gpus_per_node")) bad = int_opt("num_gpus_per_node", v, &c->gpus_per_node, &c->world_given);
    else if (OPT("--num_layers")) bad = int_opt("num_layers", v, &c->num_layers, NULL);
    else if (OPT("-O")) bad = int_opt("O", v, &c->opt, NULL);
    else if (!strncmp(a, "-O", 2) && a[2]) bad = int_opt("O", a + 2, &c->opt, NULL);
    else if (OPT("--strategy_out")) c->strategy_out = v;
    else if (a[0] == '-' && c->search && c->sargc + 2 + 16 < (int)(sizeof c->sargv / sizeof c->sargv[0])) {
      /* (16 kept for the shared options search_args appends) */
      c->sargv[c->sargc++] = a; /* a search option, with its value unless a switch stands bare */
      if (!strchr(a, '=') && i + 1 < argc && strncmp(argv[i + 1], "--", 2))
        c->sargv[c->sargc++] = argv[++i];
    } else if (a[0] == '-') {
      diag_plain(NULL, "unknown option '%s' (see 'gvc %s --help')", a, run ? "run" : "compile");
      return -1;
    } else if (!c->file) c->file = a;
    else {
      diag_plain(NULL, "more than one input file ('%s', '%s')", c->file, a);
      return -1;
    }
#undef OPT
    if (bad)
      return -1;
  }
  if (!c->file || !c->model) {
    diag_plain(NULL, "%s", !c->file ? "no input file" : "--model NAME is required");
    return -1;
  }
  if ((int64_t)c->nodes * c->gpus_per_node > OPTIONS_MAX_WORLD) {
    diag_plain(NULL, "--num_nodes %d x --num_gpus_per_node %d = %lld ranks: expected at most %d", c->nodes,
               c->gpus_per_node, (long long)c->nodes * c->gpus_per_node, OPTIONS_MAX_WORLD);
    return -1;
  }
  if (strcmp(c->emit, "exe") && strcmp(c->emit, "c") && strcmp(c->emit, "obj") && strcmp(c->emit, "ll")) {
    diag_plain(NULL, "--emit must be exe, c, obj or ll");
    return -1;
  }
  if (check_opt("pipeline_type", c->pipeline, "") || check_opt("default_dp_type", c->dp_type, "") ||
      check_opt("mixed_precision", c->precision, c->precision && !strcmp(c->precision, "fp16")
                                                 ? " (fp16 needs loss scaling, which is not built)" : "") ||
      check_opt("checkpoint", c->ckpt, "") || check_opt("zero3_layers", c->zero3_layers, "") ||
      check_opt("pp_division", c->pp_division, "") || check_opt("tp_sizes_enc", c->tp_sizes, "") ||
      check_opt("galvatron_config_path", c->config, ""))
    return -1;
  if (c->sdp)
    c->dp_type = "zero3";
  if (c->global_ckpt && !c->ckpt)
    c->ckpt = "all";
  if (!c->via)
    c->via = emit_llvm_available() ? "llvm" : "c";
  if (strcmp(c->via, "llvm") && strcmp(c->via, "c")) {
    diag_plain(NULL, "--via must be llvm or c");
    return -1;
  }
  if (!c->out)
    c->out = c->model;
  if (c->search && run) {
    diag_plain(NULL, "--search is an option of gvc compile (search, then compile in one process)");
    return -1;
  }
  if (c->search)
    search_args(c);
  return 0;
}

/* Options from the file's `strategy` blocks go first, so the command line overrides them. */
static int parse_with_strategy(CompileArgs *c, int argc, char **argv, int run, Ctx *cx, char ***owned)
{
  int rc = parse(c, argc, argv, run);
  *owned = NULL;
  if (rc)
    return rc;
  char **extra;
  int n;
  StrategyWhere where;
  if (frontend_strategy_args(cx, c->file, c->model, &extra, &n, &where)) {
    free(extra);
    return -1;
  }
  if (!n)
    return 0;
  char **all = calloc((size_t)(argc + n + 1), sizeof *all);
  all[0] = argv[0];
  memcpy(all + 1, extra, sizeof *all * (size_t)n);
  memcpy(all + 1 + n, argv + 1, sizeof *all * (size_t)(argc - 1));
  free(extra);
  *owned = all;
  fprintf(stderr, "gvc: strategy from %s:", c->file);
  for (int i = 1; i <= n; i++)
    fprintf(stderr, " %s", all[i]);
  fputc('\n', stderr);
  rc = parse(c, argc + n, all, run);
  c->strategy = where;
  c->user_argc = argc;
  c->user_argv = argv;
  return rc;
}

/* Where the file's strategy block sets option KEY, unless the command line gives it too
 * (file -1). */
static Loc setting_at(const CompileArgs *c, const char *key)
{
  Loc none = {-1, 0, 0, 0};
  for (int i = 1; key && i < c->user_argc && strcmp(c->user_argv[i], "--"); i++)
    if (!strncmp(c->user_argv[i], "--", 2) && is_opt(c->user_argv[i] + 2, key))
      return none;
  for (int i = c->strategy.n - 1; key && i >= 0; i--)
    if (!strcmp(c->strategy.keys[i], key))
      return c->strategy.values[i];
  return none;
}

static void strategy_block_note(Ctx *cx, const CompileArgs *c)
{
  if (c->strategy.block.file >= 0)
    diag_note(cx, c->strategy.block, "with the options of the strategy block for '%s'", c->model);
}

/* A problem of the strategy: at the value of option KEY when a strategy block set it (KEY
 * NULL: about no one option), else "gvc: error: MSG" with a note on the file's strategy
 * block when it set options (the command line's own options have no location). */
static void strategy_error(Ctx *cx, const CompileArgs *c, const char *key, const char *msg)
{
  Loc at = setting_at(c, key);
  if (at.file >= 0) {
    diag_error(cx, at, "%s", msg);
    return;
  }
  diag_plain(cx, "%s", msg);
  strategy_block_note(cx, c);
}

/* Per-layer flags (checkpointing, ZeRO-3) from "none", "all" (every block) or a comma list
 * of layer names/indices; key names the option in errors. */
static unsigned char *layer_flags(Ctx *cx, const CompileArgs *c, Arena *a, const IrModel *m, const char *spec,
                                  const char *key)
{
  unsigned char *f = ARENA_ARRAY(a, unsigned char, m->nlayers);
  if (!spec || !strcmp(spec, "none"))
    return f;
  if (!strcmp(spec, "all")) {
    for (int i = 0; i < m->nlayers; i++)
      f[i] = m->layers[i].kind == IR_LAYER_BLOCK;
    return f;
  }
  char *copy = arena_strdup(a, spec), *save = NULL;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *end;
    long idx = strtol(t, &end, 10);
    const IrLayer *ly = *end ? ir_find_layer(m, t) : (idx >= 0 && idx < m->nlayers ? &m->layers[idx] : NULL);
    if (!ly) {
      strategy_error(cx, c, key, arena_printf(a, "--%s: '%s' is not a layer of %s", key, t, m->name));
      return NULL;
    }
    f[ly - m->layers] = 1;
  }
  return f;
}

/* --tp_sizes_enc: one tp degree per block (the largest becomes the base degree). */
static int layer_degrees(Ctx *cx, const CompileArgs *c, Arena *a, const IrModel *m, const char *spec,
                         LowerOptions *o)
{
  int *deg = ARENA_ARRAY(a, int, m->nblocks + 1), *lt = ARENA_ARRAY(a, int, m->nlayers), n = 0, tmax = 1;
  if (options_int_list("tp_sizes_enc", spec, deg, (int)m->nblocks, &n))
    return 1;
  if (n != (int)m->nblocks) {
    strategy_error(cx, c, "tp_sizes_enc", arena_printf(a, "--tp_sizes_enc '%s': needs one degree per block (%s has "
                                                       "%lld)", spec, m->name, (long long)m->nblocks));
    return 1;
  }
  for (int i = 0; i < n; i++)
    tmax = deg[i] > tmax ? deg[i] : tmax;
  for (int i = 0, b = 0; i < m->nlayers; i++)
    lt[i] = m->layers[i].kind == IR_LAYER_BLOCK ? deg[b++] : tmax;
  o->tp = tmax;
  o->layer_tp = lt;
  return 0;
}

/* The resolved per-layer strategy, one row per top-level layer (`--dump strategy`). */
static void print_strategy(const IrModel *m, const LowerOptions *o, const unsigned char *ckpt)
{
  int dp = lower_dp(o, o->tp);
  printf("strategy of %s on %d ranks: pp %d (%s, %d micro-batches of %lld per step and dp rank), %s %d (%s%s), dp %d "
         "(%s), %s\n", m->name, o->world, o->pp, o->pipeline_1f1b ? "pipedream_flush" : "gpipe", o->chunks,
         (long long)o->micro_batch, o->ulysses ? (o->ulysses_layers ? "tp or ulysses per layer" : "ulysses")
         : o->layer_tp ? "tp per layer, largest" : "tp", o->tp,
         o->tp_consec ? "consecutive" : "strided",
         !o->ulysses && o->sp && o->tp > 1 ? ", sequence parallel" : "", dp,
         o->zero == 3 ? (o->zero3_layers ? "zero3 on some blocks" : "zero3") : o->zero ? "zero2" : "ddp",
         o->bf16 ? "bf16 mixed precision (fp32 master weights)" : "fp32");
  printf("%-14s %-10s %6s %4s %4s %-6s %5s  %s\n", "layer", "kind", "stage", "tp", "dp", "dp", "ckpt", "rows");
  static const char *kinds[] = {"embedding", "block", "norm", "head", "other"};
  for (int i = 0; i < m->nlayers; i++) {
    int block = m->layers[i].kind == IR_LAYER_BLOCK, ltp = block ? (o->layer_tp ? o->layer_tp[i] : o->tp) : 1;
    dp = lower_dp(o, block && o->layer_tp ? ltp : o->tp);
    int ul = block && o->ulysses && o->tp > 1 && (!o->ulysses_layers || o->ulysses_layers[i]);
    printf("%-14s %-10s %6d %4d %4d %-6s %5s  %s\n", m->layers[i].name, kinds[m->layers[i].kind], o->stage_of_layer[i],
           ltp, dp, o->zero == 3 && block && (!o->zero3_layers || o->zero3_layers[i]) ? "zero3"
                    : o->zero == 2 || o->zero2_rest ? "zero2" : "ddp",
           ckpt && ckpt[i] ? "yes" : "no",
           ul ? "split (ulysses)" : block && o->sp && o->tp > 1 ? "split (sp)" : "all");
  }
  if (o->cp > 1)
    printf("(context parallelism: cp %d, zigzag ring attention; every layer holds 1/%d of each sequence; the dp column "
           "counts dp x cp, the ranks gradients are reduced over)\n", o->cp, o->cp);
  if (o->tp > 1)
    printf("(the final norm is replicated over each tp group; the embedding and head are %s)\n",
           o->vtp ? "split by vocabulary over it" : "replicated too (--vocab_tp splits them)");
}

static int dumps(const CompileArgs *c, const Lowered *lw)
{
  if (!c->dump)
    return 0;
  for (int s = 0; s < lw->nstages; s++) {
    if (strstr(c->dump, "memory-summary")) {
      const Plan *p = lw->plans[s];
      printf("stage %d plan: params %lld, grads %lld, optimizer %lld, activations %lld bytes (%lld per micro-batch x %lld "
             "slots + %lld transient); workspace sized at start-up\n", s, (long long)p->arena_bytes[PLAN_PARAMS],
             (long long)p->arena_bytes[PLAN_GRADS], (long long)p->arena_bytes[PLAN_OPTIM],
             (long long)p->arena_bytes[PLAN_ACTS], (long long)p->slot_bytes, (long long)p->slots,
             (long long)p->transient_bytes);
    } else if (strstr(c->dump, "memory")) {
      if (lw->nstages > 1)
        printf("== stage %d\n", s);
      plan_print(stdout, lw->plans[s]);
    }
  }
  if (strstr(c->dump, "schedule"))
    sched_print(stdout, lw->prog);
  return 1;
}

static int run_cmd(const char *cmd)
{
  int rc = system(cmd);
  if (rc != 0)
    diag_plain(NULL, "command failed (%d): %s", rc, cmd);
  return rc != 0;
}

/* Link OBJ (or compile C source SRC first) with libgvrt into the binary OUT. */
static int link_binary(const char *in, const char *out, int c_source)
{
  size_t n = strlen(in) + 2 * strlen(out) + strlen(GV_LINK_LINE) + strlen(GV_C_COMPILER) + strlen(GV_RUNTIME_INCLUDE) + 256;
  char *cmd = malloc(n);
  int rc = 0;
  if (c_source) {
    snprintf(cmd, n, "%s -std=gnu11 -O2 -Wall -I'%s' -c -o '%s.o' '%s'", GV_C_COMPILER, GV_RUNTIME_INCLUDE, out, in);
    rc = run_cmd(cmd);
  }
  if (!rc) {
    snprintf(cmd, n, "%s -o '%s' '%s%s' %s", GV_C_COMPILER, out, c_source ? out : in, c_source ? ".o" : "",
             GV_LINK_LINE);
    rc = run_cmd(cmd);
  }
  free(cmd);
  return rc;
}

static int same_loc(Loc x, Loc y) { return x.file == y.file && x.line == y.line && x.col == y.col; }

/* Why the model cannot be lowered: at the op it is about (in the model's file or the stdlib
 * file of a layer it calls), then where the model's body makes it and the size being
 * compiled; a problem of no single op as the strategy's. */
static void lower_error(Ctx *cx, Arena *a, const CompileArgs *c, const IrModel *m, const LowerError *e)
{
  if (e->node < 0) {
    strategy_error(cx, c, NULL, arena_printf(a, "%s: %s", c->model, e->msg));
  } else {
    const IrNode *n = &m->nodes[e->node];
    diag_error(cx, n->at, "%s", e->msg);
    if (!same_loc(n->call_at, n->at))
      diag_note(cx, n->call_at, "from this call in the model's body");
    diag_note(cx, m->at, "'%s' is defined here", m->name);
    strategy_block_note(cx, c);
  }
  if (c->config)
    diag_plain_note(cx, "with the strategy of %s", c->config);
}

static Lowered *build(Ctx *cx, Arena *a, const CompileArgs *c, const IrModel **mout, LowerOptions *oout)
{
  cx->layers_override = c->num_layers;
  const IrModel *m = frontend_load_model(cx, c->file, c->model);
  if (!m)
    return NULL;
  *mout = m;
  LowerOptions o = {.micro_batch = c->micro_batch, .world = c->nodes * c->gpus_per_node, .pp = c->pp,
                    .pipeline_1f1b = strcmp(c->pipeline, "gpipe") != 0, .chunks = c->chunks ? c->chunks : c->pp,
                    .zero = !c->dp_type ? 0 : !strcmp(c->dp_type, "zero2") ? 2 : !strcmp(c->dp_type, "zero3") ? 3 : 0,
                    .tp = c->tp, .tp_consec = c->tp_consec, .sp = c->sp, .ulysses = c->ulysses, .vtp = c->vtp > 1, .cp = c->cp,
                    .no_async_grad_reduce = c->no_async, .bf16 = c->precision && !strcmp(c->precision, "bf16")};
  if (c->pp_division) {
    int *div = ARENA_ARRAY(a, int, o.pp), n = 0;
    const char *perr = NULL;
    if (options_int_list("pp_division", c->pp_division, div, o.pp, &n))
      return NULL;
    if (n != o.pp || !(o.stage_of_layer = lower_partition(a, m, o.pp, div, &perr))) {
      const char *why = perr ? perr : arena_printf(a, "%d entries for --pp_deg %d (one layer count per pipeline stage)",
                                                   n, o.pp);
      strategy_error(cx, c, "pp_division", arena_printf(a, "--pp_division '%s': %s", c->pp_division, why));
      return NULL;
    }
  }
  o.seq = c->seq ? c->seq : (m->max_seq && m->max_seq < 1024 ? m->max_seq : 1024);
  if (m->max_seq && o.seq > m->max_seq) {
    strategy_error(cx, c, "seq", arena_printf(a, "--seq %lld exceeds %s's %lld positions", (long long)o.seq, m->name,
                                              (long long)m->max_seq));
    return NULL;
  }
  o.checkpoint = layer_flags(cx, c, a, m, c->ckpt, "checkpoint");
  if (!o.checkpoint)
    return NULL;
  if (c->tp_sizes && layer_degrees(cx, c, a, m, c->tp_sizes, &o))
    return NULL;
  const char *err = c->config ? NULL : lower_vocab_degree(a, m, c->vtp, &o);
  if (err) {
    strategy_error(cx, c, "vocab_tp", arena_printf(a, "--vocab_tp %s", err));
    return NULL;
  }
  if (c->zero3_layers) { /* ZeRO-3 on the listed blocks, ddp on the rest */
    unsigned char *z = layer_flags(cx, c, a, m, c->zero3_layers, "zero3_layers");
    if (!z)
      return NULL;
    for (int i = 0; i < m->nlayers; i++)
      if (z[i] && m->layers[i].kind != IR_LAYER_BLOCK) {
        strategy_error(cx, c, "zero3_layers", arena_printf(a, "--zero3_layers: '%s' is not a block (only blocks' "
                                                           "parameters are sharded by ZeRO-3)", m->layers[i].name));
        return NULL;
      }
    o.zero2_rest = o.zero == 2; /* the other layers keep ZeRO-2, per parameter */
    o.zero = 3;
    o.zero3_layers = z;
  }
  if (c->searched && config_apply_galvatron(a, m, c->searched, "the searched strategy", c->world_given, &o))
    return NULL;
  if (c->config && config_apply(a, m, c->config, c->world_given, &o))
    return NULL;
  if (!o.micro_batch)
    o.micro_batch = 1;
  static const LowerSpelling cli = {"--pp_deg", "--global_tp_deg"}, json = {"pp_deg", "tp (tp_sizes_enc, vtp)"};
  if ((err = lower_check(a, m, &o, c->config || c->searched ? &json : &cli))) {
    strategy_error(cx, c, NULL, arena_printf(a, "%s%s%s", c->config ? c->config : "", c->config ? ": " : "", err));
    return NULL;
  }
  if (o.world != 1) {
    const char *dp = o.zero == 3 ? (o.zero3_layers ? "ZeRO-3 on some blocks" : "ZeRO-3") : o.zero ? "ZeRO-2" : "ddp";
    int cp = o.cp > 1 ? o.cp : 1;
    fprintf(stderr, "gvc: strategy: %d ranks = pp %d x tp %d%s%s%s x dp %d (%s, %s, %d micro-batches per step and dp "
            "rank)%s\n", o.world, o.pp, o.tp, o.layer_tp ? " (largest; per layer below)" : "",
            o.ulysses && o.tp > 1 ? " (Ulysses)" : o.sp && o.tp > 1 ? " (+SP)" : "",
            cp > 1 ? arena_printf(a, " x cp %d (zigzag ring attention)", cp) : "", lower_dp(&o, o.tp) / cp, dp,
            o.pipeline_1f1b ? "1F1B" : "GPipe", o.chunks, c->ckpt || c->config || c->searched ? ", checkpointing as given" : "");
  }
  if (!o.stage_of_layer && !(o.stage_of_layer = lower_partition(a, m, o.pp, NULL, &err))) {
    strategy_error(cx, c, "pp_deg", arena_printf(a, "%s: %s", c->model, err));
    return NULL;
  }
  if (c->dump && strstr(c->dump, "strategy"))
    print_strategy(m, &o, o.checkpoint);
  LowerError lerr;
  Lowered *lw = lower_model(a, m, &o, &lerr);
  if (!lw)
    lower_error(cx, a, c, m, &lerr);
  else if (c->time_ops)
    sched_insert_marks(lw->prog, entry_callee(ENT_gen_op_mark), "gv_gen_");
  *oout = o;
  return lw;
}

static int picture(const CompileArgs *c, const IrModel *m, const LowerOptions *o, const Lowered *lw)
{
  if (!c->svg)
    return 0;
  PlanPictureArgs pa = {c->svg, c->device, c->gpus_per_node, c->budget_gb};
  if (plan_picture_write(&pa, m, o, lw))
    return 1;
  fprintf(stderr, "gvc: wrote %s\n", c->svg);
  return 0;
}

/* `--search`: gvc search's engine on the collected options; the best plan as a Galvatron
 * config in memory (and in --strategy_out when asked), its predicted time on stderr. */
static int search_strategy(const CompileArgs *c, GalConfig *g)
{
  SearchCli sc;
  int rc = search_cli_parse(c->sargc, (char **)c->sargv, 0, &sc);
  if (rc)
    return 1;
  sc.quiet = 1;
  if (search_cli_model(&sc)) {
    search_cli_free(&sc);
    return 1;
  }
  SearchResult res;
  if (search_run(&sc.cm, &sc.so, &res)) {
    diag_plain(NULL, "--search: no valid configuration found under %g GB per GPU (%ld tasks searched)", sc.memory_gb,
               res.tasks);
    search_cli_free(&sc);
    return 1;
  }
  const SearchPlan *p = &res.plans[0];
  search_cli_plan_config(&sc.cm, p, g);
  fprintf(stderr, "gvc: searched: pp %d, global batch %d, chunks %d: %.6f s per step predicted (%s cost model), %ld "
          "tasks in %.3f s\n", p->task.pp, p->task.gbsz, p->task.chunks, p->time_s,
          sc.cm.analytic ? "analytic" : "galvatron", res.tasks, res.search_time_s);
  rc = 0;
  if (c->strategy_out) {
    FILE *f = fopen(c->strategy_out, "w");
    if (!f) {
      diag_plain(NULL, "--strategy_out %s: cannot write", c->strategy_out);
      rc = 1;
    } else {
      prof_config_write(f, g, NULL);
      rc = fclose(f) != 0;
    }
  }
  search_result_free(&res);
  search_cli_free(&sc);
  if (rc)
    prof_config_free(g);
  return rc;
}

int cmd_compile(int argc, char **argv)
{
  CompileArgs c;
  Ctx *cx = ctx_new();
  char **owned = NULL;
  int rc = parse_with_strategy(&c, argc, argv, 0, cx, &owned);
  free(owned); /* c points at the strings (argv's and cx's), not into the array */
  if (rc) {
    ctx_free(&cx);
    return rc < 0 ? 1 : 0;
  }
  GalConfig searched;
  if (c.search) {
    if (c.config) {
      diag_plain(NULL, "--search and --galvatron_config_path: give one strategy source");
      ctx_free(&cx);
      return 1;
    }
    if (search_strategy(&c, &searched)) {
      ctx_free(&cx);
      return 1;
    }
    c.searched = &searched;
  }
  Arena *a = arena_new(1 << 20);
  const IrModel *m = NULL;
  LowerOptions o;
  clock_t t0 = clock();
  Lowered *lw = build(cx, a, &c, &m, &o);
  rc = 1;
  if (!lw || picture(&c, m, &o, lw))
    goto out;
  if (dumps(&c, lw) && !strcmp(c.out, c.model) && !strcmp(c.emit, "exe")) {
    rc = 0; /* a dump alone does not build anything */
    goto out;
  }
  char *err = NULL;
  char path[4096];
  if (!strcmp(c.emit, "c") || (!strcmp(c.emit, "exe") && !strcmp(c.via, "c"))) {
    snprintf(path, sizeof path, "%s%s", c.out, !strcmp(c.emit, "c") ? "" : ".c");
    FILE *f = fopen(path, "w");
    if (!f || emit_c_program(lw->prog, f, c.model)) {
      diag_plain(NULL, "cannot write %s", path);
      if (f)
        fclose(f);
      goto out;
    }
    fclose(f);
    rc = !strcmp(c.emit, "c") ? 0 : link_binary(path, c.out, 1);
  } else if (!strcmp(c.emit, "ll")) {
    rc = emit_llvm_ir(lw->prog, c.out, &err);
  } else {
    snprintf(path, sizeof path, "%s%s", c.out, !strcmp(c.emit, "obj") ? "" : ".o");
    rc = emit_llvm_object(lw->prog, path, c.opt, &err);
    if (!rc && !strcmp(c.emit, "exe"))
      rc = link_binary(path, c.out, 0);
  }
  if (err) {
    diag_plain(NULL, "%s", err);
    free(err);
  }
  if (!rc)
    fprintf(stderr, "gvc: wrote %s (%s, %lld bytes of memory planned) in %.2fs\n", c.out, c.emit,
            (long long)(lw->plan->arena_bytes[0] + lw->plan->arena_bytes[1] + lw->plan->arena_bytes[2] +
                        lw->plan->arena_bytes[3] + lw->plan->arena_bytes[4]),
            (double)(clock() - t0) / CLOCKS_PER_SEC);
out:
  if (c.searched)
    prof_config_free(&searched);
  arena_free(&a);
  ctx_free(&cx);
  return rc ? 1 : 0;
}

int cmd_run(int argc, char **argv)
{
  CompileArgs c;
  if (!emit_llvm_available()) {
    diag_plain(NULL, "'gvc run' needs the LLVM JIT, which is not part of this build; use 'gvc compile'");
    return 1;
  }
  Ctx *cx = ctx_new();
  char **owned = NULL;
  int rc = parse_with_strategy(&c, argc, argv, 1, cx, &owned);
  free(owned); /* c points into argv and the strategy's strings (in cx), not into the array */
  if (rc) {
    ctx_free(&cx);
    return rc < 0 ? 1 : 0;
  }
  Arena *a = arena_new(1 << 20);
  const IrModel *m = NULL;
  LowerOptions o;
  Lowered *lw = build(cx, a, &c, &m, &o);
  rc = 1;
  if (!lw || picture(&c, m, &o, lw))
    goto out;
  if (dumps(&c, lw))
    goto out_ok;
  char *err = NULL;
  EmitJit *j = emit_llvm_jit(lw->prog, c.opt, &err);
  void *entry = j ? emit_llvm_jit_lookup(j, lw->prog->entry, &err) : NULL;
  if (!entry) {
    diag_plain(NULL, "JIT: %s", err ? err : "no entry");
    free(err);
    emit_llvm_jit_free(&j);
    goto out;
  }
  char *prog_argv[256];
  int n = 0;
  prog_argv[n++] = (char *)c.model;
  for (int i = 1; i < c.run_argc && n < 255; i++)
    prog_argv[n++] = c.run_argv[i];
  prog_argv[n] = NULL;
  rc = gv_main(n, prog_argv, (gv_prog_fn)entry);
  emit_llvm_jit_free(&j);
  goto out;
out_ok:
  rc = 0;
out:
  arena_free(&a);
  ctx_free(&cx);
  return rc;
}

int cmd_plan(int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: gvc plan FILE --model NAME [compile's strategy options] [--svg FILE [--memory_constraint GB]\n"
             "       [--device h100|h200|a100|cpu]]\n\n"
             "Resolves the strategy a program would run and prints it per layer (stage, tp, dp,\n"
             "dp type, checkpointing) and the memory plan of each stage, without building anything.\n"
             "--svg FILE also draws it: layers by pipeline stage, memory per stage against the budget,\n"
             "and the pipeline timeline of one step on the analytic cost model's times.\n"
             "Same options as 'gvc compile' (see 'gvc compile --help').\n");
      return 0;
    }
  char **args = calloc((size_t)argc + 3, sizeof *args);
  memcpy(args, argv, sizeof *args * (size_t)argc);
  args[argc] = "--dump";
  args[argc + 1] = "strategy,memory-summary";
  int rc = cmd_compile(argc + 2, args);
  free(args);
  return rc;
}
