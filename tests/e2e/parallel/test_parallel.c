/* test_parallel.c - every parallel strategy reproduces the single-rank run: the tiny
 * GPT-2- and LLaMA-style models, lowered for each strategy of the table, trained under
 * mpirun for 20 steps on the fixture batch; the losses must match the single-rank run
 * to 1e-5 relative (fp32 reassociation across ranks changes the last bits only: the
 * gradient sums are split over ranks), and so must the final parameters, placed from
 * every rank's --dump_params file (PARAMS_RTOL). Each run must also allocate exactly its
 * plan.
 * Usage: test_parallel BUILD_DIR FIXTURE_DIR MPIEXEC [TINY_GVM]; GV_PARALLEL_ONLY=SUBSTRING runs
 * only the strategies whose name contains it; GV_PARALLEL_PRECISION=bf16 runs the whole
 * matrix with bf16 mixed precision (ctest e2e_parallel_matrix_bf16): losses to 1e-3 and
 * parameters to 4e-2 (seen: 1.8e-2 at most, on small biases), since bf16 gradient sums
 * rounded in another order move the bf16 parameters by a few bf16 ulps (2^-8 relative). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_util.h"
#include "gvrt.h"
#include "frontend.h"
#include "testutil.h"
#include "tiny_ir.h"

typedef struct Scenario {
  const char *name;
  int world, pp;
  int64_t micro_batch;
  int ckpt;           /* 1: checkpoint every block; 2: only the first half of the blocks */
  int one_f_one_b, chunks;
  int zero;           /* 0 ddp, 2 ZeRO-2, 3 ZeRO-3 blocks, 4: ZeRO-3 on the second half of the blocks only
                         (ddp for the rest), 5: the same with ZeRO-2 for the rest */
  int tp;
  int sp;             /* 1: Megatron-SP; 2: Ulysses (tp is then the Ulysses degree); Ulysses on some blocks
                         only (Megatron tp on the others): 3 the second half, 4 the second half with
                         Megatron-SP on the first, 5 the first half */
  int vtp;            /* the embedding and head over the tp group: 1 split by vocabulary, 2 by token rows
                         (vocabulary sequence parallelism, vsp) */
  int ltp;            /* > 0: per-layer tp, the first half of the blocks on tp, the second half on ltp */
  int no_async;       /* reduce gradients after every micro-batch (no_async_grad_reduce) */
  int cp;             /* context parallelism (zigzag ring attention) over cp ranks (0: none) */
} Scenario;

/* The fixture batch has 2 sequences: micro-batch 1 gives 2 micro-batches per step. */
/* Final parameters after the MSTEPS updates: ||p - p1|| / ||p1|| per parameter. AdamW
 * divides by sqrt(v), which amplifies last-bit gradient differences where gradients are
 * tiny, so the bound is looser than the losses' (seen: at most 1e-6 for most strategies,
 * 1.6e-5 for per-layer tp, on a small bias); a wrong shard or a missed reduction moves a
 * parameter by about lr = 1e-3 per element and step, i.e. 1e-1 of its norm here. */
#define PARAMS_RTOL 1e-4
enum { MSTEPS = 20 }; /* steps of every run of the matrix */

static const Scenario strategies[] = {
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
  {"tp2_vsp2", 2, 1, 1, 0, 1, 2, 0, 2, 0, 2, 0, 0},
  {"pp2_tp2_sp_vsp2_zero2", 4, 2, 1, 0, 1, 2, 2, 2, 1, 2, 0, 0},
  {"ulysses2_vsp2_dp2_zero3_ckpt", 4, 1, 1, 1, 1, 1, 3, 2, 2, 2, 0, 0},
  {"ulysses2", 2, 1, 1, 0, 1, 2, 0, 2, 2, 0, 0, 0},
  {"ulysses2_dp2_ckpt", 4, 1, 1, 1, 1, 1, 0, 2, 2, 0, 0, 0},
  {"pp2_ulysses2_zero2", 4, 2, 1, 0, 1, 2, 2, 2, 2, 0, 0, 0},
  {"dp2_zero3", 2, 1, 1, 0, 1, 1, 3, 0, 0, 0, 0, 0},
  {"tp2_dp2_zero3_ckpt", 4, 1, 1, 1, 1, 1, 3, 2, 0, 0, 0, 0},
  {"dp2_zero3_ckpt", 2, 1, 1, 1, 1, 1, 3, 0, 0, 0, 0, 0},
  {"ulysses2_zero3", 2, 1, 1, 0, 1, 2, 3, 2, 2, 0, 0, 0},     /* partial sums over tp inside ZeRO-3 */
  {"tp2_sp_zero3_ckpt", 2, 1, 1, 1, 1, 2, 3, 2, 1, 0, 0, 0},
  {"pp2_dp2_zero3", 4, 2, 1, 0, 1, 1, 3, 0, 0, 0, 0, 0},
  {"dp2_zero3_half", 2, 1, 1, 0, 1, 1, 4, 0, 0, 0, 0, 0},
  {"dp2_zero3_half_zero2_rest", 2, 1, 1, 0, 1, 1, 5, 0, 0, 0, 0, 0},
  {"pp2_tp2_dp2_zero3_half_zero2_rest_ckpt", 8, 2, 1, 1, 1, 1, 5, 2, 0, 0, 0, 0},
  {"pp2_tp2_dp2_zero3_half_ckpt_half", 8, 2, 1, 2, 1, 1, 4, 2, 0, 0, 0, 0},
  /* per-layer tp: a block of degree t runs on (base/t)ths of the micro-batch, so it is 2 */
  {"ltp_tp2_then_tp1", 2, 1, 2, 0, 1, 1, 0, 2, 0, 0, 1, 0},
  {"ltp_tp1_then_tp2_ckpt", 2, 1, 2, 1, 1, 1, 0, 1, 0, 0, 2, 0},
  {"ltp_pp2_tp2_then_tp1_ckpt_half", 4, 2, 2, 2, 1, 1, 0, 2, 0, 0, 1, 0},
  {"ltp_pp2_gpipe_tp1_then_tp2", 4, 2, 2, 0, 0, 1, 0, 1, 0, 0, 2, 0},
  {"ulysses_half", 2, 1, 1, 0, 1, 2, 0, 2, 3, 0, 0, 0},
  {"tp2_sp_ulysses_half_ckpt", 2, 1, 1, 1, 1, 2, 0, 2, 4, 0, 0, 0},
  {"pp2_tp2_ulysses_half", 4, 2, 1, 0, 1, 2, 0, 2, 3, 0, 0, 0},
  {"pp2_ulysses_first_half_dp2_zero2", 8, 2, 1, 0, 1, 1, 2, 2, 5, 0, 0, 0},
  {"ltp_tp2_then_tp1_vtp2", 2, 1, 2, 0, 1, 1, 0, 2, 0, 1, 1, 0},
  {"ltp_pp2_tp1_then_tp2_vtp2_ckpt", 4, 2, 2, 1, 1, 1, 0, 1, 0, 1, 2, 0},
  {"ltp_tp2_then_tp1_zero3", 2, 1, 2, 0, 1, 1, 3, 2, 0, 0, 1, 0},
  {"ltp_tp2_then_tp1_zero2", 2, 1, 2, 0, 1, 1, 2, 2, 0, 0, 1, 0},
  {"ltp_pp2_tp1_then_tp2_vtp2_zero2_ckpt", 4, 2, 2, 1, 1, 1, 2, 1, 0, 1, 2, 0},
  {"ltp_tp2_then_tp1_zero3_half_ckpt", 2, 1, 2, 1, 1, 1, 4, 2, 0, 0, 1, 0},
  {"ltp_pp2_tp1_then_tp2_zero3", 4, 2, 2, 0, 1, 1, 3, 1, 0, 0, 2, 0},
  /* gradients reduced after every micro-batch instead of overlapped with the last one */
  {"dp2_no_async", 2, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1},
  {"pp2_tp2_dp2_zero3_half_no_async", 8, 2, 1, 0, 1, 1, 4, 2, 0, 0, 0, 1},
  {"ltp_tp2_then_tp1_no_async", 2, 1, 2, 0, 1, 1, 0, 2, 0, 0, 1, 1},
  /* context parallelism: every layer on a zigzag half of each sequence, ring attention */
  {"cp2", 2, 1, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0, 2},
  {"cp4", 4, 1, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0, 4},
  {"cp2_tp2", 4, 1, 1, 0, 1, 2, 0, 2, 0, 0, 0, 0, 2},
  {"cp2_tp2_sp_ckpt", 4, 1, 1, 1, 1, 2, 0, 2, 1, 0, 0, 0, 2},
  {"cp2_dp2_zero2", 4, 1, 1, 0, 1, 1, 2, 0, 0, 0, 0, 0, 2},
  {"cp2_dp2_zero3_ckpt", 4, 1, 1, 1, 1, 1, 3, 0, 0, 0, 0, 0, 2},
  {"pp2_cp2_1f1b", 4, 2, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0, 2},
};

/* GV_PARALLEL_DEVICE=cuda: every run (the single-rank one too) on the GPU, several ranks
 * sharing it through the mpi backend's host staging (ctest e2e_parallel_matrix_cuda). */
static int bf16(void)
{
  const char *p = getenv("GV_PARALLEL_PRECISION");
  return p && !strcmp(p, "bf16");
}

static int on_gpu(void)
{
  const char *d = getenv("GV_PARALLEL_DEVICE");
  return d && !strcmp(d, "cuda");
}

/* Calls of fn in the program (every stage). */
static int count_calls(const Lowered *lw, const char *fn)
{
  int n = 0;
  for (int f = 0; f < lw->prog->nfuncs; f++)
    for (int c = 0; c < lw->prog->funcs[f].ncalls; c++)
      n += !strcmp(lw->prog->funcs[f].calls[c].fn->name, fn);
  return n;
}

/* The attention key bias has a zero gradient up to rounding (softmax ignores a constant
 * added to a row of scores), and AdamW turns that rounding noise into steps of +-lr, in
 * PyTorch as here: its values are noise and are not compared. */
static int key_bias(const char *name)
{
  size_t n = strlen(name);
  return n > 7 && !strcmp(name + n - 7, ".k.bias");
}

/* How far the final parameters of a run (its rank files, each part placed by its "at/"
 * record) are from the single-rank run's: the largest ||p - p1|| / ||p1|| over the
 * parameters (the norms over the elements each rank file holds; replicas are compared
 * each time). -1 when a parameter element is missing or a file unreadable. */
static double params_diff(const char *single, const char *par, int world)
{
  struct gv_tf ref, tf;
  char err[512], file[1100];
  if (gv_tf_read(&ref, single, err, sizeof err))
    return fprintf(stderr, "%s\n", err), -1;
  int n = ref.count;
  double *dd = calloc((size_t)n, sizeof *dd), *rr = calloc((size_t)n, sizeof *rr), worst = 0;
  size_t covered = 0, total = 0;
  for (int i = 0; i < n; i++)
    if (!strncmp(ref.rec[i].name, "param/", 6))
      total += ref.rec[i].numel;
  for (int w = 0; w < world && worst >= 0; w++) {
    snprintf(file, sizeof file, "%s.rank%d", par, w);
    if (gv_tf_read(&tf, world > 1 ? file : par, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      worst = -1;
      break;
    }
    for (int i = 0; i < tf.count && worst >= 0; i++) {
      const struct gv_tf_record *at = &tf.rec[i];
      if (strncmp(at->name, "at/", 3))
        continue;
      char key[600];
      snprintf(key, sizeof key, "param/%s", at->name + 3);
      const struct gv_tf_record *mine = gv_tf_find(&tf, key), *whole = gv_tf_find(&ref, key);
      const int32_t *a = at->data;
      if (!mine || !whole || whole->numel != (size_t)a[0] * (size_t)a[1]) {
        fprintf(stderr, "%s: %s missing or misshapen\n", file, key);
        worst = -1;
        break;
      }
      int j = (int)(whole - ref.rec);
      const float *v = mine->data, *full = whole->data;
      for (int32_t k = 0; k < a[7]; k++) {
        int64_t e = a[6] + k, row = a[2] + e / a[5], col = a[3] + e % a[5];
        double want = full[row * a[1] + col];
        dd[j] += (v[k] - want) * (v[k] - want);
        rr[j] += want * want;
      }
      covered += (size_t)a[7];
    }
    gv_tf_free(&tf);
  }
  for (int j = 0; j < n && worst >= 0; j++)
    if (rr[j] > 0 && sqrt(dd[j] / rr[j]) > worst && !key_bias(ref.rec[j].name)) {
      worst = sqrt(dd[j] / rr[j]);
      if (getenv("GV_PARALLEL_WHICH"))
        fprintf(stderr, "  %s: %.3g\n", ref.rec[j].name, worst);
    }
  if (worst >= 0 && covered < total) { /* every element is held somewhere (replicas more than once) */
    fprintf(stderr, "%s: %zu of %zu parameter elements dumped\n", par, covered, total);
    worst = -1;
  }
  gv_tf_free(&ref);
  free(dd);
  free(rr);
  return worst;
}

static int run_strategy(IrModel *m, const Scenario *s, const char *dir, const char *fx, const char *mpiexec,
                        double *losses, Arena *a)
{
  ParPlan o = {.micro_batch = s->micro_batch, .seq = 32, .world = s->world, .pp = s->pp,
               .pipeline_1f1b = s->one_f_one_b, .chunks = s->chunks,
               .dp_type = s->zero == 3 ? DP_ZERO3 : s->zero == 2 || s->zero == 5 ? DP_ZERO2 : DP_DDP,
               .tp = s->tp ? s->tp : 1, .tp_consec = 1, .sp = s->sp == 1 || s->sp == 4, .ulysses = s->sp == 2,
               .vtp = s->vtp == 1 ? s->tp : 1, .vsp = s->vtp == 2 ? s->tp : 0, .no_async_grad_reduce = s->no_async,
               .bf16 = bf16(), .cp = s->cp};
  parplan_layers(a, m, &o); /* the per-layer variations: checkpointing, ZeRO-3, Ulysses, tp of half the blocks */
  for (int i = 0, blk = 0; i < m->nlayers; i++) {
    ParLayer *l = &o.layer[i];
    if (m->layers[i].kind != IR_LAYER_BLOCK)
      continue;
    int first = blk++ < (int)m->nblocks / 2;
    l->ckpt = s->ckpt == 1 || (s->ckpt == 2 && first);
    if (s->ltp && !first)
      l->tp = s->ltp;
    if (s->sp >= 3 && (s->sp == 5 ? first : !first))
      l->sp = PAR_SP_ULYSSES;
    if (s->zero >= 4 && !first)
      l->dp_type = DP_ZERO3;
  }
  LowerError err;
  Lowered *lw = lower_model(a, m, &o, &err);
  if (!lw) {
    fprintf(stderr, "%s/%s: lower: %s\n", m->name, s->name, err.msg);
    return 1;
  }
  if (s->tp > 1 && s->sp != 2 && s->sp != 5 && !s->ltp) { /* tp must really split (stage 0's) block weights */
    ParPlan o1 = o;
    o1.tp = 1;
    o1.world = s->world / s->tp;
    o1.sp = o1.ulysses = 0, o1.vtp = 1;
    o1.layer = NULL; /* rows from the one-rank degrees (checkpointing as the defaults: none) */
    Lowered *one = lower_model(a, m, &o1, &err);
    if (!one || lw->plan->arena_bytes[PLAN_PARAMS] >= one->plan->arena_bytes[PLAN_PARAMS]) {
      fprintf(stderr, "%s/%s: tp=%d did not shrink the parameters\n", m->name, s->name, s->tp);
      return 1;
    }
  }
  if (s->vtp == 2 && count_calls(lw, "gv_gen_sp_loss_sum") < 1) {
    fprintf(stderr, "%s/%s: vsp without the head on token rows\n", m->name, s->name);
    return 1;
  }
  if (s->ltp && (count_calls(lw, "gv_gen_rows_gather") < 1 || count_calls(lw, "gv_gen_rows_slice") < 1)) {
    fprintf(stderr, "%s/%s: per-layer tp without row exchanges between the layers\n", m->name, s->name);
    return 1;
  }
  if (s->cp > 1 && (count_calls(lw, "gv_gen_ring_attention_fwd") < 1 || count_calls(lw, "gv_gen_attention_fwd"))) {
    fprintf(stderr, "%s/%s: context parallelism without ring attention\n", m->name, s->name);
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
  char extra[1200];
  snprintf(extra, sizeof extra, "--dump_params %s.params%s", bin, on_gpu() ? " --device cuda" : "");
  char *log = e2e_train_n(s->world > 1 ? launcher : NULL, bin, fx, NULL, extra, MSTEPS, losses);
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
  if (on_gpu()) {
    char why[256];
    if (!gv_backend_available("cuda", why, sizeof why)) {
      printf("skipping: %s\n", why);
      return 77;
    }
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
    double ref[MSTEPS], got[MSTEPS];
    Scenario single = {"single", 1, 1, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0}; /* two micro-batches of 1: gradient accumulation */
    CHECK(run_strategy(m, &single, argv[1], fx, argv[3], ref, a) == 0);
    for (size_t k = 0; k < sizeof strategies / sizeof strategies[0]; k++) {
      const Scenario *s = &strategies[k];
      const char *only = getenv("GV_PARALLEL_ONLY"); /* a substring of the strategies to run (debugging) */
      if ((only && !strstr(s->name, only)) || (s->cp > 1 && bf16())) /* cp: fp32 only so far */
        continue;
      memset(got, 0, sizeof got);
      CHECK(run_strategy(m, s, argv[1], fx, argv[3], got, a) == 0);
      int bad = 0;
      double ltol = bf16() ? 1e-3 : 1e-5, ptol = bf16() ? 4e-2 : PARAMS_RTOL;
      for (int i = 0; i < MSTEPS; i++) {
        CHECK_CLOSE(ref[i], got[i], 0, ltol);
        bad += !(fabs(ref[i] - got[i]) <= ltol * fabs(ref[i]));
      }
      char single_params[1100], par_params[1100];
      snprintf(single_params, sizeof single_params, "%s/%s_single.params", argv[1], m->name);
      snprintf(par_params, sizeof par_params, "%s/%s_%s.params", argv[1], m->name, s->name);
      double pd = params_diff(single_params, par_params, s->world);
      CHECK(pd >= 0 && pd <= ptol);
      printf("%-10s %-8s loss %.9g -> %.9g (single rank %.9g -> %.9g), final parameters within %.2g%s\n", m->name,
             s->name, got[0], got[MSTEPS - 1], ref[0], ref[MSTEPS - 1], pd, bad || pd < 0 || pd > ptol ? "  MISMATCH" : "");
    }
  }
  arena_free(&a);
  ctx_free(&cx);
  tu_failures += e2e_failures;
  tu_checks += e2e_checks;
  return tu_report("e2e_parallel");
}
