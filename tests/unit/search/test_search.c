/* test_search.c - the search against things solvable by hand and against Galvatron:
 * the strategy space and batch list (Galvatron's golden counts), a budget that forces
 * checkpointing on exactly k layers, a slow network where pp beats dp (and a fast one
 * where it does not), re-evaluation of returned plans by the cost evaluator, the dense
 * and Pareto DPs agreeing, and the llama2-7b search beating the shipped Galvatron config.
 * argv[1]: the galvatron data folder. */
#include "frontend.h"
#include "search.h"
#include "testutil.h"

static const char *dir, *models;

/* ---- strategy space and batch sizes ---- */

static void test_space(void)
{
  StrategySpace sp = {.world = 8, .nlayers = 32, .default_dp_type = DP_ZERO2, .max_tp = 8, .max_pp = 8, .max_sp = 8};
  Strategy s[512];
  int n = strategy_enumerate(&sp, 0, s, 512);
  CHECK_EQ_INT(50, n);
  CHECK_EQ_INT(25, strategy_enumerate(&sp, 1, s + 100, 400));
  const char *want[] = {"1-1-8", "1-1-8-c", "1-1-8f", "1-1-8f-c", "1-2*-4-sp", "1-2*-4-c-sp", "1-2*-4f-sp"};
  char buf[32];
  for (int i = 0; i < 7; i++) {
    strategy_str(&s[i], buf, sizeof buf);
    CHECK_STR(want[i], buf);
  }
  strategy_str(&s[49], buf, sizeof buf);
  CHECK_STR("8-1-1-c", buf);
  strategy_str(&s[14], buf, sizeof buf);
  CHECK_STR("1-2*-4", buf);
  sp.world = 16;
  CHECK_EQ_INT(76, strategy_enumerate(&sp, 0, s, 512));
  CHECK_EQ_INT(38, strategy_enumerate(&sp, 1, s, 512));
  sp.world = 8;
  sp.disable_ckpt = sp.disable_fsdp = 1;
  CHECK_EQ_INT(16, strategy_enumerate(&sp, 0, s, 512)); /* one per (pp, tp or sp degree): 7 + 5 + 3 + 1 */
}

static void test_bsz(void)
{
  SearchOptions o;
  search_options_defaults(&o);
  int b[64], n;
  o.min_bsz = 16; o.max_bsz = 64; o.bsz_scale = 8;
  n = search_batch_sizes(&o, b, 64);
  CHECK_EQ_INT(7, n); CHECK_EQ_INT(16, b[0]); CHECK_EQ_INT(64, b[n - 1]);
  o.min_bsz = 20; o.max_bsz = 50; o.bsz_scale = 10;
  n = search_batch_sizes(&o, b, 64);
  CHECK_EQ_INT(4, n); CHECK_EQ_INT(20, b[0]); CHECK_EQ_INT(50, b[3]);
  o.min_bsz = 16; o.max_bsz = 50; o.bsz_scale = 16;
  n = search_batch_sizes(&o, b, 64);
  CHECK_EQ_INT(3, n); CHECK_EQ_INT(48, b[2]);
  o.min_bsz = 4; o.max_bsz = 16; o.bsz_scale = 8;
  n = search_batch_sizes(&o, b, 64);
  CHECK_EQ_INT(8, b[0]);
  o.settle_bsz = 24;
  CHECK_EQ_INT(1, search_batch_sizes(&o, b, 64));
  CHECK_EQ_INT(24, b[0]);
}

/* ---- synthetic models ---- */

static void synthetic(CostModel *cm, int world, int layers)
{
  cost_model_defaults(cm);
  cm->world = world; cm->nlayers = layers; cm->hidden = 1024; cm->seq = 1024;
  cm->sequence_parallel = 0;
  cm->hw.overlap = 1;
  for (int l = 0; l < PROF_LOGMAX; l++) {
    cm->hw.ar_coe[l][0] = cm->hw.ar_coe[l][1] = l ? 0.01 : 0;
    cm->hw.p2p_coe[l] = 0.01;
    cm->mem.act[0][l] = 300.0 / (1 << l);
  }
  cm->time.layer_m[0] = 1; /* ms per sample per layer */
  cm->mem.param[0] = 25;   /* 4 x 25 = 100 MB of model states per layer */
  cm->mem.act_ckpt[0] = 50;
}

/* 8 layers of 400 MB (150 MB checkpointed), 1024 MB context: a budget of
 * 1024 + 3200 - 250*3 MB leaves room for exactly 5 layers without checkpointing. */
static void test_ckpt_k(void)
{
  for (int dense = 0; dense < 2; dense++)
    for (int k = 0; k <= 8; k += 3) {
      CostModel cm;
      synthetic(&cm, 1, 8);
      SearchOptions o;
      search_options_defaults(&o);
      o.space = (StrategySpace){.world = 1, .nlayers = 8, .default_dp_type = DP_ZERO2, .max_tp = 8, .max_pp = 8, .max_sp = 8};
      o.settle_bsz = 1;
      o.dense = dense;
      o.memory_gb = (1024 + 3200 - 250.0 * k) / 1024;
      SearchResult r;
      CHECK(search_run(&cm, &o, &r) == 0);
      if (!r.nplans) continue;
      int n = 0;
      for (int l = 0; l < 8; l++) n += r.plans[0].layers[l].ckpt;
      CHECK_EQ_INT(k, n);
      CHECK_CLOSE(0.003 * (8 - k) + 0.004 * k, r.plans[0].time_s, 0, 1e-12);
      search_result_free(&r);
      o.memory_gb -= 1.0 / 1024; /* one MB less: one more layer must checkpoint */
      if (k < 8 && search_run(&cm, &o, &r) == 0) {
        n = 0;
        for (int l = 0; l < 8; l++) n += r.plans[0].layers[l].ckpt;
        CHECK_EQ_INT(k + 1, n);
        search_result_free(&r);
      }
    }
}

/* Two GPUs, no TP/SP/ZeRO-3/checkpointing: dp2 or pp2. A slow allreduce makes pp win. */
static int best_pp(double ar_coe)
{
  CostModel cm;
  synthetic(&cm, 2, 8);
  for (int l = 1; l < PROF_LOGMAX; l++) cm.hw.ar_coe[l][0] = cm.hw.ar_coe[l][1] = ar_coe;
  SearchOptions o;
  search_options_defaults(&o);
  o.space = (StrategySpace){.world = 2, .nlayers = 8, .default_dp_type = DP_DDP, .max_tp = 8, .max_pp = 8, .max_sp = 8,
                            .disable_tp = 1, .disable_sp = 1, .disable_fsdp = 1, .disable_ckpt = 1};
  o.settle_bsz = 16;
  o.memory_gb = 16;
  SearchResult r;
  int pp = search_run(&cm, &o, &r) ? -1 : r.plans[0].task.pp;
  search_result_free(&r);
  return pp;
}

static void test_network(void)
{
  CHECK_EQ_INT(2, best_pp(10.0));   /* 10 ms per MB: gradient sync dominates */
  CHECK_EQ_INT(1, best_pp(1e-6));   /* free network: no bubble beats the pipeline */
}

/* ---- llama2-7b profiles ---- */

static void llama_options(SearchOptions *o, double gb);
static void check_plans(const CostModel *cm, const SearchOptions *o, const SearchResult *r);

static int load_llama_nodes(CostModel *cm, int time_mode, int nodes)
{
  char p[6][512];
  const char *names[6] = {"llama2-7b/computation_profiling_bf16_llama2-7b_all.json",
                          "llama2-7b/memory_profiling_bf16_llama2-7b_all.json",
                          "hardware/allreduce_bandwidth_1nodes_8gpus_per_node.json",
                          "hardware/p2p_bandwidth_1nodes_8gpus_per_node.json", "hardware/overlap_coefficient.json",
                          "hardware/sp_time_1nodes_8gpus_per_node.json"};
  for (int i = 0; i < 6; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
  if (nodes == 2) { /* the 2x8 hardware files; sp_time stays the 1x8 one, as in design §5.2 */
    snprintf(p[2], sizeof p[2], "%s/hardware/allreduce_bandwidth_2nodes_8gpus_per_node.json", dir);
    snprintf(p[3], sizeof p[3], "%s/hardware/p2p_bandwidth_2nodes_8gpus_per_node.json", dir);
  }
  cost_model_defaults(cm);
  cm->world = 8 * nodes; cm->nlayers = 32; cm->hidden = 4096; cm->seq = 2048;
  CostFiles f = {p[0], p[1], p[2], p[3], p[4], p[5], time_mode, PROF_STATIC};
  return cost_model_load(cm, &f);
}

static int load_llama(CostModel *cm, int time_mode) { return load_llama_nodes(cm, time_mode, 1); }

/* Galvatron HEAD's own results on the shipped profiles (design §5.2): 24 GB, 80 GB, 2x8. */
static void test_galvatron_runs(void)
{
  CostModel cm;
  SearchOptions o;
  SearchResult r;
  const double gbs[2] = {24, 80}, want[2] = {4.280045, 3.527189};
  CHECK(load_llama(&cm, PROF_STATIC) == 0);
  for (int i = 0; i < 2; i++) {
    llama_options(&o, gbs[i]);
    CHECK(search_run(&cm, &o, &r) == 0);
    CHECK_CLOSE(want[i], r.plans[0].time_s, 0, 1e-6);
    check_plans(&cm, &o, &r);
    if (i == 0) { /* pp2, TP4, and the one Ulysses-4 layer at the start of stage 2 */
      CHECK_EQ_INT(64, r.plans[0].task.chunks);
      for (int l = 0; l < 32; l++) CHECK_EQ_INT(l == 16 ? 4 : 1, r.plans[0].layers[l].sp);
    } else {
      CHECK_EQ_INT(1, r.plans[0].task.pp);
      CHECK_EQ_INT(8, r.plans[0].task.chunks);
    }
    search_result_free(&r);
  }
  CHECK(load_llama_nodes(&cm, PROF_STATIC, 2) == 0);
  llama_options(&o, 36);
  o.space.world = 16;
  CHECK(search_run(&cm, &o, &r) == 0);
  CHECK_EQ_INT(132, r.tasks);
  CHECK_CLOSE(2.051632, r.plans[0].time_s, 0, 1e-6);
  check_plans(&cm, &o, &r);
  /* layer 0 2-1-8f-c, layers 1-5 2-1-8-c, the rest 2-1-8; ZeRO-3 vocab */
  CHECK_EQ_INT(DP_ZERO3, r.plans[0].layers[0].dp_type);
  for (int l = 0; l < 32; l++) CHECK_EQ_INT(l < 6, r.plans[0].layers[l].ckpt);
  CHECK_EQ_INT(DP_ZERO3, r.plans[0].embed.dp_type);
  search_result_free(&r);
}

static void llama_options(SearchOptions *o, double gb)
{
  search_options_defaults(o);
  o->memory_gb = gb;
  o->threads = 2;
  o->topk = 3;
}

/* Every returned plan, re-evaluated: same time, memory within budget. */
static void check_plans(const CostModel *cm, const SearchOptions *o, const SearchResult *r)
{
  for (int i = 0; i < r->nplans; i++) {
    const SearchPlan *p = &r->plans[i];
    CostPlan cp = {cm->nlayers, p->layers, p->division, p->embed};
    CostResult cr;
    cost_plan_eval(cm, &p->task, &cp, p->buf, &cr);
    CHECK_CLOSE(p->time_s, cr.time_s, 0, 1e-12);
    for (int k = 0; k < p->task.pp; k++) {
      CHECK(cr.mem_mb[k] <= o->memory_gb * 1024);
      CHECK(cr.mem_mb[k] <= p->mem_mb[k] + 1e-6); /* the DP's ceil'd accounting bounds the exact sum */
    }
    if (i) CHECK(p->throughput <= r->plans[i - 1].throughput);
    for (int j = 0; j < i; j++) { /* each plan once */
      const SearchPlan *q = &r->plans[j];
      int same = !memcmp(&p->task, &q->task, sizeof p->task) && !strategy_cmp(&p->embed, &q->embed);
      for (int l = 0; same && l < cm->nlayers; l++) same = !strategy_cmp(&p->layers[l], &q->layers[l]);
      for (int k = 0; same && k < p->task.pp; k++) same = p->division[k] == q->division[k];
      CHECK(!same);
    }
  }
}

static double shipped_time(const CostModel *cm, double *thr)
{
  char path[512];
  snprintf(path, sizeof path, "%s/llama2-7b/galvatron_config_llama2-7b_1nodes_8gpus_per_node_36GB_bf16.json", dir);
  GalConfig g;
  if (prof_config_read(path, &g)) return -1;
  Strategy ls[64];
  int buf = 1;
  for (int l = 0; l < g.nlayers; l++) {
    int t = g.tp[l];
    ls[l] = (Strategy){g.pp_deg, g.use_sp[l] ? 1 : t, g.use_sp[l] ? t : 1, 8 / g.pp_deg / t, DP_DDP, g.ckpt[l], 1, 1};
    if (strategy_sdp(&ls[l]) > 1) ls[l].dp_type = g.dp_type[l] ? DP_ZERO3 : DP_ZERO2;
    if (t > buf) buf = t;
  }
  Strategy e = {g.pp_deg, g.vsp ? 1 : g.vtp, g.vsp ? g.vtp : 1, 8 / g.pp_deg / g.vtp, g.embed_sdp ? DP_ZERO3 : DP_ZERO2, 0, 1, 1};
  CostTask t = {g.pp_deg, g.global_bsz, g.chunks, 1};
  CostPlan p = {g.nlayers, ls, g.pp_division, e};
  CostResult r;
  cost_plan_eval(cm, &t, &p, buf, &r);
  for (int k = 0; k < t.pp; k++) CHECK(r.mem_mb[k] <= 36 * 1024);
  *thr = t.gbsz / r.time_s;
  prof_config_free(&g);
  return r.time_s;
}

static void test_llama(void)
{
  CostModel cm;
  SearchOptions o;
  SearchResult r, rd;
  CHECK(load_llama(&cm, PROF_STATIC) == 0);
  llama_options(&o, 36);
  CHECK(search_run(&cm, &o, &r) == 0);
  CHECK_EQ_INT(122, r.tasks);
  /* Galvatron HEAD's optimum on these inputs (design §2.12): pp2, all 2-2*-2, Ulysses-2 vocab */
  CHECK_CLOSE(3.871011, r.plans[0].time_s, 0, 1e-6);
  CHECK_EQ_INT(2, r.plans[0].task.pp);
  CHECK_EQ_INT(32, r.plans[0].task.chunks);
  CHECK_EQ_INT(2, r.plans[0].embed.sp);
  check_plans(&cm, &o, &r);
  double thr, ts = shipped_time(&cm, &thr);
  CHECK(ts > 0);
  CHECK(r.plans[0].throughput >= thr);
  o.dense = 1;
  o.topk = 1;
  CHECK(search_run(&cm, &o, &rd) == 0);
  CHECK_CLOSE(r.plans[0].time_s, rd.plans[0].time_s, 0, 1e-12);
  search_result_free(&rd);
  search_result_free(&r);
  /* tighter budgets: dense and Pareto agree, plans re-evaluate */
  for (double gb = 16; gb <= 24; gb += 8) {
    llama_options(&o, gb);
    o.settle_bsz = 16;
    CHECK(search_run(&cm, &o, &r) == 0);
    check_plans(&cm, &o, &r);
    o.dense = 1;
    CHECK(search_run(&cm, &o, &rd) == 0);
    CHECK_CLOSE(r.plans[0].time_s, rd.plans[0].time_s, 0, 1e-12);
    check_plans(&cm, &o, &rd);
    search_result_free(&rd);
    search_result_free(&r);
  }
  /* the shipped config came from batch time mode at global batch 16 (design §5.5) */
  CHECK(load_llama(&cm, PROF_BATCH) == 0);
  ts = shipped_time(&cm, &thr);
  llama_options(&o, 36);
  o.settle_bsz = 16;
  CHECK(search_run(&cm, &o, &r) == 0);
  CHECK(r.plans[0].time_s <= ts * (1 + 1e-12));
  printf("llama2-7b 36GB bsz16 batch mode: shipped %.6f s, searched %.6f s\n", ts, r.plans[0].time_s);
  check_plans(&cm, &o, &r);
  search_result_free(&r);
}


/* ---- analytic model from the IR, GPipe memory, physical transitions ---- */

static void test_analytic(void)
{
  Ctx *cx = ctx_new();
  IrModel *m = frontend_load_model(cx, models, "llama2_7b");
  CHECK(m != NULL);
  if (!m) { ctx_free(&cx); return; }
  CostModel cm;
  cost_model_defaults(&cm);
  cm.world = 8; cm.nlayers = (int)m->nblocks; cm.hidden = (int)m->hidden; cm.seq = 2048;
  AnalyticHw hw = {989, 0.45, 360, 45, 8};
  CHECK(cost_analytic_init(&cm, m, &hw) == 0);
  CHECK_EQ_INT(32, cm.nlayers);
  CHECK_CLOSE(202383360 * 4.0 / 1048576, cm.mem.param[0], 0, 1e-9); /* llama2-7b block: 202.4 M parameters */
  CHECK_CLOSE(778.22, cm.mem.param[0], 0, 0.01);                    /* Galvatron's profiled value */
  CHECK_CLOSE(16.0, cm.mem.act_ckpt[0], 0, 1e-9);                   /* bf16 [2048, 4096] boundary */
  double dense = 2.0 * 202383360 * 2048 / (989e12 * 0.45) * 1e3; /* ms per sample, attention excluded */
  CHECK(cm.time.layer_m[0] > dense && cm.time.layer_m[0] < 1.3 * dense);
  SearchOptions o;
  llama_options(&o, 36);
  SearchResult r;
  CHECK(search_run(&cm, &o, &r) == 0);
  check_plans(&cm, &o, &r);
  search_result_free(&r);
  ctx_free(&cx);
}

static void test_gpipe_and_transition(void)
{
  CostModel cm;
  CHECK(load_llama(&cm, PROF_STATIC) == 0);
  CostTask t = {2, 64, 8, 1};
  Strategy s = {2, 2, 1, 2, DP_ZERO2, 0, 1, 1};
  double a0, a1;
  cost_layer_mem(&cm, &t, &s, 0, 0, NULL, &a0);
  cost_layer_mem(&cm, &t, &s, 0, 1, NULL, &a1);
  CHECK_CLOSE(cm.mem.act[0][1] * 4 * 2, a0, 0, 1e-12); /* 1F1B: pp - stage in flight */
  CHECK_CLOSE(cm.mem.act[0][1] * 4 * 1, a1, 0, 1e-12);
  cm.pipeline_1f1b = 0;
  cost_layer_mem(&cm, &t, &s, 0, 1, NULL, &a1);
  CHECK_CLOSE(cm.mem.act[0][1] * 4 * 8, a1, 0, 1e-12); /* GPipe: all chunks in flight */
  Strategy b = {2, 4, 1, 1, DP_DDP, 0, 1, 1};
  double g = cost_transition(&cm, &t, &s, &b, 0);
  cm.transition_physical = 1;
  double ph = cost_transition(&cm, &t, &s, &b, 0);
  CHECK_CLOSE(g / ph, 1e-7 * 1048576 * 1e3, 0, 1e-12); /* Galvatron's units are ~105x the transfer */
  CHECK_CLOSE(0.75 * (64.0 / 8 / 1) * 2048 * 4096 * 2 / 1048576 * cm.hw.ar_coe[2][1] * 1e-3, ph, 0, 1e-12);
}

int main(int argc, char **argv)
{
  dir = argc > 1 ? argv[1] : "tests/data/galvatron";
  models = argc > 2 ? argv[2] : "models/llama.gvm";
  test_space();
  test_bsz();
  test_ckpt_k();
  test_network();
  test_llama();
  test_galvatron_runs();
  test_analytic();
  test_gpipe_and_transition();
  return tu_report("search");
}
