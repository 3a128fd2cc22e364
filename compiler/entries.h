/* entries.h - the runtime's entry points as the compiler calls them: one SchedCallee per row
 * of runtime/include/gvrt_entries.h (the table gvrt_program.h declares them from), an enum
 * to name them, and their arguments by name. The lowering emits calls through these; no
 * entry point is spelled as a string anywhere in the compiler. */
#ifndef GV_ENTRIES_H
#define GV_ENTRIES_H

#include "gvrt_entries.h"
#include "sched.h"

typedef enum Entry {
#define GV_A(kind, name)
#define ENTRY_ENUM(name, args) ENT_##name,
  GV_ENTRIES(ENTRY_ENUM)
#undef ENTRY_ENUM
#undef GV_A
  ENT_COUNT
} Entry;

const SchedCallee *entry_callee(Entry e);
/* Index of parameter `name` of e (ctx is 0); aborts on a name e does not have (a compiler bug). */
int entry_arg(Entry e, const char *name);
/* The entry a call calls, or -1 for a callee that is not a runtime entry. */
int entry_of(const SchedCall *c);

#endif
