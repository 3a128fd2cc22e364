/* profile_compute.c - `gvc profile computation`: Galvatron's computation profile of a .gvm
 * model, measured by compiling it with --layernum_min and --layernum_max layers and running
 * each program on the backend (profile_model.c). As Galvatron: the per-layer forward time
 * is the difference of the two programs per added layer and per sample, the rest of the
 * smaller program (embedding, head, loss) is "other", at least 0. Galvatron assumes
 * backward = 2 x forward; gvc measures it and keeps it under "gvc", with the bwd/fwd
 * ratios the cost model uses. A model of several layer types is timed stack by stack
 * (pm_programs): layertype_k per type, the rest keyed by the tuple of sequence lengths. */
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
  PmRun run[PM_MAXPROGS];         /* the programs of pm_programs: 0 at layernum_min, then each group at layernum_max */
  double layer_f[PROF_MAXTYPES], layer_b[PROF_MAXTYPES], other_f, other_b; /* ms per sample (per layer) */
} Point;

static int ntypes(const PmOptions *o) { return o->ntypes > 1 ? o->ntypes : 1; }

static void derive(const PmOptions *o, const PmPrograms *pg, Point *q)
{
  double f[PM_MAXPROGS], b[PM_MAXPROGS];
  for (int i = 0; i < pg->n; i++) f[i] = q->run[i].fwd_ms, b[i] = q->run[i].bwd_ms;
  pm_per_type(o, pg, f, q->p.bsz, "forward", q->p, 1, q->layer_f, &q->other_f);
  pm_per_type(o, pg, b, q->p.bsz, "backward", q->p, 1, q->layer_b, &q->other_b);
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

/* type k's (other: k < 0) backward / forward, median over the points */
static double median_ratio(const Point *q, int n, int k)
{
  double v[PM_MAXPTS];
  int c = 0;
  for (int i = 0; i < n; i++) {
    double f = k < 0 ? q[i].other_f : q[i].layer_f[k], b = k < 0 ? q[i].other_b : q[i].layer_b[k];
    if (f > 0 && b > 0) v[c++] = b / f;
  }
  return c ? median_of(v, c) : 2; /* nothing measurable: Galvatron's assumption */
}

/* The optimizer step (with the gradients' zeroing and norm: a step's time outside its
 * forward and backward), ms per iteration: per layer of each type the difference of the
 * programs per added layer, the rest of the smallest one "other"; medians over the points,
 * >= 0. */
static void optimizer_ms(const PmOptions *o, const PmPrograms *pg, const Point *q, int n, double *layer, double *other)
{
  double v[PROF_MAXTYPES][PM_MAXPTS], rest[PM_MAXPTS], x[PM_MAXPROGS], per[PROF_MAXTYPES], oth;
  int T = ntypes(o);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < pg->n; j++) x[j] = q[i].run[j].step_ms - q[i].run[j].fwd_ms - q[i].run[j].bwd_ms;
    pm_per_type(o, pg, x, 1, "optimizer step", q[i].p, 0, per, &oth);
    for (int k = 0; k < T; k++) v[k][i] = per[k];
  }
  for (int k = 0; k < T; k++) layer[k] = fmax(0, median_of(v[k], n));
  for (int i = 0; i < n; i++) {
    rest[i] = q[i].run[0].step_ms - q[i].run[0].fwd_ms - q[i].run[0].bwd_ms;
    for (int k = 0; k < T; k++) rest[i] -= pg->blocks[0][k] * layer[k];
    rest[i] = fmax(0, rest[i]);
  }
  *other = median_of(rest, n);
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
    sp->fwd[v] = r.fwd_ms / (at->run[1].fwd_ms / N);
    sp->bwd[v] = r.bwd_ms / (at->run[1].bwd_ms / N);
  }
  return 0;
}

/* Galvatron's keys (json.dump order: raw layernum entries, then layertype_k/other per
 * point), then gvc's own under "gvc". */
typedef struct Points { const Point *q; int n; const Split *split; const PmPrograms *pg; } Points;

static void write_json(FILE *f, const PmOptions *o, const void *arg)
{
  const Points *all = arg;
  const Point *q = all->q;
  const PmPrograms *pg = all->pg;
  int n = all->n, T = ntypes(o);
  char sk[16 * PROF_MAXTYPES];
  fprintf(f, "{\n");
  for (int w = 0; w < pg->n; w++)
    for (int i = 0; i < n; i++) {
      pm_seq_key(o, q[i].p.seq, sk, sizeof sk);
      fprintf(f, "    \"layernum[%s]_bsz%d_seq%s\": %.12g,\n", pg->label[w], q[i].p.bsz, sk, q[i].run[w].fwd_ms);
    }
  for (int i = 0; i < n; i++) {
    pm_seq_key(o, q[i].p.seq, sk, sizeof sk);
    for (int k = 0; k < T; k++)
      fprintf(f, "    \"layertype_%d_bsz%d_seq%d\": %.12g,\n", k, q[i].p.bsz, pm_type_seq(o, k, q[i].p.seq), q[i].layer_f[k]);
    fprintf(f, "    \"layertype_other_bsz%d_seq%s\": %.12g,\n", q[i].p.bsz, sk, q[i].other_f);
  }
  fprintf(f, "    \"gvc\": {\n        \"device\": \"%s\",\n        \"profile_mode\": \"%s\",\n        \"layernum_min\": %d,\n"
             "        \"layernum_max\": %d,\n        \"warmup\": %d,\n        \"repeats\": %d,\n        \"concurrent\": %d,\n",
          o->device, o->mode, o->layernum_min, o->layernum_max, o->warmup, o->repeats, o->concurrent);
  if (o->src_seq > 0) fprintf(f, "        \"src_seq\": %d,\n", o->src_seq);
  for (int k = 0; k < T; k++) fprintf(f, "        \"bwd_fwd_ratio_layertype_%d\": %.12g,\n", k, median_ratio(q, n, k));
  fprintf(f, "        \"bwd_fwd_ratio_layertype_other\": %.12g,\n", median_ratio(q, n, -1));
  double opt_l[PROF_MAXTYPES], opt_o;
  optimizer_ms(o, pg, q, n, opt_l, &opt_o);
  for (int k = 0; k < T; k++) fprintf(f, "        \"optimizer_ms_layertype_%d\": %.12g,\n", k, opt_l[k]);
  fprintf(f, "        \"optimizer_ms_layertype_other\": %.12g,\n", opt_o);
  const Split *sp = all->split;
  for (int v = 0; sp && v < 3; v++)
    fprintf(f, "        \"%s%d_fwd_ratio_layertype_0\": %.12g,\n        \"%s%d_bwd_ratio_layertype_0\": %.12g,\n", prof_split_names[v],
            o->tp_ranks, sp->fwd[v], prof_split_names[v], o->tp_ranks, sp->bwd[v]);
  for (int i = 0; i < n; i++) {
    int b = q[i].p.bsz, s = q[i].p.seq;
    pm_seq_key(o, s, sk, sizeof sk);
    for (int k = 0; k < T; k++) fprintf(f, "        \"bwd_layertype_%d_bsz%d_seq%d\": %.12g,\n", k, b, pm_type_seq(o, k, s), q[i].layer_b[k]);
    fprintf(f, "        \"bwd_layertype_other_bsz%d_seq%s\": %.12g,\n", b, sk, q[i].other_b);
    for (int w = 0; w < pg->n; w++) {
      const PmRun *r = &q[i].run[w];
      fprintf(f, "        \"bwd_layernum[%s]_bsz%d_seq%s\": %.12g,\n        \"step_layernum[%s]_bsz%d_seq%s\": %.12g%s\n", pg->label[w],
              b, sk, r->bwd_ms, pg->label[w], b, sk, r->step_ms, i + 1 < n || w + 1 < pg->n ? "," : "");
    }
  }
  fprintf(f, "    }\n}\n");
}

static void write_table(FILE *f, const PmOptions *o, const void *arg)
{
  const Points *all = arg;
  const Point *q = all->q;
  const PmPrograms *pg = all->pg;
  int n = all->n, T = ntypes(o);
  fprintf(f, "gvc profile computation: %s (%s), %s, --device %s, %s mode; layers %d and %d, %d warm-up + %d timed steps, median",
          o->model, o->file, o->precision, o->device, o->mode, o->layernum_min, o->layernum_max, o->warmup, o->repeats);
  if (o->concurrent > 1) fprintf(f, "; %d copies side by side, averaged", o->concurrent);
  if (o->src_seq > 0) fprintf(f, "; source length %d (the encoder's layer types), seq the target's", o->src_seq);
  fprintf(f, "\n");
  fprintf(f, "forward and backward ms of the whole programs; per layer and other: ms per sample\n\n");
  if (T == 1) {
    fprintf(f, "  bsz    seq   fwd L%-3d   fwd L%-3d   bwd L%-3d   bwd L%-3d  layer fwd  layer bwd  bwd/fwd  other fwd  other bwd\n",
            o->layernum_min, o->layernum_max, o->layernum_min, o->layernum_max);
    for (int i = 0; i < n; i++)
      fprintf(f, "%5d %6d %10.3f %10.3f %10.3f %10.3f %10.4f %10.4f %8.3f %10.4f %10.4f\n", q[i].p.bsz, q[i].p.seq, q[i].run[0].fwd_ms,
              q[i].run[1].fwd_ms, q[i].run[0].bwd_ms, q[i].run[1].bwd_ms, q[i].layer_f[0], q[i].layer_b[0], q[i].layer_b[0] / q[i].layer_f[0],
              q[i].other_f, q[i].other_b);
  } else {
    fprintf(f, "layer types: ");
    for (int k = 0; k < T; k++) fprintf(f, "%s%d: %s", k ? ", " : "", k, o->type_names[k]);
    fprintf(f, "; programs layernum[blocks per type]\n\n  bsz    seq  program                 fwd        bwd\n");
    for (int i = 0; i < n; i++)
      for (int w = 0; w < pg->n; w++)
        fprintf(f, "%5d %6d  %-18s %10.3f %10.3f\n", q[i].p.bsz, q[i].p.seq, pg->label[w], q[i].run[w].fwd_ms, q[i].run[w].bwd_ms);
    fprintf(f, "\n  bsz    seq  type   layer fwd  layer bwd  bwd/fwd\n");
    for (int i = 0; i < n; i++) {
      for (int k = 0; k < T; k++)
        fprintf(f, "%5d %6d  %4d %11.4f %10.4f %8.3f\n", q[i].p.bsz, pm_type_seq(o, k, q[i].p.seq), k, q[i].layer_f[k], q[i].layer_b[k],
                q[i].layer_b[k] / q[i].layer_f[k]);
      fprintf(f, "%5d %6d  other %10.4f %10.4f\n", q[i].p.bsz, q[i].p.seq, q[i].other_f, q[i].other_b);
    }
  }
  fprintf(f, "\nmeasured backward / forward (median): layer");
  for (int k = 0; k < T; k++) fprintf(f, "%s %.3f", k ? "," : "", median_ratio(q, n, k));
  fprintf(f, ", other %.3f (Galvatron assumes 2)\n", median_ratio(q, n, -1));
  double opt_l[PROF_MAXTYPES], opt_o;
  optimizer_ms(o, pg, q, n, opt_l, &opt_o);
  fprintf(f, "optimizer step (outside forward and backward, median):");
  for (int k = 0; k < T; k++) fprintf(f, "%s %.3f", k ? "," : "", opt_l[k]);
  fprintf(f, " ms per layer, %.3f ms other, per iteration (Galvatron has none)\n", opt_o);
  const Split *sp = all->split;
  for (int v = 0; sp && v < 3; v++)
    fprintf(f, "%-8s over %d ranks, bsz %d, %d layers: fwd %.3f, bwd %.3f ms per rank = %.3f, %.3f x 1/%d of the unsplit program's\n",
            prof_split_names[v], o->tp_ranks, q[sp->at].p.bsz, o->layernum_max, sp->ms_f[v], sp->ms_b[v], sp->fwd[v], sp->bwd[v],
            o->tp_ranks);
}


int cmd_profile_computation(int argc, char **argv)
{
  PmOptions o;
  PmPoint pts[PM_MAXPTS];
  PmPrograms pg;
  int n = 0, rc = pm_parse("computation", argc, argv, &o, pts, &n);
  if (rc) return rc == 2 ? 0 : 1;
  if (pm_programs(&o, &pg)) return 1;
  for (int w = 1; w < pg.n; w++) { /* before any run: none may exceed memory */
    PmOptions po = pm_program_opts(&o, &pg, w);
    if (pm_check_fit(&po, pg.layers[w], pts, n)) return 1;
  }
  Point *q = calloc((size_t)n, sizeof *q);
  char tmp[4200], item[96];
  if (pm_mktmp(&o, tmp, sizeof tmp)) { free(q); return 1; }
  PmProgress pr = {.what = "computation", .total = pg.n * n + (o.tp_ranks ? 3 : 0), .t0 = pm_now_s(), .quiet = o.quiet};
  pm_progress(&pr, NULL);
  for (int i = 0; i < n && !rc; i++) {
    q[i].p = pts[i];
    for (int w = 0; w < pg.n && !rc; w++) {
      PmOptions po = pm_program_opts(&o, &pg, w);
      rc = pm_run(&po, tmp, pg.layers[w], pts[i], 0, 1, NULL, &q[i].run[w]);
      if (o.ntypes > 1) snprintf(item, sizeof item, "layernum[%s], bsz %d, seq %d", pg.label[w], pts[i].bsz, pts[i].seq);
      else snprintf(item, sizeof item, "%d layers, bsz %d, seq %d", pg.layers[w], pts[i].bsz, pts[i].seq);
      if (!rc) pm_progress(&pr, item);
    }
    if (!rc) derive(&o, &pg, &q[i]);
  }
  Split split;
  if (!rc && o.tp_ranks) rc = profile_split(&o, tmp, q, n, &split, &pr);
  pm_rmtmp(tmp);
  Points all = {q, n, o.tp_ranks ? &split : NULL, &pg};
  if (!rc) rc = pm_write_files(&o, "computation_profiling", write_json, write_table, &all);
  free(q);
  return rc;
}
