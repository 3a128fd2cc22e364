/* gvrt_program.h - the contract between a generated training program and libgvrt.
 *
 * The compiler emits functions of one signature,
 *     void f(void *ctx, char *const *bases, int64_t slot);
 * ctx is the run (struct gv_run *), bases[k] the base of memory-plan arena k (enum
 * gv_mem_kind), slot the micro-batch buffer set. The entry function gvp_describe()
 * declares the program to the runtime with the gv_prog_* calls (plan sizes, parameters,
 * stage functions); the runtime then owns main-level work (arguments, arenas, data, the
 * schedule calling the stage functions, optimizer, logging, checkpoints) and the stage
 * functions call the gv_gen_* kernels below. Every argument of these calls is a plain
 * pointer, integer or float, so the C and LLVM emitters call them identically.
 * Buffers are raw pointers into the plan's arenas; shapes are constants of the plan. */
#ifndef GVRT_PROGRAM_H
#define GVRT_PROGRAM_H

#include <stdint.h>

#include "gvrt.h"
#include "gvrt_entries.h"

typedef void (*gv_prog_fn)(void *ctx, char *const *bases, int64_t slot);

/* Init kinds of parameters (gv_prog_param's init). */
enum { GV_INIT_NORMAL = 0, GV_INIT_ZEROS = 1, GV_INIT_ONES = 2 };

/* ---- the entry points, declared from their one table (gvrt_entries.h) ---- */

#define GV_ARG_PTR void *
#define GV_ARG_FN void *
#define GV_ARG_I64 int64_t
#define GV_ARG_F32 float
#define GV_ARG_F64 double
#define GV_ARG_STR const char *
#define GV_A(kind, name) , GV_ARG_##kind name
#define GV_DECLARE(name, args) GV_API void gv_##name(void *ctx args);
GV_ENTRIES(GV_DECLARE)
#undef GV_DECLARE
#undef GV_A

/* ---- the runtime's main: parse arguments, run the program described by describe ---- */

GV_API int gv_main(int argc, char **argv, gv_prog_fn describe);

#endif
