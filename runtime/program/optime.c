/* optime.c - where a training step's time goes, op by op: a program compiled with
 * `gvc compile --time_ops` calls gv_gen_op_mark(ctx, name) before each of its calls (and
 * with "" at the end of each stage function); the time from one mark to the next is
 * charged to the named entry point. Only training steps after the first are counted (the
 * first touches the arenas' pages), and each mark synchronises a device backend first, so
 * the times are the ops' own. gv_run_optime_report prints the table at the end. */
#include <stdlib.h>
#include <string.h>

#include "program/run.h"

void gv_gen_op_mark(void *ctx, const char *name)
{
  struct gv_run *r = ctx;
  struct gv_run_optime *t = &r->optime;
  t->enabled = 1;
  if (!t->counting)
    return;
  if (r->be.ops->sync)
    gv_backend_sync(&r->be);
  double now = gv_run_now_s();
  if (t->cur >= 0) {
    t->op[t->cur].s += now - t->t0;
    t->op[t->cur].calls++;
  }
  t->cur = -1;
  if (!name[0])
    return;
  int i = 0;
  while (i < t->n && strcmp(t->op[i].name, name))
    i++;
  if (i == t->n) {
    if (t->n == GV_RUN_MAX_TIMED_OPS)
      return;
    t->op[t->n++].name = name;
  }
  t->cur = i;
  t->t0 = now;
}

static int by_time(const void *a, const void *b)
{
  double x = ((const struct gv_run_timed_op *)a)->s, y = ((const struct gv_run_timed_op *)b)->s;
  return (x < y) - (x > y);
}

void gv_run_optime_report(struct gv_run *r)
{
  struct gv_run_optime *t = &r->optime;
  if (!t->n || !t->steps)
    return;
  qsort(t->op, (size_t)t->n, sizeof t->op[0], by_time);
  double ops = 0;
  for (int i = 0; i < t->n; i++)
    ops += t->op[i].s;
  gv_log(GV_LOG_INFO, "time per op over %d steps after the first (ms per step; %% of the step):", t->steps);
  gv_log(GV_LOG_INFO, "  %-28s %10s %12s %8s", "op", "calls/step", "ms/step", "%");
  for (int i = 0; i < t->n; i++)
    gv_log(GV_LOG_INFO, "  %-28s %10.1f %12.3f %7.1f%%", t->op[i].name, (double)t->op[i].calls / t->steps,
           1e3 * t->op[i].s / t->steps, 100 * t->op[i].s / t->step_s);
  gv_log(GV_LOG_INFO, "  %-28s %10s %12.3f %7.1f%%", "(outside the ops)", "", 1e3 * (t->step_s - ops) / t->steps,
         100 * (t->step_s - ops) / t->step_s);
  gv_log(GV_LOG_INFO, "  %-28s %10s %12.3f %7.1f%%", "step", "", 1e3 * t->step_s / t->steps, 100.0);
}
