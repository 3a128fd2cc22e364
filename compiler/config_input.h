/* config_input.h - applying a Galvatron strategy file to the lowering's options. */
#ifndef GV_CONFIG_INPUT_H
#define GV_CONFIG_INPUT_H

#include "lower.h"

/* Fills o (pp, division, schedule, chunks, tp, dp type, checkpoints) and *global_bsz from
 * the galvatron_config_*.json at path for model m; when o->micro_batch is 0 it becomes
 * global_bsz / (chunks x dp). 1 after printing why it cannot. */
int config_apply(Arena *a, const IrModel *m, const char *path, LowerOptions *o, int *global_bsz);

#endif
