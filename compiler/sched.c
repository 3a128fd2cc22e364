/* sched.c - building, printing and verifying the schedule IR (see sched.h). */
#include "sched.h"

#include <string.h>

SchedProgram *sched_new(Arena *a)
{
  SchedProgram *p = ARENA_NEW(a, SchedProgram);
  p->arena = a;
  p->entry = "gvp_describe";
  return p;
}

SchedFunc *sched_func(SchedProgram *p, const char *name)
{
  if (p->nfuncs == p->cap) {
    int cap = p->cap ? 2 * p->cap : 16;
    p->funcs = arena_realloc(p->arena, p->funcs, sizeof *p->funcs * (size_t)p->cap, sizeof *p->funcs * (size_t)cap);
    p->cap = cap;
  }
  SchedFunc *f = &p->funcs[p->nfuncs++];
  memset(f, 0, sizeof *f);
  f->name = arena_strdup(p->arena, name);
  return f;
}

const SchedFunc *sched_find(const SchedProgram *p, const char *name)
{
  for (int i = 0; i < p->nfuncs; i++)
    if (!strcmp(p->funcs[i].name, name))
      return &p->funcs[i];
  return NULL;
}

SchedCall *sched_call(SchedProgram *p, SchedFunc *f, const SchedCallee *fn, const SchedArg *args, int nargs)
{
  if (f->ncalls == f->cap) {
    int cap = f->cap ? 2 * f->cap : 64;
    f->calls = arena_realloc(p->arena, f->calls, sizeof *f->calls * (size_t)f->cap, sizeof *f->calls * (size_t)cap);
    f->cap = cap;
  }
  SchedCall *c = &f->calls[f->ncalls++];
  c->fn = fn;
  c->nargs = nargs;
  c->args = ARENA_ARRAY(p->arena, SchedArg, nargs ? nargs : 1);
  if (nargs)
    memcpy(c->args, args, sizeof *args * (size_t)nargs);
  c->comment = NULL;
  return c;
}

void sched_insert_marks(SchedProgram *p, const SchedCallee *mark, const char *prefix)
{
  size_t np = strlen(prefix);
  for (int i = 0; i < p->nfuncs; i++) {
    SchedFunc *f = &p->funcs[i];
    if (!strcmp(f->name, p->entry))
      continue;
    SchedCall *old = f->calls;
    int n = f->ncalls;
    f->calls = NULL, f->ncalls = f->cap = 0;
    for (int j = 0; j <= n; j++) {
      const char *name = j < n ? old[j].fn->name : "";
      if (j < n && !strncmp(name, prefix, np))
        name += np;
      SchedArg a[2] = {sa_ctx(), sa_str(name)};
      sched_call(p, f, mark, a, 2);
      if (j < n) {
        SchedCall *c = sched_call(p, f, old[j].fn, old[j].args, old[j].nargs);
        c->comment = old[j].comment;
      }
    }
  }
}

/* ---- argument constructors ---- */

SchedArg sa_ctx(void) { return (SchedArg){.kind = SA_CTX}; }
SchedArg sa_slot(void) { return (SchedArg){.kind = SA_SLOT}; }
SchedArg sa_i32(int32_t v) { return (SchedArg){.kind = SA_I32, .i = v}; }
SchedArg sa_i64(int64_t v) { return (SchedArg){.kind = SA_I64, .i = v}; }
SchedArg sa_f32(float v) { return (SchedArg){.kind = SA_F32, .f = v}; }
SchedArg sa_f64(double v) { return (SchedArg){.kind = SA_F64, .f = v}; }
SchedArg sa_str(const char *s) { return (SchedArg){.kind = SA_STR, .s = s}; }
SchedArg sa_buf(int arena, int64_t offset, int64_t stride)
{
  return (SchedArg){.kind = SA_BUF, .arena = arena, .i = offset, .stride = stride};
}
SchedArg sa_fn(const char *name) { return (SchedArg){.kind = SA_FN, .s = name}; }
SchedArg sa_null(void) { return (SchedArg){.kind = SA_NULL}; }

/* ---- text form ---- */

void sched_print_string(FILE *out, const char *s)
{
  fputc('"', out);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(out, "\\%c", ch);
    else if (ch < 32 || ch >= 127)
      fprintf(out, "\\%03o", ch);
    else
      fputc(ch, out);
  }
  fputc('"', out);
}

static void print_arg(FILE *out, const SchedArg *a)
{
  switch (a->kind) {
  case SA_CTX: fputs("ctx", out); break;
  case SA_SLOT: fputs("slot", out); break;
  case SA_I32: fprintf(out, "%lld:i32", (long long)a->i); break;
  case SA_I64: fprintf(out, "%lld", (long long)a->i); break;
  case SA_F32: fprintf(out, "%.9g:f32", a->f); break;
  case SA_F64: fprintf(out, "%.17g:f64", a->f); break;
  case SA_STR: sched_print_string(out, a->s); break;
  case SA_BUF:
    fprintf(out, "a%d+%lld", a->arena, (long long)a->i);
    if (a->stride)
      fprintf(out, "+slot*%lld", (long long)a->stride);
    break;
  case SA_FN: fprintf(out, "@%s", a->s); break;
  case SA_NULL: fputs("null", out); break;
  }
}

void sched_print(FILE *out, const SchedProgram *p)
{
  for (int i = 0; i < p->nfuncs; i++) {
    const SchedFunc *f = &p->funcs[i];
    fprintf(out, "func %s(ctx, bases, slot) {\n", f->name);
    for (int j = 0; j < f->ncalls; j++) {
      const SchedCall *c = &f->calls[j];
      fprintf(out, "  %s(", c->fn->name);
      for (int k = 0; k < c->nargs; k++) {
        if (k)
          fputs(", ", out);
        print_arg(out, &c->args[k]);
      }
      fputc(')', out);
      if (c->comment)
        fprintf(out, "  # %s", c->comment);
      fputc('\n', out);
    }
    fputs("}\n", out);
  }
}

/* ---- verification ---- */

int sched_param(const SchedCallee *fn, const char *name)
{
  for (int k = 0; k < fn->nparams; k++)
    if (!strcmp(fn->params[k].name, name))
      return k;
  return -1;
}

int sched_kind_fits(SchedArgKind param, SchedArgKind arg)
{
  switch (param) {
  case SA_BUF: return arg == SA_BUF || arg == SA_NULL;
  case SA_I64: return arg == SA_I64 || arg == SA_SLOT;
  default: return arg == param;
  }
}

const char *sched_verify(const SchedProgram *p)
{
  if (!sched_find(p, p->entry))
    return arena_printf(p->arena, "entry function '%s' is missing", p->entry);
  for (int i = 0; i < p->nfuncs; i++) {
    const SchedFunc *f = &p->funcs[i];
    for (int j = 0; j < f->ncalls; j++) {
      const SchedCall *c = &f->calls[j];
      if (c->nargs != c->fn->nparams)
        return arena_printf(p->arena, "%s: call %s passes %d arguments for %d parameters", f->name, c->fn->name,
                            c->nargs, c->fn->nparams);
      for (int k = 0; k < c->nargs; k++) {
        if (!sched_kind_fits(c->fn->params[k].kind, c->args[k].kind))
          return arena_printf(p->arena, "%s: call %s: argument %d ('%s') has the wrong kind", f->name, c->fn->name,
                              k, c->fn->params[k].name);
        if (c->args[k].kind == SA_FN && !sched_find(p, c->args[k].s))
          return arena_printf(p->arena, "%s: call %s passes unknown function '%s'", f->name, c->fn->name,
                              c->args[k].s);
      }
    }
  }
  return NULL;
}
