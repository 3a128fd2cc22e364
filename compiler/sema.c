/* sema.c - the interpreter that turns a model size into IR (see sema.h): environments,
 * expressions, statements, layer calls with positional and keyword arguments, blocks.
 * An error yields V_NONE, which every later step passes through silently, so one
 * mistake gives one message. */
#include "sema.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "diag.h"

typedef struct Var { const char *name; Val v; struct Var *next; } Var;
typedef struct Env { Var *vars; int in_layer, in_model; int returned; Val ret; } Env;

static const Val NONE = {V_NONE};

static Val vint(int64_t i) { return (Val){.k = V_INT, .i = i}; }
static Val vfloat(double f) { return (Val){.k = V_FLOAT, .f = f}; }
static Val vbool(int b) { return (Val){.k = V_BOOL, .i = b != 0}; }

static void set_var(Builder *b, Env *e, const char *name, Val v)
{
  for (Var *x = e->vars; x; x = x->next)
    if (!strcmp(x->name, name)) {
      x->v = v;
      return;
    }
  Var *x = ARENA_NEW(b->cx->perm, Var);
  x->name = name;
  x->v = v;
  x->next = e->vars;
  e->vars = x;
}

static const Global *find_global(const Builder *b, const char *name)
{
  for (const Global *g = b->globals; g; g = g->next)
    if (!strcmp(g->name, name))
      return g;
  return NULL;
}

static int loc_after(Loc x, Loc y) { return x.file == y.file && (x.line > y.line || (x.line == y.line && x.col > y.col)); }

/* The first assignment of NAME inside a block of the statements LIST that comes after AT. */
static const AstNode *later_block_assign(const AstNode *list, const char *name, Loc at, int in_block)
{
  for (const AstNode *n = list; n; n = n->next) {
    const AstNode *found = NULL;
    if (n->kind == AST_ASSIGN && in_block && !strcmp(n->name, name) && loc_after(n->at, at))
      return n;
    if (n->kind == AST_IF)
      for (const AstNode *c = n; c && !found; c = c->b)
        found = later_block_assign(c->list, name, at, in_block);
    else if (n->kind == AST_REPEAT || n->kind == AST_BLOCK)
      found = later_block_assign(n->list, name, at, in_block || n->kind == AST_BLOCK);
    if (found)
      return found;
  }
  return NULL;
}

static Val lookup(Builder *b, Env *e, const AstNode *n)
{
  for (Var *x = e->vars; x; x = x->next)
    if (!strcmp(x->name, n->name))
      return x->v;
  if (e->in_model && !e->in_layer && !strcmp(n->name, "pixels")) { /* the image input, made when first read (so
                                                                      * a model without it keeps its value ids) */
    if (b->m->pixels_value < 0) /* [B, C, H, W] once a patch_embedding reads it */
      b->m->pixels_value = sema_value(b, &(IrShape){2, {IR_DIM_B, IR_DIM_T}}, 0);
    return (Val){.k = V_TENSOR, .i = b->m->pixels_value};
  }
  int p = sema_prim_find(n->name);
  if (p >= 0)
    return (Val){.k = V_FUNC, .i = p};
  const Global *g = find_global(b, n->name);
  if (g && g->def->kind == AST_LAYER)
    return (Val){.k = V_FUNC, .i = -1, .def = g->def};
  const AstNode *later = e->in_model && !e->in_layer ? later_block_assign(b->model_body, n->name, n->at, 0) : NULL;
  if (later) {
    diag_error(b->cx, n->at, "'%s' is a value of a later block: a block reads only the values of the blocks before it",
               n->name);
    diag_note(b->cx, later->at, "'%s' is assigned here", n->name);
    return NONE;
  }
  if (e->in_model && !e->in_layer && !strcmp(n->name, "src_tokens")) { /* an encoder's source: made when first read */
    IrShape bs = {2, {IR_DIM_B, IR_DIM_S}};
    if (b->m->src_value < 0)
      b->m->src_value = sema_value(b, &bs, 1);
    return (Val){.k = V_TENSOR, .i = b->m->src_value};
  }
  diag_error(b->cx, n->at, "unknown name '%s'", n->name);
  return NONE;
}

/* ---- expressions ---- */

static Val eval(Builder *b, Env *e, const AstNode *n);
static Val call(Builder *b, Env *e, const AstNode *n);

static int is_num(Val v) { return v.k == V_INT || v.k == V_FLOAT; }
static double num(Val v) { return v.k == V_INT ? (double)v.i : v.f; }

/* factor * x + shift: the `scale` primitive. */
static Val scale_of(Builder *b, const AstNode *n, Val x, double factor, double shift)
{
  Val args[3] = {x, vfloat(factor), vfloat(shift)};
  return sema_prim_call(b, sema_prim_find("scale"), n, args, 3, NULL, NULL, 0);
}

/* A tensor and a number: x * s, s * x, x / s, x + s, s + x, x - s, s - x (scale). */
static Val tensor_scalar(Builder *b, const AstNode *n, Val x, Val y)
{
  int tensor_first = x.k == V_TENSOR;
  Val t = tensor_first ? x : y;
  double s = num(tensor_first ? y : x);
  switch (n->op) {
  case '*': return scale_of(b, n, t, s, 0.0);
  case '+': return scale_of(b, n, t, 1.0, s);
  case '-': return tensor_first ? scale_of(b, n, t, 1.0, -s) : scale_of(b, n, t, -1.0, s);
  case '/':
    if (!tensor_first) {
      diag_error(b->cx, n->at, "a number divided by a tensor is not defined (only tensor / number)");
      return NONE;
    }
    if (s == 0) {
      diag_error(b->cx, n->at, "division by zero");
      return NONE;
    }
    return scale_of(b, n, t, 1.0 / s, 0.0);
  default:
    diag_error(b->cx, n->at, "operator '%c' is not defined on a tensor and a number", n->op < 256 ? n->op : '?');
    return NONE;
  }
}

static Val tensor_binop(Builder *b, const AstNode *n, Val x, Val y)
{
  if ((x.k == V_TENSOR && is_num(y)) || (is_num(x) && y.k == V_TENSOR))
    return tensor_scalar(b, n, x, y);
  if (n->op != '+' && n->op != '*' && n->op != '-') {
    diag_error(b->cx, n->at, "operator '%c' is not defined on two tensors (only +, - and *)", n->op < 256 ? n->op : '?');
    return NONE;
  }
  if (x.k != V_TENSOR || y.k != V_TENSOR) {
    diag_error(b->cx, n->at, "type error: '%c' of a %s and a %s", n->op, sema_kind_name(x.k), sema_kind_name(y.k));
    return NONE;
  }
  if (n->op == '-') { /* a - b = a + (-1) b */
    y = scale_of(b, n, y, -1.0, 0.0);
    if (y.k == V_NONE)
      return NONE;
  }
  Val args[2] = {x, y};
  return sema_prim_call(b, sema_prim_find(n->op == '*' ? "mul" : "add"), n, args, 2, NULL, NULL, 0);
}

static Val arith(Builder *b, const AstNode *n, Val x, Val y)
{
  if (!is_num(x) || !is_num(y)) {
    diag_error(b->cx, n->at, "type error: arithmetic on a %s and a %s", sema_kind_name(x.k), sema_kind_name(y.k));
    return NONE;
  }
  if ((n->op == '/' || n->op == '%') && num(y) == 0) {
    diag_error(b->cx, n->at, "division by zero");
    return NONE;
  }
  if (x.k == V_INT && y.k == V_INT) {
    switch (n->op) {
    case '+': return vint(x.i + y.i);
    case '-': return vint(x.i - y.i);
    case '*': return vint(x.i * y.i);
    case '%': return vint(x.i % y.i);
    case '/':
      if (x.i % y.i) {
        diag_error(b->cx, n->at, "%lld is not divisible by %lld (use a float to divide inexactly)", (long long)x.i,
                   (long long)y.i);
        return NONE;
      }
      return vint(x.i / y.i);
    }
  }
  double a = num(x), c = num(y);
  switch (n->op) {
  case '+': return vfloat(a + c);
  case '-': return vfloat(a - c);
  case '*': return vfloat(a * c);
  case '/': return vfloat(a / c);
  case '%': return vfloat(fmod(a, c));
  }
  return NONE;
}

static Val compare(Builder *b, const AstNode *n, Val x, Val y)
{
  if (n->op == OP_AND || n->op == OP_OR) {
    if (x.k != V_BOOL || y.k != V_BOOL) {
      diag_error(b->cx, n->at, "type error: '%s' needs two bools, got a %s and a %s", n->op == OP_AND ? "&&" : "||",
                 sema_kind_name(x.k), sema_kind_name(y.k));
      return NONE;
    }
    return vbool(n->op == OP_AND ? x.i && y.i : x.i || y.i);
  }
  if (x.k == V_BOOL && y.k == V_BOOL && (n->op == OP_EQ || n->op == OP_NE))
    return vbool((x.i == y.i) == (n->op == OP_EQ));
  if (x.k == V_STR && y.k == V_STR && (n->op == OP_EQ || n->op == OP_NE))
    return vbool(!strcmp(x.s, y.s) == (n->op == OP_EQ));
  if (!is_num(x) || !is_num(y)) {
    diag_error(b->cx, n->at, "type error: comparison of a %s and a %s", sema_kind_name(x.k), sema_kind_name(y.k));
    return NONE;
  }
  double a = num(x), c = num(y);
  switch (n->op) {
  case OP_EQ: return vbool(a == c);
  case OP_NE: return vbool(a != c);
  case '<': return vbool(a < c);
  case '>': return vbool(a > c);
  case OP_LE: return vbool(a <= c);
  case OP_GE: return vbool(a >= c);
  }
  return NONE;
}

static Val eval(Builder *b, Env *e, const AstNode *n)
{
  switch (n->kind) {
  case AST_INT: return vint(n->ival);
  case AST_FLOAT: return vfloat(n->fval);
  case AST_BOOL: return vbool((int)n->ival);
  case AST_STR: return (Val){.k = V_STR, .s = n->name};
  case AST_NAME: return lookup(b, e, n);
  case AST_CALL: return call(b, e, n);
  case AST_UNOP: {
    Val x = eval(b, e, n->a);
    if (x.k == V_NONE)
      return NONE;
    if (n->op == OP_NOT) {
      if (x.k != V_BOOL) {
        diag_error(b->cx, n->at, "type error: '!' needs a bool, got a %s", sema_kind_name(x.k));
        return NONE;
      }
      return vbool(!x.i);
    }
    if (x.k == V_TENSOR)
      return scale_of(b, n, x, -1.0, 0.0);
    if (!is_num(x)) {
      diag_error(b->cx, n->at, "type error: '-' needs a number or a tensor, got a %s", sema_kind_name(x.k));
      return NONE;
    }
    return x.k == V_INT ? vint(-x.i) : vfloat(-x.f);
  }
  case AST_BINOP: {
    Val x = eval(b, e, n->a), y = eval(b, e, n->b);
    if (x.k == V_NONE || y.k == V_NONE)
      return NONE;
    if (x.k == V_TENSOR || y.k == V_TENSOR)
      return tensor_binop(b, n, x, y);
    if (n->op == '+' || n->op == '-' || n->op == '*' || n->op == '/' || n->op == '%')
      return arith(b, n, x, y);
    return compare(b, n, x, y);
  }
  default:
    GV_ICE("expression of an unexpected kind");
  }
}

/* ---- statements ---- */

static void exec(Builder *b, Env *e, const AstNode *list);

static void open_block(Builder *b, Env *e, const AstNode *n)
{
  if (!e->in_model || e->in_layer) {
    diag_error(b->cx, n->at, "'block' is only allowed in a model body");
    return;
  }
  if (b->unit >= 0) {
    diag_error(b->cx, n->at, "blocks cannot be nested (block '%s' inside '%s')", n->name, b->m->layers[b->unit].name);
    return;
  }
  const char *name = n->name;
  char saved[sizeof b->scope];
  memcpy(saved, b->scope, sizeof saved);
  if (n->a) {
    Val idx = eval(b, e, n->a);
    if (idx.k == V_NONE)
      return;
    if (idx.k != V_INT) {
      diag_error(b->cx, n->a->at, "type error: a block index must be an int, got a %s", sema_kind_name(idx.k));
      return;
    }
    name = arena_printf(b->cx->perm, "%s.%lld", n->name, (long long)idx.i);
    snprintf(b->scope, sizeof b->scope, "%s", name); /* indexed blocks name their parameters */
  }
  for (int i = 0; i < b->m->nlayers; i++)
    if (!strcmp(b->m->layers[i].name, name)) {
      diag_error(b->cx, n->at, "block '%s' is defined twice", name);
      return;
    }
  if (b->m->nlayers == b->cap_layers) {
    int cap = b->cap_layers ? 2 * b->cap_layers : 64;
    b->m->layers = arena_realloc(b->cx->perm, b->m->layers, sizeof(IrLayer) * (size_t)b->cap_layers,
                                 sizeof(IrLayer) * (size_t)cap);
    b->cap_layers = cap;
  }
  IrLayer *ly = &b->m->layers[b->m->nlayers];
  memset(ly, 0, sizeof *ly);
  ly->name = name;
  ly->kind = n->a ? IR_LAYER_BLOCK : IR_LAYER_OTHER;
  ly->first_node = b->m->nnodes;
  ly->first_param = b->m->nparams;
  ly->in_value = ly->out_value = -1;
  b->unit = b->m->nlayers++;
  exec(b, e, n->list);
  ly = &b->m->layers[b->unit];
  ly->nnodes = b->m->nnodes - ly->first_node;
  ly->nparams = b->m->nparams - ly->first_param;
  b->unit = -1;
  memcpy(b->scope, saved, sizeof saved);
}

static void exec_if(Builder *b, Env *e, const AstNode *n)
{
  for (; n; n = n->b) {
    if (!n->a) { /* plain else */
      exec(b, e, n->list);
      return;
    }
    Val c = eval(b, e, n->a);
    if (c.k == V_NONE)
      return;
    if (c.k != V_BOOL) {
      diag_error(b->cx, n->a->at, "type error: an 'if' condition must be a bool, got a %s", sema_kind_name(c.k));
      return;
    }
    if (c.i) {
      exec(b, e, n->list);
      return;
    }
  }
}

static void exec_repeat(Builder *b, Env *e, const AstNode *n)
{
  Val c = eval(b, e, n->a);
  if (c.k == V_NONE)
    return;
  if (c.k != V_INT || c.i < 0 || c.i > 100000) {
    diag_error(b->cx, n->a->at, "a repeat count must be an int in [0, 100000], got %s",
               c.k == V_INT ? arena_printf(b->cx->perm, "%lld", (long long)c.i) : sema_kind_name(c.k));
    return;
  }
  int64_t count = c.i;
  if (e->in_model && !e->in_layer && b->unit < 0 && !b->repeat_depth && b->stacks++ < b->cx->nstack_layers)
    count = b->cx->stack_layers[b->stacks - 1]; /* the count of this stack set from outside */
  b->repeat_depth++;
  for (int64_t i = 0; i < count && !e->returned && diag_errors(b->cx) == 0; i++) {
    set_var(b, e, n->name, vint(i));
    exec(b, e, n->list);
  }
  b->repeat_depth--;
}

static void exec(Builder *b, Env *e, const AstNode *list)
{
  for (const AstNode *n = list; n && !e->returned && !diag_errors(b->cx); n = n->next) {
    switch (n->kind) {
    case AST_ASSIGN: {
      Val v = eval(b, e, n->a);
      set_var(b, e, n->name, v);
      break;
    }
    case AST_RETURN:
      if (!e->in_layer) {
        diag_error(b->cx, n->at, "'return' outside a layer (a model's result is its 'loss')");
        break;
      }
      e->ret = eval(b, e, n->a);
      e->returned = 1;
      break;
    case AST_IF: exec_if(b, e, n); break;
    case AST_REPEAT: exec_repeat(b, e, n); break;
    case AST_BLOCK: open_block(b, e, n); break;
    default: GV_ICE("statement of an unexpected kind");
    }
  }
}

/* ---- calls ---- */

/* Bind a definition's parameters from a call's arguments into env; 0 on success. */
static int bind(Builder *b, Env *caller, Env *callee, const AstNode *def, const AstNode *callsite, Val *pos,
                int npos, const char **kwn, Val *kwv, int nkw)
{
  int nparams = 0;
  for (const AstNode *p = def->list; p; p = p->next)
    nparams++;
  if (npos > nparams) {
    diag_error(b->cx, callsite->at, "'%s' takes %d argument%s, %d given", def->name, nparams, nparams == 1 ? "" : "s",
               npos);
    diag_note(b->cx, def->at, "'%s' declared here", def->name);
    return 1;
  }
  for (int k = 0; k < nkw; k++) {
    int idx = 0, found = 0;
    for (const AstNode *p = def->list; p; p = p->next, idx++)
      if (!strcmp(p->name, kwn[k])) {
        found = 1;
        if (idx < npos) {
          diag_error(b->cx, callsite->at, "argument '%s' of '%s' is given twice (by position and by name)", kwn[k],
                     def->name);
          return 1;
        }
      }
    for (int j = 0; j < k; j++)
      if (!strcmp(kwn[j], kwn[k])) {
        diag_error(b->cx, callsite->at, "keyword argument '%s' is given twice", kwn[k]);
        return 1;
      }
    if (!found) {
      diag_error(b->cx, callsite->at, "'%s' has no parameter named '%s'", def->name, kwn[k]);
      diag_note(b->cx, def->at, "'%s' declared here", def->name);
      return 1;
    }
  }
  int idx = 0;
  for (const AstNode *p = def->list; p; p = p->next, idx++) {
    Val v = NONE;
    int given = 0;
    if (idx < npos) {
      v = pos[idx];
      given = 1;
    }
    for (int k = 0; k < nkw && !given; k++)
      if (!strcmp(kwn[k], p->name)) {
        v = kwv[k];
        given = 1;
      }
    if (!given) {
      if (!p->a) {
        diag_error(b->cx, callsite->at, "missing argument '%s' of '%s'", p->name, def->name);
        diag_note(b->cx, def->at, "'%s' declared here", def->name);
        return 1;
      }
      v = eval(b, callee, p->a); /* defaults see earlier parameters */
    }
    set_var(b, callee, p->name, v);
  }
  (void)caller;
  return 0;
}

static Val call_layer(Builder *b, Env *e, const AstNode *def, const AstNode *n, Val *pos, int npos, const char **kwn,
                      Val *kwv, int nkw)
{
  if (b->depth > 64) {
    diag_error(b->cx, n->at, "layer calls nest deeper than 64 (is '%s' recursive?)", def->name);
    return NONE;
  }
  if (n->annot) {
    diag_error(b->cx, n->annot_at, "'@%s' applies to a primitive op, not to the layer '%s'", n->annot, def->name);
    return NONE;
  }
  Env callee = {.in_layer = 1, .in_model = e->in_model};
  if (bind(b, e, &callee, def, n, pos, npos, kwn, kwv, nkw))
    return NONE;
  char saved[sizeof b->scope];
  memcpy(saved, b->scope, sizeof saved);
  const char *seg = n->label ? n->label : def->name;
  size_t len = strlen(b->scope);
  snprintf(b->scope + len, sizeof b->scope - len, "%s%s", len ? "." : "", seg);
  if (b->depth == 0)
    b->call_at = n->at;
  b->depth++;
  int before = diag_errors(b->cx);
  exec(b, &callee, def->b);
  b->depth--;
  if (diag_errors(b->cx) > before)
    diag_note(b->cx, n->at, "in '%s' called here", def->name);
  memcpy(b->scope, saved, sizeof saved);
  if (!callee.returned && diag_errors(b->cx) == 0) {
    diag_error(b->cx, n->at, "layer '%s' returned no value", def->name);
    diag_note(b->cx, def->at, "'%s' declared here: end it with 'return EXPR'", def->name);
    return NONE;
  }
  return callee.ret;
}

/* sqrt(number): a float (Gemma's embedding scale sqrt(hidden)). */
static Val builtin_sqrt(Builder *b, const AstNode *n, Val *pos, int npos, int nkw)
{
  if (npos != 1 || nkw || !is_num(pos[0])) {
    diag_error(b->cx, n->at, "'sqrt' takes one number, got %d argument%s%s%s", npos + nkw, npos + nkw == 1 ? "" : "s",
               npos == 1 ? " of kind " : "", npos == 1 ? sema_kind_name(pos[0].k) : "");
    return NONE;
  }
  if (num(pos[0]) < 0) {
    diag_error(b->cx, n->at, "'sqrt' of a negative number (%g)", num(pos[0]));
    return NONE;
  }
  return vfloat(sqrt(num(pos[0])));
}

static Val builtin_dim(Builder *b, const AstNode *n, Val *pos, int npos, int nkw)
{
  if (npos != 2 || nkw) {
    diag_error(b->cx, n->at, "'dim' takes 2 arguments (tensor, axis), %d given", npos + nkw);
    return NONE;
  }
  if (pos[0].k != V_TENSOR || pos[1].k != V_INT) {
    diag_error(b->cx, n->at, "type error: dim(tensor, int) called with a %s and a %s", sema_kind_name(pos[0].k),
               sema_kind_name(pos[1].k));
    return NONE;
  }
  const IrShape *s = &b->m->values[pos[0].i].shape;
  int64_t ax = pos[1].i < 0 ? pos[1].i + s->rank : pos[1].i;
  if (ax < 0 || ax >= s->rank) {
    diag_error(b->cx, n->at, "axis %lld is out of range for a tensor of rank %d", (long long)pos[1].i, s->rank);
    return NONE;
  }
  int64_t d = s->d[ax];
  if (d < 0) {
    diag_error(b->cx, n->at, "axis %lld is the symbolic %s dimension, which has no value here", (long long)pos[1].i,
               d == IR_DIM_B ? "batch" : d == IR_DIM_S ? "source sequence" : "sequence");
    return NONE;
  }
  return vint(d);
}

static Val call(Builder *b, Env *e, const AstNode *n)
{
  Val pos[32], kwv[32];
  const char *kwn[32];
  int npos = 0, nkw = 0;
  for (const AstNode *a = n->list; a; a = a->next) {
    if (npos + nkw >= 32) {
      diag_error(b->cx, a->at, "more than 32 arguments");
      return NONE;
    }
    if (a->kind == AST_KWARG) {
      kwn[nkw] = a->name;
      kwv[nkw++] = eval(b, e, a->a);
    } else {
      if (nkw) {
        diag_error(b->cx, a->at, "a positional argument follows keyword arguments");
        return NONE;
      }
      pos[npos++] = eval(b, e, a);
    }
  }
  for (int i = 0; i < npos; i++)
    if (pos[i].k == V_NONE)
      return NONE;
  for (int i = 0; i < nkw; i++)
    if (kwv[i].k == V_NONE)
      return NONE;
  if (!strcmp(n->name, "dim"))
    return builtin_dim(b, n, pos, npos, nkw);
  if (!strcmp(n->name, "sqrt"))
    return builtin_sqrt(b, n, pos, npos, nkw);
  AstNode name = {.kind = AST_NAME, .at = n->at, .name = n->name};
  Val f = NONE;
  int local = 0;
  for (Var *x = e->vars; x; x = x->next)
    if (!strcmp(x->name, n->name)) {
      f = x->v;
      local = 1;
      break;
    }
  if (!local) {
    int p = sema_prim_find(n->name);
    const Global *g = find_global(b, n->name);
    if (p >= 0)
      f = (Val){.k = V_FUNC, .i = p};
    else if (g && g->def->kind == AST_LAYER)
      f = (Val){.k = V_FUNC, .i = -1, .def = g->def};
    else if (g) {
      diag_error(b->cx, n->at, "'%s' is a %s, not a layer: it cannot be called here", n->name,
                 g->def->kind == AST_MODEL ? "model" : "size");
      return NONE;
    } else {
      diag_error(b->cx, n->at, "unknown layer or primitive '%s'", n->name);
      return NONE;
    }
  }
  (void)name;
  if (f.k != V_FUNC) {
    if (f.k != V_NONE)
      diag_error(b->cx, n->at, "'%s' is a %s, not a function", n->name, sema_kind_name(f.k));
    return NONE;
  }
  if (f.def)
    return call_layer(b, e, f.def, n, pos, npos, kwn, kwv, nkw);
  if (e->in_model && b->unit < 0) {
    diag_error(b->cx, n->at, "'%s' outside a block: put the model's operations in 'block NAME { ... }'",
               sema_prim_name((int)f.i));
    return NONE;
  }
  return sema_prim_call(b, (int)f.i, n, pos, npos, kwn, kwv, nkw);
}

/* ---- models and sizes ---- */

static void add_hyper(Builder *b, const char *name, Val v)
{
  if (v.k != V_INT && v.k != V_FLOAT && v.k != V_BOOL)
    return;
  if (b->m->nhyper == b->cap_hyper) {
    int cap = b->cap_hyper ? 2 * b->cap_hyper : 16;
    b->m->hyper = arena_realloc(b->cx->perm, b->m->hyper, sizeof(IrHyper) * (size_t)b->cap_hyper,
                                sizeof(IrHyper) * (size_t)cap);
    b->cap_hyper = cap;
  }
  b->m->hyper[b->m->nhyper++] = (IrHyper){name, v.k == V_FLOAT ? v.f : (double)v.i, v.k != V_FLOAT};
}

void sema_finish(Builder *b);   /* sema_prims.c: in/out values, kinds, types, facts */

static IrModel *run_model(Builder *b, const AstNode *def, const AstNode *site, Val *pos, int npos, const char **kwn,
                          Val *kwv, int nkw)
{
  Env env = {.in_model = 1};
  b->model_body = def->b;
  if (bind(b, NULL, &env, def, site, pos, npos, kwn, kwv, nkw))
    return NULL;
  for (const AstNode *p = def->list; p; p = p->next)
    for (Var *x = env.vars; x; x = x->next)
      if (!strcmp(x->name, p->name))
        add_hyper(b, p->name, x->v);
  IrShape bt = {2, {IR_DIM_B, IR_DIM_T}};
  b->m->tokens_value = sema_value(b, &bt, 1);
  b->m->labels_value = sema_value(b, &bt, 1);
  set_var(b, &env, "tokens", (Val){.k = V_TENSOR, .i = b->m->tokens_value});
  set_var(b, &env, "labels", (Val){.k = V_TENSOR, .i = b->m->labels_value});
  b->m->segments_value = sema_value(b, &bt, 1);
  set_var(b, &env, "segments", (Val){.k = V_TENSOR, .i = b->m->segments_value});
  exec(b, &env, def->b);
  if (!diag_errors(b->cx) && b->cx->nstack_layers > 0 && b->stacks != b->cx->nstack_layers)
    diag_plain(b->cx, "model '%s' has %d top-level repeat loop%s (stacks of blocks), and %d layer counts were given (one per loop)",
               def->name, b->stacks, b->stacks == 1 ? "" : "s", b->cx->nstack_layers);
  b->m->nstacks = b->stacks;
  if (diag_errors(b->cx))
    return NULL;
  sema_finish(b);
  return diag_errors(b->cx) ? NULL : b->m;
}

/* cx->layers_override > 0: the keyword argument `layers` set to it (replacing the size's);
 * returns the new keyword count, or -1 after a message when the model has no `layers`. */
static int override_layers(Builder *b, const AstNode *model, const char **kwn, Val *kwv, int nkw)
{
  int L = b->cx->layers_override, has = 0;
  if (L <= 0)
    return nkw;
  for (const AstNode *p = model->list; p; p = p->next)
    has |= p->name && !strcmp(p->name, "layers");
  if (!has) {
    diag_plain(b->cx, "model '%s' has no 'layers' parameter, so its layer count cannot be set", model->name);
    return -1;
  }
  for (int i = 0; i < nkw; i++)
    if (!strcmp(kwn[i], "layers")) {
      kwv[i] = vint(L);
      return nkw;
    }
  kwn[nkw] = "layers";
  kwv[nkw] = vint(L);
  return nkw + 1;
}

IrModel *sema_build(Ctx *cx, Global *globals, const char *name)
{
  Builder b = {.cx = cx, .globals = globals, .unit = -1};
  b.m = ARENA_NEW(cx->perm, IrModel);
  b.m->name = name;
  b.m->tokens_value = b.m->labels_value = b.m->loss_value = b.m->segments_value = b.m->pixels_value = -1;
  b.m->src_value = -1;
  const Global *g = find_global(&b, name);
  if (!g || (g->def->kind != AST_SIZE && g->def->kind != AST_MODEL)) {
    diag_plain(cx, "no model or size named '%s'%s", name, g ? " (it is a layer)" : "");
    return NULL;
  }
  b.m->at = g->def->at;
  b.m->size_file = b.m->family_file = cx->files[g->def->at.file].path;
  Val pos[32], kwv[33];
  const char *kwn[33];
  int npos = 0, nkw = 0;
  if (g->def->kind == AST_MODEL) { /* a model with its default arguments */
    b.m->family = name;
    nkw = override_layers(&b, g->def, kwn, kwv, 0);
    return nkw < 0 ? NULL : run_model(&b, g->def, g->def, NULL, 0, kwn, kwv, nkw);
  }
  const AstNode *c = g->def->a;
  const Global *mg = find_global(&b, c->name);
  if (!mg || mg->def->kind != AST_MODEL) {
    diag_error(cx, c->at, "size '%s' needs a model, and '%s' is %s", name, c->name,
               mg ? "not a model" : "not defined");
    return NULL;
  }
  b.m->family = mg->def->name;
  b.m->family_file = cx->files[mg->def->at.file].path;
  Env empty = {0};
  for (const AstNode *a = c->list; a && npos + nkw < 32; a = a->next) {
    if (a->kind == AST_KWARG) {
      kwn[nkw] = a->name;
      kwv[nkw++] = eval(&b, &empty, a->a);
    } else {
      pos[npos++] = eval(&b, &empty, a);
    }
  }
  if (diag_errors(cx) || (nkw = override_layers(&b, mg->def, kwn, kwv, nkw)) < 0)
    return NULL;
  return run_model(&b, mg->def, c, pos, npos, kwn, kwv, nkw);
}

void sema_check_all(Ctx *cx, Global *globals)
{
  for (Global *g = globals; g; g = g->next)
    if (g->def->kind == AST_SIZE && diag_errors(cx) == 0)
      sema_build(cx, globals, g->name);
}
