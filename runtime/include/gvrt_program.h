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

/* ---- the layout contract: rules the compiler plans by and the runtime addresses by ----
 * Stated once, here; both sides call these. Sizes are bytes unless named elements. */

/* Every buffer of the plan starts at a multiple of GV_PROG_ALIGN bytes. A sharded range (the
 * flat ZeRO-2 gradient arena, a ZeRO-3 layer's parameters) is padded to a multiple of
 * GV_PROG_ALIGN x dp, so that each of the dp ranks' shards (range / dp) is aligned too. */
enum { GV_PROG_ALIGN = 64 };
static inline int64_t gv_prog_shard_range(int64_t bytes, int64_t dp)
{
  int64_t unit = GV_PROG_ALIGN * dp;
  return (bytes + unit - 1) / unit * unit;
}
/* ZeRO-2 per parameter (per-layer tp, or beside ZeRO-3 blocks): of a parameter's n elements
 * each of the dp ranks owns a chunk of ceil(n / dp), the last padded; its parameter and
 * gradient buffers hold dp chunks. */
static inline int64_t gv_prog_zero2_chunk(int64_t n, int64_t dp) { return (n + dp - 1) / dp; }
/* Optimizer state of n owned elements: fp32 blocks of n floats, AdamW's m, then v, then under
 * bf16 mixed precision the fp32 master weights. */
enum gv_prog_state { GV_STATE_M, GV_STATE_V, GV_STATE_MASTER };
static inline int gv_prog_state_blocks(int bf16) { return bf16 ? 3 : 2; }
static inline int64_t gv_prog_state_bytes(int64_t n, int bf16) { return 4 * n * gv_prog_state_blocks(bf16); }

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
