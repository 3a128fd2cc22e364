/* test_bf16.c - bf16 mixed precision (gvc compile --mixed_precision bf16) end to end: the
 * tiny GPT-2- and LLaMA-style models of examples/tiny.gvm, lowered with bf16 storage and
 * fp32 master weights, built through both emitters and trained on the PyTorch fixture.
 *
 *  - The plan: parameters and gradients take half the fp32 program's bytes, the optimizer
 *    arena 1.5x (m, v and the fp32 master), kept activations at most 0.6x (the norm and
 *    attention statistics stay fp32).
 *  - Step 0 against the fixture (computed in fp64 from the same fp32 weights): the weights
 *    are rounded to bf16 (relative error 2^-9), every op computes in fp32 and rounds its
 *    output once, so errors of a few 2^-9 accumulate through the layers. Bounds: loss 1e-3
 *    relative (seen: 4e-6, the per-token errors average out); logits 2e-2 of max |ref|
 *    (seen 4e-3 and 6e-3: one to two bf16 roundings of the largest logit); every gradient
 *    1e-1 of its tensor's max |ref| (seen at most 0.026: a bf16 gradient carries 3
 *    significant digits and sums rounded products). The logits must also be off by more
 *    than 1e-4, or the program is not running in bf16 at all. A wrong dtype anywhere (bf16
 *    bits read as f32 or the reverse) gives errors of order 1 or NaN.
 *  - The 10-step loss curve against the fixture's fp64 curve: 5e-3 relative per step (seen
 *    5e-4; the fp32 master weights take the full AdamW update).
 *  - The C and LLVM binaries give bit-identical losses; a checkpoint taken at step 5 and
 *    resumed gives the uninterrupted run's losses bit for bit (the fp32 master is saved; the
 *    bf16 parameters are its rounding); every run allocates exactly its plan. Without ZeRO
 *    a checkpoint crosses precisions: the fp32 program resumes from the bf16 one and the
 *    reverse, both staying within the curve's bound of the fixture.
 *  - Multi-rank (under mpirun, when built with MPI): ddp, ZeRO-2, ZeRO-3, tp, tp +
 *    sequence parallel, Ulysses, vocabulary tp and 1F1B pipeline in bf16 reproduce the
 *    single-rank bf16 curve to PARALLEL_RTOL = 1e-3 (seen at most 1.1e-4): their bf16
 *    gradient sums are rounded in another order (each partial sum is rounded to bf16
 *    before it is added), and tp splits the bf16 products differently. ZeRO-2 and
 *    ZeRO-3 also resume from a checkpoint bit for bit (shards of bf16 parameters and of the
 *    fp32 master weights).
 *  - A bf16 binary run with --mixed_precision fp32 is refused with the reason.
 * GV_BF16_DEVICE=cuda runs every training on the GPU (ctest e2e_bf16_cuda, label gpu; exit
 * 77 without one): the same bounds, the CUDA kernels' own rounding against the fixture.
 * Usage: test_bf16 BUILD_DIR FIXTURE_DIR TINY_GVM [MPIEXEC] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_util.h"
#include "frontend.h"
#include "gvrt.h"
#include "testutil.h"

#define LOSS0_RTOL 1e-3
#define CURVE_RTOL 5e-3
#define PARALLEL_RTOL 1e-3

/* " --device cuda" under GV_BF16_DEVICE=cuda, else "". */

/* BIN.ckpt removed before a run saves into it (a folder left by an earlier build of the test
 * may hold another format or step). */
static void fresh_ckpt(const char *bin)
{
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s.ckpt'", bin);
  CHECK(system(cmd) == 0);
}

static const char *device(void)
{
  const char *d = getenv("GV_BF16_DEVICE");
  return d && !strcmp(d, "cuda") ? " --device cuda" : "";
}

static Lowered *lower_with(Arena *a, const IrModel *m, ParPlan o, int bf16, const char **err)
{
  o.bf16 = bf16;
  LowerError e;
  Lowered *lw = lower_model(a, m, &o, &e);
  *err = e.msg;
  return lw;
}

/* The bf16 plan against the fp32 one. */
static void check_plan(const IrModel *m, const Lowered *f, const Lowered *b)
{
  const int64_t *fa = f->plan->arena_bytes, *ba = b->plan->arena_bytes;
  double kept = (double)plan_kept_activation_bytes(b->plan) / (double)plan_kept_activation_bytes(f->plan);
  CHECK(ba[PLAN_PARAMS] <= fa[PLAN_PARAMS] / 2 + 64 * 64);  /* 64-byte alignment per buffer */
  CHECK(ba[PLAN_GRADS] <= fa[PLAN_GRADS] / 2 + 64 * 64);
  CHECK(ba[PLAN_OPTIM] >= fa[PLAN_OPTIM] * 3 / 2 - 64 * 64 && ba[PLAN_OPTIM] <= fa[PLAN_OPTIM] * 3 / 2 + 64 * 64);
  CHECK(kept <= 0.6);
  printf("%-10s plan bf16/fp32: params %.3f, grads %.3f, optimizer %.3f, kept activations %.3f\n", m->name,
         (double)ba[PLAN_PARAMS] / (double)fa[PLAN_PARAMS], (double)ba[PLAN_GRADS] / (double)fa[PLAN_GRADS],
         (double)ba[PLAN_OPTIM] / (double)fa[PLAN_OPTIM], kept);
}

static int same_losses(const double *a, const double *b, int n)
{
  for (int i = 0; i < n; i++)
    if (a[i] != b[i])
      return 0;
  return 1;
}

/* Single rank: fixture comparison, emitters, checkpoint resume, the precision flag. */
static void run_single(const IrModel *m, const char *dir, const char *fx, double *curve, Arena *a)
{
  struct gv_tf ref;
  char err[512], bin[1024], lbin[1024], dump[1100], extra[2300];
  if (gv_tf_read(&ref, fx, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    tu_failures++;
    return;
  }
  ParPlan o = {.micro_batch = 2, .seq = 32, .world = 1, .pp = 1, .chunks = 1};
  const char *lerr = NULL;
  Lowered *f = lower_with(a, m, o, 0, &lerr), *b = lower_with(a, m, o, 1, &lerr);
  CHECK(f && b);
  if (!f || !b) {
    fprintf(stderr, "lower: %s\n", lerr);
    return;
  }
  check_plan(m, f, b);
  snprintf(bin, sizeof bin, "%s/%s_bf16_c", dir, m->name);
  snprintf(lbin, sizeof lbin, "%s/%s_bf16_llvm", dir, m->name);
  snprintf(dump, sizeof dump, "%s.dump", bin);
  CHECK(e2e_build(b, bin, 1) == 0);
  CHECK(e2e_build(b, lbin, 0) == 0);
  double c[STEPS], l[STEPS], part[STEPS];
  snprintf(extra, sizeof extra, "--mixed_precision bf16%s", device());
  char *log = e2e_train(NULL, bin, fx, dump, extra, c);
  CHECK(strstr(log, "= planned)") != NULL);
  free(log);
  free(e2e_train(NULL, lbin, fx, NULL, device(), l));
  CHECK(same_losses(c, l, STEPS));
  const struct e2e_tol tol = {LOSS0_RTOL, 2e-2, 1e-1, 1e-6};
  double seen[3];
  e2e_compare_dump_tol(m, dump, &ref, &tol, seen);
  CHECK(seen[1] > 1e-4); /* the logits really are bf16 (an fp32 program is within 1e-5 of the fixture) */
  const struct gv_tf_record *rl = gv_tf_find(&ref, "losses");
  double worst = 0;
  for (int s = 0; rl && s < STEPS; s++) {
    double want = ((double *)rl->data)[s], d = fabs(c[s] - want) / fabs(want);
    CHECK(d <= CURVE_RTOL);
    worst = d > worst ? d : worst;
  }
  CHECK(rl != NULL);
  memcpy(curve, c, sizeof c);
  /* resume: 5 steps, save, then the rest from the checkpoint */
  fresh_ckpt(bin);
  snprintf(extra, sizeof extra, "--lr_decay_iters %d --save %s.ckpt%s", STEPS, bin, device());
  free(e2e_train_n(NULL, bin, fx, NULL, extra, 5, part));
  snprintf(extra, sizeof extra, "--load %s.ckpt --iters %d%s", bin, STEPS, device()); /* the last --iters counts */
  double resumed[STEPS];
  char *rlog = e2e_train_n(NULL, bin, fx, NULL, extra, STEPS - 5, resumed);
  int exact = 1;
  for (int s = 0; s < STEPS - 5; s++)
    exact &= resumed[s] == c[5 + s];
  CHECK(exact);
  free(rlog);
  /* across precisions (no ZeRO): the fp32 program resumes from the bf16 checkpoint (its
   * master weights), and the bf16 program from an fp32 one; both stay on the fixture's curve */
  char fbin[1100];
  double cross[2][STEPS], cross_worst = 0;
  snprintf(fbin, sizeof fbin, "%s/%s_fp32_c", dir, m->name);
  CHECK(e2e_build(f, fbin, 1) == 0);
  snprintf(extra, sizeof extra, "--load %s.ckpt --iters %d%s", bin, STEPS, device());
  free(e2e_train_n(NULL, fbin, fx, NULL, extra, STEPS - 5, cross[0]));
  fresh_ckpt(fbin);
  snprintf(extra, sizeof extra, "--lr_decay_iters %d --save %s.ckpt%s", STEPS, fbin, device());
  free(e2e_train_n(NULL, fbin, fx, NULL, extra, 5, part));
  snprintf(extra, sizeof extra, "--load %s.ckpt --iters %d%s", fbin, STEPS, device());
  free(e2e_train_n(NULL, bin, fx, NULL, extra, STEPS - 5, cross[1]));
  for (int k = 0; rl && k < 2; k++)
    for (int s = 0; s < STEPS - 5; s++) {
      double want = ((double *)rl->data)[5 + s], d = fabs(cross[k][s] - want) / fabs(want);
      CHECK(d <= CURVE_RTOL);
      cross_worst = d > cross_worst ? d : cross_worst;
    }
  /* the training binary refuses another precision than it was compiled for */
  char cmd[2300], out[4096] = "";
  snprintf(cmd, sizeof cmd, "GV_COMM=self %s --mixed_precision fp32 --iters 1 2>&1", bin);
  FILE *p = popen(cmd, "r");
  size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
  out[n] = 0;
  int rc = p ? pclose(p) : 0;
  CHECK(rc != 0 && strstr(out, "compiled for bf16") != NULL);
  printf("%-10s bf16 step 0 vs fp64 fixture: loss %.2g, logits %.2g, worst gradient %.2g (of max |ref|); 10-step "
         "curve within %.2g; C = LLVM %s; resume %s; resumed across precisions within %.2g of the curve\n", m->name,
         seen[0], seen[1], seen[2], worst, same_losses(c, l, STEPS) ? "bit-identical" : "DIFFER",
         exact ? "exact" : "DIFFERS", cross_worst);
  gv_tf_free(&ref);
}

typedef struct Par { const char *name; int world, pp, tp, sp, ulysses, vtp, zero, resume; } Par;

static const Par pars[] = {
  {"dp2", 2, 1, 1, 0, 0, 0, 0, 0},       {"dp2_zero2", 2, 1, 1, 0, 0, 0, 2, 1}, {"dp2_zero3", 2, 1, 1, 0, 0, 0, 3, 1},
  {"tp2", 2, 1, 2, 0, 0, 0, 0, 0},       {"tp2_sp", 2, 1, 2, 1, 0, 0, 0, 0},    {"ulysses2", 2, 1, 2, 0, 1, 0, 0, 0},
  {"tp2_vtp2", 2, 1, 2, 0, 0, 1, 0, 0},  {"pp2_1f1b", 2, 2, 1, 0, 0, 0, 0, 0},
};

static void run_parallel(const IrModel *m, const Par *s, const char *dir, const char *fx, const char *mpiexec,
                         const double *single, Arena *a)
{
  ParPlan o = {.micro_batch = 1, .seq = 32, .world = s->world, .pp = s->pp, .chunks = 2, .pipeline_1f1b = 1,
               .tp = s->tp, .tp_consec = 1, .sp = s->sp, .ulysses = s->ulysses, .vtp = s->vtp ? s->tp : 1,
               .dp_type = s->zero == 3 ? DP_ZERO3 : s->zero == 2 ? DP_ZERO2 : DP_DDP};
  const char *err = NULL;
  Lowered *lw = lower_with(a, m, o, 1, &err);
  CHECK(lw != NULL);
  if (!lw) {
    fprintf(stderr, "%s/%s: lower: %s\n", m->name, s->name, err);
    return;
  }
  char bin[1024], launcher[1024];
  double got[STEPS], worst = 0;
  snprintf(bin, sizeof bin, "%s/%s_bf16_%s", dir, m->name, s->name);
  CHECK(e2e_build(lw, bin, 0) == 0);
  snprintf(launcher, sizeof launcher, "%s -n %d", mpiexec, s->world);
  char *log = e2e_train(launcher, bin, fx, NULL, device(), got);
  int planned = 0;
  for (const char *p = log; (p = strstr(p, "= planned)")); p++)
    planned++;
  CHECK(planned == s->world);
  free(log);
  for (int i = 0; i < STEPS; i++) {
    double d = fabs(got[i] - single[i]) / fabs(single[i]);
    CHECK(d <= PARALLEL_RTOL);
    worst = d > worst ? d : worst;
  }
  int exact = 1;
  if (s->resume) { /* 5 steps and a checkpoint, then the rest from it: the same losses */
    char extra[1100];
    double part[STEPS], rest[STEPS];
    fresh_ckpt(bin);
  snprintf(extra, sizeof extra, "--lr_decay_iters %d --save %s.ckpt%s", STEPS, bin, device());
    free(e2e_train_n(launcher, bin, fx, NULL, extra, 5, part));
    snprintf(extra, sizeof extra, "--load %s.ckpt --iters %d%s", bin, STEPS, device()); /* the last --iters counts */
    free(e2e_train_n(launcher, bin, fx, NULL, extra, STEPS - 5, rest));
    for (int i = 0; i < STEPS - 5; i++)
      exact &= rest[i] == got[5 + i];
    CHECK(exact);
  }
  printf("%-10s bf16 %-9s loss %.6g -> %.6g, single-rank bf16 curve within %.2g%s\n", m->name, s->name, got[0],
         got[STEPS - 1], worst, !s->resume ? "" : exact ? "; resume exact" : "; resume DIFFERS");
}

int main(int argc, char **argv)
{
  if (argc < 4) {
    fprintf(stderr, "usage: test_bf16 BUILD_DIR FIXTURE_DIR TINY_GVM [MPIEXEC]\n");
    return 2;
  }
  char why[256];
  if (*device() && !gv_backend_available("cuda", why, sizeof why)) {
    printf("skipping: %s\n", why);
    return 77;
  }
  Arena *a = arena_new(1 << 20);
  const char *names[2] = {"tiny_gpt", "tiny_llama"};
  for (int i = 0; i < 2; i++) {
    Ctx *cx = ctx_new();
    IrModel *m = frontend_load_model(cx, argv[3], names[i]);
    CHECK(m != NULL);
    if (!m)
      continue;
    char fx[1024];
    snprintf(fx, sizeof fx, "%s/%s.bin", argv[2], m->name);
    double single[STEPS];
    run_single(m, argv[1], fx, single, a);
    for (size_t k = 0; argc > 4 && k < sizeof pars / sizeof pars[0]; k++)
      run_parallel(m, &pars[k], argv[1], fx, argv[4], single, a);
    ctx_free(&cx);
  }
  arena_free(&a);
  tu_failures += e2e_failures;
  tu_checks += e2e_checks;
  return tu_report("e2e_bf16");
}
