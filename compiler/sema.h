/* sema.h - evaluation of a model size into the IR. The front end is an interpreter over
 * the syntax tree: hyper-parameters are evaluated (ints, floats, bools, strings), layers
 * are expanded like functions, `repeat` unrolls, `block` opens a top-level layer of the
 * IR, and every primitive call appends a shape-checked IR node with its parameters. */
#ifndef GV_SEMA_H
#define GV_SEMA_H

#include "ast.h"
#include "ir.h"

typedef enum ValKind { V_NONE, V_INT, V_FLOAT, V_BOOL, V_STR, V_TENSOR, V_FUNC } ValKind;

typedef struct Val {
  ValKind k;
  int64_t i;              /* INT, BOOL; TENSOR: IR value id; FUNC: primitive index or -1 */
  double f;               /* FLOAT */
  const char *s;          /* STR */
  const AstNode *def;     /* FUNC: a layer definition (NULL for a primitive) */
} Val;

/* A definition visible by name: layers, models and sizes of every loaded file. */
typedef struct Global { const char *name; const AstNode *def; struct Global *next; } Global;

/* The IR under construction. */
typedef struct Builder {
  Ctx *cx;
  IrModel *m;
  int cap_layers, cap_nodes, cap_values, cap_params, cap_hyper;
  int unit;                /* open top-level layer, -1 outside blocks */
  char scope[512];         /* parameter name prefix ("layers.3.attn") */
  int depth;               /* layer-call depth (recursion guard) */
  Loc call_at;             /* the model body's layer call being evaluated (depth > 0) */
  Global *globals;
  const AstNode *model_body;  /* the statements of the model being evaluated */
  int *param_slots;        /* open-addressing set of parameter indices by name (sema_prims.c) */
  int param_slot_cap;      /* a power of two, at least twice the parameters; 0 before the first */
  int stacks, repeat_depth;  /* the model body's top-level repeat loops so far; repeats open now */
} Builder;

/* Primitives (sema_prims.c). */
int sema_prim_find(const char *name);                 /* index or -1 */
const char *sema_prim_name(int prim);
int sema_prim_count(void);                            /* primitives of the language */
Val sema_prim_call(Builder *b, int prim, const AstNode *call, Val *pos, int npos, const char **kwn, Val *kwv,
                   int nkw);
const char *sema_kind_name(ValKind k);

/* IR building helpers (sema_prims.c). */
int sema_value(Builder *b, const IrShape *s, int is_index);
const char *sema_shape_str(Builder *b, const IrShape *s);

/* Evaluate size (or model) NAME into a fresh IR; NULL after diagnostics. */
IrModel *sema_build(Ctx *cx, Global *globals, const char *name);
/* Check every size of the program evaluates (gvc check). */
void sema_check_all(Ctx *cx, Global *globals);

#endif
