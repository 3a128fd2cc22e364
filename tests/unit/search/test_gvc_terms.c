/* test_gvc_terms.c - the terms gvc's calibrated cost model (cm->analytic) adds to
 * Galvatron's, against hand-computed values on a model of made-up profile numbers: the
 * optimizer step once per iteration after the pipeline, ZeRO's blocking collectives and
 * its memory with whole gradients, the reductions' buffers outside the plan, a
 * checkpointed layer's recomputation at its stage's peak, a split layer's profiled
 * ratio; and that Galvatron's model (cm->analytic = 0) has none of them. */
#include "cost.h"
#include "testutil.h"

#include <math.h>

static void model(CostModel *cm, int gvc)
{
  cost_model_defaults(cm);
  cm->world = 2, cm->nlayers = 4, cm->hidden = 256, cm->seq = 128, cm->mixed = 0, cm->sequence_parallel = 0;
  cm->analytic = gvc;
  cm->context_mem = 170;
  cm->time = (ProfTime){.layer_m = {2}, .other_m = 0.5, .bwd_ratio = {2}, .other_bwd_ratio = 2, .opt_layer_ms = 1.5, .opt_other_ms = 0.4};
  cm->mem.param[0] = 3;
  for (int l = 0; l < PROF_LOGMAX; l++) {
    cm->mem.act[0][l] = 2.0 / (1 << l);
    cm->mem.off.ms[l] = cm->mem.first.ms[l] = cm->mem.last.ms[l] = 2.0 / (1 << l);
    cm->mem.off.act[l] = cm->mem.first.act[l] = cm->mem.last.act[l] = 1;
    cm->hw.ar_coe[l][0] = cm->hw.ar_coe[l][1] = l ? 0.25 : 0;
    cm->hw.p2p_coe[l] = 0.1;
    cm->hw.ag[l] = cm->hw.a2a[l] = (ProfLatency){.m = 0.1, .c = 0.01, .valid = 1};
    cm->hw.ag_coe[l][0] = cm->hw.ag_coe[l][1] = 0.5;
    cm->hw.rs_coe[l][0] = cm->hw.rs_coe[l][1] = 2;
  }
  cm->hw.overlap = 1;
  cm->mem.act_ckpt[0] = 0.125;
  cm->mem.context_per_param = 1, cm->mem.context_param_mb = 6.5;
}

static CostResult eval(const CostModel *cm, Strategy s, int pp, int chunks)
{
  Strategy ls[4] = {s, s, s, s};
  int div[2] = {pp == 1 ? 4 : 2, 2};
  CostTask t = {pp, 8, chunks, 1};
  Strategy e = s;
  e.ckpt = 0;
  CostPlan p = {4, ls, div, e};
  CostResult r;
  cost_plan_eval(cm, &t, &p, 1, &r);
  return r;
}

int main(void)
{
  CostModel g, c;
  model(&g, 0);
  model(&c, 1);
  Strategy dp = {1, 1, 1, 2, DP_DDP, 0, 1, 1};
  CostResult rg = eval(&g, dp, 1, 1), rc = eval(&c, dp, 1, 1);
  /* the optimizer step: 4 layers x 1.5 ms + 0.4 ms, whole under ddp, after the pipeline */
  CHECK_CLOSE(0.0064, rc.time_s - rg.time_s, 1e-12, 1e-9);
  CHECK_CLOSE(0.0064, rc.opt_s[0], 1e-12, 1e-9);
  CHECK_CLOSE(0, rg.opt_s[0], 0, 0);
  /* outside the plan: 170 - 6.5 MB, plus the ddp reductions' buffers of 4 x 3 MB + 2 / 4 MB */
  CHECK_CLOSE(170, rg.context_mb[0], 1e-9, 0);
  CHECK_CLOSE(170 - 6.5 + 12 + 0.5, rc.context_mb[0], 1e-9, 0);
  /* ZeRO-2 over 2: this rank steps half; the states keep p and g whole: (2 + 2 / 2) / 4 of 4 x 3 MB per layer */
  Strategy z2 = {1, 1, 1, 2, DP_ZERO2, 0, 1, 1};
  CostResult r2 = eval(&c, z2, 1, 1);
  CHECK_CLOSE(0.0032, r2.opt_s[0], 1e-12, 1e-9);
  CHECK_CLOSE(4 * 12 * 0.75 + 2 * 0.75, r2.states_mb[0], 1e-9, 0);
  /* its collectives, blocking: per layer 1.5 MB at 2 (reduce-scatter) + 0.5 (all-gather) ms/MB, once */
  CostTask t1 = {1, 8, 1, 1};
  double z2_sync = cost_layer_time(&c, &t1, &z2, 0, 1, NULL), z2_nosync = cost_layer_time(&c, &t1, &z2, 0, 0, NULL);
  CHECK_CLOSE(0.001 * (1.5 * 2.5) + cost_layer_opt(&c, &z2), z2_sync - z2_nosync, 1e-12, 1e-9);
  /* a checkpointed layer: one layer's activations of the micro-batch (2 MB x 4 samples) once per stage */
  Strategy ck = {1, 1, 1, 2, DP_DDP, 1, 1, 1};
  CostResult rk = eval(&c, ck, 1, 1), rkg = eval(&g, ck, 1, 1);
  CHECK_CLOSE(4 * 0.125 * 4 + 1 * 4 + 8, rk.act_mb[0], 1e-9, 0);
  CHECK_CLOSE(4 * 0.125 * 4 + 1 * 4, rkg.act_mb[0], 1e-9, 0);
  /* a tp layer split as profiled: forward x 1.25, backward x 1.5 of the unsplit per rank, no sp_time terms */
  Strategy tp = {1, 2, 1, 1, DP_DDP, 0, 1, 1};
  c.time.split_deg = 2;
  c.time.split_fwd[PROF_SPLIT_TP] = 1.25, c.time.split_bwd[PROF_SPLIT_TP] = 1.5;
  CostTask t8 = {1, 8, 1, 1};
  LayerCostDetail d;
  cost_layer_time(&c, &t8, &tp, 0, 0, &d);
  CHECK_CLOSE(2 * 4 * 1.25 * 4, d.fct, 1e-9, 0);
  CHECK_CLOSE(2 * 2 * 4 * 1.5 * 4, d.bct, 1e-9, 0);
  cost_layer_time(&g, &t8, &tp, 0, 0, &d);
  CHECK_CLOSE(2 * 4 * 4, d.fct, 1e-9, 0);
  /* 1F1B on 2 stages: the slowest stage's optimizer step after the pipeline */
  CostResult p2g = eval(&g, (Strategy){2, 1, 1, 1, DP_DDP, 0, 1, 1}, 2, 4), p2c = eval(&c, (Strategy){2, 1, 1, 1, DP_DDP, 0, 1, 1}, 2, 4);
  CHECK_CLOSE(0.001 * (2 * 1.5 + 0.2), p2c.time_s - p2g.time_s, 1e-12, 1e-9);
  return tu_report("gvc_terms");
}
