/* ast.c - builders of the syntax tree, one per grammar rule (called from gvm.y). */
#include "ast.h"

AstNode *ast_new(Ctx *cx, AstKind kind, Loc at)
{
  AstNode *n = ARENA_NEW(cx->perm, AstNode);
  n->kind = kind;
  n->at = at;
  return n;
}

/* list -> list item */
AstNode *ast_append(AstNode *list, AstNode *item)
{
  if (!item)
    return list;
  if (!list) {
    item->last = item;
    return item;
  }
  list->last->next = item;
  list->last = item;
  return list;
}

AstNode *ast_int(Ctx *cx, Loc at, int64_t v)
{
  AstNode *n = ast_new(cx, AST_INT, at);
  n->ival = v;
  return n;
}

AstNode *ast_float(Ctx *cx, Loc at, double v)
{
  AstNode *n = ast_new(cx, AST_FLOAT, at);
  n->fval = v;
  return n;
}

AstNode *ast_bool(Ctx *cx, Loc at, int v)
{
  AstNode *n = ast_new(cx, AST_BOOL, at);
  n->ival = v;
  return n;
}

AstNode *ast_str(Ctx *cx, Loc at, const char *s)
{
  AstNode *n = ast_new(cx, AST_STR, at);
  n->name = s;
  return n;
}

AstNode *ast_name(Ctx *cx, Loc at, const char *s)
{
  AstNode *n = ast_new(cx, AST_NAME, at);
  n->name = s;
  return n;
}

/* expr -> expr OP expr */
AstNode *ast_binop(Ctx *cx, Loc at, int op, AstNode *a, AstNode *b)
{
  AstNode *n = ast_new(cx, AST_BINOP, at);
  n->op = op;
  n->a = a;
  n->b = b;
  return n;
}

/* expr -> '-' expr | '!' expr */
AstNode *ast_unop(Ctx *cx, Loc at, int op, AstNode *a)
{
  AstNode *n = ast_new(cx, AST_UNOP, at);
  n->op = op;
  n->a = a;
  return n;
}

/* call -> NAME '(' args ')' */
AstNode *ast_call(Ctx *cx, Loc at, const char *callee, AstNode *args)
{
  AstNode *n = ast_new(cx, AST_CALL, at);
  n->name = callee;
  n->list = args;
  return n;
}

/* call -> call '@' NAME */
AstNode *ast_annotate(Ctx *cx, AstNode *call, Loc at, const char *annot)
{
  (void)cx;
  call->annot = annot;
  call->annot_at = at;
  return call;
}

/* call -> call AS NAME */
AstNode *ast_label(Ctx *cx, AstNode *call, const char *label)
{
  (void)cx;
  call->label = label;
  return call;
}

/* arg -> NAME '=' expr */
AstNode *ast_kwarg(Ctx *cx, Loc at, const char *name, AstNode *value)
{
  AstNode *n = ast_new(cx, AST_KWARG, at);
  n->name = name;
  n->a = value;
  return n;
}

/* stmt -> NAME '=' expr */
AstNode *ast_assign(Ctx *cx, Loc at, const char *name, AstNode *value)
{
  AstNode *n = ast_new(cx, AST_ASSIGN, at);
  n->name = name;
  n->a = value;
  return n;
}

/* stmt -> RETURN expr */
AstNode *ast_return(Ctx *cx, Loc at, AstNode *value)
{
  AstNode *n = ast_new(cx, AST_RETURN, at);
  n->a = value;
  return n;
}

/* stmt -> IF expr '{' stmts '}' [ELSE ...] */
AstNode *ast_if(Ctx *cx, Loc at, AstNode *cond, AstNode *then, AstNode *els)
{
  AstNode *n = ast_new(cx, AST_IF, at);
  n->a = cond;
  n->list = then;
  n->b = els;
  return n;
}

/* stmt -> REPEAT NAME IN expr '{' stmts '}' */
AstNode *ast_repeat(Ctx *cx, Loc at, const char *var, AstNode *count, AstNode *body)
{
  AstNode *n = ast_new(cx, AST_REPEAT, at);
  n->name = var;
  n->a = count;
  n->list = body;
  return n;
}

/* stmt -> BLOCK NAME ['[' expr ']'] '{' stmts '}' */
AstNode *ast_block(Ctx *cx, Loc at, const char *name, AstNode *index, AstNode *body)
{
  AstNode *n = ast_new(cx, AST_BLOCK, at);
  n->name = name;
  n->a = index;
  n->list = body;
  return n;
}

/* item -> IMPORT STRING */
AstNode *ast_import(Ctx *cx, Loc at, const char *path)
{
  AstNode *n = ast_new(cx, AST_IMPORT, at);
  n->name = path;
  return n;
}

/* item -> (LAYER | MODEL) NAME '(' params ')' '{' stmts '}' */
AstNode *ast_def(Ctx *cx, Loc at, AstKind kind, const char *name, AstNode *params, AstNode *body)
{
  AstNode *n = ast_new(cx, kind, at);
  n->name = name;
  n->list = params;
  n->b = body;
  return n;
}

/* item -> SIZE NAME '=' call */
AstNode *ast_size(Ctx *cx, Loc at, const char *name, AstNode *call)
{
  AstNode *n = ast_new(cx, AST_SIZE, at);
  n->name = name;
  n->a = call;
  return n;
}

/* param -> NAME ['=' expr] */
AstNode *ast_param(Ctx *cx, Loc at, const char *name, AstNode *def)
{
  AstNode *n = ast_new(cx, AST_PARAM, at);
  n->name = name;
  n->a = def;
  return n;
}

/* item -> STRATEGY [NAME] '{' settings '}' */
AstNode *ast_strategy(Ctx *cx, Loc at, const char *name, AstNode *settings)
{
  AstNode *n = ast_new(cx, AST_STRATEGY, at);
  n->name = name;
  n->list = settings;
  return n;
}
