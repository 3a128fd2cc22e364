/* plan.h - the static memory plan. Every buffer of a rank's program lives in one of the
 * arenas of gvrt.h's enum gv_mem_kind. Parameters, gradients and optimizer state are laid
 * out once; activations kept for backward live in a per-micro-batch-slot region (stride
 * = region size); transient buffers (recomputed activations, gradients of activations,
 * values not needed by backward) get offsets from their live ranges inside the one stage
 * function that uses them, since stage functions never run concurrently. The runtime
 * allocates exactly the planned bytes and checks it. */
#ifndef GV_PLAN_H
#define GV_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "gvrt.h"

/* The plan's arenas are the runtime's memory kinds. */
enum {
  PLAN_PARAMS = GV_MEM_PARAMS, PLAN_GRADS = GV_MEM_GRADS, PLAN_OPTIM = GV_MEM_OPTIM, PLAN_ACTS = GV_MEM_ACTS,
  PLAN_WORKSPACE = GV_MEM_WORKSPACE, PLAN_KINDS = GV_MEM_KINDS
};

typedef enum PlanClass {
  PC_STATIC,      /* fixed offset in its arena (params, grads, optimizer state, workspace) */
  PC_SLOT,        /* kept per micro-batch slot: offset inside the slot region of ACTS */
  PC_TRANSIENT,   /* live only during [first, last] calls of function fn */
  PC_ALIAS,       /* a part of another buffer: base's offset + rel (ZeRO-3's gathered parameters) */
} PlanClass;

typedef struct PlanBuf {
  const char *name;
  int kind;            /* PLAN_* arena */
  PlanClass cls;
  int64_t bytes;
  int fn;              /* transient: the function it lives in */
  int first, last;     /* transient: call indices of first and last use */
  int64_t offset;      /* assigned by plan_assign (transients: after the slot regions) */
  int base;            /* alias: the buffer it is part of */
  int64_t rel;         /* alias: byte offset inside base */
} PlanBuf;

typedef struct Plan {
  Arena *arena;
  PlanBuf *bufs;
  int nbufs, cap;
  int64_t slots;             /* micro-batch slots of the activation arena */
  int64_t slot_bytes;        /* size of one slot region */
  int64_t transient_bytes;   /* size of the shared transient region */
  int64_t arena_bytes[PLAN_KINDS];
} Plan;

Plan *plan_new(Arena *a, int64_t slots);
int plan_buf(Plan *p, const char *name, int kind, PlanClass cls, int64_t bytes);
int plan_alias(Plan *p, const char *name, int base, int64_t rel, int64_t bytes);
void plan_use(Plan *p, int buf, int fn, int call);   /* transient: extend its live range */
void plan_assign(Plan *p);                           /* offsets and arena sizes */
/* After plan_assign: a static buffer appended at the end of its arena (ZeRO's flat
 * optimizer shard); pads the arena to `align` bytes first. Returns the buffer. */
int plan_append(Plan *p, const char *name, int kind, int64_t bytes, int64_t align);
int64_t plan_stride(const Plan *p, int buf);         /* per-slot stride (0 if shared) */
void plan_print(FILE *out, const Plan *p);            /* `gvc compile --dump=memory` */
/* Bytes of the activations kept per slot (what checkpointing reduces). */
int64_t plan_kept_activation_bytes(const Plan *p);
/* Bytes of all its arenas (the workspace as planned; the runtime may size it up at start-up). */
int64_t plan_total_bytes(const Plan *p);

#endif
