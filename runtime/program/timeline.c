/* timeline.c - a training binary's --timeline FILE.svg: every rank times the forward and
 * backward of each of its micro-batches and its exposed gradient reduction during one step
 * after warm-up (the second step run, or the only one); the times are gathered to rank 0,
 * which draws them with svg_timeline.h, the rows `gvc plan/search --svg` draws from the
 * cost model, so prediction and run can be laid side by side. The ranks start the step
 * together (a barrier) and read their own monotonic clocks; on a device backend each mark
 * synchronises the device, so the step is timed as the device ran it (without overlap of
 * kernels across marks). */
#define _POSIX_C_SOURCE 200809L /* open_memstream */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "program/run.h"
#include "svg.h"
#include "svg_timeline.h"

#define TL_MAX_ROWS 64 /* more ranks: one row per stage */

void gv_run_tl_begin(struct gv_run *r)
{
  struct gv_run_timeline *t = &r->tl;
  if (!r->args.timeline || r->step != t->step || r->nmicro < 1)
    return;
  free(t->ev);
  t->n = r->nmicro;
  t->ev = calloc((size_t)(4 * t->n), sizeof(double));
  GV_CHECK(t->ev != NULL, "out of host memory");
  double zero = 0;
  gv_backend_sync(&r->be);
  gv_comm_all_reduce_host(r->world, &zero, 1, GV_DTYPE_F64, GV_REDUCE_SUM); /* start together */
  t->sync0 = t->sync1 = 0;
  t->t0 = gv_run_now_s();
  t->on = 1;
}

void gv_run_tl_mark(struct gv_run *r, int what, int64_t micro)
{
  struct gv_run_timeline *t = &r->tl;
  gv_run_sl_mark(r, what);
  if (!t->on || micro < 0 || micro >= t->n)
    return;
  gv_backend_sync(&r->be);
  t->ev[4 * micro + what] = gv_run_now_s() - t->t0;
}

void gv_run_tl_reduce(struct gv_run *r, int end)
{
  struct gv_run_timeline *t = &r->tl;
  if (!t->on)
    return;
  gv_backend_sync(&r->be);
  *(end ? &t->sync1 : &t->sync0) = gv_run_now_s() - t->t0;
}

/* Rows: every rank (rank 0 .. N-1) when they fit, else the lowest rank of each stage. */
static int make_rows(const struct gv_run *r, const double *all, int W, int K, SvgTlRow *rows, char (*labels)[40])
{
  int n = 0, per_stage = W > TL_MAX_ROWS;
  for (int w = 0; w < W && n < TL_MAX_ROWS; w++) {
    const double *me = all + (size_t)w * K;
    int stage = (int)me[4 * r->tl.n + 2];
    if (per_stage && n > 0 && stage <= (int)all[(size_t)(w - 1) * K + 4 * r->tl.n + 2])
      continue; /* ranks are laid out stage by stage: this stage has its row */
    snprintf(labels[n], sizeof labels[n], "rank %d (stage %d)", w, stage);
    rows[n] = (SvgTlRow){labels[n], (int)r->tl.n, me, me[4 * r->tl.n], me[4 * r->tl.n + 1]};
    n++;
  }
  return n;
}

static void draw(const struct gv_run *r, const double *all, int W, int K)
{
  SvgTlRow rows[TL_MAX_ROWS];
  char labels[TL_MAX_ROWS][40], t[32], ws[32];
  int n = make_rows(r, all, W, K, rows, labels);
  double step_s = 0;
  for (int k = 0; k < n; k++) step_s = fmax(step_s, rows[k].sync1);
  SvgTlStats st;
  svg_timeline_stats(rows, n, &st);
  step_s = fmax(step_s, st.span);
  char *body = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&body, &len);
  double y = 26, x = SVG_TL_MARGIN;
  svg_fmt_time(step_s, t, sizeof t);
  svg_text(f, x, y, 18, "start", 1, "#222222", "%s: measured step %d, %s on %d ranks", r->model, r->tl.step, t, W);
  y += 19;
  svg_text(f, x, y, 13, "start", 0, "#222222", "%lld pipeline stage%s (%s), %lld micro-batches of %lld, dp %d, tp %d; --device %s",
           (long long)r->pp, r->pp == 1 ? "" : "s", r->one_f_one_b || r->pp == 1 ? "1F1B" : "GPipe",
           (long long)r->tl.n, (long long)r->micro_batch, r->dp_size, r->tp, r->args.device);
  y += 17;
  svg_text(f, x, y, 12, "start", 0, "#555555", "%s; each rank's clock from a barrier at the step's start%s",
           W > TL_MAX_ROWS ? "one row per stage (its lowest rank)" : "one row per rank",
           strcmp(r->args.device, "cpu") ? "; the device synchronised at every mark" : "");
  y += 26;
  svg_text(f, x, y, 15, "start", 1, "#222222", "Pipeline timeline of one step (the times measured)");
  y += 8;
  svg_timeline(f, &y, rows, n, step_s, "measured step time");
  y += 17;
  svg_fmt_time(st.worst_sync, ws, sizeof ws);
  svg_text(f, x, y, 12, "start", 0, "#555555", "bubble %.0f%% of the ranks' time; exposed gradient reduction up to %s (%s)",
           100 * st.bubble, ws, n ? rows[st.worst_row].label : "-");
  fclose(f);
  char title[128];
  snprintf(title, sizeof title, "%s: measured pipeline timeline", r->model);
  if (svg_write_file(r->args.timeline, SVG_TL_WIDTH, ceil(y + 2 * SVG_TL_MARGIN), title, body, len))
    gv_log(GV_LOG_WARN, "--timeline %s: cannot write the file", r->args.timeline);
  else
    gv_log(GV_LOG_INFO, "wrote the timeline of step %d to %s", r->tl.step, r->args.timeline);
  free(body);
}

void gv_run_tl_end(struct gv_run *r)
{
  struct gv_run_timeline *t = &r->tl;
  if (!t->on)
    return;
  t->on = 0;
  int W = gv_comm_size(r->world), K = (int)(4 * t->n + 3), me = gv_comm_rank(r->world);
  double *all = calloc((size_t)W * (size_t)K, sizeof(double));
  GV_CHECK(all != NULL, "out of host memory");
  double *mine = all + (size_t)me * K;
  memcpy(mine, t->ev, sizeof(double) * (size_t)(4 * t->n));
  mine[4 * t->n] = t->sync0;
  mine[4 * t->n + 1] = t->sync1;
  mine[4 * t->n + 2] = r->stage;
  if (W > 1) /* each rank fills its own slot: the sum is the gather */
    gv_comm_all_reduce_host(r->world, all, (size_t)W * (size_t)K, GV_DTYPE_F64, GV_REDUCE_SUM);
  if (me == 0)
    draw(r, all, W, K);
  free(all);
  free(t->ev);
  t->ev = NULL;
}
