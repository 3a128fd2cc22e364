/* test_program.c - generated training programs against the PyTorch fixtures.
 * For the tiny GPT-2- and LLaMA-style models (IR built by tests/unit/lower/tiny_ir.c, or
 * loaded from a .gvm file when one is given), lower the model, build the training binary
 * through both emitters (C source + cc, and an LLVM object), run each on the fixture's
 * weights and batch for 10 AdamW steps, and check:
 *  - step-0 loss to 1e-5 relative, logits to 1e-5 and every gradient to 1e-4 of the
 *    tensor's max |ref| (+1e-8 absolute), the tolerances of tests/reference (fp32 vs an
 *    fp64 reference; see tests/reference/trainer/test_trainer.c for why);
 *  - the 10 losses to 1e-5 relative;
 *  - the two emitters' loss lines are bit-identical (same calls, same arguments);
 *  - all layers checkpointed: the same losses, bit for bit, and less planned memory.
 * Usage: test_program BUILD_DIR FIXTURE_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "gvc_config.h"
#include "lower.h"
#include "program/tensorfile.h"
#include "testutil.h"
#include "tiny_ir.h"

enum { STEPS = 10 };

static int sh(const char *cmd)
{
  int rc = system(cmd);
  if (rc)
    fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
  return rc;
}

/* Builds BIN from the lowered program by one route; 0 on success. */
static int build(const Lowered *lw, const char *bin, int via_c)
{
  char path[1024], cmd[8192];
  char *err = NULL;
  if (via_c) {
    snprintf(path, sizeof path, "%s.c", bin);
    FILE *f = fopen(path, "w");
    if (!f || emit_c_program(lw->prog, f, bin))
      return 1;
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s -std=gnu11 -O2 -Wall -Werror -c -o %s.o %s", GV_C_COMPILER, bin, path);
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
static char *train(const char *bin, const char *fx, const char *dump, double *losses)
{
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "GV_COMM=self OMP_NUM_THREADS=1 %s --init_from %s --batch_from %s --iters %d --lr 1e-3 --min_lr 1e-4 "
           "--warmup 3 --weight_decay 0.1 --adam_beta1 0.9 --adam_beta2 0.95 --adam_eps 1e-8 --clip_grad 1.0 "
           "--global_train_batch_size 2 --dump %s 2>&1",
           bin, fx, fx, STEPS, dump);
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
    if (at && k < STEPS)
      losses[k++] = strtod(at + 7, NULL);
  }
  int rc = p ? pclose(p) : -1;
  if (rc || k != STEPS) {
    fprintf(stderr, "%s: exit %d, %d loss lines:\n%s\n", bin, rc, k, log);
    tu_failures++;
  }
  return log;
}

static const float *rec_f32(const struct gv_tf *tf, const char *name, size_t n)
{
  const struct gv_tf_record *r = gv_tf_find(tf, name);
  if (!r || r->dtype != GV_TF_F32 || r->numel != n) {
    fprintf(stderr, "missing or bad record %s\n", name);
    tu_failures++;
    return NULL;
  }
  return r->data;
}

/* max |a - e| <= tol * max |e| + atol over a tensor */
static void check_tensor(const char *name, const float *a, const float *e, size_t n, double tol, double atol)
{
  if (!a || !e)
    return;
  double err = 0, scale = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - e[i]);
    err = d > err ? d : err;
    scale = fabs(e[i]) > scale ? fabs(e[i]) : scale;
  }
  tu_checks++;
  if (!(err <= tol * scale + atol)) {
    tu_failures++;
    fprintf(stderr, "%s: max error %.3g > %.1g * %.3g + %.1g\n", name, err, tol, scale, atol);
  }
}

static void compare_dump(const IrModel *m, const char *dump, const struct gv_tf *fx)
{
  struct gv_tf d;
  char err[512], key[256];
  if (gv_tf_read(&d, dump, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    tu_failures++;
    return;
  }
  const struct gv_tf_record *loss = gv_tf_find(&d, "loss"), *ref = gv_tf_find(fx, "loss");
  CHECK(loss && ref);
  if (loss && ref)
    CHECK_CLOSE(*(double *)ref->data, *(double *)loss->data, 0, 1e-5);
  const struct gv_tf_record *lg = gv_tf_find(fx, "logits");
  if (lg)
    check_tensor("logits", rec_f32(&d, "logits", lg->numel), lg->data, lg->numel, 1e-5, 0);
  for (int i = 0; i < m->nparams; i++) {
    snprintf(key, sizeof key, "grad/%s", m->params[i].name);
    const struct gv_tf_record *g = gv_tf_find(fx, key);
    CHECK(g != NULL);
    if (g)
      check_tensor(key, rec_f32(&d, key, g->numel), g->data, g->numel, 1e-4, 1e-8);
  }
  gv_tf_free(&d);
}

static void run_model(IrModel *m, const char *dir, const char *fxdir, Arena *a)
{
  char fx[1024], bin[1024], dump[1024];
  snprintf(fx, sizeof fx, "%s/%s.bin", fxdir, m->name);
  struct gv_tf ref;
  char err[512];
  if (gv_tf_read(&ref, fx, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    tu_failures++;
    return;
  }
  const struct gv_tf_record *rl = gv_tf_find(&ref, "losses");
  double losses[3][STEPS], lowest[2];
  for (int ck = 0; ck <= 1; ck++) {
    unsigned char *flags = ARENA_ARRAY(a, unsigned char, m->nlayers);
    for (int i = 0; i < m->nlayers; i++)
      flags[i] = ck && m->layers[i].kind == IR_LAYER_BLOCK;
    LowerOptions o = {.micro_batch = 2, .seq = 32, .world = 1, .pp = 1, .checkpoint = flags};
    const char *lerr = NULL;
    Lowered *lw = lower_model(a, m, &o, &lerr);
    CHECK(lw != NULL);
    if (!lw) {
      fprintf(stderr, "lower: %s\n", lerr);
      continue;
    }
    lowest[ck] = (double)plan_kept_activation_bytes(lw->plan);
    for (int via_c = ck ? 0 : 1; via_c >= 0; via_c--) { /* ckpt: one route is enough */
      int run = ck ? 2 : via_c;
      snprintf(bin, sizeof bin, "%s/%s_%s%s", dir, m->name, via_c ? "c" : "llvm", ck ? "_ckpt" : "");
      snprintf(dump, sizeof dump, "%s.dump", bin);
      CHECK(build(lw, bin, via_c) == 0);
      free(train(bin, fx, dump, losses[run]));
      if (!ck && via_c)
        compare_dump(m, dump, &ref);
    }
  }
  for (int s = 0; s < STEPS; s++) {
    if (rl)
      CHECK_CLOSE(((double *)rl->data)[s], losses[1][s], 0, 1e-5);
    CHECK(losses[0][s] == losses[1][s]); /* C and LLVM: bit-identical */
    CHECK(losses[2][s] == losses[0][s]); /* checkpointing changes nothing */
  }
  printf("%s: loss %.9g -> %.9g; kept activations per micro-batch %.0f B, checkpointed %.0f B\n", m->name,
         losses[0][0], losses[0][STEPS - 1], lowest[0], lowest[1]);
  CHECK(lowest[1] < lowest[0]);
  gv_tf_free(&ref);
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: test_program BUILD_DIR FIXTURE_DIR\n");
    return 2;
  }
  Arena *a = arena_new(1 << 20);
  run_model(tiny_ir_gpt(a), argv[1], argv[2], a);
  run_model(tiny_ir_llama(a), argv[1], argv[2], a);
  arena_free(&a);
  return tu_report("e2e_program");
}
