/* e2e_util.c - building and running generated training programs for the end-to-end
 * tests: build through either emitter, train on a fixture, compare with the fixture. */
#include "e2e_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "gvc_config.h"
#include "program/tensorfile.h"

int e2e_failures, e2e_checks;
#define E2E_CHECK(c) do { e2e_checks++; if (!(c)) { e2e_failures++; \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); } } while (0)


static int sh(const char *cmd)
{
  int rc = system(cmd);
  if (rc)
    fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
  return rc;
}

/* Builds BIN from the lowered program by one route; 0 on success. */
int e2e_build(const Lowered *lw, const char *bin, int via_c)
{
  char path[1024], cmd[8192];
  char *err = NULL;
  if (via_c) {
    snprintf(path, sizeof path, "%s.c", bin);
    FILE *f = fopen(path, "w");
    if (!f || emit_c_program(lw->prog, f, bin))
      return 1;
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s -std=gnu11 -O2 -Wall -Werror -I%s -c -o %s.o %s", GV_C_COMPILER, GV_RUNTIME_INCLUDE, bin, path);
    if (sh(cmd))
      return 1;
  } else if (emit_llvm_object(lw->prog, (snprintf(path, sizeof path, "%s.o", bin), path), 1, &err)) {
    fprintf(stderr, "llvm: %s\n", err);
    return 1;
  }
  snprintf(cmd, sizeof cmd, "%s -o %s %s.o %s", GV_C_COMPILER, bin, bin, GV_LINK_LINE);
  return sh(cmd);
}

/* Runs BIN on the fixture; fills losses[STEPS]; returns the log text (malloc'd). */
char *e2e_train_n(const char *launcher, const char *bin, const char *fx, const char *dump, const char *extra, int steps,
                  double *losses)
{
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 %s %s --init_from %s --batch_from %s --iters %d --lr 1e-3 "
           "--min_lr 1e-4 --warmup 3 --weight_decay 0.1 --adam_beta1 0.9 --adam_beta2 0.95 --adam_eps 1e-8 "
           "--clip_grad 1.0 --global_train_batch_size 2 %s%s %s 2>&1",
           launcher ? launcher : "GV_COMM=self", bin, fx, fx, steps, dump ? "--dump " : "", dump ? dump : "",
           extra ? extra : "");
  FILE *p = popen(cmd, "r");
  size_t cap = 1 << 16, n = 0;
  char *log = calloc(cap, 1), line[2048];
  int k = 0;
  while (p && fgets(line, sizeof line, p)) {
    size_t len = strlen(line);
    if (n + len + 1 < cap) {
      memcpy(log + n, line, len + 1);
      n += len;
    }
    char *at = strstr(line, "| loss ");
    if (at && k < steps)
      losses[k++] = strtod(at + 7, NULL);
  }
  int rc = p ? pclose(p) : -1;
  if (rc || k != steps) {
    fprintf(stderr, "%s: exit %d, %d loss lines:\n%s\n", bin, rc, k, log);
    e2e_failures++;
  }
  return log;
}

static const float *rec_f32(const struct gv_tf *tf, const char *name, size_t n)
{
  const struct gv_tf_record *r = gv_tf_find(tf, name);
  if (!r || r->dtype != GV_TF_F32 || r->numel != n) {
    fprintf(stderr, "missing or bad record %s\n", name);
    e2e_failures++;
    return NULL;
  }
  return r->data;
}

/* max |a - e| <= tol * max |e| + atol over a tensor; returns max |a - e| / max |e|. */
static double check_tensor(const char *name, const float *a, const float *e, size_t n, double tol, double atol)
{
  if (!a || !e)
    return 0;
  double err = 0, scale = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - e[i]);
    err = d > err ? d : err;
    scale = fabs(e[i]) > scale ? fabs(e[i]) : scale;
  }
  e2e_checks++;
  if (!(err <= tol * scale + atol)) {
    e2e_failures++;
    fprintf(stderr, "%s: max error %.3g > %.1g * %.3g + %.1g\n", name, err, tol, scale, atol);
  }
  double floor = tol > 0 ? atol / tol : 0; /* a tensor of ~zero reference (a key bias): its floor */
  return err / (scale > floor ? scale : floor > 0 ? floor : 1);
}

void e2e_compare_dump_tol(const IrModel *m, const char *dump, const struct gv_tf *fx, const struct e2e_tol *tol,
                          double seen[3])
{
  struct gv_tf d;
  char err[512], key[256];
  seen[0] = seen[1] = seen[2] = 0;
  if (gv_tf_read(&d, dump, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    e2e_failures++;
    return;
  }
  const struct gv_tf_record *loss = gv_tf_find(&d, "loss"), *ref = gv_tf_find(fx, "loss");
  E2E_CHECK(loss && ref);
  if (loss && ref) {
    double want = *(double *)ref->data, got = *(double *)loss->data;
    seen[0] = fabs(want - got) / fabs(want);
    E2E_CHECK(fabs(want - got) <= tol->loss * fabs(want));
  }
  const struct gv_tf_record *lg = gv_tf_find(fx, "logits");
  if (lg)
    seen[1] = check_tensor("logits", rec_f32(&d, "logits", lg->numel), lg->data, lg->numel, tol->logits, 0);
  for (int i = 0; i < m->nparams; i++) {
    snprintf(key, sizeof key, "grad/%s", m->params[i].name);
    const struct gv_tf_record *g = gv_tf_find(fx, key);
    E2E_CHECK(g != NULL);
    if (g) {
      double r = check_tensor(key, rec_f32(&d, key, g->numel), g->data, g->numel, tol->grads, tol->grads_abs);
      seen[2] = r > seen[2] ? r : seen[2];
    }
  }
  gv_tf_free(&d);
}

void e2e_compare_dump(const IrModel *m, const char *dump, const struct gv_tf *fx)
{
  const struct e2e_tol fp32 = {1e-5, 1e-5, 1e-4, 1e-8};
  double seen[3];
  e2e_compare_dump_tol(m, dump, fx, &fp32, seen);
}


char *e2e_train(const char *launcher, const char *bin, const char *fx, const char *dump, const char *extra,
                double *losses)
{
  return e2e_train_n(launcher, bin, fx, dump, extra, STEPS, losses);
}
