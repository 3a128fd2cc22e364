/* frontend.c - loading a program: source files, `import` resolution (the stdlib folder,
 * then the importing file's folder; cycles and missing files are errors at the import),
 * the table of top-level definitions, and the entry points of frontend.h. */
#include "frontend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ast.h"
#include "ctx.h"
#include "diag.h"
#include "options.h"
#include "sema.h"

Ctx *ctx_new(void)
{
  Ctx *cx = calloc(1, sizeof *cx);
  if (!cx)
    GV_ICE("out of memory");
  cx->perm = arena_new(1 << 20);
  cx->scratch = arena_new(1 << 16);
  cx->max_errors = 20;
  cx->err = stderr;
  const char *env = getenv("GVC_STDLIB");
  cx->stdlib_dir = env && *env ? env : GV_STDLIB_DIR;
  cx->models_dir = GV_SOURCE_DIR "/models";
  return cx;
}

void ctx_free(Ctx **cx)
{
  if (!*cx)
    return;
  free((*cx)->files);
  arena_free(&(*cx)->perm);
  arena_free(&(*cx)->scratch);
  free(*cx);
  *cx = NULL;
}

/* ---- source files ---- */

static int read_all(const char *path, char **text, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  size_t cap = 1 << 14, n = 0;
  char *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
    n += got;
    if (n + 1 == cap)
      buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (!buf)
    return -1;
  buf[n] = 0;
  *text = buf;
  *len = n;
  return 0;
}

static int is_file(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A new source file of the compilation; returns its index. */
static int add_source(Ctx *cx, const char *path, const char *text, size_t len)
{
  if (cx->nfiles == cx->cap_files) {
    cx->cap_files = cx->cap_files ? 2 * cx->cap_files : 16;
    cx->files = realloc(cx->files, sizeof *cx->files * (size_t)cx->cap_files);
    if (!cx->files)
      GV_ICE("out of memory");
  }
  SrcFile *f = &cx->files[cx->nfiles];
  memset(f, 0, sizeof *f);
  f->path = arena_strdup(cx->perm, path);
  f->text = arena_strndup(cx->perm, text, len);
  f->len = len;
  return cx->nfiles++;
}

/* Index of the file at PATH (loaded once), or -1 when it cannot be read. */
static int load_file(Ctx *cx, const char *path)
{
  for (int i = 0; i < cx->nfiles; i++)
    if (!strcmp(cx->files[i].path, path))
      return i;
  char *text;
  size_t len;
  if (!is_file(path) || read_all(path, &text, &len))
    return -1;
  int fi = add_source(cx, path, text, len);
  free(text);
  return fi;
}

/* Where `import "name"` points: NAME(.gvm) next to the importer, in the stdlib, then in
 * the model zoo. */
static const char *resolve(Ctx *cx, const char *name, int from)
{
  const char *ext = strlen(name) > 4 && !strcmp(name + strlen(name) - 4, ".gvm") ? "" : ".gvm";
  const char *src = cx->files[from].path, *slash = strrchr(src, '/');
  const char *p = slash ? arena_printf(cx->perm, "%.*s/%s%s", (int)(slash - src), src, name, ext)
                        : arena_printf(cx->perm, "%s%s", name, ext);
  if (is_file(p))
    return p;
  const char *dirs[2] = {cx->stdlib_dir, cx->models_dir};
  for (int i = 0; i < 2; i++) {
    p = arena_printf(cx->perm, "%s/%s%s", dirs[i], name, ext);
    if (is_file(p))
      return p;
  }
  return NULL;
}

/* ---- definitions ---- */

static void define(Ctx *cx, Global **globals, const AstNode *def)
{
  for (Global *g = *globals; g; g = g->next)
    if (!strcmp(g->name, def->name)) {
      if (g->def == def)
        return;
      diag_error(cx, def->at, "redefinition of '%s'", def->name);
      diag_note(cx, g->def->at, "'%s' was first defined here", def->name);
      return;
    }
  if (sema_prim_find(def->name) >= 0 || !strcmp(def->name, "dim") || !strcmp(def->name, "sqrt")) {
    diag_error(cx, def->at, "'%s' is a primitive of the language and cannot be redefined", def->name);
    return;
  }
  Global *g = ARENA_NEW(cx->perm, Global);
  g->name = def->name;
  g->def = def;
  g->next = *globals;
  *globals = g;
}

/* Parse file fi and, depth first, everything it imports; collect definitions. */
static void load_program(Ctx *cx, int fi, Global **globals)
{
  SrcFile *f = &cx->files[fi];
  if (f->parsed)
    return;
  f->parsing = 1;
  AstNode *items = ast_parse_file(cx, fi);
  f = &cx->files[fi];
  f->ast = items;
  for (AstNode *it = items; it; it = it->next) {
    if (it->kind == AST_STRATEGY)
      continue; /* read by frontend_strategy_settings for the root file */
    if (it->kind != AST_IMPORT) {
      define(cx, globals, it);
      continue;
    }
    const char *path = resolve(cx, it->name, fi);
    int gi = path ? load_file(cx, path) : -1;
    if (gi < 0) {
      diag_error(cx, it->at, "cannot find import \"%s\" (looked next to this file, in the stdlib and in the model zoo)", it->name);
      continue;
    }
    if (cx->files[gi].parsing && !cx->files[gi].parsed) {
      diag_error(cx, it->at, "circular import: \"%s\" imports a file that is still being loaded", it->name);
      continue;
    }
    load_program(cx, gi, globals);
  }
  cx->files[fi].parsing = 0;
  cx->files[fi].parsed = 1;
}

static Global *load_root(Ctx *cx, const char *path)
{
  int fi = load_file(cx, path);
  if (fi < 0) {
    diag_plain(cx, "cannot read '%s'", path);
    return NULL;
  }
  if (cx->files[fi].parsed) /* loaded before as a root: its definitions are known */
    return cx->files[fi].globals;
  Global *globals = NULL;
  load_program(cx, fi, &globals);
  cx->files[fi].globals = globals;
  return globals;
}

int frontend_check_file(Ctx *cx, const char *path)
{
  int before = cx->errors;
  Global *globals = load_root(cx, path);
  if (cx->errors == before) {
    sema_check_all(cx, globals);
    frontend_check_strategies(cx, path);
  }
  return cx->errors - before;
}

IrModel *frontend_load_model(Ctx *cx, const char *path, const char *name)
{
  Global *globals = load_root(cx, path);
  if (diag_errors(cx))
    return NULL;
  return sema_build(cx, globals, name);
}

/* Names of the sizes (and default-argument models) a file defines, for messages. */
int frontend_list_sizes(Ctx *cx, const char *path, const char **names, int max)
{
  Global *globals = load_root(cx, path);
  int n = 0;
  for (Global *g = globals; g && n < max; g = g->next)
    if (g->def->kind == AST_SIZE)
      names[n++] = g->name;
  return n;
}

static void check_strategies(Ctx *cx, int fi, const Global *globals);

int frontend_check_source(Ctx *cx, const char *name, const char *text, size_t len)
{
  int fi = add_source(cx, name, text, len), before = cx->errors;
  Global *globals = NULL;
  load_program(cx, fi, &globals);
  if (cx->errors == before) {
    sema_check_all(cx, globals);
    check_strategies(cx, fi, globals);
  }
  return cx->errors - before;
}

void frontend_set_diag_stream(Ctx *cx, void *file) { cx->err = file; }

/* ---- strategy blocks ---- */

/* The index of the loaded file PATH, or -1. */
static int file_index(const Ctx *cx, const char *path)
{
  for (int i = 0; i < cx->nfiles; i++)
    if (!strcmp(cx->files[i].path, path))
      return i;
  return -1;
}

/* A setting's value as option text: integers, bools (1/0), strings, names (gpipe). */
static const char *setting_text(Ctx *cx, const AstNode *v)
{
  return v->kind == AST_INT ? arena_printf(cx->perm, "%lld", (long long)v->ival)
       : v->kind == AST_BOOL ? (v->ival ? "1" : "0")
       : v->kind == AST_STR || v->kind == AST_NAME ? v->name : NULL;
}

/* Every strategy block of file fi names a size or model (or none), and every setting is a
 * strategy option (options.c) with an accepted value; diagnostics at the block or value. */
static void check_strategies(Ctx *cx, int fi, const Global *globals)
{
  for (const AstNode *it = cx->files[fi].ast; it; it = it->next) {
    if (it->kind != AST_STRATEGY)
      continue;
    const Global *g = globals;
    while (it->name && g && strcmp(g->name, it->name))
      g = g->next;
    if (it->name && (!g || (g->def->kind != AST_SIZE && g->def->kind != AST_MODEL)))
      diag_error(cx, it->at, "strategy block for '%s', which is not a size or model of this file or its imports", it->name);
    for (const AstNode *s = it->list; s; s = s->next) {
      const Option *o = options_find(s->name);
      const char *text = setting_text(cx, s->a), *why;
      char want[160];
      if (!o || !o->strategy)
        diag_error(cx, s->at, "unknown strategy setting '%s' (Galvatron's names: pp_deg, global_tp_deg, chunks, "
                   "pipeline_type, default_dp_type, sequence_parallel, use_ulysses, vocab_tp, checkpoint, ...)",
                   s->name);
      else if (!text)
        diag_error(cx, s->a->at, "strategy setting '%s' must be an integer, a bool, a string or a name", s->name);
      else if ((why = options_check(o, text, want, sizeof want)))
        diag_error(cx, s->a->at, "strategy setting '%s' = '%s': expected %s", s->name, text, why);
    }
  }
}

int frontend_check_strategies(Ctx *cx, const char *path)
{
  const Global *globals = load_root(cx, path);
  int fi = file_index(cx, path), before = cx->errors;
  if (fi >= 0)
    check_strategies(cx, fi, globals);
  return cx->errors - before;
}

int frontend_strategy_settings(Ctx *cx, const char *path, const char *name, ParSettings *s)
{
  load_root(cx, path);
  if (diag_errors(cx) || frontend_check_strategies(cx, path))
    return 1;
  int fi = file_index(cx, path);
  for (int pass = 0; fi >= 0 && pass < 2; pass++)
    for (const AstNode *it = cx->files[fi].ast; it; it = it->next) {
      if (it->kind != AST_STRATEGY || (pass == 0) != (it->name == NULL) || (it->name && strcmp(it->name, name)))
        continue;
      s->block = it->at;
      for (const AstNode *v = it->list; v; v = v->next)
        par_settings_add(cx->perm, s, v->name, setting_text(cx, v->a), v->a->at);
    }
  return 0;
}
