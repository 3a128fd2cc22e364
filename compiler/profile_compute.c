/* profile_compute.c - `gvc profile computation`: Galvatron's computation profile of a .gvm
 * model, measured by compiling it with --layernum_min and --layernum_max layers and running
 * each program on the backend (profile_model.c). As Galvatron: the per-layer forward time
 * is the difference of the two programs per added layer and per sample, the rest of the
 * smaller program (embedding, head, loss) is "other", at least 0. Galvatron assumes
 * backward = 2 x forward; gvc measures it and keeps it under "gvc", with the bwd/fwd
 * ratios the cost model uses. */
#define _POSIX_C_SOURCE 200809L

#include "cmd.h"
#include "diag.h"
#include "profile.h"
#include "profile_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Point {
  PmPoint p;
  PmRun lo, hi;                   /* the programs of layernum_min and layernum_max layers */
  double layer_f, layer_b, other_f, other_b; /* ms per sample (per layer) */
} Point;

/* Per layer and sample: the difference of the two programs; when timing noise makes it
 * not positive, the larger program's time per layer (an upper bound, with a warning). */
static double per_layer(const PmOptions *o, double lo, double hi, int b, const char *what, PmPoint p)
{
  double t = (hi - lo) / b / (o->layernum_max - o->layernum_min);
  if (!(t > 0)) {
    t = hi / b / o->layernum_max;
    diag_plain_warning(NULL, "batch %d, seq %d: the %s of %d layers (%.3f ms) is not above that of %d (%.3f ms): timing "
                    "noise; kept as %.4f ms per layer and sample, the larger program's per layer (more --repeats help)",
            p.bsz, p.seq, what, o->layernum_max, hi, o->layernum_min, lo, t);
  }
  return t;
}

static void derive(const PmOptions *o, Point *q)
{
  int b = q->p.bsz;
  q->layer_f = per_layer(o, q->lo.fwd_ms, q->hi.fwd_ms, b, "forward", q->p);
  q->layer_b = per_layer(o, q->lo.bwd_ms, q->hi.bwd_ms, b, "backward", q->p);
  q->other_f = fmax(0, (q->lo.fwd_ms - o->layernum_min * q->layer_f * b) / b);
  q->other_b = fmax(0, (q->lo.bwd_ms - o->layernum_min * q->layer_b * b) / b);
}

static int cmp_dbl(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median_of(double *v, int k)
{
  if (!k) return 0;
  qsort(v, (size_t)k, sizeof(double), cmp_dbl);
  return k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
}

static double median_ratio(const Point *q, int n, int other)
{
  double v[PM_MAXPTS];
  int k = 0;
  for (int i = 0; i < n; i++) {
    double f = other ? q[i].other_f : q[i].layer_f, b = other ? q[i].other_b : q[i].layer_b;
    if (f > 0 && b > 0) v[k++] = b / f;
  }
  return k ? median_of(v, k) : 2; /* nothing measurable: Galvatron's assumption */
}

/* The optimizer step (with the gradients' zeroing and norm: a step's time outside its
 * forward and backward), ms per iteration: per layer the difference of the two programs
 * per added layer, the rest of the smaller one "other"; medians over the points, >= 0. */
static void optimizer_ms(const PmOptions *o, const Point *q, int n, double *layer, double *other)
{
  double v[PM_MAXPTS];
  for (int i = 0; i < n; i++) {
    double lo = q[i].lo.step_ms - q[i].lo.fwd_ms - q[i].lo.bwd_ms, hi = q[i].hi.step_ms - q[i].hi.fwd_ms - q[i].hi.bwd_ms;
    v[i] = (hi - lo) / (o->layernum_max - o->layernum_min);
  }
  *layer = fmax(0, median_of(v, n));
  for (int i = 0; i < n; i++) v[i] = fmax(0, q[i].lo.step_ms - q[i].lo.fwd_ms - q[i].lo.bwd_ms - o->layernum_min * *layer);
  *other = median_of(v, n);
}

/* --tp_ranks N: the program of --layernum_max layers split over N ranks (tp, tp + sequence
 * parallelism, Ulysses; the embedding and head by vocabulary) at the point of the largest
 * batch, each rank with the whole batch, for twice --repeats steps: its forward and
 * backward per rank over 1/N of the unsplit program's at that point. (The whole program,
 * not the difference per layer: a ratio of two medians is steadier than one of two
 * differences, and the layers are most of the program.) */
typedef struct Split { int at; double fwd[3], bwd[3], ms_f[3], ms_b[3]; } Split;

static int profile_split(const PmOptions *o, const char *tmp, const Point *q, int n, Split *sp, PmProgress *pr)
{
  sp->at = 0;
  for (int i = 1; i < n; i++) if (q[i].p.bsz >= q[sp->at].p.bsz) sp->at = i;
  const Point *at = &q[sp->at];
  int N = o->tp_ranks;
  PmOptions longer = *o;
  longer.repeats = 2 * o->repeats;
  for (int v = 0; v < 3; v++) {
    PmRun r;
    char item[64];
    snprintf(item, sizeof item, "%s over %d ranks, bsz %d", prof_split_names[v], N, at->p.bsz);
    if (pm_run(&longer, tmp, o->layernum_max, at->p, 1, N, prof_split_names[v], &r)) return 1;
    pm_progress(pr, item);
    sp->ms_f[v] = r.fwd_ms, sp->ms_b[v] = r.bwd_ms;
    sp->fwd[v] = r.fwd_ms / (at->hi.fwd_ms / N);
    sp->bwd[v] = r.bwd_ms / (at->hi.bwd_ms / N);
  }
  return 0;
}

/* Galvatron's keys (json.dump order: raw layernum entries, then layertype_0/other per
 * point), then gvc's own under "gvc". */
typedef struct Points { const Point *q; int n; const Split *split; } Points;

static void write_json(FILE *f, const PmOptions *o, const void *arg)
{
  const Point *q = ((const Points *)arg)->q;
  int n = ((const Points *)arg)->n;
  fprintf(f, "{\n");
  for (int w = 0; w < 2; w++)
    for (int i = 0; i < n; i++)
      fprintf(f, "    \"layernum[%d]_bsz%d_seq%d\": %.12g,\n", w ? o->layernum_max : o->layernum_min, q[i].p.bsz, q[i].p.seq,
              w ? q[i].hi.fwd_ms : q[i].lo.fwd_ms);
  for (int i = 0; i < n; i++)
    fprintf(f, "    \"layertype_0_bsz%d_seq%d\": %.12g,\n    \"layertype_other_bsz%d_seq%d\": %.12g,\n", q[i].p.bsz, q[i].p.seq,
            q[i].layer_f, q[i].p.bsz, q[i].p.seq, q[i].other_f);
  fprintf(f, "    \"gvc\": {\n        \"device\": \"%s\",\n        \"profile_mode\": \"%s\",\n        \"layernum_min\": %d,\n"
             "        \"layernum_max\": %d,\n        \"warmup\": %d,\n        \"repeats\": %d,\n        \"concurrent\": %d,\n",
          o->device, o->mode, o->layernum_min, o->layernum_max, o->warmup, o->repeats, o->concurrent);
  fprintf(f, "        \"bwd_fwd_ratio_layertype_0\": %.12g,\n        \"bwd_fwd_ratio_layertype_other\": %.12g,\n",
          median_ratio(q, n, 0), median_ratio(q, n, 1));
  double opt_l, opt_o;
  optimizer_ms(o, q, n, &opt_l, &opt_o);
  fprintf(f, "        \"optimizer_ms_layertype_0\": %.12g,\n        \"optimizer_ms_layertype_other\": %.12g,\n", opt_l, opt_o);
  const Split *sp = ((const Points *)arg)->split;
  for (int v = 0; sp && v < 3; v++)
    fprintf(f, "        \"%s%d_fwd_ratio_layertype_0\": %.12g,\n        \"%s%d_bwd_ratio_layertype_0\": %.12g,\n", prof_split_names[v],
            o->tp_ranks, sp->fwd[v], prof_split_names[v], o->tp_ranks, sp->bwd[v]);
  for (int i = 0; i < n; i++) {
    int b = q[i].p.bsz, s = q[i].p.seq;
    fprintf(f, "        \"bwd_layertype_0_bsz%d_seq%d\": %.12g,\n        \"bwd_layertype_other_bsz%d_seq%d\": %.12g,\n", b, s,
            q[i].layer_b, b, s, q[i].other_b);
    for (int w = 0; w < 2; w++) {
      const PmRun *r = w ? &q[i].hi : &q[i].lo;
      int L = w ? o->layernum_max : o->layernum_min;
      fprintf(f, "        \"bwd_layernum[%d]_bsz%d_seq%d\": %.12g,\n        \"step_layernum[%d]_bsz%d_seq%d\": %.12g%s\n", L, b, s,
              r->bwd_ms, L, b, s, r->step_ms, i + 1 < n || !w ? "," : "");
    }
  }
  fprintf(f, "    }\n}\n");
}

static void write_table(FILE *f, const PmOptions *o, const void *arg)
{
  const Point *q = ((const Points *)arg)->q;
  int n = ((const Points *)arg)->n;
  fprintf(f, "gvc profile computation: %s (%s), %s, --device %s, %s mode; layers %d and %d, %d warm-up + %d timed steps, median",
          o->model, o->file, o->precision, o->device, o->mode, o->layernum_min, o->layernum_max, o->warmup, o->repeats);
  if (o->concurrent > 1) fprintf(f, "; %d copies side by side, averaged", o->concurrent);
  fprintf(f, "\n");
  fprintf(f, "forward and backward ms of the whole programs; per layer and other: ms per sample\n\n");
  fprintf(f, "  bsz    seq   fwd L%-3d   fwd L%-3d   bwd L%-3d   bwd L%-3d  layer fwd  layer bwd  bwd/fwd  other fwd  other bwd\n",
          o->layernum_min, o->layernum_max, o->layernum_min, o->layernum_max);
  for (int i = 0; i < n; i++)
    fprintf(f, "%5d %6d %10.3f %10.3f %10.3f %10.3f %10.4f %10.4f %8.3f %10.4f %10.4f\n", q[i].p.bsz, q[i].p.seq, q[i].lo.fwd_ms,
            q[i].hi.fwd_ms, q[i].lo.bwd_ms, q[i].hi.bwd_ms, q[i].layer_f, q[i].layer_b, q[i].layer_b / q[i].layer_f,
            q[i].other_f, q[i].other_b);
  fprintf(f, "\nmeasured backward / forward (median): layer %.3f, other %.3f (Galvatron assumes 2)\n", median_ratio(q, n, 0),
          median_ratio(q, n, 1));
  double opt_l, opt_o;
  optimizer_ms(o, q, n, &opt_l, &opt_o);
  fprintf(f, "optimizer step (outside forward and backward, median): %.3f ms per layer, %.3f ms other, per iteration "
             "(Galvatron has none)\n", opt_l, opt_o);
  const Split *sp = ((const Points *)arg)->split;
  for (int v = 0; sp && v < 3; v++)
    fprintf(f, "%-8s over %d ranks, bsz %d, %d layers: fwd %.3f, bwd %.3f ms per rank = %.3f, %.3f x 1/%d of the unsplit program's\n",
            prof_split_names[v], o->tp_ranks, q[sp->at].p.bsz, o->layernum_max, sp->ms_f[v], sp->ms_b[v], sp->fwd[v], sp->bwd[v],
            o->tp_ranks);
}


int cmd_profile_computation(int argc, char **argv)
{
  PmOptions o;
  PmPoint pts[PM_MAXPTS];
  int n = 0, rc = pm_parse("computation", argc, argv, &o, pts, &n);
  if (rc) return rc == 2 ? 0 : 1;
  if (pm_check_fit(&o, o.layernum_max, pts, n)) return 1; /* before any run: none may exceed memory */
  Point *q = calloc((size_t)n, sizeof *q);
  char tmp[4200], item[64];
  if (pm_mktmp(&o, tmp, sizeof tmp)) { free(q); return 1; }
  PmProgress pr = {.what = "computation", .total = 2 * n + (o.tp_ranks ? 3 : 0), .t0 = pm_now_s(), .quiet = o.quiet};
  pm_progress(&pr, NULL);
  for (int i = 0; i < n && !rc; i++) {
    q[i].p = pts[i];
    for (int w = 0; w < 2 && !rc; w++) {
      int L = w ? o.layernum_max : o.layernum_min;
      rc = pm_run(&o, tmp, L, pts[i], 0, 1, NULL, w ? &q[i].hi : &q[i].lo);
      snprintf(item, sizeof item, "%d layers, bsz %d, seq %d", L, pts[i].bsz, pts[i].seq);
      if (!rc) pm_progress(&pr, item);
    }
    if (!rc) derive(&o, &q[i]);
  }
  Split split;
  if (!rc && o.tp_ranks) rc = profile_split(&o, tmp, q, n, &split, &pr);
  pm_rmtmp(tmp);
  Points all = {q, n, o.tp_ranks ? &split : NULL};
  if (!rc) rc = pm_write_files(&o, "computation_profiling", write_json, write_table, &all);
  free(q);
  return rc;
}
