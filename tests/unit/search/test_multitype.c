/* test_multitype.c - the cost model and the search on models with several layer types,
 * from Galvatron's shipped T5-3B (encoder and decoder layers) and Swin-huge (four stages)
 * profiles: the iteration time and memory per stage of Galvatron's shipped configs against
 * golden/golden_costs_multitype.json (tests/reference/galvatron_multitype_cost.py, Galvatron's
 * formulas in Python) to 1e-9 relative, the memory-balanced pipeline division, and the
 * search's two DP forms (dense table, Pareto fronts) agreeing on every task.
 * argv[1]: the galvatron data folder. */
#include "search.h"
#include "search_cli.h"
#include "testutil.h"
#include "unit/search/json_file.h"

#include <cjson/cJSON.h>
#include <string.h>

#define RT 1e-9

static cJSON *get(cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* The cost model of one case: its layer types from the golden file, Galvatron's profiles. */
static int model_of(const char *dir, cJSON *cs, CostModel *cm, unsigned char *type_of)
{
  const char *name = get(cs, "model")->valuestring, *sub = !strcmp(name, "t5-3B") ? "T5" : "swin";
  const char *file = !strcmp(name, "t5-3B") ? "t5-3B" : "swin-huge";
  cost_model_defaults(cm);
  cm->world = 8;
  cm->ntypes = cJSON_GetArraySize(get(cs, "num_layers"));
  cm->nlayers = 0;
  for (int k = 0; k < cm->ntypes; k++) {
    cm->type_layers[k] = cJSON_GetArrayItem(get(cs, "num_layers"), k)->valueint;
    cm->type_hidden[k] = cJSON_GetArrayItem(get(cs, "hidden_size"), k)->valueint;
    cm->type_seq[k] = cJSON_GetArrayItem(get(cs, "seq_length"), k)->valueint;
    for (int j = 0; j < cm->type_layers[k]; j++) type_of[cm->nlayers++] = (unsigned char)k;
  }
  cm->hidden = cm->type_hidden[0];
  cm->seq = cm->type_seq[0];
  cm->type_of = type_of;
  char p[6][512];
  const char *names[6] = {"computation_profiling_bf16_%s.json", "memory_profiling_bf16_%s.json", NULL, NULL, NULL, NULL};
  for (int i = 0; i < 2; i++) {
    char n[128];
    snprintf(n, sizeof n, names[i], file);
    snprintf(p[i], sizeof p[i], "%s/v2.4.0/%s/configs/%s", dir, sub, n);
  }
  snprintf(p[2], sizeof p[2], "%s/v2.4.0/hardware_configs/allreduce_bandwidth_1nodes_8gpus_per_node.json", dir);
  snprintf(p[3], sizeof p[3], "%s/v2.4.0/hardware_configs/p2p_bandwidth_1nodes_8gpus_per_node.json", dir);
  snprintf(p[4], sizeof p[4], "%s/v2.4.0/hardware_configs/overlap_coefficient.json", dir);
  snprintf(p[5], sizeof p[5], "%s/v2.4.0/hardware_configs/sp_time_1nodes_8gpus_per_node.json", dir);
  CostFiles f = {p[0], p[1], p[2], p[3], p[4], p[5], PROF_STATIC, PROF_STATIC};
  return cost_model_load(cm, &f);
}

/* gvc cost's evaluation of Galvatron's shipped config against the reference numbers. */
static void check_config(const char *dir, cJSON *cs, const CostModel *cm)
{
  char path[600];
  snprintf(path, sizeof path, "%s/v2.4.0/%s", dir, get(cs, "config")->valuestring);
  GalConfig g;
  CHECK(prof_config_read(path, &g) == 0);
  CHECK_EQ_INT(cm->nlayers, g.nlayers);
  Strategy ls[64];
  int gbuf = 1;
  for (int l = 0; l < g.nlayers && l < 64; l++) {
    ls[l] = search_cli_layer(cm, &g, l);
    if (strategy_tp_sp(&ls[l]) > gbuf) gbuf = strategy_tp_sp(&ls[l]);
  }
  CostTask t = {g.pp_deg, g.global_bsz, g.chunks, 1};
  CostPlan p = {g.nlayers, ls, g.pp_division, search_cli_embed(cm, &g)};
  CostResult r;
  cost_plan_eval(cm, &t, &p, gbuf, &r);
  printf("%s: %.9f s (reference %.9f s)\n", get(cs, "model")->valuestring, r.time_s, get(cs, "time_s")->valuedouble);
  CHECK_CLOSE(get(cs, "time_s")->valuedouble, r.time_s, 0, RT);
  cJSON *mem = get(cs, "memory_mb_per_stage");
  CHECK_EQ_INT(g.pp_deg, cJSON_GetArraySize(mem));
  for (int k = 0; k < g.pp_deg; k++) CHECK_CLOSE(cJSON_GetArrayItem(mem, k)->valuedouble, r.mem_mb[k], 0, RT);
  prof_config_free(&g);
}

static void check_division(cJSON *cs, const CostModel *cm)
{
  for (cJSON *d = get(cs, "balanced_division")->child; d; d = d->next) {
    CostTask t;
    sscanf(d->string, "%d_%d_%d", &t.pp, &t.gbsz, &t.chunks);
    int div[SEARCH_MAXPP];
    cost_division_balanced(cm, &t, div);
    for (int k = 0; k < t.pp; k++) CHECK_EQ_INT(cJSON_GetArrayItem(d, k)->valueint, div[k]);
  }
}

/* Every task of a small search: the dense table and the fronts find the same time. */
static void check_search(const CostModel *cm)
{
  SearchOptions o;
  search_options_defaults(&o);
  o.space.world = cm->world;
  o.space.nlayers = cm->nlayers;
  o.memory_gb = 12; /* tight enough that checkpointing and ZeRO-3 matter; the dense table stays small */
  o.min_bsz = o.max_bsz = 32;
  int solved = 0;
  for (int pp = 1; pp <= 4; pp *= 2)
    for (int chunks = pp; chunks <= 8; chunks *= 4)
      for (int mode = 0; mode < 3; mode++) {
        CostTask t = {pp, 32, chunks, 1};
        SearchPlan a, b;
        o.dense = 0;
        int ra = search_task(cm, &o, &t, mode, 8 / pp, &a);
        o.dense = 1;
        int rb = search_task(cm, &o, &t, mode, 8 / pp, &b);
        CHECK_EQ_INT(ra, rb);
        if (ra || rb) continue;
        solved++;
        CHECK_CLOSE(b.time_s, a.time_s, 0, 1e-12);
        CostPlan cp = {cm->nlayers, a.layers, a.division, a.embed};
        CostResult r;
        cost_plan_eval(cm, &t, &cp, a.buf, &r);
        CHECK_CLOSE(a.time_s, r.time_s, 0, 1e-12); /* the plan is what cost says of it */
        for (int k = 0; k < pp; k++) CHECK(r.mem_mb[k] <= o.memory_gb * 1024);
        free(a.layers);
        free(b.layers);
      }
  printf("tasks solved by both DP forms: %d\n", solved);
  CHECK(solved > 0);
}

int main(int argc, char **argv)
{
  const char *dir = argc > 1 ? argv[1] : "tests/data/galvatron";
  char gp[512];
  snprintf(gp, sizeof gp, "%s/golden/golden_costs_multitype.json", dir);
  cJSON *g = tu_json_file(gp);
  CHECK(g != NULL);
  if (!g) return tu_report("multitype");
  for (cJSON *cs = get(g, "cases")->child; cs; cs = cs->next) {
    CostModel cm;
    unsigned char type_of[64];
    CHECK(model_of(dir, cs, &cm, type_of) == 0);
    check_config(dir, cs, &cm);
    check_division(cs, &cm);
    check_search(&cm);
  }
  cJSON_Delete(g);
  return tu_report("multitype");
}
