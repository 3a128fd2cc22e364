/* args.c - the training binary's command line. Megatron/Galvatron names are accepted
 * with '_' or '-' (--lr_warmup_iters and --lr-warmup-iters: name_matches is the one
 * normalisation, for the options and the compile-time names alike); --help lists them
 * all. Strategy and shape options are gvc compile's: given here they say so. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt_num.h"

#include "program/run.h"

enum kind { K_INT, K_DBL, K_STR, K_U64, K_FLAG };
struct opt { const char *names; enum kind kind; size_t off; const char *help; };

#define O(field) offsetof(struct gv_run_args, field)
static const struct opt opts[] = {
  {"data|data_path", K_STR, O(data), "Megatron dataset prefix (PREFIX.bin/.idx), or synthetic (seeded random tokens, for timing); an encoder-decoder (a model reading src_tokens) reads the pair dataset PREFIX_src/PREFIX_tgt (gvc data --src-key/--tgt-key), an image model a FILE.gvimg (gvc data --images); every kind split by --split and shuffled with --seed"},
  {"split", K_STR, O(split), "train,valid,test weights of --data: token, image or pair datasets (default 98,2,0)"},
  {"batch_from", K_STR, O(batch_from), "train on the fixed batch of a fixture file (testing): i32 tokens and labels [rows, T] (an encoder-decoder: also src_tokens, each padded to T)"},
  {"init_from", K_STR, O(init_from), "initial weights by parameter name: a checkpoint or fixture file, or safetensors (gvc convert --from-hf)"},
  {"initialize_on_meta", K_INT, O(initialize_on_meta), "1: no random init, every weight comes from --init_from or --load (Galvatron's flag; default 0)"},
  {"iters|train_iters", K_INT, O(iters), "training steps (default 100); 0: no gradient memory, and --save saves the initial (or loaded) state"},
  {"global_train_batch_size|global_batch_size", K_INT, O(global_batch), "samples per step, all ranks"},
  {"lr", K_DBL, O(lr), "peak learning rate (default 1e-3)"},
  {"min_lr", K_DBL, O(min_lr), "final learning rate (default 0)"},
  {"warmup|lr_warmup_iters", K_INT, O(warmup), "linear warmup steps (default 0)"},
  {"lr_decay_style", K_STR, O(lr_decay_style), "cosine (default), linear or constant"},
  {"lr_decay_iters", K_INT, O(lr_decay_iters), "step at which decay reaches min_lr (default iters)"},
  {"weight_decay", K_DBL, O(weight_decay), "decoupled weight decay (default 0.1)"},
  {"adam_beta1", K_DBL, O(beta1), "AdamW beta1 (default 0.9)"},
  {"adam_beta2", K_DBL, O(beta2), "AdamW beta2 (default 0.95)"},
  {"adam_eps", K_DBL, O(eps), "AdamW epsilon (default 1e-8)"},
  {"clip_grad", K_DBL, O(clip_grad), "global gradient-norm clip, 0 = off (default 1.0)"},
  {"decay_all", K_FLAG, O(decay_all), "decay 1-D parameters (norms, biases) too"},
  {"seed", K_U64, O(seed), "seed of init, data order and dropout (default 1234)"},
  {"log_interval", K_INT, O(log_interval), "steps between log lines (default 1)"},
  {"eval_interval", K_INT, O(eval_interval), "steps between validation losses (and an image model's accuracy), 0 = off"},
  {"eval_iters", K_INT, O(eval_iters), "batches per validation (default 4)"},
  {"eval_only", K_FLAG, O(eval_only), "no training: loss and perplexity (an image model: accuracy) on the validation and test splits (with --load)"},
  {"save", K_STR, O(save), "checkpoint folder to write"},
  {"save_interval", K_INT, O(save_interval), "steps between checkpoints (default: at the end)"},
  {"keep_last", K_INT, O(keep_last), "keep only the last K checkpoints in --save (default 0: all)"},
  {"exit_interval", K_INT, O(exit_interval), "save (with --save) and stop after a step that is a multiple of N"},
  {"load", K_STR, O(load), "checkpoint folder to resume from (any strategy, world size or precision)"},
  {"override_checkpoint_args", K_FLAG, O(override_checkpoint_args), "resume although --seed or the global batch differ from the checkpoint's"},
  {"skip_nonfinite_steps", K_FLAG, O(skip_nonfinite_steps), "skip a step whose loss or gradient norm is not finite (default: stop)"},
  {"sample", K_INT, O(sample_tokens), "generate this many tokens at the end (after training, or from --load)"},
  {"prompt", K_STR, O(prompt), "prompt for --sample: text, or token ids 1,2,3 with --sample_format ids"},
  {"temperature", K_DBL, O(temperature), "--sample: softmax temperature, 0 = greedy (default 0)"},
  {"top_k", K_INT, O(top_k), "--sample: draw from the k most likely tokens only, 0 = all (default 0)"},
  {"top_p", K_DBL, O(top_p), "--sample: draw from the smallest set of probability >= p (default 1)"},
  {"decoder_start_id", K_INT, O(decoder_start_id), "--sample on an encoder-decoder: the decoder's first input id (default 0, T5's pad id)"},
  {"eos_id", K_INT, O(eos_id), "--sample: stop after this end id (T5's: 1; default -1: none, N tokens)"},
  {"no_kv_cache", K_FLAG, O(no_kv_cache), "--sample: a whole forward of the last seq tokens per token instead of the KV cache"},
  {"sample_format", K_STR, O(sample_format), "--sample prints text (default) or ids"},
  {"tokenizer", K_STR, O(tokenizer), "--sample: the tokenizer.json the data was built with (default: byte tokens)"},
  {"device", K_STR, O(device), "cpu (default) or cuda"},
  {"matmul_precision", K_STR, O(matmul_precision), "f32 linears on cuda: highest (fp32, default), high (TF32), medium (bf16)"},
  {"mixed_precision", K_STR, O(mixed_precision), "fp32 or bf16: must be what the program was compiled with (gvc compile --mixed_precision)"},
  {"dump", K_STR, O(dump), "write step-0 logits and gradients to this file (testing)"},
  {"dump_params", K_STR, O(dump_params), "write the final parameters (this rank's parts, placed) to this file"},
  {"timeline", K_STR, O(timeline), "FILE.svg: the pipeline timeline of one step after warm-up, measured on every rank (rank 0 writes it)"},
  {"step_json", K_STR, O(step_json), "FILE.json: every step's time, each rank's forward/backward time and memory (gvc profile)"},
  {"quiet", K_FLAG, O(quiet), "only the final summary"},
  {"use_flash_attn", K_FLAG, O(use_flash_attn), "accepted for Galvatron's scripts: attention here is always fused (flash-style, no T x T matrix kept)"},
};

/* Galvatron's and Megatron's strategy and model-shape options: fixed when gvc compiles the
 * program (its memory plan depends on them), so given to the binary they are refused with
 * the gvc compile line that takes them. */
static const struct { const char *name, *example; } compile_time[] = { /* example: a value for the message */
  {"pp_deg", "2"}, {"global_tp_deg", "2"}, {"global_tp_consec", "1"}, {"sdp", "1"}, {"sequence_parallel", "1"},
  {"use_ulysses", "1"}, {"vocab_tp", "2"}, {"vocab_sp", "1"}, {"chunks", "4"}, {"pipeline_type", "gpipe"},
  {"default_dp_type", "zero2"}, {"global_checkpoint", "1"}, {"pp_division", "2,2"}, {"tp_sizes_enc", "2,2"},
  {"tp_consecutive_flags", "1,1"}, {"dp_types_enc", "0,0"}, {"checkpoint_flags_enc", "1,1"}, {"use_sp", "1,1"},
  {"zero3_layers", "0,1"}, {"no_async_grad_reduce", ""}, {"async_grad_reduce", ""},
  {"galvatron_config_path", "S.json"}, {"num_nodes", "1"}, {"num_gpus_per_node", "8"}, {"micro_batch", "4"},
  {"seq", "1024"}, {"seq_length", "1024"}, {"num_layers", "2"}, {"make_vocab_size_divisible_by", "128"},
  {"checkpoint", "all"}, {"time_ops", ""}, {"tensor_model_parallel_size", "2"}, {"pipeline_model_parallel_size", "2"},
};
/* The accepted values of the numeric options (gvrt_num.h); an int without an entry takes
 * any int, a double any finite number. */
struct opt_range { size_t off; struct gv_num_range r; };
#define POSITIVE_INT GV_NUM_INT(1, INT_MAX)
#define COUNT GV_NUM_INT(0, INT_MAX)
#define NONNEGATIVE {0, INFINITY, 0, 0, 0}
#define UNIT_OPEN {0, 1, 0, 0, 1} /* [0, 1) */
static const struct opt_range ranges[] = {
  {O(iters), COUNT},
  {O(initialize_on_meta), GV_NUM_INT(0, 1)},
  {O(global_batch), POSITIVE_INT},
  {O(lr), NONNEGATIVE},
  {O(min_lr), NONNEGATIVE},
  {O(warmup), COUNT},
  {O(lr_decay_iters), COUNT},
  {O(weight_decay), NONNEGATIVE},
  {O(beta1), UNIT_OPEN},
  {O(beta2), UNIT_OPEN},
  {O(eps), {0, INFINITY, 0, 1, 0}}, /* > 0 */
  {O(clip_grad), NONNEGATIVE},
  {O(log_interval), POSITIVE_INT},
  {O(keep_last), COUNT},
  {O(exit_interval), COUNT},
  {O(eval_interval), COUNT},
  {O(eval_iters), POSITIVE_INT},
  {O(decoder_start_id), COUNT},
  {O(eos_id), GV_NUM_INT(-1, INT_MAX)},
};
#undef O

/* The range of the option stored at off. */
static struct gv_num_range range_of(size_t off, enum kind kind)
{
  for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
    if (ranges[i].off == off)
      return ranges[i].r;
  struct gv_num_range any_int = GV_NUM_INT(INT_MIN, INT_MAX), any = {-INFINITY, INFINITY, 0, 0, 0};
  return kind == K_INT ? any_int : any;
}

/* A numeric value strictly parsed into field; 1 after printing why not. */
static int set_number(const char *prog, const struct opt *o, const char *name, const char *val, char *field)
{
  struct gv_num_range r = range_of(o->off, o->kind);
  double v;
  char want[64];
  if (gv_num_parse(val, &r, &v)) {
    fprintf(stderr, "%s: error: --%s '%s': expected %s\n", prog, name, val, gv_num_expected(&r, want, sizeof want));
    return 1;
  }
  if (o->kind == K_INT)
    *(int *)field = (int)v;
  else
    *(double *)field = v;
  return 0;
}

static int name_matches(const char *names, const char *arg)
{
  size_t n = strlen(arg);
  for (const char *p = names; *p;) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    int same = len == n;
    for (size_t i = 0; same && i < n; i++)
      same = p[i] == arg[i] || (p[i] == '_' && arg[i] == '-');
    if (same)
      return 1;
    p += len + (bar ? 1 : 0);
  }
  return 0;
}

/* An option that is not the binary's: a compile-time one says how gvc compile takes it. */
static void compile_time_or_unknown(const char *prog, const char *model, const char *name, const char *val)
{
  for (size_t k = 0; k < sizeof compile_time / sizeof compile_time[0]; k++)
    if (name_matches(compile_time[k].name, name)) {
      const char *v = val ? val : compile_time[k].example;
      fprintf(stderr, "%s: error: --%s is a compile-time option: the strategy and the model's shape are fixed when "
              "gvc builds the program (its memory plan depends on them); pass it to gvc compile, e.g. gvc compile "
              "FILE.gvm --model %s --%s%s%s -o BIN (--help lists the binary's options)\n", prog, name,
              model ? model : "NAME", compile_time[k].name, *v ? " " : "", v);
      return;
    }
  fprintf(stderr, "%s: error: unknown option '--%s' (see --help)\n", prog, name);
}

void gv_run_usage(FILE *f, const char *prog, const char *model)
{
  fprintf(f, "usage: %s [options]\n\nTrains %s, as compiled by gvc. Options:\n", prog, model ? model : "the model");
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
    char names[96] = "--";
    strncat(names, opts[i].names, sizeof names - 3);
    for (char *p = names; *p; p++)
      if (*p == '|')
        *p = ',';
    fprintf(f, "  %-44s %s\n", names, opts[i].help);
  }
}

static void defaults(struct gv_run_args *a)
{
  memset(a, 0, sizeof *a);
  a->iters = 100;
  a->lr = 1e-3;
  a->weight_decay = 0.1;
  a->beta1 = 0.9;
  a->beta2 = 0.95;
  a->eps = 1e-8;
  a->clip_grad = 1.0;
  a->seed = 1234;
  a->log_interval = 1;
  a->eval_iters = 4;
  a->lr_decay_style = "cosine";
  a->split = "98,2,0";
  a->device = "cpu";
  a->top_p = 1.0;
  a->sample_format = "text";
  a->eos_id = -1;
}

/* 0: parsed; 1: --help printed; -1: error printed. */
int gv_run_parse_args(struct gv_run_args *a, int argc, char **argv, const char *model)
{
  defaults(a);
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      gv_run_usage(stdout, argv[0], model);
      return 1;
    }
    if (strncmp(arg, "--", 2)) {
      fprintf(stderr, "%s: error: unexpected argument '%s' (see --help)\n", argv[0], arg);
      return -1;
    }
    char name[128];
    const char *eq = strchr(arg, '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - arg - 2 : (long)strlen(arg + 2)), arg + 2);
    const struct opt *o = NULL;
    for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !o; k++)
      if (name_matches(opts[k].names, name))
        o = &opts[k];
    if (!o) {
      compile_time_or_unknown(argv[0], model, name, eq ? eq + 1 : i + 1 < argc && strncmp(argv[i + 1], "--", 2)
                                                                  ? argv[i + 1] : NULL);
      return -1;
    }
    char *field = (char *)a + o->off;
    if (o->kind == K_FLAG) { /* a bare switch, or --flag=0|1 */
      if (eq && strcmp(eq + 1, "0") && strcmp(eq + 1, "1")) {
        fprintf(stderr, "%s: error: --%s is a switch: give it alone, or as --%s=0 or --%s=1\n", argv[0], name, name,
                name);
        return -1;
      }
      *(int *)field = !eq || eq[1] == '1';
      continue;
    }
    const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!val) {
      fprintf(stderr, "%s: error: option '--%s' needs a value\n", argv[0], name);
      return -1;
    }
    if (o->kind == K_INT || o->kind == K_DBL) {
      if (set_number(argv[0], o, name, val, field))
        return -1;
      continue;
    }
    char *end = NULL;
    switch (o->kind) {
    case K_U64: *(uint64_t *)field = strtoull(val, &end, 10); break;
    case K_STR: *(const char **)field = val; end = (char *)val + strlen(val); break;
    default: break;
    }
    if (!end || *end || end == val) {
      fprintf(stderr, "%s: error: bad value '%s' for '--%s'\n", argv[0], val, name);
      return -1;
    }
  }
  if (strcmp(a->lr_decay_style, "cosine") && strcmp(a->lr_decay_style, "linear") &&
      strcmp(a->lr_decay_style, "constant")) {
    fprintf(stderr, "%s: error: --lr_decay_style must be cosine, linear or constant\n", argv[0]);
    return -1;
  }
  return 0;
}
