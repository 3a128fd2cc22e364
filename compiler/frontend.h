/* frontend.h - the front end's entry points for the rest of the compiler: parse a .gvm
 * file with its imports, check it, and build the IR of one model size. Diagnostics are
 * printed through diag.c; callers only see success or failure. */
#ifndef GV_FRONTEND_H
#define GV_FRONTEND_H

#include "ir.h"
#include "parplan_cli.h"

typedef struct Ctx Ctx;   /* the compilation context (ctx.h) */

Ctx *ctx_new(void);
void ctx_free(Ctx **cx);

/* Parse and check FILE and everything it imports; returns the number of errors. */
int frontend_check_file(Ctx *cx, const char *path);

/* Build the IR of size (or model with default arguments) NAME defined in FILE.
 * Returns NULL after printing diagnostics when the file is invalid or NAME unknown. */
IrModel *frontend_load_model(Ctx *cx, const char *path, const char *name);

/* Check source text given in memory as if it were the file NAME (the fuzzer's entry). */
int frontend_check_source(Ctx *cx, const char *name, const char *text, size_t len);
/* Where diagnostics go (stderr by default). */
void frontend_set_diag_stream(Ctx *cx, void *file);

/* Checks FILE's `strategy` blocks (each names a size or model of the file; known settings
 * with accepted values, options.h); returns the number of errors (also run by
 * frontend_check_file and frontend_strategy_settings). */
int frontend_check_strategies(Ctx *cx, const char *path);

/* The settings of FILE's `strategy` blocks for size NAME, read from the AST into *s (unnamed
 * blocks first, then the named one; each value with its location, arrays in cx); 1 after
 * diagnostics (in any strategy block of the file). */
int frontend_strategy_settings(Ctx *cx, const char *path, const char *name, ParSettings *s);

/* Up to max names of the sizes FILE (and its imports) define; returns how many. */
int frontend_list_sizes(Ctx *cx, const char *path, const char **names, int max);

#endif
