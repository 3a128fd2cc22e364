/* test_parplan.c - the resolved plan (compiler/parplan.h) on tiny_gpt (embedding, two
 * blocks, final norm, head): the degrees parplan_resolve derives once (base tp, each row's
 * dp and stage, chunks, the micro-batch from the global batch), the impossible plans and
 * the setting each is about, the settings door's per-layer lists, and context parallelism. */
#include "ctx.h"
#include "frontend.h"
#include "parplan.h"
#include "parplan_cli.h"
#include "testutil.h"

static ParPlan plan(int world, int pp, int tp)
{
  ParPlan p;
  parplan_defaults(&p);
  p.world = world, p.pp = pp, p.tp = tp, p.seq = 16;
  return p;
}

static void derived(Arena *a, const IrModel *m)
{
  ParError e;
  ParPlan p = plan(8, 2, 2);
  CHECK_EQ_INT(0, parplan_resolve(a, m, &p, NULL, &e));
  CHECK_EQ_INT(2, p.chunks);     /* default: pp */
  CHECK_EQ_INT(1, p.micro_batch);
  CHECK_EQ_INT(2, p.dp);
  int stages[5] = {0, 0, 1, 1, 1};
  for (int i = 0; i < m->nlayers; i++) {
    CHECK_EQ_INT(stages[i], p.layer[i].stage);
    CHECK_EQ_INT(2, p.layer[i].tp);
    CHECK_EQ_INT(2, p.layer[i].dp);
  }
  ParPlan v = plan(4, 1, 2); /* a vocabulary degree above the blocks' becomes the base */
  v.vtp = 4, v.micro_batch = 2;      /* a block of degree 2 runs on half of its group's micro-batch */
  CHECK_EQ_INT(0, parplan_resolve(a, m, &v, NULL, &e));
  CHECK_EQ_INT(4, v.tp);
  CHECK(v.tp_per_layer);
  CHECK_EQ_INT(2, v.layer[1].dp);    /* a block of degree 2 */
  CHECK_EQ_INT(1, v.layer[0].dp);    /* the embedding on 4 */
  ParPlan h = plan(4, 1, 2);
  h.vtp = 4;                         /* ... which one sample cannot be */
  CHECK_EQ_INT(1, parplan_resolve(a, m, &h, NULL, &e));
  CHECK(e.msg && strstr(e.msg, "tp=2 runs on 1/2 of its group's micro-batch of 1 samples"));
  ParPlan g = plan(4, 1, 1);         /* the micro-batch follows from the global batch */
  g.chunks = 2, g.global_batch = 16;
  CHECK_EQ_INT(0, parplan_resolve(a, m, &g, NULL, &e));
  CHECK_EQ_INT(2, g.micro_batch);
  ParPlan u = plan(2, 1, 2);         /* Ulysses on the blocks: their rows split, a sequence degree */
  u.ulysses = 1;
  CHECK_EQ_INT(0, parplan_resolve(a, m, &u, NULL, &e));
  Strategy s = parplan_strategy(m, &u, 1);
  CHECK_EQ_INT(1, s.tp);
  CHECK_EQ_INT(2, s.sp);
  CHECK_EQ_INT(PAR_SP_NONE, u.layer[0].sp);
  ParPlan q = plan(2, 1, 2);         /* vsp: the vocabulary layers on token rows of the tp group */
  q.vsp = 2;
  CHECK_EQ_INT(0, parplan_resolve(a, m, &q, NULL, &e));
  CHECK_EQ_INT(PAR_SP_VOCAB, q.layer[0].sp);
  CHECK_EQ_INT(PAR_SP_VOCAB, q.layer[4].sp);
  CHECK_EQ_INT(PAR_SP_NONE, q.layer[1].sp);
  CHECK(par_vsp_replicated(a, m, &q) == NULL);
  s = parplan_strategy(m, &q, 0);
  CHECK_EQ_INT(1, s.tp);
  CHECK_EQ_INT(2, s.sp);
  ParPlan o = plan(4, 1, 4);         /* ... replicated where the group does not divide the rows */
  o.vsp = 2, o.seq = 15;
  CHECK_EQ_INT(0, parplan_resolve(a, m, &o, NULL, &e));
  CHECK_EQ_INT(PAR_SP_NONE, o.layer[0].sp);
  CHECK(par_vsp_replicated(a, m, &o) && strstr(par_vsp_replicated(a, m, &o), "15 token rows are not divisible"));
  ParPlan t = plan(1, 1, 1);         /* ... and without tp nothing to split: every rank its own samples */
  t.vsp = 2;
  CHECK_EQ_INT(0, parplan_resolve(a, m, &t, NULL, &e));
  CHECK_EQ_INT(PAR_SP_NONE, t.layer[0].sp);
  CHECK(par_vsp_replicated(a, m, &t) == NULL);
  ParPlan c = plan(4, 1, 2);         /* ... not yet with context parallelism */
  c.vsp = 2, c.cp = 2;
  CHECK_EQ_INT(1, parplan_resolve(a, m, &c, NULL, &e));
  CHECK(e.msg && strstr(e.msg, "vocabulary sequence parallelism (vsp) with context parallelism"));
}

static void refused(Arena *a, const IrModel *m)
{
  static const ParSpelling cli = {"--pp_deg", "--global_tp_deg", "--global_cp_deg", "--global_ep_deg",
                                  "--global_tp_of_ep_deg"};
  ParError e;
  ParPlan w = plan(6, 4, 1);
  CHECK_EQ_INT(1, parplan_resolve(a, m, &w, &cli, &e));
  CHECK_EQ_INT(PAR_KEY_NONE, e.key);
  CHECK_STR("the world of 6 ranks is not divisible by --pp_deg 4 x --global_tp_deg 1", e.msg);
  ParPlan s = plan(4, 4, 1);
  CHECK_EQ_INT(1, parplan_resolve(a, m, &s, NULL, &e));
  CHECK_EQ_INT(PAR_KEY_PP, e.key);
  CHECK_STR("pp=4 needs at least 4 blocks, tiny_gpt has 2", e.msg);
  ParPlan v = plan(6, 1, 2);
  v.vtp = 3;
  CHECK_EQ_INT(1, parplan_resolve(a, m, &v, NULL, &e));
  CHECK_EQ_INT(PAR_KEY_VTP, e.key);
  ParPlan g = plan(4, 1, 1);
  g.chunks = 2, g.global_batch = 6;
  CHECK_EQ_INT(1, parplan_resolve(a, m, &g, NULL, &e));
  CHECK_EQ_INT(PAR_KEY_GLOBAL_BATCH, e.key);
  CHECK_STR("6 is not divisible by chunks 2 x dp 4", e.msg);
  ParPlan d = plan(2, 2, 1);
  int division[2] = {1, 3};
  d.division = division;
  CHECK_EQ_INT(1, parplan_resolve(a, m, &d, NULL, &e));
  CHECK_EQ_INT(PAR_KEY_DIVISION, e.key);
}

/* The command line's settings for 4 ranks and one more KEY VALUE. */
static ParSettings four_ranks_with(Arena *a, const char *key, const char *value)
{
  ParSettings s;
  par_settings_init(&s, "tiny_gpt");
  par_settings_add(a, &s, "num_gpus_per_node", "4", (Loc){-1, 0, 0, 0});
  par_settings_add(a, &s, key, value, (Loc){-1, 0, 0, 0});
  return s;
}

/* Context parallelism: one plan-level degree; dp counts the ranks that read different
 * samples, gradients span dp x cp; the settings door and the refusals. */
static void context_parallel(Ctx *cx, Arena *a, const IrModel *m)
{
  static const ParSpelling cli = {"--pp_deg", "--global_tp_deg", "--global_cp_deg", "--global_ep_deg",
                                  "--global_tp_of_ep_deg"};
  ParError e;
  ParPlan p = plan(8, 1, 2);
  p.cp = 2, p.chunks = 1, p.global_batch = 8;
  CHECK_EQ_INT(0, parplan_resolve(a, m, &p, NULL, &e));
  CHECK_EQ_INT(2, p.dp);
  CHECK_EQ_INT(4, p.micro_batch);      /* 8 samples over dp 2: cp ranks share theirs */
  CHECK_EQ_INT(2, p.layer[1].dp);
  CHECK_EQ_INT(4, par_grad_ranks(&p, &p.layer[1]));
  Strategy st = parplan_strategy(m, &p, 1);
  CHECK_EQ_INT(2, st.cp);
  CHECK_EQ_INT(8, strategy_sdp(&st) * strategy_tp_sp(&st));
  ParPlan w = plan(6, 1, 1);
  w.cp = 4;
  CHECK_EQ_INT(1, parplan_resolve(a, m, &w, &cli, &e));
  CHECK_STR("the 6 data-parallel ranks of a stage (world 6 / pp 1 / tp 1) are not divisible by --global_cp_deg 4", e.msg);
  ParPlan q = plan(3, 1, 1);
  q.cp = 3;
  CHECK_EQ_INT(1, parplan_resolve(a, m, &q, NULL, &e));
  CHECK(e.msg && strstr(e.msg, "a sequence of 16 tokens is not divisible by 2 x cp 3"));
  ParPlan b = plan(2, 1, 1);
  b.cp = 2, b.bf16 = 1;
  CHECK_EQ_INT(1, parplan_resolve(a, m, &b, NULL, &e));
  CHECK_STR("context parallelism (cp 2) does not combine with bf16 mixed precision yet", e.msg);
  ParSettings s = four_ranks_with(a, "global_cp_deg", "2");
  ParPlan c;
  CHECK_EQ_INT(0, parplan_from_settings(cx, a, m, &s, &c));
  c.seq = 16;
  CHECK_EQ_INT(0, parplan_resolve(a, m, &c, NULL, &e));
  CHECK_EQ_INT(2, c.cp);
  CHECK_EQ_INT(2, c.dp);
}

/* Expert parallelism through the settings door, and its refusals on a model without
 * experts (the MoE models' checks: tests/golden/lower_diag, tests/e2e/moe). */
static void expert_parallel(Ctx *cx, Arena *a, const IrModel *m)
{
  static const ParSpelling cli = {"--pp_deg", "--global_tp_deg", "--global_cp_deg", "--global_ep_deg",
                                  "--global_tp_of_ep_deg"};
  ParSettings s = four_ranks_with(a, "global_ep_deg", "2");
  ParPlan p;
  ParError e;
  CHECK_EQ_INT(0, parplan_from_settings(cx, a, m, &s, &p));
  CHECK_EQ_INT(2, p.ep);
  CHECK_EQ_INT(1, parplan_resolve(a, m, &p, &cli, &e));
  CHECK_STR("--global_ep_deg 2: tiny_gpt has no mixture-of-experts layer (grouped_linear) to spread", e.msg);
  ParPlan d = plan(4, 1, 1);
  d.ep = 8;
  CHECK_EQ_INT(1, parplan_resolve(a, m, &d, NULL, &e));
  CHECK(e.msg && strstr(e.msg, "ep 8 must divide the 4 data-parallel ranks of a stage"));
  ParPlan c = plan(4, 1, 1);
  c.ep = 2, c.cp = 2;
  CHECK_EQ_INT(1, parplan_resolve(a, m, &c, NULL, &e));
  CHECK_STR("expert parallelism (ep 2) does not combine with context parallelism yet", e.msg);
  ParPlan one = plan(4, 1, 1);
  CHECK_EQ_INT(0, parplan_resolve(a, m, &one, NULL, &e));
  CHECK_EQ_INT(1, par_ep(&one));
  CHECK_EQ_INT(4, par_expert_grad_ranks(&one, &one.layer[1]));
}

static void settings(Ctx *cx, Arena *a, const IrModel *m)
{
  static const char *const kv[][2] = {{"num_gpus_per_node", "2"}, {"default_dp_type", "zero2"},
                                      {"zero3_layers", "layers.1"}, {"global_checkpoint", "1"}};
  ParSettings s;
  par_settings_init(&s, "tiny_gpt");
  for (int i = 0; i < 4; i++)
    par_settings_add(a, &s, kv[i][0], kv[i][1], (Loc){-1, 0, 0, 0});
  ParPlan p;
  ParError e;
  CHECK_EQ_INT(0, parplan_from_settings(cx, a, m, &s, &p));
  CHECK_EQ_INT(0, parplan_resolve(a, m, &p, NULL, &e));
  CHECK_EQ_INT(2, p.world);
  CHECK(p.any_zero3);
  CHECK_EQ_INT(DP_ZERO2, p.layer[1].dp_type);  /* the rest keeps the default, per parameter */
  CHECK_EQ_INT(DP_ZERO3, p.layer[2].dp_type);
  CHECK_EQ_INT(DP_ZERO2, p.layer[0].dp_type);
  CHECK(p.layer[1].ckpt && p.layer[2].ckpt && !p.layer[0].ckpt && !p.layer[4].ckpt);
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: test_parplan TINY_GVM\n");
    return 2;
  }
  Ctx *cx = ctx_new();
  const IrModel *m = frontend_load_model(cx, argv[1], "tiny_gpt");
  CHECK(m != NULL && m->nlayers == 5);
  if (m && m->nlayers == 5) {
    Arena *a = arena_new(1 << 16);
    derived(a, m);
    refused(a, m);
    settings(cx, a, m);
    context_parallel(cx, a, m);
    expert_parallel(cx, a, m);
    arena_free(&a);
  }
  ctx_free(&cx);
  return tu_report("parplan");
}
