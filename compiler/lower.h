/* lower.h - lowering a model IR to the per-rank schedule IR (sched.h): compile-time
 * autodiff (the backward of every layer from the primitives' rules), the choice of
 * which forward activations are kept for backward or recomputed (checkpointed layers
 * keep only their input), and the static memory plan (plan.c) that gives every buffer
 * an arena offset. One rank's program holds the layers of its pipeline stage; the single
 * rank case is tp = dp = pp = 1. The strategy is a ParPlan (parplan.h). */
#ifndef GV_LOWER_H
#define GV_LOWER_H

#include <stdint.h>
#include <stdio.h>

#include "ir.h"
#include "parplan.h"
#include "plan.h"
#include "sched.h"


typedef struct Lowered {
  SchedProgram *prog;
  Plan *plan;          /* stage 0's plan (the only one when pp = 1) */
  Plan **plans;        /* one per stage */
  int nstages;
  const ParPlan *strategy; /* the resolved strategy it was lowered with */
} Lowered;

/* Why a model cannot be lowered: the message (arena-allocated; it names the layer and op)
 * and the op it is about (an index into m->nodes, whose `at` and `call_at` say where in the
 * .gvm sources), or -1 for a problem of the strategy as a whole. */
typedef struct LowerError { const char *msg; int node; } LowerError;

/* Vocabulary padding (lower_vocab.c): a copy of m whose vocabulary (embedding tables, LM
 * head weight, logits) is rounded up to a multiple of `multiple` (m itself when it is one
 * already), or NULL with *err; and which parameters have the vocabulary as their rows
 * (vocab_param[nparams]; NULL, or why the head cannot be padded). */
const IrModel *lower_pad_vocab(Arena *a, const IrModel *m, int64_t multiple, const char **err);
const char *lower_vocab_params(const IrModel *m, unsigned char *vocab_param);

/* The program of plan p (resolved here when no door has: parplan_resolve). Returns NULL
 * with *err filled when the model cannot be lowered. */
Lowered *lower_model(Arena *a, const IrModel *m, const ParPlan *p, LowerError *err);

#endif
