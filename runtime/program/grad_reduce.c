/* grad_reduce.c - the data-parallel gradient reduction of a step, the two ways Galvatron
 * runs it for replicated (ddp) parameters:
 *  - async (the default): when a layer's backward of the rank's last micro-batch is done,
 *    its gradients are final, and a non-blocking all-reduce over the parameter's own dp
 *    group starts at once, overlapping the backward of the layers before it; the step waits
 *    for them all before the optimizer;
 *  - no_async_grad_reduce: after every micro-batch's backward, the gradients are
 *    all-reduced and added into a planned accumulator (the plan's "grads.reduced"), then
 *    zeroed for the next micro-batch; the accumulator replaces them after the last one.
 * ZeRO-2 reduce-scatters after the step (run.c: the flat gradient arena over one dp group,
 * or each parameter over its own), or with no_async_grad_reduce after every micro-batch
 * here, its shard (or chunk) added into the same place of the accumulator; ZeRO-3 blocks
 * reduce-scatter inside their own backward. Sums commute, so the tied-weight and
 * sequence-parallel sums may run after this one. Under bf16 mixed precision the ddp
 * gradients, their shards and the accumulator are bf16 (each sum and add rounds once). */
#include <stdlib.h>

#include "program/run.h"

static int reduced_here(const struct gv_run *r, const struct gv_run_param *p)
{
  return !r->zero && !gv_run_zero3_param(r, p) && gv_comm_size(p->dp_group) > 1;
}

static void *acc_of(struct gv_run *r, const struct gv_run_param *p)
{
  return r->bases[GV_MEM_GRADS] + r->grad_acc_off + p->goff;
}


/* no_async_grad_reduce under ZeRO-2, after a micro-batch: reduce-scatter, add this rank's
 * part into the accumulator, zero the gradients (to = 0); at the step's end (to = 1): the
 * accumulated part back where the optimizer reads it. */
static void zero2_per_micro(struct gv_run *r, int to)
{
  char *g = r->bases[GV_MEM_GRADS], *a = g + r->grad_acc_off;
  if (r->shard_bytes) { /* flat: the rank's shard lands at the arena's start */
    size_t se = gv_run_flat_shard_numel(r);
    struct gv_tensor G = gv_run_vals(r, g, se), A = gv_run_vals(r, a, se);
    if (to) {
      gv_copy(&r->be, &G, &A);
      return;
    }
    gv_comm_reduce_scatter(r->dp, g, g, se, r->fdt);
    gv_axpy(&r->be, &A, 1.0f, &G);
    struct gv_tensor all = gv_run_vals(r, g, (size_t)r->grad_acc_off / gv_run_fsz(r));
    gv_fill(&r->be, &all, 0.0f);
    return;
  }
  for (int i = 0; i < r->nparams; i++) {
    struct gv_run_param *p = &r->params[i];
    if (!gv_run_zero2_param(r, p))
      continue;
    size_t c = gv_run_zero2_chunk(p);
    struct gv_tensor G = gv_run_vals(r, gv_run_grad(r, p), c), A = gv_run_vals(r, acc_of(r, p), c);
    if (to) {
      gv_copy(&r->be, &G, &A);
      continue;
    }
    gv_comm_reduce_scatter(p->dp_group, G.data, G.data, c, r->fdt);
    gv_axpy(&r->be, &A, 1.0f, &G);
    struct gv_tensor whole = gv_run_vals(r, gv_run_grad(r, p), c * (size_t)gv_comm_size(p->dp_group));
    gv_fill(&r->be, &whole, 0.0f);
  }
}

void gv_gen_grads_ready(void *ctx, int64_t stage, int64_t layer)
{
  struct gv_run *r = ctx;
  if (r->grad_per_micro || r->evaluating || r->cur_micro != r->nmicro - 1)
    return;
  for (int i = 0; i < r->nparams; i++) {
    struct gv_run_param *p = &r->params[i];
    if (p->layer == layer && !p->req && reduced_here(r, p)) {
      p->req = gv_comm_iall_reduce(p->dp_group, gv_run_grad(r, p), gv_run_shard_numel(p), r->fdt, GV_REDUCE_SUM);
      p->reduced = 1;
    }
  }
  (void)stage;
}

void gv_gen_backward_done(void *ctx, int64_t stage)
{
  struct gv_run *r = ctx;
  if (!r->grad_per_micro || r->evaluating)
    return;
  if (r->zero == 2)
    zero2_per_micro(r, 0);
  for (int i = 0; i < r->nparams; i++) {
    struct gv_run_param *p = &r->params[i];
    if (!reduced_here(r, p))
      continue;
    struct gv_tensor G = gv_run_vals(r, gv_run_grad(r, p), gv_run_shard_numel(p)),
                     A = gv_run_vals(r, acc_of(r, p), gv_run_shard_numel(p));
    gv_comm_all_reduce(p->dp_group, G.data, gv_run_shard_numel(p), r->fdt, GV_REDUCE_SUM);
    gv_axpy(&r->be, &A, 1.0f, &G);
    gv_fill(&r->be, &G, 0.0f);
  }
  (void)stage;
}

void gv_run_reduce_grads(struct gv_run *r)
{
  if (r->grad_per_micro && r->zero == 2)
    zero2_per_micro(r, 1);
  for (int i = 0; i < r->nparams; i++) {
    struct gv_run_param *p = &r->params[i];
    if (!reduced_here(r, p))
      continue;
    if (r->grad_per_micro) {
      struct gv_tensor G = gv_run_vals(r, gv_run_grad(r, p), gv_run_shard_numel(p)),
                       A = gv_run_vals(r, acc_of(r, p), gv_run_shard_numel(p));
      gv_copy(&r->be, &G, &A);
    } else if (p->reduced) {
      gv_comm_wait(p->dp_group, p->req);
    } else { /* a layer that announced nothing (should not happen): reduce it now */
      gv_comm_all_reduce(p->dp_group, gv_run_grad(r, p), gv_run_shard_numel(p), r->fdt, GV_REDUCE_SUM);
    }
    p->req = NULL;
    p->reduced = 0;
  }
}

void gv_run_reduce_zero2(struct gv_run *r)
{
  if (r->zero != 2 || r->grad_per_micro) /* (per micro-batch: done in gv_gen_backward_done) */
    return;
  if (r->shard_bytes) { /* flat: this rank's shard's sum at the arena start */
    gv_comm_reduce_scatter(r->dp, r->bases[GV_MEM_GRADS], r->bases[GV_MEM_GRADS], gv_run_flat_shard_numel(r), r->fdt);
    return;
  }
  for (int i = 0; i < r->nparams; i++) /* per parameter: this rank's chunk's sum at its start */
    if (gv_run_zero2_param(r, &r->params[i])) {
      void *g = gv_run_grad(r, &r->params[i]);
      gv_comm_reduce_scatter(r->params[i].dp_group, g, g, gv_run_zero2_chunk(&r->params[i]), r->fdt);
    }
}
