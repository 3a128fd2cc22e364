/* diag.h - the one diagnostics path of the compiler: `file:line:col: error: msg`, then
 * the source line and a caret under the offending text (clang's format), or `gvc: error:
 * msg` where there is no source location. Every phase reports through here; nothing else
 * in compiler/ prints problems (unit.repo.one_diag_path checks it; docs/compiler.md). */
#ifndef GV_DIAG_H
#define GV_DIAG_H

#include "frontend.h"
#include "loc.h"

#define GV_PRINTF(f, a) __attribute__((format(printf, f, a)))

void diag_error(Ctx *cx, Loc at, const char *fmt, ...) GV_PRINTF(3, 4);
void diag_note(Ctx *cx, Loc at, const char *fmt, ...) GV_PRINTF(3, 4);  /* attaches to the last error */
int diag_errors(const Ctx *cx);
/* An error with no source location (a command-line option, a JSON config, a profile, a
 * strategy that cannot be lowered): "gvc: error: msg", counted in cx. cx may be NULL where a
 * command has no compilation context: then it goes to stderr, uncounted. */
void diag_plain(Ctx *cx, const char *fmt, ...) GV_PRINTF(2, 3);
/* A note with no source location, "gvc: note: msg" (cx may be NULL, as above). */
void diag_plain_note(Ctx *cx, const char *fmt, ...) GV_PRINTF(2, 3);
void diag_plain_warning(Ctx *cx, const char *fmt, ...) GV_PRINTF(2, 3); /* "gvc: warning: ..." */

/* Internal compiler errors: print and abort (never seen by a correct .gvm user). */
_Noreturn void diag_ice(const char *file, int line, const char *msg);
#define GV_ICE(msg) diag_ice(__FILE__, __LINE__, (msg))

#endif
