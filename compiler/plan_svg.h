/* plan_svg.h - the picture of a parallel plan: one self-contained SVG (svg.h) with the
 * model's layers left to right grouped by pipeline stage (tp / sp / dp degrees, data-
 * parallel type, checkpointing, the vocabulary layers' strategy), memory per stage as
 * stacked bars against the budget, and the pipeline timeline of one step (GPipe or 1F1B,
 * micro-batch by micro-batch, with the bubble and the exposed gradient reduction) on the
 * cost model's per-stage times. Several plans (gvc search --topk) are drawn one under the
 * other. `gvc plan --svg` and `gvc search --svg` fill a PlanPicture from what they already
 * computed (the lowering's memory plan, cost_plan_eval's terms); nothing is recomputed here
 * except the schedule's event times, which follow from the per-stage micro-batch times. */
#ifndef GV_PLAN_SVG_H
#define GV_PLAN_SVG_H

#include "cost.h"
#include "strategy.h"

#define PSVG_MAXPP 64       /* more stages are summarised, not drawn stage by stage */
#define PSVG_MAXLAYERS 128  /* more layers are drawn as one box per stage */

/* Memory kinds of a stage's stacked bar (MB per GPU). The cost model knows model states
 * only as one sum (PSVG_STATES); the lowering's plan splits them. */
enum { PSVG_PARAMS, PSVG_GRADS, PSVG_OPTIM, PSVG_STATES, PSVG_ACTS, PSVG_WORK, PSVG_OUTSIDE, PSVG_NMEM };

typedef struct PsvgLayer {
  const char *name;   /* the model's layer name */
  int stage;          /* pipeline stage (non-decreasing along the layers) */
  int block;          /* a transformer block (counted in the stages' layer ranges) */
  int vocab;          /* embedding or LM head: split by vocabulary over its tp degree */
  Strategy s;         /* tp, sp (Ulysses degree), dp, dp_type, ckpt */
} PsvgLayer;

typedef struct PlanPicture {
  const char *model;         /* the model's name */
  const char *source;        /* one line: the cost model and where the memory comes from */
  int world, pp, chunks, gbsz;
  int gpipe;                 /* schedule: GPipe (1) or 1F1B (0) */
  int megatron_sp;           /* tp layers split token rows (Megatron sequence parallelism) */
  int nlayers;
  const PsvgLayer *layers;
  double mem_mb[PSVG_MAXPP][PSVG_NMEM];
  const char *mem_note;      /* what the memory bars count, e.g. "memory plan of each stage's program" */
  double budget_mb;          /* per GPU; 0: no budget line */
  double fwd_s[PSVG_MAXPP], bwd_s[PSVG_MAXPP], sync_s[PSVG_MAXPP]; /* per stage, one micro-batch */
  double time_s;             /* the cost model's step time */
} PlanPicture;

/* The times, the memory terms and the step time of a plan evaluated by cost_plan_eval
 * (model states, activations, Megatron-SP's buffer as workspace, context memory as outside
 * the plan). Layers, model, source and budget are the caller's. */
void plan_svg_from_cost(PlanPicture *pic, const CostModel *cm, const CostTask *t, const CostResult *r);

/* Writes pictures[0..n) to path; returns 0, or 1 after a message naming the file. */
int plan_svg_write(const char *path, const PlanPicture *pics, int n);

#endif
