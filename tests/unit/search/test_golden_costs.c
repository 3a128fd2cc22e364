/* test_golden_costs.c - the Galvatron cost model against Galvatron's own numbers: every
 * entry of golden/golden_costs_1x8_static_seq2048.json (layer time with and without
 * gradient sync, layer memory per stage, embedding time and memory per stage, and the
 * uniform-pipeline iteration time) to 1e-6 relative, from the shipped llama2-7b profiles.
 * argv[1]: the galvatron data folder. */
#include "cost.h"
#include "testutil.h"
#include "unit/search/json_file.h"

#include <cjson/cJSON.h>

#define RT 1e-6

static double num(cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble; }
static cJSON *get(cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static void check_inputs(const CostModel *cm, cJSON *in)
{
  CHECK_CLOSE(num(in, "time_profiled_layer"), cm->time.layer_m[0], 0, RT);
  CHECK_CLOSE(num(in, "time_profiled_other"), cm->time.other_m, 0, RT);
  CHECK_CLOSE(num(in, "parameter_size_MB"), cm->mem.param[0], 0, RT);
  CHECK_CLOSE(num(in, "overlap_coe"), cm->hw.overlap, 0, RT);
  CHECK_CLOSE(num(get(in, "tp_activation_per_bsz_dict_MB"), "checkpoint"), cm->mem.act_ckpt[0], 0, RT);
  cJSON *ag = get(in, "allgather_latency_fit"), *aa = get(in, "all2all_latency_fit");
  for (int g = 2, l = 1; g <= 8; g *= 2, l++) {
    char k[8];
    snprintf(k, sizeof k, "%d", g);
    CHECK_CLOSE(cJSON_GetArrayItem(get(ag, k), 0)->valuedouble, cm->hw.ag[l].m, 0, 1e-9);
    CHECK_CLOSE(cJSON_GetArrayItem(get(ag, k), 1)->valuedouble, cm->hw.ag[l].c, 0, 1e-7);
    CHECK_CLOSE(cJSON_GetArrayItem(get(aa, k), 0)->valuedouble, cm->hw.a2a[l].m, 0, 1e-9);
    CHECK_CLOSE(cJSON_GetArrayItem(get(aa, k), 1)->valuedouble, cm->hw.a2a[l].c, 0, 1e-7);
    snprintf(k, sizeof k, "%d_0", g);
    if (g < 8) CHECK_CLOSE(num(get(in, "allreduce_comm_coe_ms_per_MB"), k), cm->hw.ar_coe[l][0], 0, RT);
    snprintf(k, sizeof k, "%d_1", g);
    CHECK_CLOSE(num(get(in, "allreduce_comm_coe_ms_per_MB"), k), cm->hw.ar_coe[l][1], 0, RT);
    CHECK_CLOSE(num(get(in, "p2p_comm_coe_ms_per_MB"), k[0] == '2' ? "2" : k[0] == '4' ? "4" : "8"), cm->hw.p2p_coe[l], 0, RT);
  }
}

static Strategy row_strategy(cJSON *r)
{
  Strategy s = {(int)num(r, "pp"), (int)num(r, "tp"), (int)num(r, "sp"), (int)num(r, "dp"), DP_DDP,
                cJSON_IsTrue(get(r, "ckpt")), 1, 1};
  const char *t = get(r, "dp_type")->valuestring;
  s.dp_type = !strcmp(t, "zero3") ? DP_ZERO3 : !strcmp(t, "zero2") ? DP_ZERO2 : DP_DDP;
  return s;
}

static void check_row(const CostModel *cm, const CostTask *t, cJSON *r, int *rows)
{
  Strategy s = row_strategy(r);
  char name[32];
  strategy_str(&s, name, sizeof name);
  CHECK_STR(get(r, "strategy")->valuestring, name);
  LayerCostDetail d;
  CHECK_CLOSE(num(r, "layer_time_s_with_grad_sync"), cost_layer_time(cm, t, &s, 0, 1, &d), 0, RT);
  CHECK_CLOSE(num(r, "layer_time_s_no_grad_sync"), cost_layer_time(cm, t, &s, 0, 0, NULL), 0, RT);
  cJSON *in = get(r, "internals_ms_whole_model");
  CHECK_CLOSE(num(in, "fct"), d.fct, 0, RT);
  CHECK_CLOSE(num(in, "bct"), d.bct, 0, RT);
  CHECK_CLOSE(num(in, "tp_communication_time"), d.tp_time, 1e-12, RT);
  CHECK_CLOSE(num(in, "dp_message_size_MB"), d.dpmsg, 1e-12, RT);
  int k = 0;
  for (cJSON *m = get(r, "layer_memory_MB_per_stage")->child; m; m = m->next, k++) {
    double ms, act, tot = cost_layer_mem(cm, t, &s, 0, k, &ms, &act);
    CHECK_CLOSE(num(m, "model_states"), ms, 0, RT);
    CHECK_CLOSE(num(m, "activation"), act, 0, RT);
    CHECK_CLOSE(num(m, "enc_total"), tot, 0, RT);
  }
  CHECK_EQ_INT(t->pp, k);
  Strategy e = s;
  e.ckpt = 0;
  double ws[64], ns[64], ems[64], eact[64], etot[64];
  cost_embed_time(cm, t, &e, 1, ws);
  cost_embed_time(cm, t, &e, 0, ns);
  cost_embed_mem(cm, t, &e, ems, eact, etot);
  cJSON *em = get(r, "embed_memory_MB_per_stage");
  for (int i = 0; i < t->pp; i++) {
    CHECK_CLOSE(cJSON_GetArrayItem(get(r, "embed_time_s_with_grad_sync"), i)->valuedouble, ws[i], 1e-15, RT);
    CHECK_CLOSE(cJSON_GetArrayItem(get(r, "embed_time_s_no_grad_sync"), i)->valuedouble, ns[i], 1e-15, RT);
    CHECK_CLOSE(cJSON_GetArrayItem(get(em, "model_states"), i)->valuedouble, ems[i], 1e-12, RT);
    CHECK_CLOSE(cJSON_GetArrayItem(get(em, "activation"), i)->valuedouble, eact[i], 1e-12, RT);
    CHECK_CLOSE(cJSON_GetArrayItem(get(em, "enc_total"), i)->valuedouble, etot[i], 0, RT);
  }
  /* uniform pipeline: every layer s, embedding s without checkpointing, even division */
  int div[64];
  Strategy layers[256];
  for (int i = 0; i < cm->nlayers; i++) layers[i] = s;
  for (int i = 0; i < t->pp; i++) div[i] = (int)cJSON_GetArrayItem(get(r, "pp_division"), i)->valuedouble;
  CostPlan p = {cm->nlayers, layers, div, e};
  CostResult res;
  cost_plan_eval(cm, t, &p, 1, &res);
  CHECK_CLOSE(num(r, "uniform_pipeline_time_s"), res.time_s, 0, RT);
  (*rows)++;
}

int main(int argc, char **argv)
{
  const char *dir = argc > 1 ? argv[1] : "tests/data/galvatron";
  char p[6][512];
  const char *names[6] = {"llama2-7b/computation_profiling_bf16_llama2-7b_all.json",
                          "llama2-7b/memory_profiling_bf16_llama2-7b_all.json",
                          "hardware/allreduce_bandwidth_1nodes_8gpus_per_node.json",
                          "hardware/p2p_bandwidth_1nodes_8gpus_per_node.json", "hardware/overlap_coefficient.json",
                          "hardware/sp_time_1nodes_8gpus_per_node.json"};
  for (int i = 0; i < 6; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
  CostModel cm;
  cost_model_defaults(&cm);
  cm.world = 8; cm.nlayers = 32; cm.hidden = 4096; cm.seq = 2048;
  CostFiles f = {p[0], p[1], p[2], p[3], p[4], p[5], PROF_STATIC, PROF_STATIC};
  if (cost_model_load(&cm, &f)) return 1;
  char gp[512];
  snprintf(gp, sizeof gp, "%s/golden/golden_costs_1x8_static_seq2048.json", dir);
  cJSON *g = tu_json_file(gp);
  CHECK(g != NULL);
  if (!g) return tu_report("golden_costs");
  check_inputs(&cm, get(g, "inputs"));
  int rows = 0;
  for (cJSON *pt = get(g, "points")->child; pt; pt = pt->next) {
    CostTask t = {0, (int)num(pt, "gbsz"), (int)num(pt, "chunks"), 1};
    for (cJSON *r = get(pt, "rows")->child; r; r = r->next) {
      t.pp = (int)num(r, "pp");
      check_row(&cm, &t, r, &rows);
    }
  }
  printf("golden rows checked: %d\n", rows);
  CHECK(rows == 132);
  cJSON_Delete(g);
  return tu_report("golden_costs");
}
