/* emit_c.c - C emitter for the schedule IR: one C function per schedule function, one
 * statement per runtime call. Float constants are written as hex literals so the C and
 * LLVM programs pass bit-identical values. */
#include "emit.h"

#include <inttypes.h>
#include <string.h>

static const char *ctype(SchedArgKind k)
{
  switch (k) {
  case SA_I32: return "int32_t";
  case SA_I64: case SA_SLOT: return "int64_t";
  case SA_F32: return "float";
  case SA_F64: return "double";
  case SA_STR: return "const char *";
  default: return "void *";
  }
}

static void print_comment(FILE *out, const char *s)
{
  fputs(" /* ", out);
  for (; *s; s++)
    if (!(s[0] == '*' && s[1] == '/'))
      fputc(*s == '\n' ? ' ' : *s, out);
  fputs(" */", out);
}

static void print_base(FILE *out, const SchedProgram *p, int arena)
{
  if (arena >= 0 && arena < 8 && p->arena_names[arena])
    fputs(p->arena_names[arena], out);
  else
    fprintf(out, "a%d", arena);
}

static void print_arg(FILE *out, const SchedProgram *p, const int64_t *slot_stride, const SchedArg *a)
{
  switch (a->kind) {
  case SA_CTX: fputs("ctx", out); break;
  case SA_SLOT: fputs("slot", out); break;
  case SA_I32: fprintf(out, "%" PRId64, a->i); break;
  case SA_I64: fprintf(out, "%" PRId64, a->i); break;   /* converted by the prototype */
  case SA_F32: fprintf(out, "%af", (double)(float)a->f); break;
  case SA_F64: fprintf(out, "%a", a->f); break;
  case SA_STR: sched_print_string(out, a->s); break;
  case SA_BUF:
    if (a->stride && a->arena >= 0 && a->arena < 32 && slot_stride[a->arena] == a->stride) {
      fputs("slot_", out);                          /* the arena's slot base (print_bases) */
      print_base(out, p, a->arena);
    } else {
      print_base(out, p, a->arena);
      if (a->stride)
        fprintf(out, " + slot * %" PRId64, a->stride);
    }
    if (a->i)
      fprintf(out, " + %" PRId64, a->i);
    break;
  case SA_FN: fprintf(out, "(void *)%s", a->s); break;
  case SA_NULL: fputs("NULL", out); break;
  }
}

/* Is callee fn called before call ci of function fi? (declared once) */
static int called_before(const SchedProgram *p, int fi, int ci)
{
  const SchedCallee *fn = p->funcs[fi].calls[ci].fn;
  for (int i = 0; i <= fi; i++) {
    int n = i == fi ? ci : p->funcs[i].ncalls;
    for (int j = 0; j < n; j++)
      if (p->funcs[i].calls[j].fn == fn)
        return 1;
  }
  return 0;
}

/* The runtime's entry points come from gvrt_program.h (so the C compiler checks every call
 * against the runtime's own declarations); other callees are declared from their parameters. */
static void print_prototypes(FILE *out, const SchedProgram *p)
{
  int runtime = 0, others = 0;
  for (int i = 0; i < p->nfuncs; i++)
    for (int j = 0; j < p->funcs[i].ncalls; j++)
      p->funcs[i].calls[j].fn->runtime ? runtime++ : others++;
  if (runtime)
    fputs("#include \"gvrt_program.h\"\n\n", out);
  if (others)
    fputs("/* the callees this program declares itself */\n", out);
  for (int i = 0; i < p->nfuncs; i++)
    for (int j = 0; j < p->funcs[i].ncalls; j++) {
      const SchedCallee *fn = p->funcs[i].calls[j].fn;
      if (fn->runtime || called_before(p, i, j))
        continue;
      fprintf(out, "void %s(", fn->name);
      for (int k = 0; k < fn->nparams; k++) {
        const char *t = ctype(fn->params[k].kind);
        fprintf(out, "%s%s%s%s", k ? ", " : "", t, t[strlen(t) - 1] == '*' ? "" : " ", fn->params[k].name);
      }
      fprintf(out, "%s);\n", fn->nparams ? "" : "void");
    }
  fputs("\n/* this program's functions */\n", out);
  for (int i = 0; i < p->nfuncs; i++)
    fprintf(out, "void %s(void *ctx, char *const *bases, int64_t slot);\n", p->funcs[i].name);
  fputc('\n', out);
}

/* One named local per arena the function uses (`char *const acts = bases[3];`), and where
 * all of an arena's per-slot buffers share one stride, the slot's base in it
 * (`char *const slot_acts = acts + slot * 628032;`); slot_stride[k] is that stride or 0. */
static void print_bases(FILE *out, const SchedProgram *p, const SchedFunc *f, int64_t slot_stride[32])
{
  unsigned used = 0, mixed = 0;
  for (int a = 0; a < 32; a++)
    slot_stride[a] = 0;
  for (int j = 0; j < f->ncalls; j++)
    for (int k = 0; k < f->calls[j].nargs; k++) {
      const SchedArg *x = &f->calls[j].args[k];
      if (x->kind != SA_BUF || x->arena < 0 || x->arena >= 32)
        continue;
      used |= 1u << x->arena;
      if (x->stride && slot_stride[x->arena] && slot_stride[x->arena] != x->stride)
        mixed |= 1u << x->arena;
      if (x->stride)
        slot_stride[x->arena] = x->stride;
    }
  for (int a = 0; a < 32; a++) {
    if (mixed >> a & 1)
      slot_stride[a] = 0;
    if (!(used >> a & 1))
      continue;
    fputs("  char *const ", out);
    print_base(out, p, a);
    fprintf(out, " = bases[%d];\n", a);
    if (slot_stride[a]) {
      fputs("  char *const slot_", out);
      print_base(out, p, a);
      fputs(" = ", out);
      print_base(out, p, a);
      fprintf(out, " + slot * %" PRId64 ";\n", slot_stride[a]);
    }
  }
}

int emit_c_program(const SchedProgram *p, FILE *out, const char *title)
{
  fprintf(out, "/* %s - generated by gvc; do not edit. */\n#include <stddef.h>\n#include <stdint.h>\n\n",
          title ? title : "program");
  print_prototypes(out, p);
  for (int i = 0; i < p->nfuncs; i++) {
    const SchedFunc *f = &p->funcs[i];
    fprintf(out, "void %s(void *ctx, char *const *bases, int64_t slot)\n{\n", f->name);
    fputs("  (void)ctx; (void)bases; (void)slot;\n", out);
    int64_t slot_stride[32];
    print_bases(out, p, f, slot_stride);
    for (int j = 0; j < f->ncalls; j++) {
      const SchedCall *c = &f->calls[j];
      if (c->comment) {
        fputs(" ", out);
        print_comment(out, c->comment);
        fputc('\n', out);
      }
      fprintf(out, "  %s(", c->fn->name);
      for (int k = 0; k < c->nargs; k++) {
        if (k)
          fputs(", ", out);
        print_arg(out, p, slot_stride, &c->args[k]);
      }
      fputs(");\n", out);
    }
    fputs("}\n\n", out);
  }
  return ferror(out) ? 1 : 0;
}
