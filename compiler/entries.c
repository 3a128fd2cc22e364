/* entries.c - the runtime's entry points as schedule-IR callees, from gvrt_entries.h. */
#include "entries.h"

#include <stdio.h>
#include <stdlib.h>

#define GV_A(kind, name) {ENT_KIND_##kind, #name},
#define ENT_KIND_PTR SA_BUF
#define ENT_KIND_FN SA_FN
#define ENT_KIND_I64 SA_I64
#define ENT_KIND_F32 SA_F32
#define ENT_KIND_F64 SA_F64
#define ENT_KIND_STR SA_STR
#define ENTRY_PARAMS(name, args) static const SchedParam params_##name[] = {{SA_CTX, "ctx"}, args};
GV_ENTRIES(ENTRY_PARAMS)
#undef ENTRY_PARAMS
#undef GV_A

static const SchedCallee callees[ENT_COUNT] = {
#define GV_A(kind, name)
#define ENTRY_CALLEE(name, args) \
  [ENT_##name] = {"gv_" #name, params_##name, (int)(sizeof params_##name / sizeof params_##name[0]), 1},
  GV_ENTRIES(ENTRY_CALLEE)
#undef ENTRY_CALLEE
#undef GV_A
};

const SchedCallee *entry_callee(Entry e) { return &callees[e]; }

int entry_arg(Entry e, const char *name)
{
  int k = sched_param(&callees[e], name);
  if (k < 0) {
    fprintf(stderr, "gvc: internal error: %s has no argument '%s'\n", callees[e].name, name);
    abort();
  }
  return k;
}

int entry_of(const SchedCall *c)
{
  return c->fn >= callees && c->fn < callees + ENT_COUNT ? (int)(c->fn - callees) : -1;
}
