/* ast.h - the syntax tree of a .gvm file. One node type: kind says which fields mean
 * what (see the table at AstKind). Lists are chained through next; a list's head keeps
 * its tail in last so appends are O(1). All nodes live in cx->perm. */
#ifndef GV_AST_H
#define GV_AST_H

#include <stdint.h>

#include "ctx.h"
#include "frontend.h"

typedef enum AstKind {
  AST_INT,      /* ival */
  AST_FLOAT,    /* fval */
  AST_BOOL,     /* ival */
  AST_STR,      /* name: the text */
  AST_NAME,     /* name */
  AST_BINOP,    /* op, a, b */
  AST_UNOP,     /* op, a */
  AST_CALL,     /* name: callee; list: args; annot (+annot_at): @col/@row/@vocab; label: 'as' */
  AST_KWARG,    /* name = a (inside a call's args) */
  AST_ASSIGN,   /* name = a */
  AST_RETURN,   /* a */
  AST_IF,       /* if a { list } else b (b: an AST_IF, a block list in c, or NULL) */
  AST_REPEAT,   /* repeat name in a { list } */
  AST_BLOCK,    /* block name[a] { list } (a NULL when not indexed) */
  AST_IMPORT,   /* name: the path */
  AST_LAYER,    /* layer name(list: params) { b: body list head } */
  AST_MODEL,    /* model name(list: params) { b: body } */
  AST_SIZE,     /* size name = call a */
  AST_PARAM,    /* name [= a] */
  AST_STRATEGY, /* strategy [name] { list: AST_ASSIGN settings } (name NULL: every size of the file) */
} AstKind;

/* Binary/unary operator codes beyond single characters. */
enum { OP_EQ = 256, OP_NE, OP_LE, OP_GE, OP_AND, OP_OR, OP_NEG, OP_NOT };

struct AstNode {
  AstKind kind;
  Loc at;
  const char *name;
  int64_t ival;
  double fval;
  int op;
  AstNode *a, *b, *c;
  AstNode *list;
  AstNode *next, *last;
  const char *annot, *label;
  Loc annot_at;
};

AstNode *ast_new(Ctx *cx, AstKind kind, Loc at);
AstNode *ast_append(AstNode *list, AstNode *item);   /* returns the list head */
AstNode *ast_int(Ctx *cx, Loc at, int64_t v);
AstNode *ast_float(Ctx *cx, Loc at, double v);
AstNode *ast_bool(Ctx *cx, Loc at, int v);
AstNode *ast_str(Ctx *cx, Loc at, const char *s);
AstNode *ast_name(Ctx *cx, Loc at, const char *s);
AstNode *ast_binop(Ctx *cx, Loc at, int op, AstNode *a, AstNode *b);
AstNode *ast_unop(Ctx *cx, Loc at, int op, AstNode *a);
AstNode *ast_call(Ctx *cx, Loc at, const char *callee, AstNode *args);
AstNode *ast_annotate(Ctx *cx, AstNode *call, Loc at, const char *annot);
AstNode *ast_label(Ctx *cx, AstNode *call, const char *label);
AstNode *ast_kwarg(Ctx *cx, Loc at, const char *name, AstNode *value);
AstNode *ast_assign(Ctx *cx, Loc at, const char *name, AstNode *value);
AstNode *ast_return(Ctx *cx, Loc at, AstNode *value);
AstNode *ast_if(Ctx *cx, Loc at, AstNode *cond, AstNode *then, AstNode *els);
AstNode *ast_repeat(Ctx *cx, Loc at, const char *var, AstNode *count, AstNode *body);
AstNode *ast_block(Ctx *cx, Loc at, const char *name, AstNode *index, AstNode *body);
AstNode *ast_import(Ctx *cx, Loc at, const char *path);
AstNode *ast_def(Ctx *cx, Loc at, AstKind kind, const char *name, AstNode *params, AstNode *body);
AstNode *ast_size(Ctx *cx, Loc at, const char *name, AstNode *call);
AstNode *ast_param(Ctx *cx, Loc at, const char *name, AstNode *def);
AstNode *ast_strategy(Ctx *cx, Loc at, const char *name, AstNode *settings);

/* Parse file index `file` of cx; returns its item list (NULL on errors, reported). */
AstNode *ast_parse_file(Ctx *cx, int file);

#endif
