/* test_prims.c - every primitive `gvc check` accepts has a lowering: all_prims.gvm calls each
 * primitive of the front end's table (the test fails when one is missing from the file), and
 * its token model and its image model lower on one rank and under tensor parallelism (+ sequence parallelism, Ulysses),
 * pipeline parallelism with checkpointing, and ZeRO-3, with a verified schedule.
 * Usage: test_prims ALL_PRIMS_GVM */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "lower.h"
#include "sema.h"
#include "testutil.h"

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  s[fread(s, 1, (size_t)n, f)] = 0;
  fclose(f);
  return s;
}

/* Does the source call `name(` (not as part of a longer name)? */
static int calls(const char *src, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = strstr(src, name); p; p = strstr(p + 1, name)) {
    int start = p == src || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z'));
    if (start && p[n] == '(')
      return 1;
  }
  return 0;
}

static void lower_with(Arena *a, const IrModel *m, ParPlan o, const char *what)
{
  LowerError err;
  Lowered *lw = lower_model(a, m, &o, &err);
  if (!lw) {
    fprintf(stderr, "%s: %s\n", what, err.msg ? err.msg : "(no message)");
    tu_failures++, tu_checks++;
    return;
  }
  const char *verr = sched_verify(lw->prog);
  if (verr)
    fprintf(stderr, "%s: %s\n", what, verr);
  CHECK(verr == NULL);
}

/* Model `name` of the file lowered on one rank and under tp, tp + sp, Ulysses, pp with
 * checkpointing and ZeRO-3, at sequence length seq. */
static void lower_all(Ctx *cx, const char *path, const char *name, int64_t seq)
{
  IrModel *m = frontend_load_model(cx, path, name);
  CHECK(m != NULL);
  if (!m)
    return;
  Arena *a = arena_new(1 << 20);
  unsigned char ck[8] = {0, 1, 1, 0};
  ParPlan one = {.micro_batch = 2, .seq = seq, .world = 1, .pp = 1, .tp = 1, .chunks = 1};
  lower_with(a, m, one, "one rank");
  ParPlan tp = one;
  tp.world = 2, tp.tp = 2, tp.tp_consec = 1;
  lower_with(a, m, tp, "tp 2");
  tp.sp = 1;
  lower_with(a, m, tp, "tp 2 + sp");
  tp.sp = 0, tp.ulysses = 1;
  lower_with(a, m, tp, "ulysses 2");
  ParPlan pp = one;
  pp.world = 2, pp.pp = 2, pp.chunks = 2, pp.pipeline_1f1b = 1;
  parplan_layers(a, m, &pp);
  for (int i = 0; i < m->nlayers && i < 8; i++)
    pp.layer[i].ckpt = ck[i];
  lower_with(a, m, pp, "pp 2 (1F1B) + checkpointing");
  ParPlan z3 = one;
  z3.world = 2, z3.dp_type = DP_ZERO3;
  lower_with(a, m, z3, "zero3 dp 2");
  arena_free(&a);
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: test_prims ALL_PRIMS_GVM\n");
    return 2;
  }
  char *src = slurp(argv[1]);
  CHECK(src != NULL);
  if (!src)
    return tu_report("prims");
  for (int i = 0; i < sema_prim_count(); i++) {
    int used = calls(src, sema_prim_name(i));
    if (!used)
      fprintf(stderr, "primitive '%s' is not called in %s\n", sema_prim_name(i), argv[1]);
    CHECK(used);
  }
  Ctx *cx = ctx_new();
  for (int img = 0; img < 2; img++) /* the token model, then the image model (sequences of 16 patches + 1) */
    lower_all(cx, argv[1], img ? "image_prims_small" : "all_prims_small", img ? 17 : 16);
  ctx_free(&cx);
  free(src);
  return tu_report("prims");
}
