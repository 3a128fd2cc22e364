/* test_plan_svg.c DIR - the SVG writer's escaping and the plan picture's layout on made-up
 * plans: the schedule's event times (1F1B and GPipe by hand), the stage labels, over-budget
 * marking, and the summaries for too many layers or stages. Writes DIR/t_*.svg, which
 * svg.sh then parses and renders. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_svg.h"
#include "svg.h"
#include "testutil.h"

static char dir[1024];

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = calloc((size_t)n + 1, 1);
  if (fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = 0;
  fclose(f);
  return s;
}

/* A plan of pp stages, nl blocks split evenly, embedding and head on the ends. */
static PlanPicture make(int pp, int nl, int chunks, int gpipe, PsvgLayer *ls)
{
  PlanPicture p;
  memset(&p, 0, sizeof p);
  static char names[512][16];
  Strategy s = {pp, 2, 1, 2, DP_ZERO2, 0, 1, 1};
  ls[0] = (PsvgLayer){"emb<&>", 0, 0, 1, s};
  for (int i = 0; i < nl; i++) {
    snprintf(names[i], sizeof names[i], "blk.%d", i);
    Strategy b = s;
    b.ckpt = i % 2;
    b.dp_type = i % 3;
    ls[i + 1] = (PsvgLayer){names[i], i * pp / nl, 1, 0, b};
  }
  ls[nl + 1] = (PsvgLayer){"head", pp - 1, 0, 1, s};
  p.model = "made-up \"model\"";
  p.source = "test";
  p.world = 4 * pp;
  p.pp = pp;
  p.chunks = chunks;
  p.gbsz = 8;
  p.gpipe = gpipe;
  p.megatron_sp = 1;
  p.nlayers = nl + 2;
  p.layers = ls;
  for (int k = 0; k < pp && k < PSVG_MAXPP; k++) {
    p.fwd_s[k] = 1;
    p.bwd_s[k] = 2;
    p.mem_mb[k][PSVG_PARAMS] = 100;
    p.mem_mb[k][PSVG_ACTS] = 100 + 50 * k;
  }
  p.time_s = 9;
  return p;
}

static char *draw(const char *name, const PlanPicture *p, int n)
{
  char path[1200];
  snprintf(path, sizeof path, "%s/t_%s.svg", dir, name);
  CHECK_EQ_INT(0, plan_svg_write(path, p, n));
  char *s = slurp(path);
  CHECK(s != NULL);
  return s ? s : calloc(1, 1);
}

static void test_escape(void)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  svg_escape(f, "a<b&\"c'\x01" "d>");
  fclose(f);
  CHECK_STR("a&lt;b&amp;&quot;c&apos;d&gt;", buf);
  free(buf);
}

static void test_schedules(void)
{
  PsvgLayer ls[8];
  /* 2 stages, 2 micro-batches, forward 1 s, backward 2 s: both schedules end at 9 s, each
   * stage busy 6 of 9 s (1F1B: F0 F1 | B0 [4,6] B1 [7,9] on stage 0). */
  for (int gp = 0; gp < 2; gp++) {
    PlanPicture p = make(2, 4, 2, gp, ls);
    char *s = draw(gp ? "gpipe" : "1f1b", &p, 1);
    CHECK(strstr(s, "per-stage micro-batch times: 9 s; bubble 33%") != NULL);
    CHECK(strstr(s, gp ? "(GPipe" : "(1F1B") != NULL);
    CHECK(strstr(s, "stage 0: layers 0-1") && strstr(s, "stage 1: layers 2-3"));
    CHECK(strstr(s, "predicted step 9.000000 s") != NULL);
    CHECK(strstr(s, "emb&lt;&amp;&gt;") != NULL);
    CHECK(strstr(s, "OVER BUDGET") == NULL);
    CHECK(strstr(s, "<script") == NULL && strstr(s, "href") == NULL);
    free(s);
  }
}

static void test_budget_and_topk(void)
{
  PsvgLayer a[8], b[8];
  PlanPicture p[2] = {make(2, 4, 4, 0, a), make(2, 4, 1, 1, b)};
  p[0].budget_mb = 220; /* stage 0 uses 200 MB, stage 1 250 MB */
  p[1].time_s = 12;
  char *s = draw("topk", p, 2);
  CHECK(strstr(s, "stage 1: layers 2-3 OVER BUDGET") != NULL);
  CHECK(strstr(s, "stage 0: layers 0-1 OVER BUDGET") == NULL);
  CHECK(strstr(s, "1 of 2 stages over the budget") != NULL);
  CHECK(strstr(s, "#1 made-up &quot;model&quot;: predicted step 9.000000 s") != NULL);
  CHECK(strstr(s, "#2 made-up &quot;model&quot;: predicted step 12.000000 s") != NULL);
  free(s);
}

static void test_summaries(void)
{
  static PsvgLayer ls[402];
  PlanPicture p = make(4, 200, 8, 0, ls);
  char *s = draw("many_layers", &p, 1);
  CHECK(strstr(s, "202 layers: one box per stage") != NULL);
  CHECK(strstr(s, "stage 3: layers 150-199") != NULL);
  CHECK(strstr(s, "tp 2  dp 2") == NULL); /* no per-layer boxes */
  free(s);
  p = make(100, 400, 8, 0, ls);
  s = draw("many_stages", &p, 1);
  CHECK(strstr(s, "100 stages of 402 layers: too many to draw stage by stage") != NULL);
  CHECK(strstr(s, "too many stages or micro-batches to draw") != NULL);
  free(s);
}

int main(int argc, char **argv)
{
  snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
  test_escape();
  test_schedules();
  test_budget_and_topk();
  test_summaries();
  return tu_report("test_plan_svg");
}
