/* lower.h - lowering a model IR to the per-rank schedule IR (sched.h): compile-time
 * autodiff (the backward of every layer from the primitives' rules), the choice of
 * which forward activations are kept for backward or recomputed (checkpointed layers
 * keep only their input), and the static memory plan (plan.c) that gives every buffer
 * an arena offset. One rank's program holds the layers of its pipeline stage; the single
 * rank case is tp = dp = pp = 1. */
#ifndef GV_LOWER_H
#define GV_LOWER_H

#include <stdint.h>
#include <stdio.h>

#include "ir.h"
#include "plan.h"
#include "sched.h"

typedef struct LowerOptions {
  int64_t micro_batch, seq;
  int world, pp;
  const unsigned char *checkpoint;   /* per top-level layer: recompute its forward in backward */
  const int *stage_of_layer;         /* per top-level layer, or NULL: blocks split evenly */
  int pipeline_1f1b;                 /* 1: pipedream_flush (1F1B), 0: GPipe */
  int chunks;                        /* micro-batches per step and data-parallel rank (GPipe slots) */
  int zero;                          /* 0: plain data parallel (ddp); 2: ZeRO-2 (sharded grads and optimizer);
                                        3: ZeRO-3 blocks (zero3_layers), plain ddp for the rest */
  const unsigned char *zero3_layers; /* with zero 3, per top-level layer: its parameters sharded (NULL: every
                                        block); Galvatron's per-layer dp_types_enc */
  int zero2_rest;                    /* with zero 3 on some blocks: ZeRO-2 (per parameter) for the others */
  int tp, tp_consec;                 /* Megatron tensor parallelism of the blocks (@col/@row); 1: none.
                                        With layer_tp: the largest degree (the base layout) */
  const int *layer_tp;               /* per top-level layer, or NULL: the blocks' own tp degrees (each divides
                                        tp); a block of degree t runs on 1/(tp/t) of the samples of its tp-group
                                        (Galvatron's per-layer tp_sizes_enc; docs/parallelism.md) */
  int sp;                            /* with tp > 1: Megatron sequence parallelism (token rows split) */
  int vtp;                           /* the embedding and LM head split by vocabulary over the tp group */
  int ulysses;                       /* the blocks' degree `tp` is a Ulysses degree (weights replicated,
                                        all-to-all between token rows and heads around attention) */
  const unsigned char *ulysses_layers; /* with ulysses, per top-level layer: which blocks (NULL: all);
                                        the others run Megatron tp (Galvatron's per-layer use_sp) */
  int global_batch;                  /* the program's default samples per step (0: one micro-batch per dp rank) */
  int bf16;                          /* mixed precision: parameters, activations and gradients stored in bf16,
                                        fp32 master weights and AdamW moments in the optimizer arena; statistics
                                        (norm mean/rstd, log-sum-exp, loss) stay fp32 */
  int cp;                            /* context parallelism (Galvatron's global_cp_deg, cp_mode zigzag; 0 or 1:
                                        none): every layer runs on 1/cp of each sample's tokens (zigzag
                                        chunks r and 2cp-1-r), attention as ring attention over the cp group;
                                        seq stays the whole sequence (lower_model lowers with seq / cp) */
  int no_async_grad_reduce;          /* reduce ddp gradients after every micro-batch's backward (into a planned
                                        accumulator) instead of overlapping it with the last one */
} LowerOptions;

typedef struct Lowered {
  SchedProgram *prog;
  Plan *plan;          /* stage 0's plan (the only one when pp = 1) */
  Plan **plans;        /* one per stage */
  int nstages;
} Lowered;

/* The stage of every top-level layer for pp stages: the embedding goes with the first
 * block, the final norm and head with the last; blocks are split as evenly as possible
 * (Galvatron's default: the remainder on the last stages), or by division[] (blocks per
 * stage, Galvatron's pp_division) when given. Returns NULL with *err when impossible. */
int *lower_partition(Arena *a, const IrModel *m, int pp, const int *division, const char **err);

/* How the door that set the options spells the pipeline and tp degrees in messages: the
 * command line's "--pp_deg"/"--global_tp_deg", a JSON config's keys. */
typedef struct LowerSpelling { const char *pp, *tp; } LowerSpelling;

/* The one check of a resolved strategy: NULL, or why it is impossible (world not
 * divisible by pp x tp, per-layer degrees, unsupported combinations); names NULL spells
 * the degrees "pp" and "tp". lower_model runs it first. */
const char *lower_check(Arena *a, const IrModel *m, const LowerOptions *o, const LowerSpelling *names);

/* A vocabulary degree vtp (the embedding and LM head) above the blocks' tp: vtp becomes the
 * base degree and the blocks keep theirs (per-layer tp). NULL, or why vtp is not 1, the
 * blocks' degree or a multiple of it (the caller prefixes the option's name). */
const char *lower_vocab_degree(Arena *a, const IrModel *m, int vtp, LowerOptions *o);

/* Why a model cannot be lowered: the message (arena-allocated; it names the layer and op)
 * and the op it is about (an index into m->nodes, whose `at` and `call_at` say where in the
 * .gvm sources), or -1 for a problem of the strategy as a whole. */
typedef struct LowerError { const char *msg; int node; } LowerError;

/* The data-parallel degree of a layer of tp degree tp (world / pp / tp): the one place it is
 * derived (lower_check has made sure it divides). */
static inline int lower_dp(const LowerOptions *o, int tp) { return o->world / o->pp / (tp > 0 ? tp : 1); }

/* Returns NULL with *err filled when the model cannot be lowered. */
Lowered *lower_model(Arena *a, const IrModel *m, const LowerOptions *o, LowerError *err);

#endif
