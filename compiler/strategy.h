/* strategy.h - one layer's (or the embedding/LM-head's) parallel strategy, Galvatron's
 * HEAD enumeration and filters, and its sort order (pp, tp, sp, dp, dp_type, ckpt), which
 * is also the DP's tie-break order. dp_type is DP_DDP whenever the sharding group
 * dp*sp is 1, as Galvatron's __post_init__ forces. */
#ifndef GV_STRATEGY_H
#define GV_STRATEGY_H

#include <stddef.h>

enum { DP_DDP, DP_ZERO2, DP_ZERO3 };

typedef struct Strategy {
  int pp, tp, sp, dp;
  int dp_type;  /* DP_DDP, DP_ZERO2, DP_ZERO3 */
  int ckpt;     /* activation checkpointing (layers only; 0 for embeddings) */
  int consec;   /* tp group on consecutive ranks (1; v2.4 searched it) */
  int cp;       /* context parallelism (Galvatron's cp, zigzag ring attention); 0 or 1: none. dp counts the
                   replicas that read different samples: a stage holds tp x cp x dp ranks */
} Strategy;

typedef struct StrategySpace {
  int world, nlayers;
  int default_dp_type;                 /* DP_DDP or DP_ZERO2 */
  int max_tp, max_pp, max_sp;          /* -1: no cap */
  int disable_pp, disable_tp, disable_sp, disable_dp, disable_ckpt, disable_fsdp;
  int disable_embed_tp, disable_embed_sp;
  int disable_cp, max_cp;              /* context parallelism: searched up to max_cp (0 or 1: not searched)
                                          unless disabled (gvc search: disabled by default, max 8); every
                                          layer of a plan shares one degree */
  int seq;                             /* the sequence length, where known: cp must cut it into 2 x cp chunks,
                                          a Ulysses or vsp degree must divide it */
  /* The model's shape, where known (0: unknown, no constraint): a layer's tp or Ulysses
   * degree must divide heads and kv_heads (and a tp degree the MLP width), the vocabulary
   * layers' tp degree the vocabulary, as the lowering requires. */
  int heads, kv_heads, ffn, vocab;
  /* Why the model's blocks cannot run tensor-parallel (Megatron) or Ulysses at all, e.g. a
   * softmax over a tp-split dimension: the lowering's reason, empty when they can. */
  char tp_why[256], ul_why[256];
} StrategySpace;

static inline int strategy_tp_sp(const Strategy *s) { return s->tp > s->sp ? s->tp : s->sp; }
static inline int strategy_cp(const Strategy *s) { return s->cp > 1 ? s->cp : 1; }
/* The ranks a layer's gradients (and ZeRO shards) span: dp x Ulysses sp x cp. */
static inline int strategy_sdp(const Strategy *s) { return s->dp * s->sp * strategy_cp(s); }

int strategy_cmp(const Strategy *a, const Strategy *b);
/* "{pp}-{t}{*}-{dp}{f}{-c}{-sp}", Galvatron's simple string */
void strategy_str(const Strategy *s, char *buf, size_t n);
/* Layer strategies (embed=0) or embedding strategies (embed=1), sorted and unique, into
 * out (capacity cap); returns the count. */
int strategy_enumerate(const StrategySpace *sp, int embed, Strategy *out, int cap);
/* When the model's shape removes tp or Ulysses degrees from the space, a sentence saying
 * which degrees remain and why, into buf; returns 0 (buf empty) when it removes none. */
int strategy_space_note(const StrategySpace *sp, char *buf, size_t n);

#endif
