/* search_cli.c - option parsing for `gvc search` and `gvc cost` (one table, no per-option
 * code), model setup from profiles or from the IR, and the mapping between per-layer
 * Strategy values and galvatron_config_*.json. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, sysconf under -std=c11 */

#include "search_cli.h"

#include "cli_opts.h"

#include "frontend.h"
#include "lower.h"
#include "parplan.h"
#include "plan_svg.h"
#include "gvrt_num.h"
#include "options.h"
#include "diag.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(const CliOpt *opts, int is_cost)
{
  printf("usage: gvc %s FILE.gvm --model NAME --num_nodes N --num_gpus_per_node G --memory_constraint GB\n"
         "       [profile paths] %s\n\n",
         is_cost ? "cost" : "search", is_cost ? "--strategy galvatron_config.json" : "[-o OUT.json]");
  printf("%s\n\noptions:\n", is_cost ? "Evaluates a Galvatron config under the cost model: iteration time, throughput, memory per stage."
                                     : "Searches the per-layer hybrid-parallel strategy (Galvatron's search: DP over layers per\n"
                                       "(batch, chunks, pp, tp/sp mode) task under the memory budget) and writes a Galvatron config\n"
                                       "plus a \"gvc\" summary; a table goes to stdout and OUT.txt. Without profile paths the\n"
                                       "numbers come from an analytic model of the IR and the output says so.");
  cli_opts_help(opts);
  printf("  -o OUT.json                          output file\n"
         "Profile paths may be files or, as in Galvatron, directories holding its file names\n"
         "(computation_profiling_{precision}_{model_size}_all.json, allreduce_bandwidth_{N}nodes_{G}gpus_per_node.json, ...).\n");
}

static void cli_defaults(SearchCli *c)
{
  memset(c, 0, sizeof *c);
  search_options_defaults(&c->so);
  c->num_nodes = 1;
  c->gpus_per_node = 8;
  c->memory_gb = -1;
  c->precision = "bf16";
  c->time_mode = "static";
  c->memory_mode = "static";
  c->default_dp_type = "zero2";
  c->pipeline_type = "pipedream_flush";
  c->sequence_parallel = 1;
  c->global_memory_buffer = 1;
  c->async_grad_reduce = 1;
  c->context_mem = -1; /* not given: the memory profile's measured value, else 1024 */
  c->costmodel_coe = 1;
  c->search_space = "full";
  c->transition = "galvatron";
  c->cost_model = NULL;
  c->device = "h100";
  c->hw = (AnalyticHw){0, 0.45, 0, 0, 0};
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  c->so.threads = ncpu > 0 ? (int)(ncpu > 8 ? 8 : ncpu) : 1;
}

int search_cli_parse(int argc, char **argv, int is_cost, SearchCli *c)
{
  cli_defaults(c);
  StrategySpace *sp = &c->so.space;
  const CliOpt opts[] = {
      {"model", CLI_STR, &c->model, "model (size) name in FILE"},
      {"model_size", CLI_STR, &c->model_size, "model name in profile file names (default: --model, '_' read as '-' too)"},
      {"num_nodes", CLI_INT, &c->num_nodes, "nodes (1)"},
      {"num_gpus_per_node", CLI_INT, &c->gpus_per_node, "GPUs per node (8)"},
      {"memory_constraint", CLI_DBL, &c->memory_gb, "GB per GPU"},
      {"strategy", CLI_STR, &c->strategy, "galvatron_config_*.json to evaluate (gvc cost)"},
      {"cost-model", CLI_STR, &c->cost_model, "galvatron | analytic (default: galvatron when profiles are given)"},
      {"hardware_profile", CLI_STR, &c->hardware_profile, "DIR of gvc profile hardware: the default of the four hardware paths below"},
      {"time_profiling_path", CLI_STR, &c->files.time, "computation_profiling_*.json"},
      {"memory_profiling_path", CLI_STR, &c->files.memory, "memory_profiling_*.json"},
      {"allreduce_bandwidth_config_path", CLI_STR, &c->files.allreduce, "allreduce_bandwidth_*.json"},
      {"p2p_bandwidth_config_path", CLI_STR, &c->files.p2p, "p2p_bandwidth_*.json"},
      {"overlap_coe_path", CLI_STR, &c->files.overlap, "overlap_coefficient.json"},
      {"sp_time_path", CLI_STR, &c->files.sp_time, "sp_time_*.json (else derived from allreduce bandwidth)"},
      {"time_profile_mode", CLI_STR, &c->time_mode, "static | batch | sequence (static)"},
      {"memory_profile_mode", CLI_STR, &c->memory_mode, "static | sequence (static)"},
      {"seq_length", CLI_STR, &c->seq_arg, "sequence length, or one per layer type: 3136,784,196,49, or an encoder-decoder's S,T (default: the model's)"},
      {"src_seq", CLI_INT, &c->src_seq, "an encoder-decoder's source length S: --src_seq S --seq_length T is --seq_length S,T"},
      {"hidden_size", CLI_STR, &c->hidden_arg, "override the model's hidden size, or one per layer type: 320,640,1280,2560"},
      {"num_layers", CLI_STR, &c->layers_arg, "override the model's layer count, or layers per type: 24,24 (FILE optional with profiles)"},
      {"mixed_precision", CLI_STR, &c->precision, "bf16 | fp16 | fp32 (bf16)"},
      {"search_space", CLI_STR, &c->search_space, "full | 3d | dp+tp | dp+pp | dp | sdp | tp | pp (full)"},
      {"default_dp_type", CLI_STR, &c->default_dp_type, "ddp | zero2 (zero2)"},
      {"pipeline_type", CLI_STR, &c->pipeline_type, "gpipe | pipedream_flush (pipedream_flush)"},
      {"sequence_parallel", CLI_SW, &c->sequence_parallel, "Megatron-SP 0|1 (1)"},
      {"global_memory_buffer", CLI_SW, &c->global_memory_buffer, "count Megatron-SP's global buffer 0|1 (1)"},
      {"async_grad_reduce", CLI_SW, &c->async_grad_reduce, "0|1 (1), ZeRO memory ratios"},
      {"pytorch_context_mem", CLI_DBL, &c->context_mem, "MB per stage (gvc profile memory's measured context_mem_mb, else 1024)"},
      {"transition_cost", CLI_STR, &c->transition, "galvatron (bytes*ms/MB*1e-7, ~105x) | physical (bytes/MB*ms/MB/1000)"},
      {"costmodel_coe", CLI_DBL, &c->costmodel_coe, "layer time multiplier (1.0)"},
      {"min_bsz", CLI_INT, &c->so.min_bsz, "smallest global batch (64)"},
      {"max_bsz", CLI_INT, &c->so.max_bsz, "largest global batch (64)"},
      {"bsz_scale", CLI_INT, &c->so.bsz_scale, "batch step (8)"},
      {"settle_bsz", CLI_INT, &c->so.settle_bsz, "only this global batch (-1: off)"},
      {"settle_chunk", CLI_INT, &c->so.settle_chunk, "only this chunk count (-1: off)"},
      {"max_tp_deg", CLI_INT, &sp->max_tp, "(8)"},
      {"max_pp_deg", CLI_INT, &sp->max_pp, "(8)"},
      {"max_sp_deg", CLI_INT, &sp->max_sp, "(8)"},
      {"disable_dp", CLI_SW, &sp->disable_dp, "0|1"},
      {"disable_tp", CLI_SW, &sp->disable_tp, "0|1"},
      {"disable_pp", CLI_SW, &sp->disable_pp, "0|1"},
      {"disable_sp", CLI_SW, &sp->disable_sp, "0|1 (Ulysses)"},
      {"disable_cp", CLI_SW, &sp->disable_cp, "0|1 (context parallelism, zigzag ring attention; 1)"},
      {"max_cp_deg", CLI_INT, &sp->max_cp, "(8)"},
      {"disable_ckpt", CLI_SW, &sp->disable_ckpt, "0|1"},
      {"disable_fsdp", CLI_SW, &sp->disable_fsdp, "0|1 (ZeRO-3), also --disable_sdp"},
      {"disable_sdp", CLI_SW, &sp->disable_fsdp, "0|1"},
      {"disable_embedding_lmhead_tp", CLI_SW, &sp->disable_embed_tp, "0|1"},
      {"disable_vtp", CLI_SW, &sp->disable_embed_tp, "0|1"},
      {"disable_embedding_lmhead_sp", CLI_SW, &sp->disable_embed_sp, "0|1"},
      {"threads", CLI_INT, &c->so.threads, "worker threads (online CPUs, at most 8)"},
      {"topk", CLI_INT, &c->so.topk, "plans reported (1)"},
      {"mem_step", CLI_INT, &c->so.mem_step, "DP memory resolution in MB (1 = Galvatron's)"},
      {"dense_dp", CLI_SW, &c->so.dense, "Galvatron's dense budget x strategy DP table (slower, same optimum)"},
      {"fine_grained_mode", CLI_INT, &c->so.fine_grained_mode, "1: per-layer strategies (default); 0: one for all layers"},
      {"no_prune", CLI_SW, &c->no_prune, "solve every task (no bound pruning)"},
      {"quiet", CLI_SW, &c->quiet, "no progress line"},
      {"measured", CLI_STR, &c->measured, "gvc cost: a training binary's --step_json file of this strategy, compared with the prediction"},
      {"svg", CLI_STR, &c->svg, "FILE.svg: picture of the plan(s): layers by stage, memory, pipeline timeline"},
      {"device", CLI_STR, &c->device, "analytic preset: h100 | h200 | a100 | cpu (h100)"},
      {"device_tflops", CLI_DBL, &c->hw.tflops, "analytic: peak dense TFLOP/s"},
      {"device_bw", CLI_DBL, &c->hw.intra_gbps, "analytic: intra-node bus bandwidth GB/s"},
      {"inter_node_bw", CLI_DBL, &c->hw.inter_gbps, "analytic: inter-node bus bandwidth GB/s"},
      {"efficiency", CLI_DBL, &c->hw.efficiency, "analytic: fraction of peak reached (0.45)"},
      {NULL, 0, NULL, NULL}};
  int rc = cli_opts_parse(opts, argc, argv, &c->out, &c->file);
  if (rc == 2) usage(opts, is_cost);
  return rc;
}

/* ---- model setup ---- */

static int pick(const char *opt, const char *v, const char *const *names, int n, int *out)
{
  for (int i = 0; i < n; i++) if (!strcmp(v, names[i])) { *out = i; return 0; }
  diag_plain(NULL, "option --%s: unknown value '%s'", opt, v);
  return 1;
}

static int apply_space(SearchCli *c)
{
  StrategySpace *s = &c->so.space;
  const char *v = c->search_space;
  if (!strcmp(v, "full")) return 0;
  if (!strcmp(v, "dp+tp")) { s->disable_pp = s->disable_fsdp = 1; return 0; }
  if (!strcmp(v, "dp+pp")) { s->disable_tp = s->disable_sp = s->disable_fsdp = 1; return 0; }
  if (!strcmp(v, "3d")) { s->disable_fsdp = s->disable_ckpt = 1; return 0; }
  if (!strcmp(v, "dp") || !strcmp(v, "sdp")) {
    s->disable_tp = s->disable_sp = s->disable_pp = s->disable_ckpt = 1;
    if (!strcmp(v, "dp")) s->disable_fsdp = 1;
    return 0;
  }
  if (!strcmp(v, "tp")) { s->disable_pp = s->disable_sp = s->disable_fsdp = s->disable_ckpt = 1; return 0; }
  if (!strcmp(v, "pp")) { s->disable_tp = s->disable_sp = s->disable_fsdp = s->disable_ckpt = 1; return 0; }
  diag_plain(NULL, "option --search_space: unknown value '%s'", v);
  return 1;
}

static int device_known(const char *d)
{
  return !strcmp(d, "h100") || !strcmp(d, "h200") || !strcmp(d, "a100") || !strcmp(d, "cpu");
}

int search_cli_device(const char *device, int gpus_per_node, AnalyticHw *hw)
{
  if (!device_known(device)) {
    diag_plain(NULL, "--device '%s': expected h100, h200, a100 or cpu", device);
    return 1;
  }
  /* dense bf16 peak, NVLink bus bandwidth, InfiniBand per GPU (GB/s) */
  double tf = 989, intra = 360, inter = 45;
  if (!strcmp(device, "a100")) { tf = 312; intra = 230; inter = 23; }
  if (!strcmp(device, "cpu")) { tf = 0.1; intra = 5; inter = 1; } /* one core of an x86 CPU rank, MPI over shared memory */
  if (hw->tflops <= 0) hw->tflops = tf;
  if (hw->intra_gbps <= 0) hw->intra_gbps = intra;
  if (hw->inter_gbps <= 0) hw->inter_gbps = inter;
  if (hw->efficiency <= 0) hw->efficiency = 0.45;
  hw->gpus_per_node = gpus_per_node;
  return 0;
}

static void keep_layer_names(SearchCli *c, const IrModel *m)
{
  c->nir_layers = m->nlayers;
  c->layer_names = calloc((size_t)m->nlayers, sizeof(char *));
  c->layer_kinds = calloc((size_t)m->nlayers, sizeof(int));
  for (int i = 0; i < m->nlayers; i++) {
    size_t n = strlen(m->layers[i].name) + 1;
    c->layer_names[i] = memcpy(malloc(n), m->layers[i].name, n);
    c->layer_kinds[i] = (int)m->layers[i].kind;
  }
}

void search_cli_free(SearchCli *c)
{
  free(c->type_of);
  c->type_of = NULL;
  for (int i = 0; i < c->nir_layers; i++) free(c->layer_names[i]);
  free(c->layer_names);
  free(c->layer_kinds);
  c->layer_names = NULL;
  c->layer_kinds = NULL;
  c->nir_layers = 0;
}

/* Galvatron's search takes directories and builds the file names; a profile path that
 * names a directory is resolved the same way (files are taken as they are). */
static int resolve_one(SearchCli *c, int slot, const char *opt, const char **path, const char *fmt, int per_model)
{
  if (!*path || !prof_is_dir(*path)) return 0;
  const char *model = c->model_size ? c->model_size : c->model;
  char *buf = c->resolved[slot];
  size_t n = sizeof c->resolved[slot];
  if (per_model && !model) {
    diag_plain(NULL, "--%s %s: a directory needs --model_size (or --model) to build the file name", opt, *path);
    return 1;
  }
  char name[256], alt[256], dashed[128];
  snprintf(dashed, sizeof dashed, "%s", model ? model : "");
  for (char *q = dashed; *q; q++) if (*q == '_') *q = '-'; /* gvc's llama2_7b is Galvatron's llama2-7b */
  if (per_model) {
    snprintf(name, sizeof name, fmt, c->precision, model);
    snprintf(alt, sizeof alt, fmt, c->precision, dashed);
  } else {
    snprintf(name, sizeof name, fmt, c->num_nodes, c->gpus_per_node);
    snprintf(alt, sizeof alt, "%s", name);
  }
  const char *tries[2] = {name, alt};
  for (int i = 0; i < 2; i++) {
    snprintf(buf, n, "%s/%s", *path, tries[i]);
    FILE *f = fopen(buf, "rb");
    if (f) { fclose(f); *path = buf; return 0; }
  }
  char nor[320] = "";
  if (strcmp(name, alt)) snprintf(nor, sizeof nor, " (nor %s; --model_size gives the name in the file)", alt);
  diag_plain(NULL, "--%s %s: no %s in this directory%s", opt, *path, name, nor);
  return 1;
}

static int resolve_dirs(SearchCli *c)
{
  CostFiles *f = &c->files;
  return resolve_one(c, 0, "time_profiling_path", &f->time, "computation_profiling_%s_%s_all.json", 1)
      || resolve_one(c, 1, "memory_profiling_path", &f->memory, "memory_profiling_%s_%s_all.json", 1)
      || resolve_one(c, 2, "allreduce_bandwidth_config_path", &f->allreduce, "allreduce_bandwidth_%dnodes_%dgpus_per_node.json", 0)
      || resolve_one(c, 3, "p2p_bandwidth_config_path", &f->p2p, "p2p_bandwidth_%dnodes_%dgpus_per_node.json", 0)
      || resolve_one(c, 4, "overlap_coe_path", &f->overlap, "overlap_coefficient.json", 0)
      || resolve_one(c, 5, "sp_time_path", &f->sp_time, "sp_time_%dnodes_%dgpus_per_node.json", 0);
}

/* Ops of the model's blocks that cannot run on a tensor-parallel or Ulysses split (a softmax,
 * slice or concat over a split dimension): a lowering at degree 2 says why, and fails alike at
 * every larger power of two. Skipped where the heads or the MLP width already rule degree 2
 * out (the space's own rule). */
static void block_split_limits(const IrModel *m, StrategySpace *s, int sequence_parallel)
{
  if ((m->heads % 2) || (m->kv_heads % 2) || (m->ffn % 2))
    return;
  Arena *a = arena_new(1 << 20);
  for (int ul = 0; ul < 2; ul++) {
    ParPlan o = {.micro_batch = 1, .seq = 2, .world = 2, .pp = 1, .tp = 2, .tp_consec = 1, .chunks = 1,
                      .sp = !ul && sequence_parallel, .ulysses = ul};
    LowerError err = {NULL, -1};
    if (!lower_model(a, m, &o, &err))
      snprintf(ul ? s->ul_why : s->tp_why, sizeof s->tp_why, "%s", err.msg ? err.msg : "the lowering refuses it");
  }
  arena_free(&a);
}

/* "a,b,c" or "a": positive integers into out (at most PROF_MAXTYPES); returns the count,
 * 0 when absent, -1 after an error naming the option. */
static int int_list(const char *opt, const char *v, int *out)
{
  if (!v) return 0;
  struct gv_num_range r = GV_NUM_INT(1, INT_MAX);
  int n = 0;
  for (const char *p = v;; n++) {
    const char *comma = strchr(p, ',');
    int len = comma ? (int)(comma - p) : (int)strlen(p);
    char entry[32], want[64];
    double x = NAN;
    snprintf(entry, sizeof entry, "%.*s", len, p);
    if (n >= PROF_MAXTYPES) { diag_plain(NULL, "option --%s '%s': at most %d layer types", opt, v, PROF_MAXTYPES); return -1; }
    if (len >= (int)sizeof entry || gv_num_parse(entry, &r, &x)) {
      diag_plain(NULL, "option --%s '%s': entry '%s': expected %s", opt, v, entry, gv_num_expected(&r, want, sizeof want));
      return -1;
    }
    out[n] = (int)x;
    if (!comma) return n + 1;
    p = comma + 1;
  }
}

/* An encoder-decoder (its model reads src_tokens) of more than two layer types (T5's first
 * blocks, which make the position biases, are types of their own): Galvatron's two lengths
 * [S, T] in q become one per type, S for the types whose blocks read the source's rows
 * (the encoder's), T for the others. 0 when m is not such a model. */
static int src_lengths(const IrModel *m, const unsigned char *type_of, int ntypes, int *q)
{
  int src[PROF_MAXTYPES], S = q[0], T = q[1];
  if (!cost_types_src(m, type_of, src))
    return 0;
  for (int k = 0; k < ntypes; k++)
    q[k] = src[k] ? S : T;
  return 1;
}

/* --src_seq N: an encoder-decoder's source length, the S of --seq_length S,T (T: --seq_length,
 * else the model's default); a model without src_tokens has none. 1 after an error. */
static int src_seq_arg(SearchCli *c, const IrModel *m, int seq)
{
  if (!c->src_seq) return 0;
  if (c->src_seq < 1) { diag_plain(NULL, "--src_seq %d: expected an integer >= 1", c->src_seq); return 1; }
  if (m && m->src_value < 0) {
    char given[32], msg[256];
    snprintf(given, sizeof given, "--src_seq %d", c->src_seq);
    parplan_no_source(msg, sizeof msg, given, c->model);
    diag_plain(NULL, "%s", msg);
    return 1;
  }
  if (c->seq_arg && strchr(c->seq_arg, ',')) {
    diag_plain(NULL, "--src_seq %d with --seq_length %s: give the source length once (--seq_length S,T, or --src_seq S "
                     "with --seq_length T)", c->src_seq, c->seq_arg);
    return 1;
  }
  int t[PROF_MAXTYPES];
  if (c->seq_arg && int_list("seq_length", c->seq_arg, t) < 0) return 1;
  snprintf(c->seq_pair, sizeof c->seq_pair, "%d,%d", c->src_seq, c->seq_arg ? t[0] : seq);
  c->seq_arg = c->seq_pair;
  return 0;
}

/* The model's layer types: the IR's distinct block structures (cost_types_from_ir), or one
 * per --num_layers entry (the layers of type 0 first, as Galvatron's layernum list); the
 * options override counts, hidden sizes and sequence lengths. */
static int model_shape(SearchCli *c, const IrModel *m)
{
  CostModel *cm = &c->cm;
  int nl, nh, ns, L[PROF_MAXTYPES], H[PROF_MAXTYPES], Q[PROF_MAXTYPES];
  /* without --seq_length: the model's positions (else 2048); the search of gvc compile/plan
   * prices the length compile lowers (parplan_default_seq) */
  int dflt = m && c->so.lowerable ? (int)parplan_default_seq(m) : m && m->max_seq > 0 ? (int)m->max_seq : 2048;
  if (src_seq_arg(c, m, dflt) || (nl = int_list("num_layers", c->layers_arg, L)) < 0 ||
      (nh = int_list("hidden_size", c->hidden_arg, H)) < 0 || (ns = int_list("seq_length", c->seq_arg, Q)) < 0)
    return 1;
  if (nl == 0 && c->layers > 0) { L[0] = c->layers; nl = 1; } /* gvc cost: the config's layer count */
  int seq = ns ? Q[0] : dflt, T = nl > 1 ? nl : 1;
  cm->seq = seq;
  if (m && m->nblocks > 0) {
    c->type_of = calloc((size_t)m->nblocks, 1);
    T = cost_types_from_ir(cm, m, c->type_of, c->type_names);
    if (T < 0) {
      diag_plain(NULL, "%s: model '%s' has more than %d distinct block structures (layer types)", c->file, c->model, PROF_MAXTYPES);
      return 1;
    }
    if (c->layers_arg && nl != T && T > 1) {
      diag_plain(NULL, "--num_layers %s gives %d layer count%s; model '%s' has %d layer types (one count each)", c->layers_arg, nl,
                 nl == 1 ? "" : "s", c->model, T);
      return 1;
    }
  } else {
    cm->ntypes = T;
    for (int k = 0; k < T; k++) {
      cm->type_hidden[k] = m ? (int)m->hidden : 0;
      snprintf(c->type_names[k], sizeof c->type_names[k], "layertype_%d", k);
    }
  }
  if (c->src_seq && T < 2) {
    diag_plain(NULL, "--src_seq %d: the model has one layer type; an encoder-decoder's two lengths go to its encoder's and "
                     "decoder's types (give FILE, or --num_layers per type: 24,24)", c->src_seq);
    return 1;
  }
  if (ns == 2 && T > 2 && src_lengths(m, c->type_of, T, Q)) /* an encoder-decoder's [S, T]: one per type */
    ns = T;
  if ((nh > 1 && nh != T) || (ns > 1 && ns != T)) {
    int h = nh > 1 && nh != T;
    diag_plain(NULL, "--%s %s: %d entries for %d layer types", h ? "hidden_size" : "seq_length", h ? c->hidden_arg : c->seq_arg,
               h ? nh : ns, T);
    return 1;
  }
  if (nl == T) /* the layers of each type (one type: the count that overrides the model's) */
    for (int k = 0; k < T; k++) cm->type_layers[k] = L[k];
  cm->nlayers = 0;
  for (int k = 0; k < T; k++) {
    cm->nlayers += cm->type_layers[k];
    if (nh) cm->type_hidden[k] = H[nh > 1 ? k : 0];
    cm->type_seq[k] = ns ? Q[ns > 1 ? k : 0] : seq;
  }
  cm->hidden = nh ? H[0] : m ? (int)m->hidden : 0;
  if (!c->type_of) { /* Galvatron's order: type 0's layers, then type 1's, ... */
    c->type_of = calloc((size_t)(cm->nlayers > 0 ? cm->nlayers : 1), 1);
    for (int k = 0, l = 0; k < T; k++)
      for (int j = 0; j < cm->type_layers[k]; j++) c->type_of[l++] = (unsigned char)k;
  }
  cm->type_of = c->type_of;
  return 0;
}

/* A profile must give the model's layer types: one profiled type for a model whose
 * layers differ is an error naming them, not a guess. */
static int check_profile_types(const SearchCli *c)
{
  const char *files[2] = {c->files.time, c->files.memory};
  int T = cost_ntypes(&c->cm);
  for (int i = 0; i < 2; i++) {
    if (!files[i]) continue;
    int n = prof_count_types(files[i]);
    if (n < 0) return 1;
    if (n == 0 || n == T) continue; /* none: the reader says so */
    char list[1024] = "";
    for (int k = 0, o = 0; k < T && o < (int)sizeof list; k++)
      o += snprintf(list + o, sizeof list - (size_t)o, "%s%d: %s (%d layer%s)", k ? ", " : "", k, c->type_names[k],
                    c->cm.type_layers[k], c->cm.type_layers[k] == 1 ? "" : "s");
    if (T == 1)
      diag_plain(NULL, "%s: key 'layertype_%d': the profile gives %d layer types but the model has one (%s); give the layers "
                       "of each type with --num_layers (e.g. 24,24)%s", files[i], n - 1, n, list,
                 c->file ? ", or the model whose blocks they are" : "");
    else
      diag_plain(NULL, "%s: key 'layertype_%d': %s: the model has %d layer types (%s) and the profile gives %d; profile every "
                       "type (Galvatron's layertype_0 .. layertype_%d)", files[i], n < T ? n : T, n < T ? "missing" : "not in the model",
                 T, list, n, T - 1);
    return 1;
  }
  return 0;
}

int search_cli_model(SearchCli *c)
{
  static const char *const modes[] = {"static", "batch", "sequence"};
  static const char *const pipes[] = {"gpipe", "pipedream_flush"};
  static const char *const dpt[] = {"ddp", "zero2"};
  static const char *const prec[] = {"fp32", "bf16", "fp16"};
  static const char *const trans[] = {"galvatron", "physical"};
  int tm, mm, pt, dt, pr, tr;
  if (pick("time_profile_mode", c->time_mode, modes, 3, &tm) || pick("memory_profile_mode", c->memory_mode, modes, 3, &mm) ||
      pick("pipeline_type", c->pipeline_type, pipes, 2, &pt) || pick("default_dp_type", c->default_dp_type, dpt, 2, &dt) ||
      pick("mixed_precision", c->precision, prec, 3, &pr) || pick("transition_cost", c->transition, trans, 2, &tr) ||
      apply_space(c))
    return 1;
  const char **hw_paths[4] = {&c->files.allreduce, &c->files.p2p, &c->files.overlap, &c->files.sp_time};
  for (int i = 0; i < 4 && c->hardware_profile; i++)
    if (!*hw_paths[i]) *hw_paths[i] = c->hardware_profile;
  if (resolve_dirs(c)) return 1;
  int64_t world64 = (int64_t)c->num_nodes * c->gpus_per_node;
  int world = world64 >= 1 && world64 <= OPTIONS_MAX_WORLD ? (int)world64 : 0;
  if (world < 1 || prof_log2(world) < 0) { diag_plain(NULL, "--num_nodes %d x --num_gpus_per_node %d = %lld ranks: expected a power of two up to %d",
                                    c->num_nodes, c->gpus_per_node, (long long)world64, OPTIONS_MAX_WORLD); return 1; }
  if (c->memory_gb <= 0) { diag_plain(NULL, "--memory_constraint GB is required"); return 1; }
  int has_prof = c->files.time || c->files.memory;
  int analytic = c->cost_model ? !strcmp(c->cost_model, "analytic") : !has_prof;
  if (c->cost_model && !analytic && strcmp(c->cost_model, "galvatron")) {
    diag_plain(NULL, "option --cost-model: unknown value '%s'", c->cost_model);
    return 1;
  }
  if (!analytic && (!c->files.time || !c->files.memory || !c->files.allreduce)) {
    diag_plain(NULL, "--cost-model galvatron needs --time_profiling_path, --memory_profiling_path and --allreduce_bandwidth_config_path");
    return 1;
  }
  CostModel *cm = &c->cm;
  cost_model_defaults(cm);
  cm->world = world;
  cm->mixed = pr != 0;
  cm->sequence_parallel = c->sequence_parallel;
  cm->pipeline_1f1b = pt == 1;
  cm->async_grad_reduce = c->async_grad_reduce;
  cm->global_memory_buffer = c->global_memory_buffer;
  cm->default_dp_type = dt == 1 ? DP_ZERO2 : DP_DDP;
  cm->context_mem = c->context_mem >= 0 ? c->context_mem : 1024;
  cm->costmodel_coe = c->costmodel_coe;
  cm->transition_physical = tr == 1;
  IrModel *m = NULL;
  Ctx *cx = NULL;
  if (c->file || analytic) {
    if (!c->file || !c->model) { diag_plain(NULL, "FILE.gvm and --model NAME are required%s", analytic ? " for the analytic cost model" : ""); return 1; }
    cx = ctx_new();
    m = frontend_load_model(cx, c->file, c->model);
    if (!m) { ctx_free(&cx); return 1; }
    keep_layer_names(c, m);
  }
  int rc = model_shape(c, m);
  if (!rc && (cm->hidden <= 0 || cm->nlayers <= 0)) { diag_plain(NULL, "hidden size and layer count unknown (give FILE --model, or --hidden_size and --num_layers)"); rc = 1; }
  if (!rc) rc = check_profile_types(c);
  if (rc) {
    /* reported */
  } else if (analytic && search_cli_device(c->device, c->gpus_per_node, &c->hw)) {
    rc = 1;
  } else if (analytic) {
    if (cost_analytic_init(cm, m, &c->hw)) { diag_plain(NULL, "%s: model '%s' has no transformer blocks", c->file, c->model); rc = 1; }
    c->files.time_mode = tm;
    c->files.memory_mode = mm;
    if (!rc) rc = cost_model_calibrate(cm, &c->files); /* measured numbers over the estimates where given */
    if (!rc && c->files.memory && c->context_mem < 0 && cm->mem.context_mb > 0) cm->context_mem = cm->mem.context_mb;
  } else {
    c->files.time_mode = tm;
    c->files.memory_mode = mm;
    rc = cost_model_load(cm, &c->files);
    if (!rc && c->files.memory && c->context_mem < 0 && cm->mem.context_mb > 0) cm->context_mem = cm->mem.context_mb;
  }
  StrategySpace *s = &c->so.space;
  if (m) {  /* the lowering's constraints on the degrees (read before the IR is freed) */
    s->heads = (int)m->heads, s->kv_heads = (int)m->kv_heads, s->ffn = (int)m->ffn, s->vocab = (int)m->vocab;
    s->seq = cm->seq;
    block_split_limits(m, s, c->sequence_parallel);
  }
  if (cx) ctx_free(&cx);
  s->world = world;
  s->nlayers = cm->nlayers;
  s->default_dp_type = cm->default_dp_type;
  if (s->max_pp <= 0 || s->max_pp > SEARCH_MAXPP) s->max_pp = SEARCH_MAXPP; /* per-stage arrays are fixed-size */
  for (int pp = 2; !rc && c->files.p2p && !s->disable_pp && pp <= world && pp <= s->max_pp && pp <= cm->nlayers; pp *= 2)
    if (isnan(cm->hw.p2p_coe[prof_log2(pp)])) { /* else every strategy of this degree would drop out silently */
      diag_plain(NULL, "%s: key 'pp_size_%d': missing (needed for pipeline degree %d; --max_pp_deg %d or --disable_pp "
                       "searches without it)", c->files.p2p, pp, pp, pp / 2);
      rc = 1;
    }
  c->so.memory_gb = c->memory_gb;
  c->so.prune = !c->no_prune;
  c->so.progress = !c->quiet;
  if (c->so.topk < 1) c->so.topk = 1;
  if (c->so.topk > SEARCH_MAXK) c->so.topk = SEARCH_MAXK;
  return rc;
}

/* ---- Strategy <-> galvatron config ---- */

static Strategy make(const CostModel *cm, int pp, int tpsp, int use_sp, int zero3)
{
  Strategy s = {pp, use_sp ? 1 : tpsp, use_sp ? tpsp : 1, cm->world / pp / tpsp, DP_DDP, 0, 1, 1};
  if (s.dp < 1) s.dp = 1;
  if (strategy_sdp(&s) > 1) s.dp_type = zero3 ? DP_ZERO3 : cm->default_dp_type;
  return s;
}

/* cp_sizes_enc: the cp ranks come out of dp (they read the same samples). */
static Strategy with_cp(const CostModel *cm, Strategy s, int cp, int zero3)
{
  if (cp <= 1) return s;
  s.cp = cp;
  s.dp = s.dp / cp > 0 ? s.dp / cp : 1;
  if (strategy_sdp(&s) > 1 && s.dp_type == DP_DDP) s.dp_type = zero3 ? DP_ZERO3 : cm->default_dp_type;
  return s;
}

Strategy search_cli_layer(const CostModel *cm, const GalConfig *g, int l)
{
  Strategy s = with_cp(cm, make(cm, g->pp_deg, g->tp[l], g->use_sp[l], g->dp_type[l]), g->cp ? g->cp[l] : 1,
                       g->dp_type[l]);
  s.ckpt = g->ckpt[l];
  s.consec = g->consec[l];
  return s;
}

Strategy search_cli_embed(const CostModel *cm, const GalConfig *g)
{
  return with_cp(cm, make(cm, g->pp_deg, g->vtp > 0 ? g->vtp : 1, g->vsp, g->embed_sdp), g->cp ? g->cp[0] : 1,
                 g->embed_sdp);
}

void search_cli_plan_config(const CostModel *cm, const SearchPlan *p, GalConfig *g)
{
  int L = cm->nlayers;
  memset(g, 0, sizeof *g);
  g->pp_deg = p->task.pp;
  g->nlayers = L;
  g->world_size = cm->world;
  int **arr[6] = {&g->tp, &g->consec, &g->dp_type, &g->use_sp, &g->ckpt, &g->cp};
  for (int k = 0; k < 6; k++) *arr[k] = calloc((size_t)L, sizeof(int));
  for (int l = 0; l < L; l++) {
    const Strategy *s = &p->layers[l];
    g->tp[l] = strategy_tp_sp(s);
    g->consec[l] = 1;
    g->dp_type[l] = s->dp_type == DP_ZERO3;
    g->use_sp[l] = s->sp > 1;
    g->ckpt[l] = s->ckpt;
    g->cp[l] = strategy_cp(s);
  }
  g->global_bsz = p->task.gbsz;
  g->chunks = p->task.chunks;
  g->n_division = p->task.pp;
  g->pp_division = calloc((size_t)p->task.pp, sizeof(int));
  memcpy(g->pp_division, p->division, sizeof(int) * p->task.pp);
  snprintf(g->pipeline_type, sizeof g->pipeline_type, "%s", cm->pipeline_1f1b ? "pipedream_flush" : "gpipe");
  snprintf(g->default_dp_type, sizeof g->default_dp_type, "%s", cm->default_dp_type == DP_ZERO2 ? "zero2" : "ddp");
  g->vtp = strategy_tp_sp(&p->embed);
  g->vsp = p->embed.sp > 1;
  g->embed_sdp = p->embed.dp_type == DP_ZERO3;
}

/* ---- readable report ---- */

const char *search_cli_lengths(const CostModel *cm, char *buf, size_t n)
{
  size_t k = 0;
  buf[0] = 0;
  for (int t = 0; t < cost_ntypes(cm) && k < n; t++) {
    int seen = 0;
    for (int u = 0; u < t; u++)
      seen |= cm->type_seq[u] == cm->type_seq[t];
    if (!seen)
      k += (size_t)snprintf(buf + k, n - k, "%s%d", k ? "," : "", cm->type_seq[t]);
  }
  return buf;
}

void search_cli_report(FILE *f, const CostModel *cm, const CostTask *t, const CostPlan *p, const CostResult *r)
{
  char buf[48], lens[64];
  if (cm->analytic && cm->calibrated[0]) fprintf(f, "cost model: analytic, calibrated by the profiles (%s)\n", cm->calibrated);
  else fprintf(f, "cost model: %s\n", cm->analytic ? "analytic (from the IR: FLOPs, parameter and activation bytes; NOT profiled)" : "galvatron (profiled)");
  fprintf(f, "world %d, pp %d, global batch %d, chunks %d, seq %s, %s\n", cm->world, t->pp, t->gbsz, t->chunks,
          search_cli_lengths(cm, lens, sizeof lens),
          cm->pipeline_1f1b ? "pipedream_flush (1F1B)" : "gpipe");
  int T = cost_ntypes(cm);
  if (T > 1) {
    fprintf(f, "layer types:");
    for (int k = 0; k < T; k++)
      fprintf(f, "%s %d: %d layers, hidden %d, seq %d", k ? ";" : "", k, cm->type_layers[k], cm->type_hidden[k], cm->type_seq[k]);
    fprintf(f, "\n");
  }
  fprintf(f, "  %-12s %-16s %s\n", "layers", "strategy", "(pp-tp*-dp[f: zero3][-c: checkpoint][-sp: Ulysses])");
  for (int l = 0; l < p->nlayers;) {
    int e = l;
    while (e + 1 < p->nlayers && !strategy_cmp(&p->layers[e + 1], &p->layers[l]) && cost_type_of(cm, e + 1) == cost_type_of(cm, l)) e++;
    strategy_str(&p->layers[l], buf, sizeof buf);
    char range[32];
    snprintf(range, sizeof range, "%d-%d", l, e);
    if (T > 1) fprintf(f, "  %-12s %-16s type %d\n", range, buf, cost_type_of(cm, l));
    else fprintf(f, "  %-12s %s\n", range, buf);
    l = e + 1;
  }
  strategy_str(&p->embed, buf, sizeof buf);
  fprintf(f, "  %-12s %s\n", "embed/head", buf);
  fprintf(f, "stages:");
  for (int k = 0; k < t->pp; k++) fprintf(f, " %d", p->division[k]);
  fprintf(f, " layers\nmemory per stage (MB):");
  for (int k = 0; k < t->pp; k++) fprintf(f, " %.0f", r->mem_mb[k]);
  fprintf(f, "\niteration time %.6f s, %.3f samples/s\n", r->time_s, t->gbsz / r->time_s);
  if (strategy_cp(&p->embed) > 1)
    fprintf(f, "context parallelism: cp %d (zigzag ring attention, cp_sizes_enc): every rank holds 1/%d of each "
            "sequence of %d tokens, so activations take 1/%d of the memory; its ring transfers are priced from the p2p "
            "bandwidth\n", strategy_cp(&p->embed), strategy_cp(&p->embed), cm->seq, strategy_cp(&p->embed));
}

/* ---- picture ---- */

/* The picture's layers: the model's blocks with their strategies, the embedding and head
 * (the vocabulary layers) with the embedding strategy; generic names without the model. */
static int picture_layers(const SearchCli *c, const CostTask *t, const CostPlan *p, PsvgLayer *out, char (*names)[24])
{
  int n = 0, b = 0, blocks = 0;
  for (int i = 0; i < c->nir_layers; i++) blocks += c->layer_kinds[i] == IR_LAYER_BLOCK;
  int named = blocks == p->nlayers;
  int *stage = malloc(sizeof(int) * (size_t)(p->nlayers > 0 ? p->nlayers : 1));
  for (int k = 0, l = 0; k < t->pp; k++)
    for (int j = 0; j < p->division[k] && l < p->nlayers; j++) stage[l++] = k;
  if (!named) {
    out[n++] = (PsvgLayer){"embedding", 0, 0, 1, p->embed};
    for (int l = 0; l < p->nlayers; l++) {
      snprintf(names[l], sizeof names[l], "layer %d", l);
      out[n++] = (PsvgLayer){names[l], stage[l], 1, 0, p->layers[l]};
    }
    out[n++] = (PsvgLayer){"head", t->pp - 1, 0, 1, p->embed};
  } else {
    for (int i = 0; i < c->nir_layers; i++) {
      int kind = c->layer_kinds[i];
      if (kind == IR_LAYER_BLOCK) { out[n] = (PsvgLayer){c->layer_names[i], stage[b], 1, 0, p->layers[b]}; n++; b++; }
      else if (kind == IR_LAYER_EMBED || kind == IR_LAYER_HEAD)
        out[n++] = (PsvgLayer){c->layer_names[i], b ? t->pp - 1 : 0, 0, 1, p->embed};
    }
  }
  free(stage);
  return n;
}

int search_cli_svg(const SearchCli *c, const CostTask *tasks, const CostPlan *plans, const CostResult *res, int n)
{
  PlanPicture *pics = calloc((size_t)n, sizeof *pics);
  PsvgLayer **layers = calloc((size_t)n, sizeof *layers);
  char (*names)[24] = malloc(sizeof *names * (size_t)(c->cm.nlayers + 1));
  char source[256];
  snprintf(source, sizeof source, "cost model: %s; seq %d; memory budget %g GB per GPU",
           c->cm.analytic ? (c->cm.calibrated[0] ? "analytic, calibrated by profiles" : "analytic (from the IR's FLOPs and bytes, not profiled)")
                          : "galvatron (profiled)", c->cm.seq,
           c->memory_gb);
  for (int i = 0; i < n; i++) {
    layers[i] = malloc(sizeof(PsvgLayer) * (size_t)(plans[i].nlayers + c->nir_layers + 2));
    pics[i].model = c->model ? c->model : "model";
    pics[i].source = source;
    pics[i].mem_note = "the cost model's terms";
    pics[i].budget_mb = c->memory_gb * 1024;
    pics[i].layers = layers[i];
    pics[i].nlayers = picture_layers(c, &tasks[i], &plans[i], layers[i], names);
    plan_svg_from_cost(&pics[i], &c->cm, &tasks[i], &res[i]);
  }
  int rc = plan_svg_write(c->svg, pics, n);
  for (int i = 0; i < n; i++) free(layers[i]);
  free(layers);
  free(pics);
  free(names);
  return rc;
}
