/* sched.h - the schedule IR: the per-rank program the lowering produces and both
 * emitters (emit_c.c, emit_llvm.c) consume. A program is a list of functions; each is
 * a straight-line list of calls into libgvrt whose arguments are all known at compile
 * time: integer and float constants, strings, addresses of other generated functions,
 * and buffer addresses (an arena of the memory plan + a constant offset, plus a stride
 * times the micro-batch slot for activations kept per in-flight micro-batch).
 *
 * Every generated function has the one C signature
 *     void f(void *ctx, char *const *bases, int64_t slot)
 * where ctx is the runtime's handle (passed through to calls as SA_CTX), bases[k] is the
 * base address of arena k, and slot selects the micro-batch buffer set. Because the
 * emitters only translate calls, the C and LLVM programs make identical calls with
 * identical arguments, so their results are bit-identical by construction. */
#ifndef GV_SCHED_H
#define GV_SCHED_H

#include <stdint.h>
#include <stdio.h>

#include "arena.h"

typedef enum SchedArgKind {
  SA_CTX,   /* the runtime handle: void * */
  SA_SLOT,  /* the function's micro-batch slot: int64_t */
  SA_I32,   /* int32_t constant */
  SA_I64,   /* int64_t constant */
  SA_F32,   /* float constant */
  SA_F64,   /* double constant */
  SA_STR,   /* const char * constant */
  SA_BUF,   /* void *: bases[arena] + offset + slot * stride */
  SA_FN,    /* void *: address of a generated function of this program */
  SA_NULL,  /* void *: NULL (an absent optional tensor) */
} SchedArgKind;

typedef struct SchedArg {
  SchedArgKind kind;
  int64_t i;            /* I32/I64 value; BUF offset */
  double f;             /* F32/F64 value */
  const char *s;        /* STR text; FN name */
  int arena;            /* BUF arena index */
  int64_t stride;       /* BUF bytes per micro-batch slot (0: shared by all slots) */
} SchedArg;

/* A function the program calls: its symbol and its parameters (kinds and names, ctx
 * included). The runtime's entry points come from its one table (entries.c reads
 * runtime/include/gvrt_entries.h); a callee with `runtime` set is declared by
 * gvrt_program.h, which the generated C includes, so the C compiler checks every call. */
typedef struct SchedParam {
  SchedArgKind kind;    /* SA_CTX, SA_BUF (a pointer: SA_NULL also fits), SA_FN, SA_I32, SA_I64
                           (SA_SLOT also fits), SA_F32, SA_F64 or SA_STR */
  const char *name;
} SchedParam;

typedef struct SchedCallee {
  const char *name;
  const SchedParam *params;
  int nparams;
  int runtime;
} SchedCallee;

typedef struct SchedCall {
  const SchedCallee *fn;
  SchedArg *args;
  int nargs;
  const char *comment;  /* printed in dumps and C source; may be NULL */
} SchedCall;

typedef struct SchedFunc {
  const char *name;     /* exported symbol: gvp_<...> */
  SchedCall *calls;
  int ncalls, cap;
} SchedFunc;

typedef struct SchedProgram {
  Arena *arena;         /* everything below lives here */
  SchedFunc *funcs;
  int nfuncs, cap;
  const char *entry;    /* the function the runtime calls first (gvp_describe) */
  const char *arena_names[8]; /* how the C emitter names bases[k] (NULL: a<k>) */
} SchedProgram;

SchedProgram *sched_new(Arena *a);
SchedFunc *sched_func(SchedProgram *p, const char *name);        /* new function */
const SchedFunc *sched_find(const SchedProgram *p, const char *name);
/* Append a call; args are copied. Returns the call so a comment can be attached. */
SchedCall *sched_call(SchedProgram *p, SchedFunc *f, const SchedCallee *fn, const SchedArg *args, int nargs);
/* Index of callee fn's parameter `name`, or -1. */
int sched_param(const SchedCallee *fn, const char *name);
/* Whether an argument of kind `arg` may be passed for a parameter of kind `param`. */
int sched_kind_fits(SchedArgKind param, SchedArgKind arg);

/* Argument constructors. */
SchedArg sa_ctx(void);
SchedArg sa_slot(void);
SchedArg sa_i32(int32_t v);
SchedArg sa_i64(int64_t v);
SchedArg sa_f32(float v);
SchedArg sa_f64(double v);
SchedArg sa_str(const char *s);
SchedArg sa_buf(int arena, int64_t offset, int64_t stride);
SchedArg sa_fn(const char *name);
SchedArg sa_null(void);

/* Op timing (gvc compile --time_ops): before every call of every function but the entry, a
 * call mark(ctx, NAME) with NAME the callee's name less `prefix`, and mark(ctx, "") at the
 * end of each function. */
void sched_insert_marks(SchedProgram *p, const SchedCallee *mark, const char *prefix);

/* A string as a C literal (escapes quotes, backslashes and non-printing bytes). */
void sched_print_string(FILE *out, const char *s);
/* Text form (`gvc compile --dump=schedule`): stable, one call per line. */
void sched_print(FILE *out, const SchedProgram *p);
/* Checks that every SA_FN names a function of the program and that every call passes its
 * callee's parameters (count and kinds); returns a message or NULL. */
const char *sched_verify(const SchedProgram *p);

#endif
