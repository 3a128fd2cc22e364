/* parplan_cli.h - the command-line door of the plan (Galvatron's GLOBAL mode), which a .gvm
 * file's `strategy` blocks go through too: each setting is an option of options.c with its
 * value and where it was given (the block's value, or the command line), read from argv or
 * straight from the AST, and applied to a ParPlan by one function. Later settings override
 * earlier ones (the command line overrides the blocks). */
#ifndef GV_PARPLAN_CLI_H
#define GV_PARPLAN_CLI_H

#include "loc.h"
#include "parplan.h"

typedef struct Ctx Ctx; /* the compilation context (ctx.h) */

typedef struct ParSetting {
  const char *key;    /* the option's name in options.c (underscores, no dashes) */
  const char *value;  /* its text, checked against the option's accepted values */
  Loc at;             /* the value in a strategy block; file -1: the command line */
} ParSetting;

typedef struct ParSettings {
  ParSetting *v;      /* in order (arena) */
  int n, cap;
  Loc block;          /* the last strategy block that gave settings (file -1: none) */
  const char *model;  /* the size being compiled, for messages */
} ParSettings;

void par_settings_init(ParSettings *s, const char *model);
void par_settings_add(Arena *a, ParSettings *s, const char *key, const char *value, Loc at);
/* The setting that counts for key (the last one), or NULL. */
const ParSetting *par_settings_find(const ParSettings *s, const char *key);
/* A problem of the strategy: at the value of option key when a strategy block set it (key
 * NULL: about no one option), else "gvc: error: MSG" with a note on the block when one gave
 * settings (the command line's own options have no location). */
void par_settings_error(Ctx *cx, const ParSettings *s, const char *key, const char *msg);
/* A note on the strategy block, when one gave settings. */
void par_settings_block_note(Ctx *cx, const ParSettings *s);
/* The world came from the settings (--num_nodes or --num_gpus_per_node). */
int par_settings_world_given(const ParSettings *s);

/* Fills p from the settings for model m: the world, pipeline, schedule, batch, degrees,
 * precision, and the per-layer lists (checkpoint, tp_sizes_enc, zero3_layers) into the
 * layer rows. 1 after diagnostics. */
int parplan_from_settings(Ctx *cx, Arena *a, const IrModel *m, const ParSettings *s, ParPlan *p);

#endif
