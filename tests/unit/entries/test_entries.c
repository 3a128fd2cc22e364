/* test_entries.c - the one table of runtime entry points (gvrt_entries.h) as both sides see
 * it: every row is defined by libgvrt (this file takes each one's address, so a missing
 * definition fails the link; gvrt_program.h's declarations make the C compiler check the
 * signatures), and the compiler's callees match the rows: names, ctx first, parameter names
 * unique so the lowering can refer to arguments by name. */
#include <string.h>

#include "entries.h"
#include "gvrt_program.h"
#include "testutil.h"

typedef void (*AnyFn)(void);

int main(void)
{
#define GV_A(kind, name)
#define ADDR(name, args) (AnyFn)gv_##name,
  static const AnyFn defined[] = {GV_ENTRIES(ADDR)};
#undef ADDR
#undef GV_A
  CHECK((int)(sizeof defined / sizeof defined[0]) == ENT_COUNT);
  for (int e = 0; e < ENT_COUNT; e++) {
    const SchedCallee *c = entry_callee((Entry)e);
    CHECK(defined[e] != NULL);
    CHECK(c->runtime == 1);
    CHECK(!strncmp(c->name, "gv_gen_", 7) || !strncmp(c->name, "gv_prog_", 8));
    CHECK(c->nparams >= 1 && c->params[0].kind == SA_CTX && !strcmp(c->params[0].name, "ctx"));
    for (int k = 0; k < c->nparams; k++) {
      CHECK(entry_arg((Entry)e, c->params[k].name) == k);   /* the first of its name: unique */
      CHECK(k == 0 || c->params[k].kind != SA_CTX);
    }
    for (int f = 0; f < e; f++)
      CHECK(strcmp(entry_callee((Entry)f)->name, c->name) != 0);
  }
  CHECK(!strcmp(entry_callee(ENT_gen_linear_fwd)->name, "gv_gen_linear_fwd"));
  CHECK(entry_arg(ENT_gen_linear_fwd, "N") == 7);
  return tu_report("entries");
}
