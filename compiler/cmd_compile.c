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
  const char *file, *model, *out, *emit, *via, *dump;
  const char *svg, *device;  /* --svg FILE: the plan's picture; --device: its cost model's preset */
  double budget_gb;          /* --memory_constraint GB: the picture's budget line */
  const char *mem_text;      /* --memory_constraint as given */
  int num_layers;            /* --num_layers: the model's `layers` argument replaced (0: the size's) */
  int stack_layers[CTX_MAXSTACKS], nstack; /* --num_layers A,B,...: the counts of the model's top-level repeat loops */
  int opt, time_ops;
  int vocab_divisible;        /* --make-vocab-size-divisible-by N: the vocabulary padded to N x tp (0: none) */
  int run_argc;
  char **run_argv;
  /* the strategy: the file's strategy blocks' settings, then the command line's (which win) */
  ParSettings set, cli;
  /* --search: search the strategy in this process; the options compile does not know go to
   * the search (Galvatron's search flags), with the model, world, precision and sequence */
  int search;
  const char *strategy_out;   /* --strategy_out FILE.json: also write the searched strategy */
  const char *sargv[256];
  int sargc;
  const SearchCli *sc;        /* with --search: the search's options and cost model, */
  const SearchPlan *searched; /* and its best plan, read into the ParPlan */
} CompileArgs;

/* What `--search` found: kept until the program is built. */
typedef struct Searched { SearchCli sc; SearchResult res; } Searched;

static void usage(FILE *f, int run)
{
  if (run)
    fprintf(f, "usage: gvc run FILE --model NAME [compile options] [-- training options]\n\n"
               "JIT-compiles the training program with LLVM and trains at once; everything after\n"
               "'--' goes to the program (see the training options below, or '-- --help').\n\n");
  else
    fprintf(f, "usage: gvc compile FILE --model NAME [-o OUT] [options]\n\n"
               "Lowers a model to a per-rank training program linked against libgvrt.\n\n");
  fprintf(f, "options (Galvatron's names, dashed or underscored: --global-tp-deg = --global_tp_deg; a 0|1\n"
             "switch also stands bare, meaning 1: --sequence_parallel):\n"
             "  --model NAME              the size or model to compile (required)\n"
             "  --seq N                   sequence length (default: the model's, capped at 1024); an\n"
             "                            encoder-decoder's target length (Megatron's --decoder-seq-length)\n"
             "  --src_seq N               an encoder-decoder's source length S, src_tokens [B, S] (default:\n"
             "                            --seq; Megatron's --encoder-seq-length)\n"
             "  --num_layers N            the model's `layers` argument set to N (Galvatron's layer-number\n"
             "                            override; gvc profile compiles layernum_min and layernum_max);\n"
             "                            A,B,...: the counts of the model's top-level repeat loops in order\n"
             "                            (T5's encoder and decoder layers)\n"
             "  --make-vocab-size-divisible-by N  pad the vocabulary to a multiple of N x the tp degree\n"
             "                            (Megatron's; also underscored): the loss masks the padded logits,\n"
             "                            checkpoints and exports keep the true vocabulary\n"
             "  --micro-batch N           micro-batch size (also --micro_batch; default 1, or global_bsz /\n"
             "                            (chunks x dp) of a --galvatron_config_path strategy)\n"
             "  --global_train_batch_size N  samples per step: the micro-batch becomes N / (chunks x dp) and\n"
             "                            the program's default batch N\n"
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
             "  --vocab_sp 0|1            vocabulary sequence parallelism (Galvatron's vsp; --vocab_tp is then\n"
             "                            its degree): the embedding, final norm and head on each rank's token\n"
             "                            rows of the tp group, whole weights, gradients summed over it\n"
             "  --global_cp_deg N         context parallelism (Galvatron's cp_mode zigzag): every layer on 1/N\n"
             "                            of each sequence, causal attention as ring attention over N ranks\n"
             "  --global_ep_deg N         expert parallelism: each MoE layer's experts spread over N ranks of\n"
             "                            the data-parallel group, routed rows sent with all-to-all\n"
             "  --global_tp_of_ep_deg N   tensor parallelism inside each expert: 1 (default) or the tp degree\n"
             "                            (gate/up split by ffn outputs, down by ffn inputs)\n"
             "  --ep_dispatch_per_linear 0|1  ep: each expert linear exchanges its own rows (default 0: one\n"
             "                            dispatch and one combine per SwiGLU expert MLP)\n"
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
             "                            see 'gvc search --help') and compile it, in one process; it prices\n"
             "                            the --seq the program gets and keeps to plans the lowering runs\n"
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

/* A number as text (a 0|1 switch's value when it stands after the switch). */
static int numeric(const char *t)
{
  char *end;
  if (!*t)
    return 0;
  (void)strtod(t, &end);
  return *end == 0;
}

/* The name of option A as options.c spells it: without the dashes before it, Galvatron's
 * dashed and underscored spellings alike (--mixed-precision, --mixed_precision), and the
 * aliases (--seq_length, --strategy, --micro-batch); "" when A is not a long option. */
static const char *option_name(const char *a, char *buf, size_t n)
{
  size_t k = 0;
  buf[0] = 0;
  if (strncmp(a, "--", 2) || !a[2])
    return buf;
  for (const char *p = a + 2; *p && *p != '=' && k + 1 < n; p++)
    buf[k++] = *p == '-' ? '_' : *p;
  buf[k] = 0;
  static const char *const alias[][2] = {{"seq_length", "seq"}, {"strategy", "galvatron_config_path"},
                                         {"decoder_seq_length", "seq"}, {"encoder_seq_length", "src_seq"}};
  for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
    if (!strcmp(buf, alias[i][0]))
      return alias[i][1];
  return buf;
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

/* A strategy option of options.c (or --num_layers): its value (a 0|1 switch also stands
 * bare, meaning 1), checked, into the command line's settings. 1 after printing why not. */
static int strategy_opt(CompileArgs *c, Ctx *cx, const Option *o, int *i, int argc, char **argv)
{
  const char *a = argv[*i], *v;
  int bit = o->kind == OPTION_INT && o->range.integer && o->range.lo == 0 && o->range.hi == 1;
  if (strchr(a, '='))
    v = strchr(a, '=') + 1;
  else if (bit)
    v = *i + 1 < argc && numeric(argv[*i + 1]) ? argv[++*i] : "1";
  else if (!(v = value(i, argc, argv, a)))
    return 1;
  const char *note = !strcmp(o->name, "mixed_precision") && !strcmp(v, "fp16")
                     ? " (fp16 needs loss scaling, which is not built)" : "";
  if (check_opt(o->name, v, note))
    return 1;
  if (!strcmp(o->name, "num_layers")) {
    c->nstack = 0;
    for (const char *p = v; *p;) {
      char *end;
      long n = strtol(p, &end, 10);
      if (c->nstack == CTX_MAXSTACKS) { diag_plain(NULL, "--num_layers '%s': at most %d counts", v, CTX_MAXSTACKS); return 1; }
      c->stack_layers[c->nstack++] = (int)n;
      p = *end == ',' ? end + 1 : end;
    }
    c->num_layers = c->nstack == 1 ? c->stack_layers[0] : 0;
    if (c->nstack == 1) c->nstack = 0;
  }
  else if (!strcmp(o->name, "make_vocab_size_divisible_by"))
    c->vocab_divisible = (int)strtol(v, NULL, 10);
  else
    par_settings_add(cx->perm, &c->cli, o->name, v, (Loc){-1, 0, 0, 0});
  return 0;
}

/* The options the search shares with compile: the model, the world, the precision of the
 * program and its sequence length, Megatron SP, the memory budget. */
static void search_args(CompileArgs *c)
{
  static const char *const shared[][2] = {{"num_nodes", "--num_nodes"}, {"num_gpus_per_node", "--num_gpus_per_node"},
                                          {"mixed_precision", "--mixed_precision"}, {"seq", "--seq_length"},
                                          {"src_seq", "--src_seq"}, {"sequence_parallel", "--sequence_parallel"}};
  const char **v = c->sargv;
  int n = c->sargc;
  v[n++] = c->file, v[n++] = "--model", v[n++] = c->model;
  if (!par_settings_find(&c->set, "mixed_precision"))
    v[n++] = "--mixed_precision", v[n++] = "fp32";
  for (size_t k = 0; k < sizeof shared / sizeof shared[0]; k++) {
    const ParSetting *s = par_settings_find(&c->set, shared[k][0]);
    if (s)
      v[n++] = shared[k][1], v[n++] = s->value;
  }
  if (c->mem_text)
    v[n++] = "--memory_constraint", v[n++] = c->mem_text;
  c->sargc = n;
}

/* One option of the command line that is not a strategy setting; 0 ok, 1 unknown, -1 bad. */
static int compile_opt(CompileArgs *c, const char *name, int *i, int argc, char **argv)
{
  static const char *const text[] = {"model", "emit", "via", "dump", "svg", "device", "strategy_out", "memory_constraint"};
  const char **dst[] = {&c->model, &c->emit, &c->via, &c->dump, &c->svg, &c->device, &c->strategy_out, &c->mem_text};
  for (size_t k = 0; k < sizeof text / sizeof text[0]; k++) {
    if (strcmp(name, text[k]))
      continue;
    if (!(*dst[k] = value(i, argc, argv, argv[*i])))
      return -1;
    static const struct gv_num_range gb = {0, 1e6, 0, 1, 0};   /* (0, 1e6] GB */
    if (dst[k] == &c->mem_text && gv_num_parse(c->mem_text, &gb, &c->budget_gb)) {
      diag_plain(NULL, "--memory_constraint '%s': expected a number of GB above 0", c->mem_text);
      return -1;
    }
    return 0;
  }
  return 1;
}

/* One argument at argv[*i]: 0 ok, 1 help shown, 2 the training program's options begin,
 * -1 error. */
static int parse_arg(CompileArgs *c, Ctx *cx, int *i, int argc, char **argv, int run)
{
  const char *a = argv[*i], *v;
  char buf[64];
  const char *name = option_name(a, buf, sizeof buf);
  const Option *o = options_find(name);
  int rc;
  if (!strcmp(a, "--help") || !strcmp(a, "-h"))
    return usage(stdout, run), 1;
  if (!strcmp(a, "--"))
    return 2;
  if (!strcmp(name, "search") || !strcmp(name, "time_ops"))
    *(!strcmp(name, "search") ? &c->search : &c->time_ops) = 1;
  else if (o && (o->strategy || !strcmp(o->name, "num_layers") || !strcmp(o->name, "make_vocab_size_divisible_by")))
    return -strategy_opt(c, cx, o, i, argc, argv);
  else if ((rc = compile_opt(c, name, i, argc, argv)) <= 0)
    return rc;
  else if (!strcmp(a, "-o") || !strncmp(a, "-o=", 3))
    return (c->out = value(i, argc, argv, "-o")) ? 0 : -1;
  else if (!strcmp(a, "-O") || (!strncmp(a, "-O", 2) && a[2])) {
    int64_t x;
    if (!(v = a[2] ? a + 2 + (a[2] == '=') : value(i, argc, argv, "-O")) || options_int("O", v, &x))
      return -1;
    c->opt = (int)x;
  } else if (a[0] == '-' && c->search && c->sargc + 2 + 16 < (int)(sizeof c->sargv / sizeof c->sargv[0])) {
    /* (16 kept for the shared options search_args appends) */
    c->sargv[c->sargc++] = a; /* a search option, with its value unless a switch stands bare */
    if (!strchr(a, '=') && *i + 1 < argc && strncmp(argv[*i + 1], "--", 2))
      c->sargv[c->sargc++] = argv[++*i];
  } else if (a[0] == '-') {
    diag_plain(NULL, "unknown option '%s' (see 'gvc %s --help')", a, run ? "run" : "compile");
    return -1;
  } else if (!c->file)
    c->file = a;
  else {
    diag_plain(NULL, "more than one input file ('%s', '%s')", c->file, a);
    return -1;
  }
  return 0;
}

/* What the options say beyond each one's value: an input, the model, the emitted kind. */
static int check_args(CompileArgs *c, int run)
{
  if (!c->file || !c->model) {
    diag_plain(NULL, "%s", !c->file ? "no input file" : "--model NAME is required");
    return -1;
  }
  if (strcmp(c->emit, "exe") && strcmp(c->emit, "c") && strcmp(c->emit, "obj") && strcmp(c->emit, "ll")) {
    diag_plain(NULL, "--emit must be exe, c, obj or ll");
    return -1;
  }
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
  return 0;
}

/* The file's strategy blocks (read from its AST), then the command line's settings over
 * them. -1 after diagnostics. */
static int merge_strategy(CompileArgs *c, Ctx *cx)
{
  par_settings_init(&c->set, c->model);
  if (frontend_strategy_settings(cx, c->file, c->model, &c->set))
    return -1;
  if (c->set.n) {
    fprintf(stderr, "gvc: strategy from %s:", c->file);
    for (int i = 0; i < c->set.n; i++)
      fprintf(stderr, " --%s %s", c->set.v[i].key, c->set.v[i].value);
    fputc('\n', stderr);
  }
  for (int i = 0; i < c->cli.n; i++)
    par_settings_add(cx->perm, &c->set, c->cli.v[i].key, c->cli.v[i].value, c->cli.v[i].at);
  if (c->search)
    search_args(c);
  return 0;
}

/* 0 ok, 1 help shown, -1 error */
static int parse(CompileArgs *c, int argc, char **argv, int run, Ctx *cx)
{
  memset(c, 0, sizeof *c);
  for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
    c->search |= !strcmp(argv[i], "--search");
  c->sargv[c->sargc++] = "search";
  c->opt = 1;
  c->emit = "exe";
  par_settings_init(&c->cli, NULL);
  for (int i = 1; i < argc; i++) {
    int rc = parse_arg(c, cx, &i, argc, argv, run);
    if (rc == 2) {
      c->run_argc = argc - i;
      c->run_argv = argv + i;
      break;
    }
    if (rc)
      return rc;
  }
  return check_args(c, run) ? -1 : merge_strategy(c, cx);
}

/* The data-parallel type of the plan in words: ZeRO-3 on every block, on some, ZeRO-2, ddp. */
static const char *dp_words(const IrModel *m, const ParPlan *p, int upper)
{
  int all = 1;
  for (int i = 0; i < m->nlayers; i++)
    all &= m->layers[i].kind != IR_LAYER_BLOCK || p->layer[i].dp_type == DP_ZERO3;
  if (p->any_zero3)
    return all ? (upper ? "ZeRO-3" : "zero3") : upper ? "ZeRO-3 on some blocks" : "zero3 on some blocks";
  return p->dp_type == DP_ZERO2 ? (upper ? "ZeRO-2" : "zero2") : "ddp";
}

/* The resolved per-layer strategy, one row per top-level layer (`--dump strategy`). */
static void print_strategy(const IrModel *m, const ParPlan *o)
{
  static const char *const dpt[] = {"ddp", "zero2", "zero3"}, *const kinds[] = {"embedding", "block", "norm", "head",
                                                                                "other"};
  int some_tp = 0;
  for (int i = 0; i < m->nlayers; i++)
    some_tp |= m->layers[i].kind == IR_LAYER_BLOCK && o->layer[i].sp != PAR_SP_ULYSSES;
  char src[48] = "";
  if (m->src_value >= 0)
    snprintf(src, sizeof src, ", source length %lld", (long long)par_src_seq(o));
  printf("strategy of %s on %d ranks: pp %d (%s, %d micro-batches of %lld per step and dp rank), %s %d (%s%s), dp %d "
         "(%s), %s, seq %lld%s\n", m->name, o->world, o->pp, o->pipeline_1f1b ? "pipedream_flush" : "gpipe", o->chunks,
         (long long)o->micro_batch, o->ulysses ? (some_tp ? "tp or ulysses per layer" : "ulysses")
         : o->tp_per_layer ? "tp per layer, largest" : "tp", o->tp, o->tp_consec ? "consecutive" : "strided",
         !o->ulysses && o->sp ? ", sequence parallel" : "", o->dp, dp_words(m, o, 0),
         o->bf16 ? "bf16 mixed precision (fp32 master weights)" : "fp32", (long long)o->seq, src);
  printf("%-14s %-10s %6s %4s %4s %-6s %5s  %s\n", "layer", "kind", "stage", "tp", "dp", "dp", "ckpt", "rows");
  for (int i = 0; i < m->nlayers; i++) {
    const ParLayer *l = &o->layer[i];
    int block = m->layers[i].kind == IR_LAYER_BLOCK;
    printf("%-14s %-10s %6d %4d %4d %-6s %5s  %s\n", m->layers[i].name, kinds[m->layers[i].kind], l->stage,
           block ? l->tp : 1, l->dp, dpt[l->dp_type], l->ckpt ? "yes" : "no",
           l->sp == PAR_SP_ULYSSES ? "split (ulysses)" : l->sp == PAR_SP_MEGATRON ? "split (sp)"
           : l->sp == PAR_SP_VOCAB ? "split (vsp)" : "all");
  }
  if (o->cp > 1)
    printf("(context parallelism: cp %d, zigzag ring attention; every layer holds 1/%d of each sequence; gradients "
           "are reduced over dp x cp = %d ranks)\n", o->cp, o->cp, o->dp * o->cp);
  if (o->ep > 1)
    printf("(expert parallelism: ep %d; each rank of an ep group holds 1/%d of every MoE layer's experts; expert "
           "gradients are reduced over dp / ep = %d ranks)\n", o->ep, o->ep, o->dp / o->ep);
  if (o->tp_of_ep > 1)
    printf("(tensor parallelism inside experts: tp_of_ep %d; every expert's ffn split over the tp group)\n",
           o->tp_of_ep);
  if (o->tp > 1 && o->vsp > 1)
    printf("(vsp: the embedding, final norm and head run on each rank's token rows of its tp group, their "
           "gradients summed over it)\n");
  else if (o->tp > 1)
    printf("(the final norm is replicated over each tp group; the embedding and head are %s)\n",
           o->vtp > 1 ? "split by vocabulary over it" : "replicated too (--vocab_tp splits them)");
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
  const ParSetting *cfg = par_settings_find(&c->set, "galvatron_config_path");
  if (e->node < 0) {
    par_settings_error(cx, &c->set, NULL, arena_printf(a, "%s: %s", c->model, e->msg));
  } else {
    const IrNode *n = &m->nodes[e->node];
    diag_error(cx, n->at, "%s", e->msg);
    if (!same_loc(n->call_at, n->at))
      diag_note(cx, n->call_at, "from this call in the model's body");
    diag_note(cx, m->at, "'%s' is defined here", m->name);
    par_settings_block_note(cx, &c->set);
  }
  if (cfg)
    diag_plain_note(cx, "with the strategy of %s", cfg->value);
}

/* Why the plan is impossible, spelled by the door that set what it is about: a Galvatron
 * config's key (src: the config), else the option, at its value when a strategy block set it. */
static void plan_error(Ctx *cx, Arena *a, const CompileArgs *c, const char *src, const ParError *e)
{
  static const char *const opt[] = {NULL, "pp_deg", "pp_division", "vocab_tp", "global_train_batch_size"};
  static const char *const key[] = {NULL, "pp_deg", "pp_division", "vtp", "global_bsz"};
  const ParSetting *s = par_settings_find(&c->set, opt[e->key]);
  const char *msg = e->key == PAR_KEY_PP ? arena_printf(a, "%s: %s", c->model, e->msg)
                  : src && e->key ? arena_printf(a, "%s: key '%s': %s", src, key[e->key], e->msg)
                  : src ? arena_printf(a, "%s: %s", src, e->msg)
                  : e->key == PAR_KEY_DIVISION ? arena_printf(a, "--pp_division '%s': %s", s ? s->value : "", e->msg)
                  : e->key ? arena_printf(a, "--%s %s", opt[e->key], e->msg) : e->msg;
  par_settings_error(cx, &c->set, src && e->key != PAR_KEY_PP ? NULL : opt[e->key], msg);
}

/* The plan from its doors: the settings (the file's strategy blocks and the command line),
 * then a Galvatron config or the searched strategy over them; derived and checked once. */
static int resolve_plan(Ctx *cx, Arena *a, const CompileArgs *c, const IrModel *m, ParPlan *p)
{
  static const ParSpelling cli = {"--pp_deg", "--global_tp_deg", "--global_cp_deg", "--global_ep_deg",
                                  "--global_tp_of_ep_deg"},
                           json = {"pp_deg", "tp (tp_sizes_enc, vtp)", "cp (cp_sizes_enc)", "ep (ep_sizes_enc)",
                                   "tp_of_ep (tp_of_ep_sizes_enc)"};
  const ParSetting *cfg = par_settings_find(&c->set, "galvatron_config_path");
  const char *src = cfg ? cfg->value : c->searched ? "the searched strategy" : NULL;
  int given = par_settings_world_given(&c->set);
  ParError e;
  if (parplan_from_settings(cx, a, m, &c->set, p) ||
      (c->searched && config_search_plan(a, m, &c->sc->cm, c->searched, p)) ||
      (cfg && config_apply(a, m, src, given, p)))
    return 1;
  if (!parplan_resolve(a, m, p, src ? &json : &cli, &e))
    return 0;
  plan_error(cx, a, c, src, &e);
  return 1;
}

/* "gvc: strategy: ..." on stderr: the degrees of a program for more than one rank. */
static void print_summary(const CompileArgs *c, const IrModel *m, const ParPlan *o)
{
  if (o->world == 1)
    return;
  int given = par_settings_find(&c->set, "checkpoint") || par_settings_find(&c->set, "global_checkpoint") ||
              par_settings_find(&c->set, "galvatron_config_path") || c->searched;
  char cp[96] = "";
  if (o->cp > 1)
    snprintf(cp, sizeof cp, " x cp %d (zigzag ring attention)", o->cp);
  if (o->ep > 1)
    snprintf(cp, sizeof cp, " (MoE experts over ep %d of the dp ranks)", o->ep);
  fprintf(stderr, "gvc: strategy: %d ranks = pp %d x tp %d%s%s%s x dp %d (%s, %s, %d micro-batches per step and dp "
          "rank)%s\n", o->world, o->pp, o->tp, o->tp_per_layer ? " (largest; per layer below)" : "",
          o->ulysses ? " (Ulysses)" : o->sp ? " (+SP)" : "", cp, o->dp, dp_words(m, o, 1),
          o->pipeline_1f1b ? "1F1B" : "GPipe", o->chunks, given ? ", checkpointing as given" : "");
  Arena *a = arena_new(1 << 12);
  const char *why = par_vsp_replicated(a, m, o);
  if (why)
    diag_plain_note(NULL, "vsp %d: the embedding and head run replicated over their tp group of %d, %s (the "
                    "same numbers, %dx the activations Galvatron counts for them)", o->vsp, o->tp, why, o->tp);
  arena_free(&a);
}

/* --make-vocab-size-divisible-by N (Megatron's): the model with its vocabulary padded to a
 * multiple of N x the command line's vocabulary (else blocks') tp degree; *true_vocab is
 * the model's own when it grew. NULL after saying why. */
static const IrModel *pad_vocab(Ctx *cx, Arena *a, const CompileArgs *c, const IrModel *m, int64_t *true_vocab)
{
  const ParSetting *vt = par_settings_find(&c->set, "vocab_tp"), *gt = par_settings_find(&c->set, "global_tp_deg"),
                   *vs = par_settings_find(&c->set, "vocab_sp"); /* vsp keeps the vocabulary whole */
  int tp = vt && atoi(vt->value) > 1 && !(vs && atoi(vs->value)) ? atoi(vt->value) : gt ? atoi(gt->value) : 1;
  const char *err = NULL;
  int64_t V = m->vocab;
  const IrModel *padded = lower_pad_vocab(a, m, (int64_t)c->vocab_divisible * (tp > 0 ? tp : 1), &err);
  if (!padded) {
    par_settings_error(cx, &c->set, "make_vocab_size_divisible_by", arena_printf(a, "--make-vocab-size-divisible-by: %s", err));
    return NULL;
  }
  if (padded->vocab != V) {
    *true_vocab = V;
    fprintf(stderr, "gvc: vocabulary %lld padded to %lld (a multiple of %d x tp %d); the loss masks the padding, "
            "checkpoints keep %lld rows\n", (long long)V, (long long)padded->vocab, c->vocab_divisible, tp, (long long)V);
  }
  return padded;
}

/* The pass list of gvc compile and run: parse and check the model (front end, IR), resolve
 * the plan (or take the searched one), lower it (schedule IR and memory plan); the caller
 * emits. */
static Lowered *build(Ctx *cx, Arena *a, const CompileArgs *c, const IrModel **mout, ParPlan *p)
{
  cx->layers_override = c->num_layers;
  cx->nstack_layers = c->nstack;
  memcpy(cx->stack_layers, c->stack_layers, sizeof cx->stack_layers);
  const IrModel *m = frontend_load_model(cx, c->file, c->model);
  int64_t true_vocab = 0;
  if (!m || (c->vocab_divisible && !(m = pad_vocab(cx, a, c, m, &true_vocab))) || resolve_plan(cx, a, c, m, p))
    return NULL;
  p->vocab = true_vocab;
  *mout = m;
  print_summary(c, m, p);
  if (c->dump && strstr(c->dump, "strategy"))
    print_strategy(m, p);
  LowerError lerr;
  Lowered *lw = lower_model(a, m, p, &lerr);
  if (!lw)
    lower_error(cx, a, c, m, &lerr);
  else if (c->time_ops)
    sched_insert_marks(lw->prog, entry_callee(ENT_gen_op_mark), "gv_gen_");
  return lw;
}

/* --search: a note for each stage whose planned memory (its arenas; the workspace is sized at
 * start-up) is above the --memory_constraint the search priced it under: the search's memory
 * model is an estimate (analytic, or Galvatron's profiles), the plan is what the program
 * allocates. */
static void check_searched_memory(const CompileArgs *c, const Lowered *lw)
{
  if (!c->searched || c->budget_gb <= 0)
    return;
  double budget_mb = c->budget_gb * 1024;
  for (int k = 0; k < lw->nstages; k++) {
    double mb = (double)plan_total_bytes(lw->plans[k]) / (1 << 20);
    if (mb > budget_mb)
      diag_plain_note(NULL, "stage %d plans %.0f MB, above the --memory_constraint of %g GB (%.0f MB) the search priced "
                      "it under (its estimate: %.0f MB); the program may not fit: give a smaller --memory_constraint, "
                      "or profile the model (gvc profile) for the search", k, mb, c->budget_gb, budget_mb,
                      c->searched->mem_mb[k]);
  }
}

static int picture(const CompileArgs *c, const IrModel *m, const ParPlan *o, const Lowered *lw)
{
  if (!c->svg)
    return 0;
  const ParSetting *g = par_settings_find(&c->set, "num_gpus_per_node");
  PlanPictureArgs pa = {c->svg, c->device, g ? atoi(g->value) : 1, c->budget_gb};
  if (plan_picture_write(&pa, m, o, lw))
    return 1;
  fprintf(stderr, "gvc: wrote %s\n", c->svg);
  return 0;
}

/* `--search`: gvc search's engine on the collected options; its best plan in *out (and as
 * a Galvatron config in --strategy_out when asked), its predicted time on stderr. */
static int search_strategy(CompileArgs *c, Searched *out)
{
  SearchCli *sc = &out->sc;
  if (search_cli_parse(c->sargc, (char **)c->sargv, 0, sc))
    return 1;
  sc->quiet = 1;
  sc->so.lowerable = 1; /* plans the lowering runs, at the length compile lowers */
  if (search_cli_model(sc)) {
    search_cli_free(sc);
    return 1;
  }
  if (search_run(&sc->cm, &sc->so, &out->res)) {
    diag_plain(NULL, "--search: no valid configuration found under %g GB per GPU (%ld tasks searched)", sc->memory_gb,
               out->res.tasks);
    search_result_free(&out->res);
    search_cli_free(sc);
    return 1;
  }
  const SearchPlan *p = &out->res.plans[0];
  char lens[64];
  fprintf(stderr, "gvc: searched at seq %s: pp %d, global batch %d, chunks %d: %.6f s per step predicted (%s cost model), "
          "%ld tasks in %.3f s\n", search_cli_lengths(&sc->cm, lens, sizeof lens), p->task.pp, p->task.gbsz, p->task.chunks, p->time_s,
          sc->cm.analytic ? "analytic" : "galvatron", out->res.tasks, out->res.search_time_s);
  c->sc = sc;
  c->searched = p;
  if (!c->strategy_out)
    return 0;
  GalConfig g;
  search_cli_plan_config(&sc->cm, p, &g);
  FILE *f = fopen(c->strategy_out, "w");
  int rc = !f;
  if (f) {
    prof_config_write(f, &g, NULL);
    rc = fclose(f) != 0;
  }
  if (rc)
    diag_plain(NULL, "--strategy_out %s: cannot write", c->strategy_out);
  prof_config_free(&g);
  return rc;
}

static void searched_free(CompileArgs *c, Searched *s)
{
  if (!c->sc)
    return;
  search_result_free(&s->res);
  search_cli_free(&s->sc);
  c->sc = NULL;
  c->searched = NULL;
}

/* The program as C source, LLVM IR, an object file or a linked binary (--emit, --via);
 * 0, or 1 after printing why not. */
static int emit_program(const CompileArgs *c, const Lowered *lw)
{
  char *err = NULL, path[4096];
  int rc = 1;
  if (!strcmp(c->emit, "c") || (!strcmp(c->emit, "exe") && !strcmp(c->via, "c"))) {
    snprintf(path, sizeof path, "%s%s", c->out, !strcmp(c->emit, "c") ? "" : ".c");
    FILE *f = fopen(path, "w");
    if (!f || emit_c_program(lw->prog, f, c->model)) {
      diag_plain(NULL, "cannot write %s", path);
      if (f)
        fclose(f);
      return 1;
    }
    fclose(f);
    rc = !strcmp(c->emit, "c") ? 0 : link_binary(path, c->out, 1);
  } else if (!strcmp(c->emit, "ll")) {
    rc = emit_llvm_ir(lw->prog, c->out, &err);
  } else {
    snprintf(path, sizeof path, "%s%s", c->out, !strcmp(c->emit, "obj") ? "" : ".o");
    rc = emit_llvm_object(lw->prog, path, c->opt, &err);
    if (!rc && !strcmp(c->emit, "exe"))
      rc = link_binary(path, c->out, 0);
  }
  if (err) {
    diag_plain(NULL, "%s", err);
    free(err);
  }
  return rc != 0;
}

/* gvc compile's pass list: options -> (search) -> front end, plan, lowering (build) ->
 * picture and dumps -> emission. */
int cmd_compile(int argc, char **argv)
{
  CompileArgs c;
  Ctx *cx = ctx_new();
  int rc = parse(&c, argc, argv, 0, cx);
  if (rc) {
    ctx_free(&cx);
    return rc < 0 ? 1 : 0;
  }
  Searched searched;
  if (c.search && par_settings_find(&c.set, "galvatron_config_path"))
    diag_plain(NULL, "--search and --galvatron_config_path: give one strategy source");
  if (c.search && (par_settings_find(&c.set, "galvatron_config_path") || search_strategy(&c, &searched))) {
    searched_free(&c, &searched);
    ctx_free(&cx);
    return 1;
  }
  Arena *a = arena_new(1 << 20);
  const IrModel *m = NULL;
  ParPlan o;
  clock_t t0 = clock();
  Lowered *lw = build(cx, a, &c, &m, &o);
  rc = 1;
  if (!lw || picture(&c, m, &o, lw))
    goto out;
  check_searched_memory(&c, lw);
  if (dumps(&c, lw) && !strcmp(c.out, c.model) && !strcmp(c.emit, "exe"))
    rc = 0; /* a dump alone does not build anything */
  else if (!(rc = emit_program(&c, lw)))
    fprintf(stderr, "gvc: wrote %s (%s, %lld bytes of memory planned) in %.2fs\n", c.out, c.emit,
            (long long)plan_total_bytes(lw->plan),
            (double)(clock() - t0) / CLOCKS_PER_SEC);
out:
  searched_free(&c, &searched);
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
  int rc = parse(&c, argc, argv, 1, cx);
  if (rc) {
    ctx_free(&cx);
    return rc < 0 ? 1 : 0;
  }
  Arena *a = arena_new(1 << 20);
  const IrModel *m = NULL;
  ParPlan o;
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
