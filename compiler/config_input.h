/* config_input.h - the Galvatron JSON door of the plan: a strategy file (or the search's
 * strategy in memory) read into a ParPlan. */
#ifndef GV_CONFIG_INPUT_H
#define GV_CONFIG_INPUT_H

#include "parplan.h"
#include "profile.h"
#include "search.h"

/* Fills p (pp, division, schedule, chunks, global batch, vocabulary strategy, default dp
 * type and every layer's row: tp, Ulysses, ZeRO-3, checkpointing) from the
 * galvatron_config_*.json at path for model m; its world_size becomes p->world unless the
 * command gave the world (world_given), when the two must agree. 1 after printing why it
 * cannot; what follows from the degrees is parplan_resolve's to derive and check. */
int config_apply(Arena *a, const IrModel *m, const char *path, int world_given, ParPlan *p);
/* The same for a strategy in memory (the search's, for `gvc compile --search`); path names
 * it in messages. */
int config_plan(Arena *a, const IrModel *m, const GalConfig *c, const char *path, int world_given, ParPlan *p);
/* The search's door (`gvc compile --search`): its best plan sp straight into p (world,
 * pipeline, schedule, global batch, vocabulary strategy, every block's row), the same plan
 * config_plan reads from the JSON gvc search writes of it. 1 after printing why not. */
int config_search_plan(Arena *a, const IrModel *m, const CostModel *cm, const SearchPlan *sp, ParPlan *p);

#endif
