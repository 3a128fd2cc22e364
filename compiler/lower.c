/* lower.c - model IR -> schedule IR for one rank: forward, backward (compile-time
 * autodiff from each primitive's rule) and recompute of checkpointed layers, plus the
 * memory plan of every buffer they touch. Buffers are referenced by plan id while calls
 * are emitted and patched to (arena, offset, stride) once the plan is assigned.
 *
 * Kept for backward: the inputs each primitive's backward reads (linear: x; norms: x and
 * their statistics; gelu/silu: x; mul: both operands; attention: q, k, v, o and the
 * log-sum-exp; cross-entropy: logits and lse) and every layer's output (the next layer's
 * input, i.e. its checkpoint). A checkpointed layer keeps only its output: its forward is
 * replayed into transient buffers at the start of its backward.
 *
 * The lowering is split by concern: lower.c (shapes, buffers, placement, ZeRO-3 gathers),
 * lower_layout.c (which rows and columns of each value a rank holds: the tensor-parallel
 * split, per-layer tp row conversions), lower_fwd.c and lower_bwd.c (each primitive's
 * forward and backward rule, and a layer's forward, recompute and backward), lower_fuse.c
 * (calls fused as they are emitted), lower_program.c (stages, parameters, the program). */
#include "lower_impl.h"

#include <string.h>

/* ---- shapes and buffers ---- */

/* Local sizes: a value split by tensor parallelism holds 1/tp of its last dimension. */
void lower_fail(L *l, int ni, const char *msg)
{
  if (l->err)
    return;
  l->err = msg;
  l->err_node = ni;
}

/* The key padding ids of attention node ni: the source's token ids when it is masked by
 * src_tokens (the stage's io.src slot), else none. */
SchedArg lower_key_mask(L *l, int ni)
{
  return l->m->nodes[ni].iattr[3] ? lower_buf_arg(l, l->val[l->m->src_value]) : sa_null();
}

int64_t lower_numel(const L *l, int v)
{
  const IrShape *s = &l->m->values[v].shape;
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++)
    n *= ir_dim(s->d[i], l->o->micro_batch, l->o->seq, l->o->src_seq);
  int64_t div = l->rowf ? l->rowf[v] : 1;
  if (l->split && (l->split[v] || l->rsplit[v]))
    div *= l->vdeg ? l->vdeg[v] : l->o->tp;
  return n / div;
}

int64_t lower_last_dim(const L *l, int v)
{
  const IrShape *s = &l->m->values[v].shape;
  int64_t d = ir_dim(s->d[s->rank - 1], l->o->micro_batch, l->o->seq, l->o->src_seq);
  return l->split && l->split[v] ? d / (l->vdeg ? l->vdeg[v] : l->o->tp) : d;
}

int64_t lower_rows(const L *l, int v) { return lower_numel(l, v) / lower_last_dim(l, v); }

int64_t lower_len(const L *l, int v)
{
  return ir_dim(ir_len_dim(&l->m->values[v].shape), 1, l->o->seq, l->o->src_seq);
}

int lower_new_buf(L *l, const char *name, PlanClass cls, int64_t bytes)
{
  if (l->decode && cls == PC_SLOT) /* one token, no backward: nothing is kept */
    cls = PC_TRANSIENT;
  return plan_buf(l->plan, name, PLAN_ACTS, cls, bytes);
}

const char *lower_vname(L *l, int layer, int v, const char *what)
{
  return arena_printf(l->a, "%s.v%d.%s", l->m->layers[layer].name, v, what);
}

/* ---- emitting calls ---- */

SchedArg lower_buf_arg(L *l, int buf) /* a buffer argument, patched after planning */
{
  SchedArg a = sa_buf(-1, buf, 0);
  return a;
}

/* ---- placement, functions ---- */

int lower_layer_of_value(const L *l, int v)
{
  int p = l->m->values[v].producer;
  if (p < 0)
    return -1;
  for (int i = 0; i < l->m->nlayers; i++)
    if (p >= l->m->layers[i].first_node && p < l->m->layers[i].first_node + l->m->layers[i].nnodes)
      return i;
  return -1;
}

void lower_mark_needed(L *l)
{
  for (int v = 0; v < l->m->nvalues; v++)
    l->needed[v] = (unsigned char)ir_value_saved(l->m, v);
  for (int ni = 0; ni < l->m->nnodes; ni++) /* a silu fused into its mul's swiglu call has no value */
    if (lower_swiglu_silu(l, ni))
      l->needed[l->m->nodes[ni].out] = 0;
}

/* ZeRO-3: gather a layer's parameter shards from the data-parallel group into the one
 * buffer its kernels read (before its forward, and again before its backward). */
void lower_z3_gather(L *l, int li)
{
  int64_t dp = lower_layer_dp(l, li), n = l->z3[li].range / dp / l->es;
  SchedArg a[] = {sa_ctx(), sa_i64(li), lower_buf_arg(l, l->z3_gather), lower_buf_arg(l, l->z3[li].pshard), sa_i64(n)};
  lower_emit(l, ENT_gen_zero3_gather, a, 5, arena_printf(l->a, "zero3: gather %s", l->m->layers[li].name));
}
