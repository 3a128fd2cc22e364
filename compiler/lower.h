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
} LowerOptions;

typedef struct Lowered {
  SchedProgram *prog;
  Plan *plan;
} Lowered;

/* Returns NULL with a message in *err (arena-allocated) when the model cannot be lowered. */
Lowered *lower_model(Arena *a, const IrModel *m, const LowerOptions *o, const char **err);

#endif
