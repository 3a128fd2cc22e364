/* diag.c - diagnostics with source line and caret (see diag.h). Stops reporting after
 * cx->max_errors errors; callers check diag_errors() between phases. */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"

static const char *line_start(const SrcFile *f, int line, size_t *len)
{
  const char *p = f->text;
  for (int l = 1; l < line && *p; p++)
    if (*p == '\n')
      l++;
  const char *e = strchr(p, '\n');
  *len = e ? (size_t)(e - p) : strlen(p);
  return p;
}

/* The source line, then a caret line that copies tabs so the caret lines up. */
static void show_line(Ctx *cx, Loc at)
{
  if (at.file < 0 || at.file >= cx->nfiles || at.line < 1)
    return;
  size_t len;
  const char *p = line_start(&cx->files[at.file], at.line, &len);
  fprintf(cx->err, "%5d | %.*s\n      | ", at.line, (int)len, p);
  for (int i = 1; i < at.col && (size_t)(i - 1) < len; i++)
    fputc(p[i - 1] == '\t' ? '\t' : ' ', cx->err);
  fputc('^', cx->err);
  for (int i = 1; i < at.len; i++)
    fputc('~', cx->err);
  fputc('\n', cx->err);
}

/* "gvc: error: msg" (or note) on cx's stream, or stderr without a context. */
static void plain(Ctx *cx, const char *kind, const char *fmt, va_list ap)
{
  FILE *f = cx ? cx->err : stderr;
  fprintf(f, "gvc: %s: ", kind);
  vfprintf(f, fmt, ap);
  fputc('\n', f);
}

static void report(Ctx *cx, Loc at, const char *kind, const char *fmt, va_list ap)
{
  if (at.file < 0 || at.file >= cx->nfiles) {
    plain(cx, kind, fmt, ap);
    return;
  }
  fprintf(cx->err, "%s:%d:%d: %s: ", cx->files[at.file].path, at.line, at.col, kind);
  vfprintf(cx->err, fmt, ap);
  fputc('\n', cx->err);
  show_line(cx, at);
}

/* Counts an error in cx; 0 once past cx->max_errors (then it and its notes are not shown). */
static int count_error(Ctx *cx)
{
  cx->errors++;
  cx->notes_ok = cx->errors <= cx->max_errors;
  if (cx->errors == cx->max_errors + 1)
    fprintf(cx->err, "gvc: too many errors, stopping\n");
  return cx->notes_ok;
}

void diag_error(Ctx *cx, Loc at, const char *fmt, ...)
{
  if (!count_error(cx))
    return;
  va_list ap;
  va_start(ap, fmt);
  report(cx, at, "error", fmt, ap);
  va_end(ap);
}

void diag_note(Ctx *cx, Loc at, const char *fmt, ...)
{
  if (!cx->notes_ok)
    return;
  va_list ap;
  va_start(ap, fmt);
  report(cx, at, "note", fmt, ap);
  va_end(ap);
}

void diag_plain(Ctx *cx, const char *fmt, ...)
{
  if (cx && !count_error(cx))
    return;
  va_list ap;
  va_start(ap, fmt);
  plain(cx, "error", fmt, ap);
  va_end(ap);
}

void diag_plain_note(Ctx *cx, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  plain(cx, "note", fmt, ap);
  va_end(ap);
}

void diag_plain_warning(Ctx *cx, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  plain(cx, "warning", fmt, ap);
  va_end(ap);
}

int diag_errors(const Ctx *cx) { return cx->errors; }

void diag_ice(const char *file, int line, const char *msg)
{
  fprintf(stderr, "gvc: internal error at %s:%d: %s\n", file, line, msg);
  abort();
}
