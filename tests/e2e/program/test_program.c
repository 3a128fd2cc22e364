/* test_program.c - generated training programs against the PyTorch fixtures.
 * For the tiny GPT-2- and LLaMA-style models, both as IR built by hand (tests/unit/lower/
 * tiny_ir.c: the lowering alone) and from examples/tiny.gvm (the whole path), lower the model, build the training binary
 * through both emitters (C source + cc, and an LLVM object), run each on the fixture's
 * weights and batch for 10 AdamW steps, and check:
 *  - step-0 loss to 1e-5 relative, logits to 1e-5 and every gradient to 1e-4 of the
 *    tensor's max |ref| (+1e-8 absolute), the tolerances of tests/reference (fp32 vs an
 *    fp64 reference; see tests/reference/trainer/test_trainer.c for why);
 *  - the 10 losses to 1e-5 relative;
 *  - the two emitters' loss lines are bit-identical (same calls, same arguments);
 *  - all layers checkpointed: the same losses, bit for bit, and less planned memory.
 *  - 50 steps: the C and LLVM binaries and `gvc run` (the JIT) give bit-identical losses;
 *  - the runtime allocated exactly the planned bytes.
 * Usage: test_program BUILD_DIR FIXTURE_DIR TINY_GVM [GVC] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_util.h"
#include "frontend.h"
#include "testutil.h"
#include "tiny_ir.h"

static void run_model(IrModel *m, const char *tag, const char *dir, const char *fxdir, const char *gvc, const char *gvm,
                      Arena *a)
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
    ParPlan o = {.micro_batch = 2, .seq = 32, .world = 1, .pp = 1};
    parplan_layers(a, m, &o);
    for (int i = 0; i < m->nlayers; i++)
      o.layer[i].ckpt = ck && m->layers[i].kind == IR_LAYER_BLOCK;
    LowerError lerr;
    Lowered *lw = lower_model(a, m, &o, &lerr);
    CHECK(lw != NULL);
    if (!lw) {
      fprintf(stderr, "lower: %s\n", lerr.msg);
      continue;
    }
    lowest[ck] = (double)plan_kept_activation_bytes(lw->plan);
    for (int via_c = ck ? 0 : 1; via_c >= 0; via_c--) { /* ckpt: one route is enough */
      int run = ck ? 2 : via_c;
      snprintf(bin, sizeof bin, "%s/%s_%s_%s%s", dir, tag, m->name, via_c ? "c" : "llvm", ck ? "_ckpt" : "");
      snprintf(dump, sizeof dump, "%s.dump", bin);
      CHECK(e2e_build(lw, bin, via_c) == 0);
      char *log = e2e_train(NULL, bin, fx, dump, NULL, losses[run]);
      CHECK(strstr(log, "= planned)") != NULL); /* the runtime allocated exactly the planned bytes */
      free(log);
      if (!ck && via_c)
        e2e_compare_dump(m, dump, &ref);
    }
  }
  /* 50 steps through the two emitters and the JIT (`gvc run`): bit-identical losses */
  enum { LONG = 50 };
  double c50[LONG], l50[LONG], j50[LONG];
  char cbin[1024], lbin[1024], jit[2048];
  snprintf(cbin, sizeof cbin, "%s/%s_%s_c", dir, tag, m->name);
  snprintf(lbin, sizeof lbin, "%s/%s_%s_llvm", dir, tag, m->name);
  free(e2e_train_n(NULL, cbin, fx, NULL, NULL, LONG, c50));
  free(e2e_train_n(NULL, lbin, fx, NULL, NULL, LONG, l50));
  int same = 1, same_jit = 1;
  for (int s = 0; s < LONG; s++)
    same &= c50[s] == l50[s];
  CHECK(same);
  if (gvc && gvm) {
    snprintf(jit, sizeof jit, "%s run %s --model %s --seq 32 --micro-batch 2 --", gvc, gvm, m->name);
    free(e2e_train_n(NULL, jit, fx, NULL, NULL, LONG, j50));
    for (int s = 0; s < LONG; s++)
      same_jit &= j50[s] == l50[s];
    CHECK(same_jit);
  }
  printf("%s %s: 50 steps, C and LLVM losses %s%s; final %.9g\n", tag, m->name, same ? "bit-identical" : "DIFFER",
         gvc && gvm ? (same_jit ? ", JIT too" : ", JIT DIFFERS") : "", l50[LONG - 1]);
  for (int s = 0; s < STEPS; s++) {
    if (rl)
      CHECK_CLOSE(((double *)rl->data)[s], losses[1][s], 0, 1e-5);
    CHECK(losses[0][s] == losses[1][s]); /* C and LLVM: bit-identical */
    CHECK(losses[2][s] == losses[0][s]); /* checkpointing changes nothing */
  }
  printf("%s %s: loss %.9g -> %.9g; kept activations per micro-batch %.0f B, checkpointed %.0f B\n", tag, m->name,
         losses[0][0], losses[0][STEPS - 1], lowest[0], lowest[1]);
  CHECK(lowest[1] < lowest[0]);
  gv_tf_free(&ref);
}

int main(int argc, char **argv)
{
  if (argc < 4) {
    fprintf(stderr, "usage: test_program BUILD_DIR FIXTURE_DIR TINY_GVM\n");
    return 2;
  }
  Arena *a = arena_new(1 << 20);
  run_model(tiny_ir_gpt(a), "ir", argv[1], argv[2], NULL, NULL, a);      /* the lowering alone, IR built by hand */
  run_model(tiny_ir_llama(a), "ir", argv[1], argv[2], NULL, NULL, a);
  const char *names[2] = {"tiny_gpt", "tiny_llama"};         /* the whole path from examples/tiny.gvm */
  for (int i = 0; i < 2; i++) {
    Ctx *cx = ctx_new();
    IrModel *m = frontend_load_model(cx, argv[3], names[i]);
    CHECK(m != NULL);
    if (m)
      run_model(m, "gvm", argv[1], argv[2], argc > 4 ? argv[4] : NULL, argv[3], a);
    ctx_free(&cx);
  }
  arena_free(&a);
  tu_failures += e2e_failures;
  tu_checks += e2e_checks;
  return tu_report("e2e_program");
}
