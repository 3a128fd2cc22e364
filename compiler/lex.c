/* lex.c - the scanner's helpers (positions, literals, bracket stack, interning) and
 * the parse of one file (see lex.h). */
#include "lex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "gvm.tab.h"
#include "gvm.lex.h"

/* Location of the token just matched, then advance past it. */
void lex_step(LexState *ls, Loc *loc, const char *text, int len)
{
  ls->lex_error = 0;
  *loc = (Loc){ls->file, ls->line, ls->col, 0};
  int first_line_len = 0, on_first = 1;
  for (int i = 0; i < len; i++) {
    if (text[i] == '\n') {
      ls->line++;
      ls->col = 1;
      on_first = 0;
    } else {
      ls->col++;
      first_line_len += on_first;
    }
  }
  loc->len = first_line_len;
}

int lex_int(LexState *ls, int64_t *out, Loc *loc, const char *text)
{
  errno = 0;
  long long v = strtoll(text, NULL, 10);
  if (errno == ERANGE) {
    ls->lex_error = 1;
    diag_error(ls->cx, *loc, "integer literal '%s' is too large", text);
    return YYUNDEF;
  }
  *out = v;
  return INT;
}

int lex_bad(LexState *ls, Loc *loc, const char *fmt, const char *text)
{
  ls->lex_error = 1;
  char msg[160];
  snprintf(msg, sizeof msg, fmt, text);
  diag_error(ls->cx, *loc, "%s", msg);
  return YYUNDEF;
}

const char *lex_intern(LexState *ls, const char *s, size_t n)
{
  return arena_strndup(ls->cx->perm, s, n);
}

void lex_open(LexState *ls, const Loc *loc, char ch)
{
  if (ls->nopen < 64) {
    ls->open[ls->nopen] = *loc;
    ls->open_ch[ls->nopen] = ch;
  }
  ls->nopen++;
}

void lex_close(LexState *ls, char ch)
{
  (void)ch;
  if (ls->nopen > 0)
    ls->nopen--;
}

AstNode *ast_parse_file(Ctx *cx, int file)
{
  LexState ls = {.cx = cx, .file = file, .line = 1, .col = 1};
  yyscan_t sc;
  if (yylex_init_extra(&ls, &sc))
    GV_ICE("cannot create the scanner");
  SrcFile *f = &cx->files[file];
  YY_BUFFER_STATE buf = yy_scan_bytes(f->text, (int)f->len, sc);
  int before = cx->errors;
  int rc = yyparse(&ls, sc);
  yy_delete_buffer(buf, sc);
  yylex_destroy(sc);
  if (rc && cx->errors == before)
    diag_error(cx, (Loc){file, ls.line, ls.col, 0}, "the parser ran out of memory");
  return rc ? NULL : ls.items;
}
