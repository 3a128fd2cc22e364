/* plan_picture.c - the PlanPicture of a lowered program (plan_picture.h). The strategy of
 * each top-level layer is read from the ParPlan the lowering ran with (as `--dump
 * strategy` prints it), memory from the stages' plans, times from cost_plan_eval on the
 * analytic model of the same IR. */
#include "plan_picture.h"

#include <stdlib.h>
#include <string.h>

#include "plan_svg.h"
#include "search_cli.h"
#include "diag.h"

#define MB (1024.0 * 1024.0)

/* The analytic cost model of the program's strategy; 1 when it cannot be built. */
static int predict(const PlanPictureArgs *a, const IrModel *m, const ParPlan *o, const PsvgLayer *ls, int nl,
                   PlanPicture *pic)
{
  CostModel cm;
  cost_model_defaults(&cm);
  cm.world = o->world;
  cm.mixed = o->bf16;
  cm.sequence_parallel = o->sp && !o->ulysses;
  cm.pipeline_1f1b = o->pipeline_1f1b;
  cm.async_grad_reduce = !o->no_async_grad_reduce;
  cm.default_dp_type = o->dp_type == DP_ZERO2 ? DP_ZERO2 : DP_DDP;
  cm.context_mem = 0; /* outside the program's plan: not known before it runs */
  cm.hidden = (int)m->hidden;
  cm.nlayers = (int)m->nblocks;
  cm.seq = (int)o->seq;
  unsigned char *types = malloc((size_t)(m->nblocks > 0 ? m->nblocks : 1));
  AnalyticHw hw = {0, 0, 0, 0, 0};
  if (cost_types_from_ir(&cm, m, types, NULL) < 0 || search_cli_device(a->device ? a->device : "h100", a->gpus_per_node, &hw) ||
      cost_analytic_init(&cm, m, &hw)) {
    free(types);
    return 1;
  }
  Strategy *blocks = malloc(sizeof(Strategy) * (size_t)(cm.nlayers > 0 ? cm.nlayers : 1));
  int division[PSVG_MAXPP] = {0}, nb = 0, gbuf = 1;
  Strategy embed = ls[0].s;
  for (int i = 0; i < nl; i++) {
    if (ls[i].vocab) embed = ls[i].s;
    if (!ls[i].block || nb >= cm.nlayers) continue;
    blocks[nb++] = ls[i].s;
    division[ls[i].stage]++;
    if (strategy_tp_sp(&ls[i].s) > gbuf) gbuf = strategy_tp_sp(&ls[i].s);
  }
  CostTask t = {o->pp, (int)o->micro_batch * o->chunks * o->dp, o->chunks, par_cp(o)};
  CostPlan cp = {nb, blocks, division, embed};
  CostResult r;
  cost_plan_eval(&cm, &t, &cp, gbuf, &r);
  plan_svg_from_cost(pic, &cm, &t, &r);
  free(blocks);
  free(types);
  return 0;
}

int plan_picture_write(const PlanPictureArgs *a, const IrModel *m, const ParPlan *o, const Lowered *lw)
{
  PsvgLayer *ls = calloc((size_t)m->nlayers, sizeof *ls);
  for (int i = 0; i < m->nlayers; i++) {
    IrLayerKind k = m->layers[i].kind;
    ls[i] = (PsvgLayer){m->layers[i].name, o->layer[i].stage, k == IR_LAYER_BLOCK,
                        k == IR_LAYER_EMBED || k == IR_LAYER_HEAD, parplan_strategy(m, o, i)};
  }
  PlanPicture *pic = calloc(1, sizeof *pic);
  pic->model = m->name;
  pic->layers = ls;
  pic->nlayers = m->nlayers;
  pic->budget_mb = a->budget_gb > 0 ? a->budget_gb * 1024 : 0;
  pic->mem_note = "each stage's memory plan; memory outside it is logged by the program after step 0";
  char source[256];
  snprintf(source, sizeof source, "times: analytic cost model (%s preset, from the IR's FLOPs and bytes, not profiled); "
           "seq %lld, micro-batch %lld, %s", a->device ? a->device : "h100", (long long)o->seq,
           (long long)o->micro_batch, o->bf16 ? "bf16" : "fp32");
  pic->source = source;
  int rc = 0;
  if (o->pp <= PSVG_MAXPP) {
    rc = predict(a, m, o, ls, m->nlayers, pic);
    for (int k = 0; k < lw->nstages && k < PSVG_MAXPP; k++) {
      const Plan *p = lw->plans[k];
      double kept = (double)p->slot_bytes * (double)p->slots;
      pic->mem_mb[k][PSVG_STATES] = pic->mem_mb[k][PSVG_OUTSIDE] = pic->mem_mb[k][PSVG_WORK] = 0;
      pic->mem_mb[k][PSVG_PARAMS] = (double)p->arena_bytes[PLAN_PARAMS] / MB;
      pic->mem_mb[k][PSVG_GRADS] = (double)p->arena_bytes[PLAN_GRADS] / MB;
      pic->mem_mb[k][PSVG_OPTIM] = (double)p->arena_bytes[PLAN_OPTIM] / MB;
      pic->mem_mb[k][PSVG_ACTS] = kept / MB;
      pic->mem_mb[k][PSVG_WORK] = ((double)p->arena_bytes[PLAN_ACTS] - kept + (double)p->arena_bytes[PLAN_WORKSPACE]) / MB;
    }
  } else {
    pic->world = o->world;
    pic->pp = o->pp;
    pic->chunks = o->chunks;
    pic->gpipe = !o->pipeline_1f1b;
  }
  if (rc) diag_plain(NULL, "%s: no cost model for the picture", m->name);
  else rc = plan_svg_write(a->path, pic, 1);
  free(pic);
  free(ls);
  return rc;
}
