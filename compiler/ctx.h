/* ctx.h - the compilation context: the one struct holding everything a compilation
 * owns (arenas, source files, diagnostics, parsed files, the import stack). No global
 * state lives anywhere else in the compiler. */
#ifndef GV_CTX_H
#define GV_CTX_H

#include <stdio.h>

#include "arena.h"
#include "loc.h"

typedef struct AstNode AstNode;

typedef struct SrcFile {
  const char *path;      /* as given or resolved */
  const char *text;      /* NUL-terminated contents */
  size_t len;
  AstNode *ast;          /* its items, once parsed */
  int parsed, parsing;   /* import state (parsing: on the import stack) */
  void *globals;         /* as a root: the definitions it and its imports make (struct Global) */
} SrcFile;

#define CTX_MAXSTACKS 16 /* top-level repeat loops whose counts can be set */

struct Ctx {
  Arena *perm;           /* sources, AST, IR, names: lives as long as the compilation */
  Arena *scratch;        /* reset per unit of work */
  SrcFile *files;
  int nfiles, cap_files;
  int errors, notes_ok;  /* diagnostics so far; notes attach to the last error */
  int max_errors;
  FILE *err;             /* where diagnostics go (stderr) */
  const char *stdlib_dir, *models_dir;
  int layers_override;   /* > 0: the model's `layers` argument, whatever the size says (gvc profile's
                            layernum_min/max, gvc compile --num_layers) */
  int stack_layers[CTX_MAXSTACKS]; /* nstack_layers > 0: the counts of the model body's top-level repeat loops, in
                            order (gvc compile --num_layers A,B; gvc profile of several layer types) */
  int nstack_layers;
};

#endif
