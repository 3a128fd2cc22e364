/* plan_picture.h - `gvc plan --svg` (and `gvc compile --svg`): the picture (plan_svg.h) of
 * a lowered program: each layer's resolved strategy, each stage's memory plan (the arenas
 * the runtime allocates) and the analytic cost model's per-stage times for that strategy. */
#ifndef GV_PLAN_PICTURE_H
#define GV_PLAN_PICTURE_H

#include "lower.h"

typedef struct PlanPictureArgs {
  const char *path;      /* the .svg to write */
  const char *device;    /* analytic cost model preset (h100, h200, a100, cpu) */
  int gpus_per_node;
  double budget_gb;      /* per GPU; <= 0: no budget line */
} PlanPictureArgs;

/* Returns 0, or 1 after a message. */
int plan_picture_write(const PlanPictureArgs *a, const IrModel *m, const ParPlan *o, const Lowered *lw);

#endif
