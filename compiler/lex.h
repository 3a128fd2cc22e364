/* lex.h - state shared by the flex scanner (grammar/gvm.l) and the bison parser
 * (grammar/gvm.y): the context, the file being read, the current position, and the
 * stack of open brackets. */
#ifndef GV_LEX_H
#define GV_LEX_H

#include <stddef.h>
#include <stdint.h>

#include "ast.h"
#include "ctx.h"

typedef struct LexState {
  Ctx *cx;
  int file;
  int line, col;
  Loc open[64];            /* open brackets (deepest last) */
  char open_ch[64];
  int nopen;               /* may exceed 64: only the first 64 are remembered */
  int lex_error;           /* a lexical error was reported for the current token */
  AstNode *items;          /* the parse result */
} LexState;

void lex_step(LexState *ls, Loc *loc, const char *text, int len);
int lex_int(LexState *ls, int64_t *out, Loc *loc, const char *text);
int lex_bad(LexState *ls, Loc *loc, const char *fmt, const char *text);
const char *lex_intern(LexState *ls, const char *s, size_t n);
void lex_open(LexState *ls, const Loc *loc, char ch);
void lex_close(LexState *ls, char ch);

#endif
