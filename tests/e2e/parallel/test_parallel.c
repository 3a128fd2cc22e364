/* test_parallel.c - every parallel strategy reproduces the single-rank run: the tiny
 * GPT-2- and LLaMA-style models, lowered for each strategy of the table, trained under
 * mpirun for 10 steps on the fixture batch; the losses must match the single-rank run
 * and the PyTorch fixture to 1e-5 relative (fp32 reassociation across ranks changes the
 * last bits only: the gradient sums are split over ranks).
 * Usage: test_parallel BUILD_DIR FIXTURE_DIR MPIEXEC [TINY_GVM]; GV_PARALLEL_ONLY=SUBSTRING runs
 * only the strategies whose name contains it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_util.h"
#include "frontend.h"
#include "testutil.h"
#include "tiny_ir.h"

typedef struct Strategy {
  const char *name;
  int world, pp;
  int64_t micro_batch;
  int ckpt;           /* 1: checkpoint every block; 2: only the first half of the blocks */
  int one_f_one_b, chunks;
  int zero;           /* 0 ddp, 2 ZeRO-2, 3 ZeRO-3 blocks, 4: ZeRO-3 on the second half of the blocks only */
  int tp;
  int sp;             /* 1: Megatron-SP; 2: Ulysses (tp is then the Ulysses degree) */
  int vtp;            /* vocabulary parallel embedding and head over the tp group */
  int ltp;            /* > 0: per-layer tp, the first half of the blocks on tp, the second half on ltp */
  int no_async;       /* reduce gradients after every micro-batch (no_async_grad_reduce) */
} Strategy;

/* The fixture batch has 2 sequences: micro-batch 1 gives 2 micro-batches per step. */
static const Strategy strategies[] = {
  {"dp2", 2, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0},
  {"dp2_ckpt", 2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
  {"pp2_gpipe", 2, 2, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0},
  {"pp2_1f1b", 2, 2, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0},
  {"pp2_1f1b_ckpt", 2, 2, 1, 1, 1, 2, 0, 0, 0, 0, 0, 0},
  {"pp2_dp2", 4, 2, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0},
  {"dp2_zero2", 2, 1, 1, 0, 1, 1, 2, 0, 0, 0, 0, 0},
  {"pp2_dp2_zero2_ckpt", 4, 2, 1, 1, 1, 1, 2, 0, 0, 0, 0, 0},
  {"tp2", 2, 1, 1, 0, 1, 2, 0, 2, 0, 0, 0, 0},
  {"tp2_dp2", 4, 1, 1, 0, 1, 1, 0, 2, 0, 0, 0, 0},
  {"pp2_tp2_ckpt", 4, 2, 1, 1, 1, 2, 0, 2, 0, 0, 0, 0},
  {"tp2_dp2_zero2", 4, 1, 1, 0, 1, 1, 2, 2, 0, 0, 0, 0},
  {"pp2_tp2_dp2_zero2_ckpt_half", 8, 2, 1, 2, 1, 1, 2, 2, 0, 0, 0, 0},
  {"tp2_sp", 2, 1, 1, 0, 1, 2, 0, 2, 1, 0, 0, 0},
  {"tp2_sp_dp2_ckpt", 4, 1, 1, 1, 1, 1, 0, 2, 1, 0, 0, 0},
  {"pp2_tp2_sp", 4, 2, 1, 0, 1, 2, 0, 2, 1, 0, 0, 0},
  {"tp2_vtp2", 2, 1, 1, 0, 1, 2, 0, 2, 0, 1, 0, 0},
  {"tp2_sp_vtp2_dp2", 4, 1, 1, 0, 1, 1, 0, 2, 1, 1, 0, 0},
  {"pp2_tp2_vtp2_zero2", 4, 2, 1, 0, 1, 2, 2, 2, 0, 1, 0, 0},
  {"ulysses2", 2, 1, 1, 0, 1, 2, 0, 2, 2, 0, 0, 0},
  {"ulysses2_dp2_ckpt", 4, 1, 1, 1, 1, 1, 0, 2, 2, 0, 0, 0},
  {"pp2_ulysses2_zero2", 4, 2, 1, 0, 1, 2, 2, 2, 2, 0, 0, 0},
  {"dp2_zero3", 2, 1, 1, 0, 1, 1, 3, 0, 0, 0, 0, 0},
  {"tp2_dp2_zero3_ckpt", 4, 1, 1, 1, 1, 1, 3, 2, 0, 0, 0, 0},
  {"dp2_zero3_ckpt", 2, 1, 1, 1, 1, 1, 3, 0, 0, 0, 0, 0},
  {"pp2_dp2_zero3", 4, 2, 1, 0, 1, 1, 3, 0, 0, 0, 0, 0},
  {"dp2_zero3_half", 2, 1, 1, 0, 1, 1, 4, 0, 0, 0, 0, 0},
  {"pp2_tp2_dp2_zero3_half_ckpt_half", 8, 2, 1, 2, 1, 1, 4, 2, 0, 0, 0, 0},
  /* per-layer tp: a block of degree t runs on (base/t)ths of the micro-batch, so it is 2 */
  {"ltp_tp2_then_tp1", 2, 1, 2, 0, 1, 1, 0, 2, 0, 0, 1, 0},
  {"ltp_tp1_then_tp2_ckpt", 2, 1, 2, 1, 1, 1, 0, 1, 0, 0, 2, 0},
  {"ltp_pp2_tp2_then_tp1_ckpt_half", 4, 2, 2, 2, 1, 1, 0, 2, 0, 0, 1, 0},
  {"ltp_pp2_gpipe_tp1_then_tp2", 4, 2, 2, 0, 0, 1, 0, 1, 0, 0, 2, 0},
  /* gradients reduced after every micro-batch instead of overlapped with the last one */
  {"dp2_no_async", 2, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1},
  {"pp2_tp2_dp2_zero3_half_no_async", 8, 2, 1, 0, 1, 1, 4, 2, 0, 0, 0, 1},
  {"ltp_tp2_then_tp1_no_async", 2, 1, 2, 0, 1, 1, 0, 2, 0, 0, 1, 1},
};

/* Calls of fn in the program (every stage). */
static int count_calls(const Lowered *lw, const char *fn)
{
  int n = 0;
  for (int f = 0; f < lw->prog->nfuncs; f++)
    for (int c = 0; c < lw->prog->funcs[f].ncalls; c++)
      n += !strcmp(lw->prog->funcs[f].calls[c].fn, fn);
  return n;
}

static int run_strategy(IrModel *m, const Strategy *s, const char *dir, const char *fx, const char *mpiexec,
                        double *losses, Arena *a)
{
  unsigned char *flags = ARENA_ARRAY(a, unsigned char, m->nlayers);
  unsigned char *z3 = ARENA_ARRAY(a, unsigned char, m->nlayers);
  int *ltp = ARENA_ARRAY(a, int, m->nlayers), base = s->ltp > s->tp ? s->ltp : s->tp;
  for (int i = 0, blk = 0; i < m->nlayers; i++) {
    ltp[i] = base;
    if (m->layers[i].kind == IR_LAYER_BLOCK) {
      flags[i] = s->ckpt == 1 || (s->ckpt == 2 && blk < (int)m->nblocks / 2);
      ltp[i] = blk < (int)m->nblocks / 2 ? s->tp : s->ltp;
      z3[i] = blk++ >= (int)m->nblocks / 2;
    }
  }
  LowerOptions o = {.micro_batch = s->micro_batch, .seq = 32, .world = s->world, .pp = s->pp, .checkpoint = flags,
                    .pipeline_1f1b = s->one_f_one_b, .chunks = s->chunks, .zero = s->zero == 4 ? 3 : s->zero,
                    .zero3_layers = s->zero == 4 ? z3 : NULL,
                    .tp = s->ltp ? base : s->tp ? s->tp : 1, .layer_tp = s->ltp ? ltp : NULL, .tp_consec = 1, .sp = s->sp == 1, .ulysses = s->sp == 2,
                    .vtp = s->vtp, .no_async_grad_reduce = s->no_async};
  const char *err = NULL;
  Lowered *lw = lower_model(a, m, &o, &err);
  if (!lw) {
    fprintf(stderr, "%s/%s: lower: %s\n", m->name, s->name, err);
    return 1;
  }
  if (s->tp > 1 && s->sp != 2 && !s->ltp) { /* tensor parallelism must really split the blocks' weights */
    LowerOptions o1 = o;
    o1.tp = 1;
    o1.world = s->world / s->tp;
    o1.sp = o1.ulysses = o1.vtp = 0;
    Lowered *one = lower_model(a, m, &o1, &err);
    if (!one || lw->plan->arena_bytes[PLAN_PARAMS] >= one->plan->arena_bytes[PLAN_PARAMS]) {
      fprintf(stderr, "%s/%s: tp=%d did not shrink the parameters\n", m->name, s->name, s->tp);
      return 1;
    }
  }
  if (s->ltp && (count_calls(lw, "gv_gen_rows_gather") < 1 || count_calls(lw, "gv_gen_rows_slice") < 1)) {
    fprintf(stderr, "%s/%s: per-layer tp without row exchanges between the layers\n", m->name, s->name);
    return 1;
  }
  if (s->no_async && count_calls(lw, "gv_prog_grad_reduce") != s->pp) {
    fprintf(stderr, "%s/%s: no_async_grad_reduce did not reach every stage\n", m->name, s->name);
    return 1;
  }
  char bin[1024], launcher[1024];
  snprintf(bin, sizeof bin, "%s/%s_%s", dir, m->name, s->name);
  if (e2e_build(lw, bin, 0))
    return 1;
  snprintf(launcher, sizeof launcher, "%s -n %d", mpiexec, s->world);
  char *log = e2e_train(s->world > 1 ? launcher : NULL, bin, fx, NULL, NULL, losses);
  /* every rank allocates exactly its stage's plan (the runtime checks it; the log says so) */
  int planned = 0;
  for (const char *p = log; (p = strstr(p, "= planned)")); p++)
    planned++;
  if (planned != s->world) {
    fprintf(stderr, "%s/%s: %d of %d ranks logged allocated = planned\n", m->name, s->name, planned, s->world);
    free(log);
    return 1;
  }
  free(log);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc < 4) {
    fprintf(stderr, "usage: test_parallel BUILD_DIR FIXTURE_DIR MPIEXEC\n");
    return 2;
  }
  Arena *a = arena_new(1 << 20);
  IrModel *models[2] = {tiny_ir_gpt(a), tiny_ir_llama(a)};
  Ctx *cx = NULL;
  if (argc > 4) { /* the models of examples/tiny.gvm, through the front end */
    cx = ctx_new();
    models[0] = frontend_load_model(cx, argv[4], "tiny_gpt");
    models[1] = frontend_load_model(cx, argv[4], "tiny_llama");
    if (!models[0] || !models[1])
      return 1;
  }
  for (int mi = 0; mi < 2; mi++) {
    IrModel *m = models[mi];
    char fx[1024];
    snprintf(fx, sizeof fx, "%s/%s.bin", argv[2], m->name);
    double ref[STEPS], got[STEPS];
    Strategy single = {"single", 1, 1, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0}; /* two micro-batches of 1: gradient accumulation */
    CHECK(run_strategy(m, &single, argv[1], fx, argv[3], ref, a) == 0);
    for (size_t k = 0; k < sizeof strategies / sizeof strategies[0]; k++) {
      const Strategy *s = &strategies[k];
      const char *only = getenv("GV_PARALLEL_ONLY"); /* a substring of the strategies to run (debugging) */
      if (only && !strstr(s->name, only))
        continue;
      memset(got, 0, sizeof got);
      CHECK(run_strategy(m, s, argv[1], fx, argv[3], got, a) == 0);
      int bad = 0;
      for (int i = 0; i < STEPS; i++) {
        CHECK_CLOSE(ref[i], got[i], 0, 1e-5);
        bad += !(fabs(ref[i] - got[i]) <= 1e-5 * fabs(ref[i]));
      }
      printf("%-10s %-8s loss %.9g -> %.9g (single rank %.9g -> %.9g)%s\n", m->name, s->name, got[0],
             got[STEPS - 1], ref[0], ref[STEPS - 1], bad ? "  MISMATCH" : "");
    }
  }
  arena_free(&a);
  ctx_free(&cx);
  tu_failures += e2e_failures;
  tu_checks += e2e_checks;
  return tu_report("e2e_parallel");
}
