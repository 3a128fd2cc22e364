/* parplan.h - the resolved parallel strategy of a program (ParPlan): the world layout, the
 * schedule and batch, the vocabulary strategy, and one row per top-level layer (ParLayer:
 * pipeline stage, tensor or Ulysses degree, sequence parallelism, data-parallel degree and
 * type, checkpointing) under the plan's one context-parallel degree. Every door fills this one type, each in one function: the command
 * line (Galvatron's GLOBAL mode, cmd_compile.c), a Galvatron JSON config and the searched
 * strategy (config_input.c), a .gvm `strategy` block (through the command line's options).
 * parplan_resolve derives what follows from the given degrees (each layer's dp, stage and
 * the base tp degree) in one place; parplan_check says why a plan is impossible for every
 * door; the lowering reads nothing else.
 *
 * Adding a per-layer degree (tp_of_ep; context parallelism and expert parallelism, so far
 * one plan-level cp and ep, per layer): one field in ParLayer, its default in parplan_layers,
 * its factor in par_layer_dp's rule and its conditions in parplan_check. */
#ifndef GV_PARPLAN_H
#define GV_PARPLAN_H

#include <stdint.h>

#include "arena.h"
#include "ir.h"
#include "strategy.h"

/* A layer's sequence parallelism (with tp > 1): none, Megatron's (token rows split around
 * the tp linears) or Ulysses (the degree is a sequence degree: weights replicated, all-to-all
 * between token rows and heads around attention) for blocks; for the vocabulary layers
 * (embedding, final norm, LM head and loss) under vsp: each rank of the tp group on its
 * token rows with the whole weights (the rows layout of Megatron SP and Ulysses, so the
 * conversions between them are the ones those have), weight gradients summed over it. */
enum { PAR_SP_NONE, PAR_SP_MEGATRON, PAR_SP_ULYSSES, PAR_SP_VOCAB };

typedef struct ParLayer {
  int stage;    /* pipeline stage (derived from the plan's division, or even) */
  int tp;       /* tensor-parallel or Ulysses degree; non-block layers: the base degree */
  int sp;       /* PAR_SP_*: blocks only */
  int dp_type;  /* DP_DDP, DP_ZERO2 or DP_ZERO3 (ZeRO-3: blocks only) */
  int ckpt;     /* recompute its forward in backward (blocks only) */
  int dp;       /* derived: world / pp / tp / cp (par_layer_dp): the ranks that read different samples */
} ParLayer;

typedef struct ParPlan {
  /* the world: nodes x gpus_per_node ranks (world; the doors that know only the world set it) */
  int nodes, gpus_per_node, world;
  /* the pipeline: stages, blocks per stage (NULL: even, the remainder on the last stages),
   * 1F1B (pipedream_flush) or GPipe, micro-batches per step and data-parallel rank */
  int pp;
  const int *division;
  int pipeline_1f1b, chunks;
  int64_t micro_batch, seq;
  int64_t src_seq;           /* an encoder-decoder's source length S (src_tokens [B, S]; 0: S = seq) */
  int global_batch;          /* the program's default samples per step (0: one micro-batch per dp rank) */
  /* the blocks' defaults, which parplan_layers copies into every layer row: */
  int tp, tp_consec;         /* tp degree (after parplan_resolve: the base, largest degree); 1: consecutive
                                tp groups, 0: strided by dp */
  int sp, ulysses;           /* Megatron sequence parallelism; the tp degree is a Ulysses degree. After
                                parplan_resolve: whether some block runs it */
  int dp_type;               /* default data-parallel type (DP_*); ZeRO-3 applies to blocks */
  /* the vocabulary layers (embedding, LM head): split by vocabulary over vtp ranks (1: replicated;
   * above the blocks' degree it becomes the base), or sequence-parallel (Galvatron's vocab_sp, vsp:
   * its vocabulary degree; vtp is then 1): each rank of the stage's tp group computes its token
   * rows with the whole weights (PAR_SP_VOCAB), which gives every rank 1/(world/pp) of the
   * stage's tokens whatever the degree, as Galvatron's vocabulary group does; ZeRO-3 (embed_sdp) */
  int vtp, vsp, embed_sdp;
  int bf16;                  /* mixed precision: bf16 parameters, activations and gradients, fp32 master
                                weights and AdamW moments; statistics stay fp32 */
  int no_async_grad_reduce;  /* reduce ddp gradients after every micro-batch's backward */
  int64_t vocab;             /* > 0: the model's true vocabulary, padded in the IR (lower_pad_vocab) */
  int cp;                    /* context parallelism (Galvatron's global_cp_deg / cp_sizes_enc, cp_mode zigzag;
                                0 or 1: none), one degree for every layer: each layer runs on 1/cp of each
                                sample's tokens (zigzag chunks r and 2cp-1-r), attention as ring attention
                                over the cp group; seq stays the whole sequence (the lowering uses seq / cp).
                                A stage's tp group is repeated dp x cp times: gradients and ZeRO shards
                                span dp x cp ranks (par_grad_ranks) */
  int ep;                    /* expert parallelism (Galvatron's global_ep_deg / ep_sizes_enc; 0 or 1: none), one
                                degree for every MoE layer, carved from the data-parallel group: ep consecutive
                                dp ranks of a stage's tp index hold 1/ep of each MoE layer's experts each (ep
                                rank r: experts [r E/ep, (r+1) E/ep)); each grouped_linear sends its routed rows
                                to the ranks holding their experts and gets the outputs back (all-to-all with
                                variable counts). Expert gradients reduce over the dp / ep ranks holding the
                                same experts (par_expert_grad_ranks), everything else as before */
  int ep_per_linear;         /* ep: each grouped linear dispatches its own rows (the comparison's baseline)
                                instead of one dispatch per SwiGLU expert MLP */
  int tp_of_ep;              /* tensor parallelism inside each expert (Galvatron's global_tp_of_ep_deg /
                                tp_of_ep_sizes_enc; 0 or 1: experts whole on each tp rank): 1 or the plan's
                                tp, the expert tp group being the attention's tp group. Gate and up split by
                                their ffn outputs, down by its ffn inputs, down's partial sums all-reduced
                                over tp (a dense tp MLP's rule per expert) */
  /* one row per top-level layer of the model (parplan_layers), then derived by parplan_resolve */
  int nlayers;
  ParLayer *layer;
  int resolved;
  int tp_per_layer;          /* derived: some layer's degree differs from the base (Galvatron's per-layer
                                tp_sizes_enc; a block of degree t runs on 1/(tp/t) of its group's samples) */
  int any_zero3;             /* derived: some block runs ZeRO-3 */
  int dp;                    /* derived: the data-parallel degree of the base tp degree (the program's
                                data-parallel ranks per stage group: global batch = micro_batch x chunks x dp;
                                with cp, dp x cp ranks per tp group of a stage) */
} ParPlan;

/* The degrees of a plan before any door: one rank, fp32, 1F1B, consecutive tp groups, no cp. */
void parplan_defaults(ParPlan *p);
/* The per-layer rows from the plan's defaults (tp, sp/ulysses, dp_type), no checkpointing;
 * a door calls it once its global degrees are set and then changes rows. */
void parplan_layers(Arena *a, const IrModel *m, ParPlan *p);
/* The source length S of an encoder-decoder (src_seq, or seq when not given). */
static inline int64_t par_src_seq(const ParPlan *p) { return p->src_seq > 0 ? p->src_seq : p->seq; }
/* The plan's context-parallel degree (1: none). */
static inline int par_cp(const ParPlan *p) { return p->cp > 1 ? p->cp : 1; }
/* The plan's expert-parallel degree (1: none). */
static inline int par_ep(const ParPlan *p) { return p->ep > 1 ? p->ep : 1; }
/* The plan's tensor-parallel degree inside each expert (1: experts whole on each tp rank). */
static inline int par_tp_of_ep(const ParPlan *p) { return p->tp_of_ep > 1 ? p->tp_of_ep : 1; }
/* The data-parallel degree of a layer of tensor/sequence degree tp: the rule, in one place
 * (the ranks that read different samples: cp ranks share theirs). */
static inline int par_layer_dp(const ParPlan *p, int tp) { return p->world / p->pp / (tp > 0 ? tp : 1) / par_cp(p); }
/* The ranks a layer's gradients are reduced over and its ZeRO state sharded over: dp x cp. */
static inline int par_grad_ranks(const ParPlan *p, const ParLayer *l) { return l->dp * par_cp(p); }
/* The ranks an expert parameter's gradients are reduced over (the expert-data-parallel group:
 * the ranks holding the same experts) and its ZeRO-2 state sharded over: dp / ep (no cp). */
static inline int par_expert_grad_ranks(const ParPlan *p, const ParLayer *l) { return l->dp / par_ep(p); }
/* Layer i's row as a search strategy (strategy.h): the vocabulary layers' degree is vtp's
 * (1 when replicated; under vsp a sequence degree, the tp group's), a Ulysses degree is its
 * sp, ZeRO-3 needs a sharding group above 1. */
Strategy parplan_strategy(const IrModel *m, const ParPlan *p, int i);

/* How the door that set the plan spells the pipeline, tp, cp and ep degrees in messages: the
 * command line's "--pp_deg"/"--global_tp_deg"/"--global_cp_deg"/"--global_ep_deg", a JSON
 * config's keys (NULL: the plain name). */
typedef struct ParSpelling { const char *pp, *tp, *cp, *ep, *tp_of_ep; } ParSpelling;

/* Why a plan is impossible, and the setting it is about (PAR_KEY_*), which the door spells
 * as its option or key. */
enum { PAR_KEY_NONE, PAR_KEY_PP, PAR_KEY_DIVISION, PAR_KEY_VTP, PAR_KEY_GLOBAL_BATCH };
typedef struct ParError { const char *msg; int key; } ParError;

/* Derives, once: the rows (when no door made them), the base tp degree (the largest, vtp
 * included) and the non-block layers' degree, tp_per_layer, ulysses/sp/any_zero3, each
 * layer's stage and dp, chunks (default pp) and the micro-batch (when 0: the global batch /
 * (chunks x dp), or 1). 0, or 1 with why the plan is impossible in *err (parplan_check's
 * answer, in the door's spelling; names NULL: "pp" and "tp"). */
int parplan_resolve(Arena *a, const IrModel *m, ParPlan *p, const ParSpelling *names, ParError *err);

/* The one check of a resolved plan: NULL, or why it is impossible (world not divisible by
 * pp x tp, per-layer degrees, unsupported combinations); names NULL spells the degrees "pp"
 * and "tp". parplan_resolve runs it (and checks the vocabulary degree and the stages). */
const char *parplan_check(Arena *a, const IrModel *m, const ParPlan *p, const ParSpelling *names);

/* Why vsp runs the vocabulary layers replicated over the tp group (per-layer tp degrees, or
 * token rows the group does not divide), or NULL (no vsp, or on token rows). */
const char *par_vsp_replicated(Arena *a, const IrModel *m, const ParPlan *p);

/* The stage of every top-level layer for pp stages: the embedding goes with the first
 * block, the final norm and head with the last; blocks are split as evenly as possible
 * (Galvatron's default: the remainder on the last stages), or by division[] (blocks per
 * stage, Galvatron's pp_division) when given. Returns NULL with *err when impossible. */
int *parplan_partition(Arena *a, const IrModel *m, int pp, const int *division, const char **err);

/* The sequence length a program is compiled at without --seq, which is also the length
 * `gvc compile --search` prices: the model's positions capped at 1024, or 1024 for a model
 * without learned positions. */
int64_t parplan_default_seq(const IrModel *m);

/* The refusal of a source length for a model that reads no src_tokens, into buf: `given` is
 * the option as the user wrote it ("--src_seq 16", "--seq_length 32,16"). */
void parplan_no_source(char *buf, size_t n, const char *given, const char *model);

#endif
