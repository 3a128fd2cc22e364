/* config_input.h - applying a Galvatron strategy file to the lowering's options. */
#ifndef GV_CONFIG_INPUT_H
#define GV_CONFIG_INPUT_H

#include "lower.h"
#include "profile.h"

/* Fills o (pp, division, schedule, chunks, tp, vtp, dp type, checkpoints, global batch)
 * from the galvatron_config_*.json at path for model m; its world_size becomes o->world
 * unless the command gave the world (world_given), when the two must agree. When
 * o->micro_batch is 0 it becomes global_bsz / (chunks x dp). 1 after printing why it
 * cannot; whether the world divides is lower_check's to say. */
int config_apply(Arena *a, const IrModel *m, const char *path, int world_given, LowerOptions *o);
/* The same for a strategy in memory (the search's, for `gvc compile --search`); path names
 * it in messages. */
int config_apply_galvatron(Arena *a, const IrModel *m, const GalConfig *c, const char *path, int world_given,
                           LowerOptions *o);

#endif
