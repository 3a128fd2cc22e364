/* grad_reduce.c - the data-parallel gradient reduction of a step, the two ways Galvatron
 * runs it for replicated (ddp) parameters:
 *  - async (the default): when a layer's backward of the rank's last micro-batch is done,
 *    its gradients are final, and a non-blocking all-reduce over the parameter's own dp
 *    group starts at once, overlapping the backward of the layers before it; the step waits
 *    for them all before the optimizer;
 *  - no_async_grad_reduce: after every micro-batch's backward, the gradients are
 *    all-reduced and added into a planned accumulator (the plan's "grads.reduced"), then
 *    zeroed for the next micro-batch; the accumulator replaces them after the last one.
 * ZeRO-2 keeps its one reduce-scatter of the gradient arena after the step (run.c), and
 * ZeRO-3 blocks reduce-scatter inside their own backward; both are skipped here. Sums
 * commute, so the tied-weight and sequence-parallel sums may run after this one. */
#include <stdlib.h>

#include "program/run.h"

static int reduced_here(const struct gv_run *r, const struct gv_run_param *p)
{
  return !r->zero && !gv_run_zero3_param(r, p) && gv_comm_size(p->dp_group) > 1;
}

static float *grad_of(struct gv_run *r, const struct gv_run_param *p)
{
  return (float *)(r->bases[GV_MEM_GRADS] + p->goff);
}

static float *acc_of(struct gv_run *r, const struct gv_run_param *p)
{
  return (float *)(r->bases[GV_MEM_GRADS] + r->grad_acc_off + p->goff);
}

void gv_gen_grads_ready(void *ctx, int64_t stage, int64_t layer)
{
  struct gv_run *r = ctx;
  if (r->grad_per_micro || r->evaluating || r->cur_micro != r->nmicro - 1)
    return;
  for (int i = 0; i < r->nparams; i++) {
    struct gv_run_param *p = &r->params[i];
    if (p->layer == layer && !p->req && reduced_here(r, p)) {
      p->req = gv_comm_iall_reduce(p->dp_group, grad_of(r, p), gv_run_shard_numel(p), GV_DTYPE_F32, GV_REDUCE_SUM);
      p->reduced = 1;
    }
  }
  (void)stage;
}

void gv_gen_backward_done(void *ctx, int64_t stage)
{
  struct gv_run *r = ctx;
  if (!r->grad_per_micro)
    return;
  for (int i = 0; i < r->nparams; i++) {
    struct gv_run_param *p = &r->params[i];
    if (!reduced_here(r, p))
      continue;
    struct gv_tensor G = gv_tensor_4d(grad_of(r, p), GV_DTYPE_F32, (int64_t)gv_run_shard_numel(p), 0, 0, 0),
                     A = gv_tensor_4d(acc_of(r, p), GV_DTYPE_F32, (int64_t)gv_run_shard_numel(p), 0, 0, 0);
    gv_comm_all_reduce(p->dp_group, G.data, gv_run_shard_numel(p), GV_DTYPE_F32, GV_REDUCE_SUM);
    gv_axpy(&r->be, &A, 1.0f, &G);
    gv_fill(&r->be, &G, 0.0f);
  }
  (void)stage;
}

void gv_run_reduce_grads(struct gv_run *r)
{
  for (int i = 0; i < r->nparams; i++) {
    struct gv_run_param *p = &r->params[i];
    if (!reduced_here(r, p))
      continue;
    if (r->grad_per_micro) {
      struct gv_tensor G = gv_tensor_4d(grad_of(r, p), GV_DTYPE_F32, (int64_t)gv_run_shard_numel(p), 0, 0, 0),
                       A = gv_tensor_4d(acc_of(r, p), GV_DTYPE_F32, (int64_t)gv_run_shard_numel(p), 0, 0, 0);
      gv_copy(&r->be, &G, &A);
    } else if (p->reduced) {
      gv_comm_wait(p->dp_group, p->req);
    } else { /* a layer that announced nothing (should not happen): reduce it now */
      gv_comm_all_reduce(p->dp_group, grad_of(r, p), gv_run_shard_numel(p), GV_DTYPE_F32, GV_REDUCE_SUM);
    }
    p->req = NULL;
    p->reduced = 0;
  }
}
