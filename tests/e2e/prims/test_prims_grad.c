/* test_prims_grad.c - the whole program's gradients through the newer primitives (scale,
 * softmax, slice, concat, (1 + w) RMSNorm, free head size, partial rotary): fd_prims.gvm is
 * compiled for one rank and run on random weights and the fixture's token batch; for every
 * parameter, the element of largest |gradient| in the step-0 dump must equal the central
 * finite difference of the step-0 loss (two more runs with that weight moved by +-H), to
 * FD_RTOL relative (+ FD_ATOL). With MPIEXEC given, the same model trained for 3 steps
 * under tp 2, tp 2 + sequence parallelism, Ulysses 2 and pp 2 (1F1B, checkpointing) must
 * reproduce the single-rank losses to 1e-5 relative.
 * Usage: test_prims_grad BUILD_DIR FD_PRIMS_GVM FIXTURE [MPIEXEC|- [MODEL]] (MODEL: another size
 * of another file, checked by finite differences only when MPIEXEC is "-"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_util.h"
#include "frontend.h"
#include "testutil.h"

/* fp32 losses of ~5 move by ~1e-6 between runs of equal weights' neighbours: with H = 1e-2
 * the difference quotient is good to ~1e-4 absolute, the curvature term to H^2. */
#define FD_H 1e-2
#define FD_RTOL 5e-3
#define FD_ATOL 1e-4
enum { SEQ = 16, PSTEPS = 3 };

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(float lo, float hi)
{
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (float)((rng >> 40) * 0x1p-24);
}

/* Fixture FX_OUT: the token batch of fixture SRC and the weights w[i] of every parameter. */
static int write_fixture(const IrModel *m, float *const *w, const char *src, const char *out)
{
  struct gv_tf in;
  char err[512];
  if (gv_tf_read(&in, src, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int32_t header[64] = {GV_TF_MAGIC_FIXTURE, 1};
  struct gv_tf_writer *f = gv_tf_begin(out, header, err, sizeof err);
  int bad = !f;
  const char *batch[2] = {"tokens", "labels"};
  for (int k = 0; k < 2 && !bad; k++) {
    const struct gv_tf_record *r = gv_tf_find(&in, batch[k]);
    if (!r)
      snprintf(err, sizeof err, "%s: no record '%s'", src, batch[k]);
    bad = !r || gv_tf_put(f, batch[k], r->dtype, r->ndim, r->dims, r->data, err, sizeof err);
  }
  for (int i = 0; i < m->nparams && !bad; i++) {
    char key[600];
    int64_t dims[2] = {m->params[i].shape.d[0], m->params[i].shape.d[1]};
    snprintf(key, sizeof key, "param/%s", m->params[i].name);
    bad = gv_tf_put(f, key, GV_TF_F32, m->params[i].shape.rank, dims, w[i], err, sizeof err);
  }
  gv_tf_free(&in);
  if (bad || gv_tf_commit(f, err, sizeof err)) {
    if (bad && f)
      gv_tf_abort(f);
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  return 0;
}

static int64_t pnumel(const IrModel *m, int i)
{
  int64_t n = 1;
  for (int d = 0; d < m->params[i].shape.rank; d++)
    n *= m->params[i].shape.d[d];
  return n;
}

/* The step-0 loss of BIN on fixture FX (and its dump in DUMP), from the dump file. */
static double loss_of(const char *bin, const char *fx, const char *dump, struct gv_tf *out)
{
  double losses[STEPS];
  free(e2e_train_n(NULL, bin, fx, dump, NULL, 1, losses));
  struct gv_tf d;
  char err[512];
  if (gv_tf_read(&d, dump, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return NAN;
  }
  const struct gv_tf_record *l = gv_tf_find(&d, "loss");
  double v = l ? *(const double *)l->data : NAN;
  if (out)
    *out = d;
  else
    gv_tf_free(&d);
  return v;
}

static Lowered *lower(Arena *a, const IrModel *m, ParPlan o, const char *what)
{
  LowerError err = {NULL, -1};
  Lowered *lw = lower_model(a, m, &o, &err);
  if (!lw)
    fprintf(stderr, "%s: %s\n", what, err.msg ? err.msg : "(no message)");
  CHECK(lw != NULL);
  return lw;
}

static void finite_differences(const IrModel *m, float **w, const char *dir, const char *bin, const char *src)
{
  char fx[1024], dump[1024];
  snprintf(fx, sizeof fx, "%s/fd.fixture", dir);
  snprintf(dump, sizeof dump, "%s/fd.dump", dir);
  CHECK(write_fixture(m, w, src, fx) == 0);
  struct gv_tf g;
  double l0 = loss_of(bin, fx, dump, &g);
  CHECK(isfinite(l0));
  if (!isfinite(l0))
    return;
  for (int i = 0; i < m->nparams; i++) {
    char key[600];
    snprintf(key, sizeof key, "grad/%s", m->params[i].name);
    const struct gv_tf_record *r = gv_tf_find(&g, key);
    CHECK(r && (int64_t)r->numel == pnumel(m, i));
    if (!r)
      continue;
    const float *gr = r->data;
    int64_t k = 0;
    for (int64_t e = 1; e < (int64_t)r->numel; e++)
      if (fabsf(gr[e]) > fabsf(gr[k]))
        k = e;
    float keep = w[i][k];
    double lp, lm;
    w[i][k] = keep + (float)FD_H;
    CHECK(write_fixture(m, w, src, fx) == 0);
    lp = loss_of(bin, fx, dump, NULL);
    w[i][k] = keep - (float)FD_H;
    CHECK(write_fixture(m, w, src, fx) == 0);
    lm = loss_of(bin, fx, dump, NULL);
    w[i][k] = keep;
    double fd = (lp - lm) / (2 * FD_H), got = gr[k];
    int ok = fabs(fd - got) <= FD_RTOL * fabs(fd) + FD_ATOL;
    printf("  %-28s [%6lld] grad %+.6e  finite difference %+.6e  %s\n", m->params[i].name, (long long)k, got, fd,
           ok ? "ok" : "MISMATCH");
    CHECK(ok);
  }
  gv_tf_free(&g);
  CHECK(write_fixture(m, w, src, fx) == 0); /* the unperturbed weights, for the parallel runs */
}

/* Every strategy's PSTEPS losses against the single rank's. */
static void parallel_runs(Arena *a, const IrModel *m, ParPlan one, const char *dir, const char *mpiexec,
                          const double *ref)
{
  char fx[1024], bin[1024], launcher[1200];
  snprintf(fx, sizeof fx, "%s/fd.fixture", dir);
  snprintf(launcher, sizeof launcher, "%s -n 2", mpiexec);
  unsigned char ck[8] = {0, 1, 1, 0, 0};
  for (int s = 0; s < 4; s++) {
    static const char *names[] = {"tp2", "tp2_sp", "ulysses2", "pp2_1f1b_ckpt"};
    ParPlan o = one;
    o.world = 2;
    if (s < 3)
      o.tp = 2, o.tp_consec = 1, o.sp = s == 1, o.ulysses = s == 2;
    else {
      o.pp = 2, o.chunks = 2, o.pipeline_1f1b = 1;
      parplan_layers(a, m, &o);
      for (int i = 0; i < m->nlayers && i < 8; i++)
        o.layer[i].ckpt = ck[i];
    }
    Lowered *lw = lower(a, m, o, names[s]);
    snprintf(bin, sizeof bin, "%s/fd_%s", dir, names[s]);
    if (!lw || e2e_build(lw, bin, 0)) {
      CHECK(0);
      continue;
    }
    double losses[STEPS];
    free(e2e_train_n(launcher, bin, fx, NULL, NULL, PSTEPS, losses));
    for (int k = 0; k < PSTEPS; k++) {
      int ok = fabs(losses[k] - ref[k]) <= 1e-5 * fabs(ref[k]);
      if (!ok)
        fprintf(stderr, "%s: step %d loss %.9g, one rank %.9g\n", names[s], k, losses[k], ref[k]);
      CHECK(ok);
    }
    printf("  %-14s losses %.7f %.7f %.7f\n", names[s], losses[0], losses[1], losses[2]);
  }
}

int main(int argc, char **argv)
{
  if (argc < 4) {
    fprintf(stderr, "usage: test_prims_grad BUILD_DIR FD_PRIMS_GVM FIXTURE [MPIEXEC|- [MODEL]]\n");
    return 2;
  }
  const char *dir = argv[1], *gvm = argv[2], *src = argv[3], *mpiexec = argc > 4 ? argv[4] : NULL;
  const char *model = argc > 5 ? argv[5] : "fd_prims_small";
  if (mpiexec && !strcmp(mpiexec, "-"))
    mpiexec = NULL;
  Ctx *cx = ctx_new();
  IrModel *m = frontend_load_model(cx, gvm, model);
  CHECK(m != NULL);
  if (!m)
    return tu_report("e2e_prims_grad");
  Arena *a = arena_new(1 << 20);
  float **w = calloc((size_t)m->nparams, sizeof *w);
  for (int i = 0; i < m->nparams; i++) {
    int64_t n = pnumel(m, i);
    w[i] = malloc(sizeof(float) * (size_t)n);
    int norm = m->params[i].shape.rank == 1;
    for (int64_t e = 0; e < n; e++)
      w[i][e] = norm ? urand(-0.3f, 0.3f) : urand(-0.25f, 0.25f);
  }
  ParPlan one = {.micro_batch = 1, .seq = SEQ, .world = 1, .pp = 1, .tp = 1, .chunks = 1};
  Lowered *lw = lower(a, m, one, "one rank");
  char bin[1024];
  snprintf(bin, sizeof bin, "%s/fd_one", dir);
  if (lw && e2e_build(lw, bin, 0) == 0) {
    finite_differences(m, w, dir, bin, src);
    if (mpiexec) {
      char fx[1024];
      double ref[STEPS];
      snprintf(fx, sizeof fx, "%s/fd.fixture", dir);
      free(e2e_train_n(NULL, bin, fx, NULL, NULL, PSTEPS, ref));
      printf("  %-14s losses %.7f %.7f %.7f\n", "one rank", ref[0], ref[1], ref[2]);
      parallel_runs(a, m, one, dir, mpiexec, ref);
    }
  } else {
    CHECK(0);
  }
  for (int i = 0; i < m->nparams; i++)
    free(w[i]);
  free(w);
  arena_free(&a);
  ctx_free(&cx);
  tu_failures += e2e_failures, tu_checks += e2e_checks;
  return tu_report("e2e_prims_grad");
}
