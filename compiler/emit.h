/* emit.h - the two emitters of a schedule program (sched.h): readable C source, and the
 * same program built with the LLVM C API, either JIT-compiled in-process (ORC LLJIT) or
 * written as an object file. Both translate call for call, so they are interchangeable. */
#ifndef GV_EMIT_H
#define GV_EMIT_H

#include <stdio.h>

#include "sched.h"

/* C source: prototypes for every callee (derived from its argument kinds), then the
 * functions. Returns 0, or 1 with a message in *err (arena-allocated). */
int emit_c_program(const SchedProgram *p, FILE *out, const char *title);

typedef struct EmitJit EmitJit;

/* Is the LLVM emitter part of this build? */
int emit_llvm_available(void);
/* JIT-compile the program; runtime symbols resolve against the running process, so the
 * host executable must export them (-rdynamic). opt: 0..3. NULL + *err on failure. */
EmitJit *emit_llvm_jit(const SchedProgram *p, int opt, char **err);
void *emit_llvm_jit_lookup(EmitJit *j, const char *name, char **err);
void emit_llvm_jit_free(EmitJit **j);
/* Write a position-independent object file for the host (generic x86-64 CPU). */
int emit_llvm_object(const SchedProgram *p, const char *path, int opt, char **err);
/* Write the LLVM IR as text (for --emit=ll and debugging). */
int emit_llvm_ir(const SchedProgram *p, const char *path, char **err);

#endif
