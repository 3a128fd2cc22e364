/* run.h - the state of one training run (the ctx every generated function receives):
 * the backend, the arenas of the plan, the program's description, the data, the
 * optimizer and the step being run. Internal to runtime/program/. */
#ifndef GV_RUN_H
#define GV_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "gvrt.h"
#include "gvrt_comm.h"
#include "gvrt_data.h"
#include "gvrt_program.h"

struct gv_run_param {
  const char *name;
  int64_t stage, rows, cols, row0, col0, shard_rows, shard_cols;
  int64_t poff, goff, moff, decay, init;
  double std;
  int split_dim;               /* -1 replicated over tp, 0 rows, 1 columns */
  int zlayer;                  /* ZeRO-3 layer (poff/goff: offset in its range), -1 when not sharded */
  int tp;                      /* its layer's tp degree (per-layer tp; 0: the program's) */
  int layer;                   /* the layer whose backward finishes its gradient (-1: unknown) */
  struct gv_comm_request *req; /* its in-flight gradient all-reduce (grad_reduce.c) */
  int reduced;                 /* its reduction was started this step */
  struct gv_comm *tp_group, *dp_group; /* its layer's groups (the program's without per-layer tp) */
  int tp_rank, dp_rank;
  int expert;                  /* an MoE expert weight [experts, out, in]: under ep spread over the ep group by
                                * rows (its dp_group: the expert-data-parallel group); read from a tensor of
                                * either description, [experts x out, in] or [experts, out x in] */
  int64_t saved_rows;          /* rows in checkpoints and --init_from: rows, or the true vocabulary of a
                                * parameter padded to the program's (gv_prog_vocab_param) */
};

/* Per-layer tp: the groups of every degree dividing the base degree, made once at start-up
 * (group creation is collective over the world) and looked up by the generated code. */
#define GV_RUN_MAX_DEGREES 8
struct gv_run_degree_groups {
  int n, deg[GV_RUN_MAX_DEGREES];
  struct gv_comm *tp[GV_RUN_MAX_DEGREES], *dp[GV_RUN_MAX_DEGREES];
  struct gv_comm *rows[GV_RUN_MAX_DEGREES][GV_RUN_MAX_DEGREES]; /* [small][large]: row exchange */
};

/* A ZeRO-3 layer: its shards' offsets, its padded range, and the data-parallel group its
 * parameters are sharded over (its own layer's under per-layer tp; set with the groups). */
struct gv_run_zlayer {
  int64_t pshard, gshard, mshard, range;
  struct gv_comm *dp;
  int dp_rank, dp_size;
};

struct gv_run_stage { gv_prog_fn fwd, bwd, zero_grads; };

/* A parameter declared on another stage too (a tied weight): its gradients are summed
 * over the ranks holding it. */
struct gv_run_tied { const char *name; uint64_t stages; };

struct gv_run_args {
  const char *data, *split, *batch_from, *init_from, *save, *load, *device, *lr_decay_style, *prompt, *dump;
  const char *dump_params, *matmul_precision, *mixed_precision, *timeline, *sample_format, *tokenizer, *step_json;
  int iters, warmup, lr_decay_iters, log_interval, eval_interval, eval_iters, save_interval;
  int sample_tokens, global_batch, decay_all, quiet, override_checkpoint_args, skip_nonfinite_steps;
  int top_k, eval_only, initialize_on_meta, keep_last, exit_interval, no_kv_cache, use_flash_attn;
  int decoder_start_id, eos_id; /* --sample: an encoder-decoder's first decoder input; the end id (-1: none) */
  double lr, min_lr, weight_decay, clip_grad, beta1, beta2, eps, temperature, top_p;
  uint64_t seed;
};

int gv_run_parse_args(struct gv_run_args *a, int argc, char **argv, const char *model);
void gv_run_usage(FILE *f, const char *prog, const char *model);

/* --timeline: one step's forward/backward times per micro-batch and the exposed gradient
 * reduction (timeline.c). */
struct gv_run_timeline {
  int step;                    /* the step timed */
  int on;                      /* timing now */
  int64_t n;                   /* micro-batches */
  double t0, sync0, sync1;     /* the step's start; the reduction's start and end (s from t0) */
  double *ev;                  /* 4 per micro-batch: forward start, end, backward start, end */
};

/* Per-op times of a program compiled with --time_ops (optime.c). */
enum { GV_RUN_MAX_TIMED_OPS = 96 };
struct gv_run_timed_op { const char *name; int64_t calls; double s; };
struct gv_run_optime {
  int enabled, counting, cur, n, steps; /* enabled: the program has marks (its first call set it) */
  double t0, step_s;
  struct gv_run_timed_op op[GV_RUN_MAX_TIMED_OPS];
};
struct gv_run;
void gv_run_optime_report(struct gv_run *r);
/* --step_json: every step's time, each rank's forward and backward time (its
 * micro-batches summed) and its memory (steplog.c). */
struct gv_run_steplog {
  int n, cap;
  double *step_ms, *fwd_ms, *bwd_ms; /* per step, this rank */
  double open;                       /* the running forward's or backward's start (s) */
  double fwd, bwd;                   /* this step's sums so far (s) */
  double rss_before_mb;              /* peak resident set before the arenas were allocated */
};

/* A split of a dataset of records (images, pairs; data.c): its records in the order read,
 * shuffled with --seed and repeated as epochs. */
struct gv_run_split { int64_t *order, n; };

/* An image model's input (images.c; gv_prog_images): where its slots hold the images, their
 * shape, and the dataset (a .gvimg file) with its splits (training, validation, test). */
struct gv_run_images {
  int64_t off, channels, side;  /* channels 0: the program reads tokens */
  gv_images *ds;
  struct gv_run_split split[3];
};

/* The decode step of generation with a KV cache (decode.c; gv_prog_decode): the function,
 * its activations arena, and per attention a K and a V cache of cap rows. */
struct gv_run_decode {
  gv_prog_fn fn;               /* NULL: the program has no decode step */
  int64_t tokens_off, logits_off, acts_bytes, caches, positions;
  int64_t pos, cap;            /* the position being decoded; the rows the caches hold */
  char *bases[GV_MEM_KINDS];   /* the run's arenas, the decode activations for GV_MEM_ACTS */
  void **kv;                   /* 2 per cache (K, V), allocated at the first use */
  size_t *kv_bytes;
  void *ws;                    /* a workspace for attention over cap keys */
  size_t ws_bytes;
};

/* An encoder-decoder's samples (s2s.c; gv_prog_src): src_off -1 for a model without
 * src_tokens; seq: the source length S the program pads sources to (targets: r->seq). A
 * fixed batch's records (rows of src_cols and cols ids), or a pair dataset. */
struct gv_run_s2s {
  int64_t src_off, seq;
  const int32_t *src, *tokens, *labels;
  int64_t rows, src_cols, cols;
  gv_pairs *pairs;
  struct gv_run_split split[3]; /* the pair dataset's training, validation and test splits */
  int32_t *row;                /* one pair read from the dataset */
};
struct gv_tf;
void gv_run_s2s_fixture(struct gv_run *r, const struct gv_tf *tf);
void gv_run_s2s_open(struct gv_run *r);    /* --data PREFIX: PREFIX_src/_tgt */
void gv_run_s2s_free(struct gv_run *r);
/* Sample `sample`: source, decoder input and labels, T ids each (padded). */
void gv_run_s2s_sample(struct gv_run *r, int64_t sample, int32_t *src, int32_t *tok, int32_t *lab);
/* 1 / the real labels (>= 0) of samples [first, first + n): the mean loss over them. */
float gv_run_s2s_loss_scale(struct gv_run *r, int64_t first, int64_t n);

struct gv_run {
  struct gv_run_s2s s2s;
  struct gv_run_args args;
  struct gv_run_decode dec;
  struct gv_run_images img;
  struct gv_run_optime optime;
  int argc;                    /* the command line (saved in checkpoints) */
  char **argv;
  struct gv_run_timeline tl;
  struct gv_run_steplog sl;
  struct gv_backend be;
  struct gv_comm *world;
  struct gv_plan plan;
  struct gv_arenas arenas;
  char *bases[GV_MEM_KINDS];
  /* the program (this rank's stage of it) */
  const char *model;
  int64_t world_size, pp, micro_batch, seq, vocab, slots, chunks;
  int64_t logits_cols;         /* the logits' row: vocab, or the padded vocabulary (gv_prog_vocab) */
  int one_f_one_b;
  int default_global_batch;    /* the strategy's, when --global_train_batch_size is not given */
  int stage;                   /* this rank's pipeline stage */
  struct gv_run_param *params; /* this stage's */
  int nparams, cap_params;
  struct gv_run_tied *tied;     /* every parameter name with the stages declaring it */
  int ntied, cap_tied;
  struct gv_run_stage fns;     /* this stage's functions */
  enum gv_dtype fdt;           /* the program's float values: f32, or bf16 under mixed precision (then
                                * each parameter's fp32 master copy follows its AdamW m and v) */
  int64_t attn[6];             /* B, T, S, H, KV, D of the largest attention */
  int64_t tokens_off, labels_off, loss_off, io_stride, logits_off;
  int has_logits;
  int64_t logits_rows;       /* > 0: the logits are this rank's rows of the tp group (vsp) */
  int64_t logits_split_cols; /* > 0: the logits are this rank's columns of each row (vocabulary tp) */
  int logits_vtp;            /* ... split over this many ranks of the tp group */
  int64_t in_act, in_grad, out_act, out_grad, in_elems, out_elems;
  /* the step being run */
  int step;
  int evaluating;              /* samples come from the validation split (or greedy sampling): no dropout */
  int64_t step_first_sample;   /* global index of this rank's first sample of the step */
  int64_t cur_micro;           /* the micro-batch whose forward or backward runs (the pipeline sets it) */
  gv_data *train, *valid, *test;
  int has_split[3];            /* the training, validation and test splits of --data opened (any input kind) */
  int eval_split;              /* the split evaluate() reads: 1 validation, 2 test */
  int64_t eval_correct, eval_counted; /* a classifier's evaluation: labels predicted right, of how many */
  gv_bpe *tok;                 /* --tokenizer (sampling), and its ByteLevel add_prefix_space */
  int tok_prefix_space;
  float loss_scale;            /* 1 / tokens of the global batch */
  /* groups: data-parallel replicas of this stage, and the pipeline line (stage s is
   * group rank s) */
  struct gv_comm *dp, *pp_group;
  int zero;                    /* ZeRO level (0 or 2) */
  int tp, tp_consec, tp_rank;  /* tensor parallelism of the blocks */
  struct gv_run_zlayer *zl;    /* ZeRO-3 layers by layer index (range 0: not sharded) */
  int nzl;
  struct gv_comm *tp_group;
  int cp, cp_rank;             /* context parallelism (zigzag): degree (1: none) and this rank's index */
  struct gv_comm *cp_group;
  int ep, ep_rank;             /* expert parallelism: degree (1: none) and this rank's index in its ep group */
  int tp_of_ep;                /* tensor parallelism inside experts (0 or 1: none) */
  struct gv_comm *ep_group, *edp_group; /* the ep group; the ranks holding the same experts */
  int data_rank, data_size;    /* which samples this rank reads: dp_rank / cp of dp_size / cp */
  int64_t shard_bytes;         /* ZeRO: this rank's [dp_rank * shard_bytes, +shard_bytes) of the grads */
  int dp_rank, dp_size;
  int per_layer_tp;            /* parameters declared their own degrees (gv_prog_param_layer) */
  int grad_per_micro;          /* no_async_grad_reduce: reduce after every micro-batch's backward */
  int64_t grad_acc_off;        /* ...into this planned accumulator (grads arena offset) */
  int64_t nmicro;              /* micro-batches of this rank's step */
  struct gv_run_degree_groups degs;
  struct gv_adamw_tensor *opt_ts; /* the optimizer step's tensors (one per parameter) */
  struct gv_tensor *norm_ts;      /* the gradient norm's shards (one per parameter) */
  /* host staging of arena memory (the arenas are device memory under --device cuda) */
  void *host_scratch;
  size_t host_scratch_bytes;
};

static inline size_t gv_run_shard_numel(const struct gv_run_param *p) { return (size_t)(p->shard_rows * p->shard_cols); }
static inline int gv_run_zero3_param(const struct gv_run *r, const struct gv_run_param *p)
{
  return p->zlayer >= 0 && p->zlayer < r->nzl && r->zl[p->zlayer].range;
}
/* ZeRO-2 per parameter (per-layer tp, or beside ZeRO-3 blocks; described with shard_bytes
 * 0): each non-ZeRO-3 parameter's gradient is reduce-scattered over its own dp group in
 * chunks of ceil(n / dp) elements (its buffers are padded to dp chunks); this rank owns
 * chunk dp_rank, whose reduced sum lands at the buffer's start, with its AdamW m and v (one
 * chunk each) at moff. */
static inline int gv_run_zero2_param(const struct gv_run *r, const struct gv_run_param *p)
{
  return r->zero == 2 && r->shard_bytes == 0 && !gv_run_zero3_param(r, p);
}
static inline size_t gv_run_zero2_chunk(const struct gv_run_param *p)
{
  return (size_t)gv_prog_zero2_chunk((int64_t)gv_run_shard_numel(p), gv_comm_size(p->dp_group));
}
/* The gradient buffer of a parameter that is not ZeRO-3 (an arena address, r->fdt elements). */
static inline void *gv_run_grad(const struct gv_run *r, const struct gv_run_param *p)
{
  return r->bases[GV_MEM_GRADS] + p->goff;
}
/* n fp32 elements at ptr (an arena address, never dereferenced here) as a 1-D tensor. */
static inline struct gv_tensor gv_run_flat(void *ptr, size_t n)
{
  return gv_tensor_4d(ptr, GV_DTYPE_F32, (int64_t)n, 0, 0, 0);
}
/* The same for n elements of the program's float dtype (parameters, gradients, activations). */
static inline struct gv_tensor gv_run_vals(const struct gv_run *r, void *ptr, size_t n)
{
  return gv_tensor_4d(ptr, r->fdt, (int64_t)n, 0, 0, 0);
}
static inline size_t gv_run_fsz(const struct gv_run *r) { return gv_dtype_size(r->fdt); }
/* shard.c: where parameter p's elements live on this rank (parameters and gradients in the
 * program's float dtype; optimizer state fp32). held: the elements stored here (all, or a
 * ZeRO-3 rank's part of its layer's shard); owned: those this rank updates (its ZeRO-2
 * shard or chunk; = held otherwise); param_at / owned_grad: the address of element `first`;
 * owned_state: AdamW's m, v or (bf16 mixed precision) the fp32 master weight of an owned
 * element. held and owned return 0 when there are none. */
const struct gv_run_zlayer *gv_run_zl(const struct gv_run *r, const struct gv_run_param *p);
int gv_run_held(const struct gv_run *r, const struct gv_run_param *p, size_t *first, size_t *n);
int gv_run_owned(const struct gv_run *r, const struct gv_run_param *p, size_t *first, size_t *n);
void *gv_run_param_at(struct gv_run *r, const struct gv_run_param *p, size_t first);
/* Of elements [first, first + n) of p's block, those in its saved rows (all of them unless p
 * is padded to the vocabulary): their count, and the block's saved rows in *rows. */
size_t gv_run_saved_part(const struct gv_run_param *p, size_t first, size_t n, int64_t *rows);
/* Elements [first, first + n) of p's block from safetensors tensor t as fp32 into h (its
 * padded rows zero); t's shape is checked against p's saved one first. 0, or 1 with err. */
struct gv_st_tensor;
struct gv_st;
int gv_run_read_part(struct gv_st *st, const struct gv_st_tensor *t, const struct gv_run_param *p, size_t first, size_t n,
                     float *h, char *err, size_t errn);
/* The same, with the elements read from the file (the saved ones) in *read and *crc
 * continued over their bytes as stored (either NULL: not wanted). */
int gv_run_read_part_crc(struct gv_st *st, const struct gv_st_tensor *t, const struct gv_run_param *p, size_t first,
                         size_t n, float *h, size_t *read, uint32_t *crc, char *err, size_t errn);
void *gv_run_owned_grad(struct gv_run *r, const struct gv_run_param *p, size_t first);
float *gv_run_owned_state(struct gv_run *r, const struct gv_run_param *p, size_t first, enum gv_prog_state k);
/* Is this rank's owned part of p the one copy counted (in the gradient norm) and saved:
 * replicas (dp without ZeRO, tp-replicated weights, the second stage of a tied weight)
 * leave it to one rank, so every element of every parameter has exactly one such owner. */
int gv_run_unique_owner(const struct gv_run *r, const struct gv_run_param *p);
/* State blocks per owned element: 2 (m, v), or 3 with the bf16 program's master weights. */
int gv_run_state_blocks(const struct gv_run *r);
/* Flat ZeRO-2: the elements of this rank's shard, and its state (m, v[, master] blocks of
 * that many floats at the end of the optimizer arena). */
size_t gv_run_flat_shard_numel(const struct gv_run *r);
float *gv_run_flat_state(struct gv_run *r);
/* ZeRO-3: the elements of this rank's shard of layer z's range. */
size_t gv_run_z3_numel(const struct gv_run *r, const struct gv_run_zlayer *z);
/* grad_reduce.c: wait for / finish the step's data-parallel gradient reduction (ddp), and,
 * after the tied-weight and sequence-parallel sums, ZeRO-2's reduce-scatter. */
void gv_run_reduce_grads(struct gv_run *r);
void gv_run_reduce_zero2(struct gv_run *r);
/* run.c: a reused host buffer of at least bytes (valid until the next call), and bytes of
 * arena memory copied into it (gv_dev_memcpy D2H; a memmove on the cpu backend). */
void *gv_run_host_scratch(struct gv_run *r, size_t bytes);
const void *gv_run_to_host(struct gv_run *r, const void *dev, size_t bytes);
/* n elements of the program's float dtype at dev as fp32 host values (bf16 widened), and
 * the reverse: n fp32 host values h into dev in the program's dtype (bf16 rounded to
 * nearest even, as gv_copy rounds; h may be the host scratch itself). */
const float *gv_run_to_host_f32(struct gv_run *r, const void *dev, size_t n);
void gv_run_from_host_f32(struct gv_run *r, void *dev, const float *h, size_t n);
/* Where n fp32 host values bound for arena memory at dev are best put (f32: whether dev
 * holds fp32): dev itself where the arenas are host memory (cpu), so that a read lands in
 * place, else the host scratch. gv_run_from_host_f32 and gv_run_from_host copy nothing when
 * given dev back. */
float *gv_run_host_f32_for(struct gv_run *r, void *dev, size_t n, int f32);
void gv_run_from_host(struct gv_run *r, void *dev, const void *h, size_t bytes);

/* timeline.c: --timeline. begin (before the step's pipeline; only on the step timed),
 * mark (what: 0/1 forward start/end, 2/3 backward start/end of micro-batch i), reduce
 * (end 0/1: the gradient reduction after backward), end (gathers to rank 0, which draws).
 * run.c: seconds of the monotonic clock. */
void gv_run_tl_begin(struct gv_run *r);
void gv_run_tl_mark(struct gv_run *r, int what, int64_t micro);
void gv_run_tl_reduce(struct gv_run *r, int end);
void gv_run_tl_end(struct gv_run *r);
double gv_run_now_s(void);
/* steplog.c: --step_json. start (before the arenas), mark (as gv_run_tl_mark, every
 * step), step (after each step, its time), write (rank 0 writes FILE at the end). */
void gv_run_sl_start(struct gv_run *r);
void gv_run_sl_mark(struct gv_run *r, int what);
void gv_run_sl_step(struct gv_run *r, double seconds);
void gv_run_sl_write(struct gv_run *r);

/* run.c: the tp group of collective argument `group` (0: the program's, else that degree),
 * and the row-exchange group of degrees small < large (per-layer tp). */
struct gv_comm *gv_run_tp_group(struct gv_run *r, int64_t group);
struct gv_comm *gv_run_rows_group(struct gv_run *r, int64_t small, int64_t large);

/* sample.c: --sample's options checked at start-up (before training), and the text
 * generated at the end; feed.c: one forward of T tokens for it. */
void gv_run_check_sample_args(struct gv_run *r);
/* The forward of one micro-batch of tokens, T ids in row 0 (an encoder-decoder's decoder
 * input, its source the S ids of src; NULL for other programs: the sampler's model call;
 * feed.c's gv_run_forward_tokens), passed in so that sampling does not depend on run.c. */
typedef void (*gv_run_forward_fn)(struct gv_run *r, const int32_t *tokens, const int32_t *src);
void gv_run_generate(struct gv_run *r, gv_run_forward_fn forward);
void gv_run_forward_tokens(struct gv_run *r, const int32_t *tokens, const int32_t *src); /* feed.c */
/* decode.c: generation with the KV cache. begin: caches for cap positions (fatal if the
 * program has no decode step); step: the forward of one token at the next position, returning
 * the logits row (arena memory, r->vocab values of r->fdt); end: everything freed. */
void gv_run_decode_begin(struct gv_run *r, int64_t cap);
const void *gv_run_decode_step(struct gv_run *r, int32_t token);
void gv_run_decode_end(struct gv_run *r);
/* data.c: the Megatron dataset behind --data */
/* checkpoint.c */
int gv_run_save(struct gv_run *r, const char *dir, int next_step);
int gv_run_load(struct gv_run *r, const char *dir);   /* returns the step to resume at */
int gv_run_load_found(const char *dir); /* DIR/latest names a step: gv_run_load will set every parameter */
/* --save at start-up: the folder created and written to by every rank, or a fatal error
 * with the OS's reason (not first found at the first save). */
void gv_run_check_save_dir(struct gv_run *r, const char *dir);
void gv_run_data_open(struct gv_run *r);
void gv_run_data_free(struct gv_run *r);
/* The splits a run reads: training (not with --eval_only), validation (--eval_interval, or
 * --eval_only where --split weighs it), test (--eval_only, weighted), with the samples each
 * needs; --eval_only with neither weighted is a fatal error. */
void gv_run_wanted_splits(const struct gv_run *r, int want[3], int64_t samples[3]);
/* The wanted splits of a dataset of `count` records (file names it; records: "images",
 * "pairs"), each shuffled with --seed into s[index] (has_split set); an empty one is a fatal
 * error, worded as the token data's. */
void gv_run_splits_open(struct gv_run *r, const char *file, const char *records, int64_t count,
                        struct gv_run_split s[3]);
void gv_run_split_free(struct gv_run_split s[3]);
/* The record of global sample index `sample` of the split being read (training, or the
 * one evaluated), epochs repeating the split's order. */
int64_t gv_run_split_record(const struct gv_run *r, const struct gv_run_split s[3], int64_t sample);
/* images.c: the labels predicted right among micro-batch i's (slot: its logits and
 * labels on the last stage; the logits gathered over the tp group where they are split). */
int64_t gv_run_images_correct(struct gv_run *r, int64_t slot);
/* images.c: an image program's data (--data FILE.gvimg or synthetic), checked against the
 * model's images and classes; micro-batch i's images (normalised to [-1, 1] as Hugging
 * Face's ViTImageProcessor does, mean and std 0.5) and labels (one a sample) into a slot. */
void gv_run_images_check_args(const struct gv_run *r); /* options an image program refuses */
void gv_run_images_open(struct gv_run *r);
void gv_run_images_free(struct gv_run *r);
void gv_run_images_load(struct gv_run *r, int64_t first, int64_t slot);
/* feed.c: the input feed table (one row per input kind: token data, images, source/target
 * pairs, the sampler's prompt). open picks the program's row and opens its data (--batch_from
 * or --data); load is the pipeline's loader (micro-batch i of the step from sample
 * fd->first + i B into slot; arg: the feed); loss_scale: 1 / what the loss of the n samples
 * from `first` is the mean over (their labels, or real labels). */
struct gv_run_input;
struct gv_tf;
struct gv_run_feed {
  const struct gv_run_input *in;   /* the program's row */
  struct gv_tf *tf;                /* --batch_from, read (NULL: none) */
  const int32_t *tokens, *labels;  /* a fixed batch (--batch_from) */
  int64_t rows, cols;
  int64_t first;                   /* global index of this rank's first sample of the step */
  const int32_t *prompt;           /* sampling: the sequence so far (T ids) */
  const int32_t *prompt_src;       /* sampling an encoder-decoder: the source (S ids) */
};
void gv_run_feed_open(struct gv_run *r, struct gv_run_feed *fd);
void gv_run_feed_free(struct gv_run *r, struct gv_run_feed *fd);
void gv_run_feed_load(struct gv_run *r, int64_t i, int64_t slot, void *arg);
/* The pipeline's done during an evaluation: a classifier's predictions of micro-batch i
 * (in slot, on the last stage) counted into eval_correct and eval_counted; the sums over
 * the ranks at the end: the accuracy, -1 for a program that does not classify, NaN when no
 * rank kept its logits. */
void gv_run_feed_scored(struct gv_run *r, int64_t i, int64_t slot, void *arg);
double gv_run_feed_accuracy(struct gv_run *r, const struct gv_run_feed *fd);
float gv_run_feed_loss_scale(struct gv_run *r, const struct gv_run_feed *fd, int64_t first, int64_t n);
/* pipeline.c: one step's micro-batches on this stage (GPipe or 1F1B); returns the summed
 * loss of the micro-batches (0 on stages without the head). load(r, i, slot) fills the
 * I/O buffers of micro-batch i; done (NULL: none) follows its forward. */
double gv_pipe_step(struct gv_run *r, int64_t nmicro, int backward,
                    void (*load)(struct gv_run *r, int64_t i, int64_t slot, void *arg),
                    void (*done)(struct gv_run *r, int64_t i, int64_t slot, void *arg), void *arg);
void gv_run_data_sample(struct gv_run *r, int64_t sample, int32_t *tokens /* seq + 1 */);

#endif
