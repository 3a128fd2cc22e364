/* search.c - per-layer strategy search. Dynamic programming over layers for each
 * pipeline stage of each task; costs come only from cost.c, so the search never reads
 * the IR. Same objective, candidates and tie-breaks as Galvatron HEAD (§3 of
 * design/galvatron-search.md), with three exact speed-ups: the DP table of a stage is
 * built once and read for every embedding strategy (Galvatron rebuilds it per
 * embedding), rows above (i+1)*w_max are saturated and not recomputed, and tasks whose
 * throughput bound cannot beat the k-th best found so far are skipped. By default the
 * table is kept as Pareto fronts: for each layer and last strategy, the (memory, time)
 * points where the time improves; these are exactly the distinct values of Galvatron's
 * f[v][s] column (same sums in the same order), so the optimum time is identical, while
 * the work no longer scales with the budget in MB. Only ties between equal-time plans
 * may be broken differently (opts.dense selects the table). mem_step > 1 coarsens the
 * memory axis (conservative: never exceeds the budget). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, sysconf under -std=c11 */

#include "search.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOMARK 255

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void search_options_defaults(SearchOptions *o)
{
  memset(o, 0, sizeof *o);
  o->space = (StrategySpace){.world = 8, .nlayers = 32, .default_dp_type = DP_ZERO2, .max_tp = 8, .max_pp = 8, .max_sp = 8,
                              .disable_cp = 1, .max_cp = 8};
  o->memory_gb = 36;
  o->min_bsz = o->max_bsz = 64;
  o->bsz_scale = 8;
  o->settle_bsz = o->settle_chunk = -1;
  o->threads = 1;
  o->topk = 1;
  o->mem_step = 1;
  o->prune = 1;
  o->fine_grained_mode = 1;
}

int search_batch_sizes(const SearchOptions *o, int *out, int cap)
{
  if (o->settle_bsz > 0) { out[0] = o->settle_bsz; return 1; }
  int n = 0, step = o->bsz_scale > 0 ? o->bsz_scale : 1;
  for (int b = o->min_bsz > step ? o->min_bsz : step; b <= o->max_bsz && n < cap; b += step) out[n++] = b;
  return n;
}

void search_division_even(int nlayers, int pp, int *div)
{
  for (int i = 0; i < pp; i++) div[i] = nlayers / pp;
  div[pp - 1] = nlayers - nlayers / pp * (pp - 1);
}

/* ---- one task ---- */

/* Costs are per layer type ty (T types; one for a model of one repeated layer). */
typedef struct Task {
  const CostModel *cm;
  const SearchOptions *o;
  CostTask t;
  int mode, buf;
  int S, E, L, T;
  Strategy ls[256], es[128];
  double *wg, *ng;            /* [ty*S + s] layer time with / without gradient sync */
  double *interT;             /* [(ty*S + s)*S + s'] = inter(s' -> s) into a layer of type ty */
  int *w;                     /* [(k*T + ty)*S + s] memory units */
  double opt[256];            /* the optimizer step part of wg, by strategy (gvc's calibrated model; else 0) */
  double *ens;                /* [e*pp + k] embedding no-sync time */
  double *eopt;               /* [e*pp + k] embedding optimizer step (cost_embed_opt) */
  int *eunits;                /* [e*pp + k] embedding + global buffer memory units */
  int div[SEARCH_MAXPP], off[SEARCH_MAXPP];  /* layers per stage, first layer of each stage */
  int cnt[SEARCH_MAXPP][PROF_MAXTYPES];      /* layers of each type per stage */
  int Mu, mem_cache, M;
  long cells;
  double cap;                 /* stage objective cap (sum of with-sync layer time), see stage_caps */
  double wgmin[PROF_MAXTYPES], ngmin[PROF_MAXTYPES];
} Task;

/* Layer i of stage k: its type's memory units, times and transition row base. */
static int ltype(const Task *tk, int k, int i) { return cost_type_of(tk->cm, tk->off[k] + i); }
static const int *stage_w(const Task *tk, int k, int ty)
{
  return tk->w + ((size_t)(tk->cm->pipeline_1f1b ? k : 0) * tk->T + ty) * tk->S;
}

/* SearchOptions.lowerable: the strategies of a plan gvc's lowering runs (parplan.c's checks).
 * It runs different tp degrees per layer only without Megatron SP, Ulysses and context
 * parallelism, and a vocabulary degree of 1 or one at or above the blocks' (a multiple):
 * so a task whose plans may use SP (the cost model's setting), Ulysses (its modes) or cp
 * keeps every block at the task's one degree (buf), and every task keeps the vocabulary
 * layers at 1 or buf (at or above any block's, the degrees being powers of two), without
 * vocabulary tp under cp and without ZeRO-3 on them (the lowering shards blocks only, so
 * they would hold more memory than priced). Every dp must divide the samples of a
 * micro-batch step (the lowering splits them, per layer too). Restricting the candidates,
 * not the finished plans, keeps the DP's answer the best plan that compiles. */
static int task_lowerable(const Task *tk, const Strategy *s, int embed)
{
  int d = strategy_tp_sp(s), cp = tk->t.cp > 1;
  if (embed && ((d != 1 && d != tk->buf) || (cp && d > 1) || s->dp_type == DP_ZERO3)) return 0;
  if (!embed && (tk->cm->sequence_parallel || tk->mode != SEARCH_TP_ONLY || cp) && d != tk->buf) return 0;
  return (tk->t.gbsz / tk->t.chunks) % s->dp == 0;
}

static int task_keep(const Task *tk, const Strategy *s, int embed, int max_dp)
{
  if (s->pp != tk->t.pp || strategy_tp_sp(s) > tk->buf || s->dp > max_dp) return 0;
  if (tk->o->lowerable && !task_lowerable(tk, s, embed)) return 0;
  if (strategy_cp(s) != (tk->t.cp > 1 ? tk->t.cp : 1)) return 0; /* one cp degree for the whole plan */
  if (tk->mode == SEARCH_TP_ONLY && s->sp > 1) return 0;
  if (tk->mode == SEARCH_SP_ONLY && s->tp > 1) return 0;
  return 1;
}

static int task_strategies(Task *tk, int embed, Strategy *out, int cap)
{
  static const int cap_all = 2048;
  Strategy all[2048];
  int n = strategy_enumerate(&tk->o->space, embed, all, cap_all), m = 0;
  int max_dp = tk->t.gbsz / tk->t.chunks;
  if (max_dp > tk->cm->world / tk->t.pp) max_dp = tk->cm->world / tk->t.pp;
  if (max_dp < 1) max_dp = 1;
  for (int i = 0; i < n && m < cap; i++)
    if (task_keep(tk, &all[i], embed, max_dp) && tk->t.gbsz / tk->t.chunks / all[i].dp >= 1) out[m++] = all[i];
  return m;
}

/* Galvatron rounds each memory up to whole MB; a coarser step rounds up again */
static int units(double mb, int step) { return step == 1 ? (int)ceil(mb) : (int)ceil(ceil(mb) / step); }

int search_budget_mb(const CostModel *cm, double memory_gb, int *reserve)
{
  enum { WHOLE = 21 * 1024 - 1 }; /* the largest budget (MB) Galvatron leaves whole */
  int budget = (int)(memory_gb * 1024), cache = budget / 1024 > 20 ? (int)(0.2 * budget) : 0;
  if (cm->analytic && budget > WHOLE && budget - cache < WHOLE) cache = budget - WHOLE;
  *reserve = cache;
  return budget - cache;
}

/* Builds costs; returns 0 when the task has candidates. */
static int task_setup(Task *tk)
{
  const CostModel *cm = tk->cm;
  int pp = tk->t.pp, step = tk->o->mem_step > 0 ? tk->o->mem_step : 1;
  tk->S = task_strategies(tk, 0, tk->ls, 256);
  tk->E = task_strategies(tk, 1, tk->es, 128);
  if (!tk->S || !tk->E) return 1;
  int S = tk->S, E = tk->E, T = tk->T = cost_ntypes(cm);
  tk->L = cm->nlayers;
  if (T > 1) cost_division_balanced(cm, &tk->t, tk->div);
  else search_division_even(tk->L, pp, tk->div);
  for (int k = 0, l = 0; k < pp; k++) {
    tk->off[k] = l;
    for (int ty = 0; ty < T; ty++) tk->cnt[k][ty] = 0;
    for (int j = 0; j < tk->div[k]; j++, l++) tk->cnt[k][cost_type_of(cm, l)]++;
  }
  tk->M = search_budget_mb(cm, tk->o->memory_gb, &tk->mem_cache);
  tk->Mu = tk->M / step;
  tk->wg = malloc(sizeof(double) * T * S);
  tk->ng = malloc(sizeof(double) * T * S);
  tk->interT = malloc(sizeof(double) * T * S * S);
  tk->w = malloc(sizeof(int) * pp * T * S);
  tk->ens = malloc(sizeof(double) * E * pp);
  tk->eopt = malloc(sizeof(double) * E * pp);
  tk->eunits = malloc(sizeof(int) * E * pp);
  for (int ty = 0; ty < T; ty++) {
    tk->wgmin[ty] = tk->ngmin[ty] = INFINITY;
    for (int s = 0; s < S; s++) {
      tk->opt[s] = cost_layer_opt(cm, &tk->ls[s]);
      tk->wg[ty * S + s] = cost_layer_time(cm, &tk->t, &tk->ls[s], ty, 1, NULL);
      tk->ng[ty * S + s] = cost_layer_time(cm, &tk->t, &tk->ls[s], ty, 0, NULL);
      for (int a = 0; a < S; a++)
        tk->interT[((size_t)ty * S + s) * S + a] = cost_transition(cm, &tk->t, &tk->ls[a], &tk->ls[s], ty);
      for (int k = 0; k < pp; k++)
        tk->w[((size_t)k * T + ty) * S + s] = units(cost_layer_mem(cm, &tk->t, &tk->ls[s], ty, k, NULL, NULL), step);
      tk->wgmin[ty] = fmin(tk->wgmin[ty], tk->wg[ty * S + s]);
      tk->ngmin[ty] = fmin(tk->ngmin[ty], tk->ng[ty * S + s]);
    }
  }
  int gmem = (int)cost_global_buffer(cm, &tk->t, tk->buf, tk->mode == SEARCH_SP_ONLY);
  for (int e = 0; e < E; e++) {
    double tot[SEARCH_MAXPP];
    cost_embed_time(cm, &tk->t, &tk->es[e], 0, &tk->ens[e * pp]);
    cost_embed_opt(cm, &tk->t, &tk->es[e], &tk->eopt[e * pp]);
    cost_embed_mem(cm, &tk->t, &tk->es[e], NULL, NULL, tot);
    for (int k = 0; k < pp; k++) tk->eunits[e * pp + k] = units(ceil(tot[k]) + gmem, step);
  }
  return 0;
}

static void task_free(Task *tk)
{
  free(tk->wg); free(tk->ng); free(tk->interT); free(tk->w); free(tk->ens); free(tk->eopt); free(tk->eunits);
}

/* Sum over stage k's layers of a per-type value (ngmin, wgmin). */
static double stage_sum(const Task *tk, int k, const double *per_type)
{
  double v = 0;
  for (int ty = 0; ty < tk->T; ty++) v += tk->cnt[k][ty] * per_type[ty];
  return v;
}

/* Lower bound of the iteration time, ignoring memory. */
static double task_bound(const Task *tk)
{
  int pp = tk->t.pp;
  double c[SEARCH_MAXPP] = {0}, z[SEARCH_MAXPP] = {0};
  for (int k = 0; k < pp; k++) {
    double em = INFINITY;
    for (int e = 0; e < tk->E; e++) em = fmin(em, tk->ens[e * pp + k]);
    c[k] = stage_sum(tk, k, tk->ngmin) + em;
  }
  return cost_pipeline(pp, tk->t.chunks, z, c);
}

/* The DP of stage k (n layers, each with its type's memory units). Fills f (final layer,
 * (Mu+1) x S), mark and hi[] (rows above hi[i] equal row hi[i]); returns lo of the last layer. */
static int stage_dp(Task *tk, int k, int n, double *f, uint8_t *mark, int *hi)
{
  int S = tk->S, Mu = tk->Mu;
  for (int s = 0; s < S; s++) f[s] = 0; /* layer -1: zero cost at any budget (row 0, clamped) */
  int lo_prev = 0, hi_prev = 0;
  long lo = 0, h = 0;
  for (int i = 0; i < n; i++) {
    int ty = ltype(tk, k, i), wmin = INT32_MAX, wmax = 0;
    const int *w = stage_w(tk, k, ty);
    const double *wg = tk->wg + (size_t)ty * S;
    for (int s = 0; s < S; s++) { if (w[s] < wmin) wmin = w[s]; if (w[s] > wmax) wmax = w[s]; }
    lo += wmin;
    h += wmax;
    long l2 = lo > Mu + 1 ? Mu + 1 : lo, h2 = h > Mu ? Mu : h;
    uint8_t *mk = mark + (size_t)i * (Mu + 1) * S;
    for (long v = h2; v >= l2; v--) {
      double *fv = f + v * S;
      for (int s = 0; s < S; s++) {
        if (v < w[s]) { fv[s] = INFINITY; mk[v * S + s] = NOMARK; continue; }
        long src = v - w[s];
        if (src > hi_prev) src = hi_prev;
        const double *row = f + src * S, *it = tk->interT + ((size_t)ty * S + s) * S;
        double best = row[0] + it[0];
        int bi = 0;
        for (int a = 1; a < S; a++) {
          double c = row[a] + it[a];
          if (c < best) { best = c; bi = a; }
        }
        fv[s] = best + wg[s];
        mk[v * S + s] = (uint8_t)bi;
      }
    }
    tk->cells += (h2 - l2 + 1) * (long)S * S;
    for (long v = lo_prev; v < l2 && v <= Mu; v++)
      for (int s = 0; s < S; s++) f[v * S + s] = INFINITY;
    hi[i] = (int)h2;
    lo_prev = (int)l2;
    hi_prev = (int)h2;
  }
  return lo_prev;
}

/* Per embedding strategy: the stage's best layer list for budget Mu - eunits. */
static void stage_pick(Task *tk, int k, int n, const double *f, const uint8_t *mark, const int *hi, int lo,
                       int *feas, int *lists, int *remain)
{
  int S = tk->S, Mu = tk->Mu, pp = tk->t.pp;
  for (int e = 0; e < tk->E; e++) {
    if (!feas[e]) continue;
    long v0 = Mu - tk->eunits[e * pp + k];
    if (v0 < lo || v0 < 0) { feas[e] = 0; continue; }
    long r = v0 > hi[n - 1] ? hi[n - 1] : v0;
    int bs = 0;
    for (int s = 1; s < S; s++) if (f[r * S + s] < f[r * S + bs]) bs = s;
    if (isinf(f[r * S + bs])) { feas[e] = 0; continue; }
    int *res = lists + (size_t)e * tk->L + tk->off[k];
    res[n - 1] = bs;
    long v = v0;
    for (int i = n - 1; i >= 1; i--) {
      long row = v > hi[i] ? hi[i] : v;
      int prev = mark[(size_t)i * (Mu + 1) * S + row * S + res[i]];
      v -= stage_w(tk, k, ltype(tk, k, i))[res[i]];
      res[i - 1] = prev;
    }
    remain[e * pp + k] = (int)(v - stage_w(tk, k, ltype(tk, k, 0))[res[0]]);
  }
}


/* ---- Pareto-front form of the same DP ---- */

typedef struct Pt { double time; int mem, prev, s; } Pt;           /* prev: pool index, -1 at layer 0 */
typedef struct Fronts { Pt *pool; int n, cap; int *off, *len; } Fronts;

static void push_pt(Fronts *F, Pt p)
{
  if (F->n == F->cap) F->pool = realloc(F->pool, sizeof(Pt) * (size_t)(F->cap = F->cap ? 2 * F->cap : 4096));
  F->pool[F->n++] = p;
}


/* Heap of list heads ordered by (mem, time, list): a k-way merge of the previous layer's
 * S fronts, each shifted by w and by the transition cost into s; keeps the points whose
 * time beats every point with less or equal memory. Returns the number of candidates. */
typedef struct Head { double time; int mem, a, k, end; } Head;

static int head_less(const Head *x, const Head *y)
{
  if (x->mem != y->mem) return x->mem < y->mem;
  if (x->time != y->time) return x->time < y->time;
  return x->a < y->a;
}

static void sift(Head *h, int n, int i)
{
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && head_less(&h[l], &h[m])) m = l;
    if (r < n && head_less(&h[r], &h[m])) m = r;
    if (m == i) return;
    Head t = h[i]; h[i] = h[m]; h[m] = t;
    i = m;
  }
}

static int merge_lists(Task *tk, Fronts *F, int i, int ty, int s, int ws, int Mu, double cap)
{
  int S = tk->S, nh = 0, nc = 0;
  const double *irow = tk->interT + ((size_t)ty * S + s) * S, wgs = tk->wg[(size_t)ty * S + s];
  Head h[256];
  for (int a = 0; a < S; a++) {
    int o = F->off[(i - 1) * S + a], e = o + F->len[(i - 1) * S + a];
    double it = irow[a];
    while (o < e && F->pool[o].time + it + wgs > cap) o++; /* times fall along a front */
    if (o < e && F->pool[o].mem + ws <= Mu) h[nh++] = (Head){F->pool[o].time + it, F->pool[o].mem + ws, a, o, e};
  }
  for (int k = nh / 2 - 1; k >= 0; k--) sift(h, nh, k);
  double run = INFINITY;
  while (nh) {
    Head *t = &h[0];
    nc++;
    if (t->time < run) {
      run = t->time;
      push_pt(F, (Pt){t->time + wgs, t->mem, t->k, s});
    }
    int k = t->k + 1;
    if (k < t->end && F->pool[k].mem + ws <= Mu) {
      t->k = k;
      t->mem = F->pool[k].mem + ws;
      t->time = F->pool[k].time + irow[t->a];
    } else {
      h[0] = h[--nh];
    }
    sift(h, nh, 0);
  }
  return nc;
}

/* Fronts of stage k of n layers; front (i, s) is pool[off[i*S+s] .. +len], mem ascending,
 * time strictly descending. */
static void stage_fronts(Task *tk, int k, int n, Fronts *F)
{
  int S = tk->S, Mu = tk->Mu;
  double rest = 0; /* the rest of the stage costs at least this */
  for (int i = 1; i < n; i++) rest += tk->wgmin[ltype(tk, k, i)];
  F->n = 0;
  for (int i = 0; i < n; i++) {
    int ty = ltype(tk, k, i);
    const int *w = stage_w(tk, k, ty);
    const double *wg = tk->wg + (size_t)ty * S, *it = tk->interT + (size_t)ty * S * S;
    if (i > 0) rest -= tk->wgmin[ty];
    double cap = tk->T > 1 ? tk->cap - rest : tk->cap - (n - 1 - i) * tk->wgmin[0];
    for (int s = 0; s < S; s++) {
      F->off[i * S + s] = F->n;
      if (i > 0) tk->cells += merge_lists(tk, F, i, ty, s, w[s], Mu, cap);
      else if (w[s] <= Mu && wg[s] <= cap) { /* from "layer -1": f = 0, min over transitions into s (the diagonal is 0) */
        double best = 0 + it[(size_t)s * S];
        for (int a = 1; a < S; a++) best = fmin(best, 0 + it[(size_t)s * S + a]);
        push_pt(F, (Pt){best + wg[s], w[s], -1, s});
      }
      F->len[i * S + s] = F->n - F->off[i * S + s];
    }
  }
}

static void fronts_pick(Task *tk, int k, int n, const Fronts *F, int *feas, int *lists, int *remain)
{
  int S = tk->S, pp = tk->t.pp, off = tk->off[k];
  for (int e = 0; e < tk->E; e++) {
    if (!feas[e]) continue;
    int v0 = tk->Mu - tk->eunits[e * pp + k], best = -1;
    for (int s = 0; s < S && v0 >= 0; s++) {
      int o = F->off[(n - 1) * S + s], lo = 0, hi = F->len[(n - 1) * S + s] - 1, at = -1;
      while (lo <= hi) { int mid = (lo + hi) / 2; if (F->pool[o + mid].mem <= v0) { at = mid; lo = mid + 1; } else hi = mid - 1; }
      if (at >= 0 && (best < 0 || F->pool[o + at].time < F->pool[best].time)) best = o + at;
    }
    if (best < 0) { feas[e] = 0; continue; }
    int *res = lists + (size_t)e * tk->L + off;
    remain[e * pp + k] = v0 - F->pool[best].mem;
    for (int i = n - 1, p = best; i >= 0; i--, p = F->pool[p].prev) res[i] = F->pool[p].s;
  }
}

/* Branch and bound inside a task: with time_cap the iteration time a plan must beat,
 * a stage whose with-sync layer sum exceeds cap can only give plans slower than
 * time_cap, because T >= T1 = sum_j C_j + (chunks-1) C_last, C_j >= its no-sync layer
 * sum + embedding time, and no-sync >= rmin * with-sync per layer. Points of a front
 * above the cap are dropped; a dropped optimum leaves a result that is no better, so
 * which task wins is unchanged. */
static double stage_cap(const Task *tk, int k, double time_cap)
{
  int pp = tk->t.pp;
  if (!isfinite(time_cap)) return INFINITY;
  double rmin = INFINITY, lb[SEARCH_MAXPP], rest = 0;
  for (int s = 0; s < tk->S * tk->T; s++)
    if (tk->wg[s] > 0) rmin = fmin(rmin, tk->ng[s] / tk->wg[s]);
  if (!(rmin > 0)) return INFINITY;
  for (int j = 0; j < pp; j++) {
    double em = INFINITY;
    for (int e = 0; e < tk->E; e++) em = fmin(em, tk->ens[e * pp + j]);
    lb[j] = em;
  }
  for (int j = 0; j < pp; j++)
    if (j != k) rest += (j == pp - 1 ? tk->t.chunks : 1) * (stage_sum(tk, j, tk->ngmin) + lb[j]);
  double a = k == pp - 1 ? tk->t.chunks : 1;
  double ck = (time_cap * (1 + 1e-9) - rest) / a;
  return (ck - lb[k]) / rmin * (1 + 1e-9);
}

/* Memory units of stage k with strategy s on every layer. */
static int uniform_units(const Task *tk, int k, int s)
{
  int u = 0;
  for (int ty = 0; ty < tk->T; ty++) u += tk->cnt[k][ty] * tk->w[((size_t)k * tk->T + ty) * tk->S + s];
  return u;
}

/* Galvatron's coarse mode (fine_grained_mode = 0): each layer strategy on every layer,
 * with the embedding strategy of the same (pp, tp, sp, dp, dp type); the fastest that
 * fits every stage wins. Gives the plans `gvc compile` runs with one strategy. */
static int solve_uniform(Task *tk, SearchPlan *plan)
{
  int S = tk->S, pp = tk->t.pp, best_s = -1, best_e = -1;
  for (int s = 0; s < S; s++) {
    const Strategy *ls = &tk->ls[s];
    for (int e = 0; e < tk->E; e++) {
      const Strategy *es = &tk->es[e];
      if (es->pp != ls->pp || es->tp != ls->tp || es->sp != ls->sp || es->dp != ls->dp || es->dp_type != ls->dp_type)
        continue;
      int fits = 1;
      double wg[SEARCH_MAXPP] = {0}, c[SEARCH_MAXPP], opt[SEARCH_MAXPP];
      for (int k = 0; k < pp && fits; k++) {
        fits = tk->eunits[e * pp + k] + uniform_units(tk, k, s) <= tk->Mu;
        double ng = 0;
        opt[k] = tk->eopt[e * pp + k] + tk->div[k] * tk->opt[s];
        wg[k] = tk->eopt[e * pp + k];
        for (int ty = 0; ty < tk->T; ty++) {
          wg[k] += tk->cnt[k][ty] * tk->wg[ty * S + s];
          ng += tk->cnt[k][ty] * tk->ng[ty * S + s];
        }
        c[k] = tk->ens[e * pp + k] + ng;
      }
      double tt = fits ? cost_iteration(tk->cm, pp, tk->t.chunks, wg, c, opt) : INFINITY;
      if (tt < plan->time_s) {
        plan->time_s = tt;
        best_s = s;
        best_e = e;
      }
      break;
    }
  }
  if (best_s < 0)
    return 1;
  int step = tk->o->mem_step > 0 ? tk->o->mem_step : 1;
  plan->task = tk->t;
  plan->mode = tk->mode;
  plan->buf = tk->buf;
  plan->layers = malloc(sizeof(Strategy) * tk->L);
  for (int l = 0; l < tk->L; l++)
    plan->layers[l] = tk->ls[best_s];
  memcpy(plan->division, tk->div, sizeof tk->div);
  plan->embed = tk->es[best_e];
  plan->throughput = tk->t.gbsz / plan->time_s;
  for (int k = 0; k < pp; k++) {
    plan->remain_mb[k] = (double)(tk->Mu - tk->eunits[best_e * pp + k] - uniform_units(tk, k, best_s)) * step;
    plan->mem_mb[k] = tk->M - plan->remain_mb[k] + tk->mem_cache;
  }
  return 0;
}

static int solve_task(const CostModel *cm, const SearchOptions *o, const CostTask *t, int mode, int buf, double time_cap, SearchPlan *plan)
{
  Task tk = {.cm = cm, .o = o, .t = *t, .mode = mode, .buf = buf};
  memset(plan, 0, sizeof *plan);
  plan->time_s = INFINITY;
  if (task_setup(&tk)) { task_free(&tk); return 1; }
  if (!o->fine_grained_mode) {
    int rc = solve_uniform(&tk, plan);
    task_free(&tk);
    return rc;
  }
  int S = tk.S, E = tk.E, pp = t->pp, maxn = 0;
  for (int k = 0; k < pp; k++) if (tk.div[k] > maxn) maxn = tk.div[k];
  int dense = o->dense;
  double *f = dense ? malloc(sizeof(double) * (size_t)(tk.Mu + 1) * S) : NULL;
  uint8_t *mark = dense ? malloc((size_t)maxn * (tk.Mu + 1) * S) : NULL;
  int *hi = malloc(sizeof(int) * maxn), *feas = malloc(sizeof(int) * E);
  int *lists = malloc(sizeof(int) * (size_t)E * tk.L), *remain = calloc((size_t)E * pp, sizeof(int));
  Fronts F = {0};
  if (!dense) {
    F.off = malloc(sizeof(int) * maxn * S);
    F.len = malloc(sizeof(int) * maxn * S);
  }
  for (int e = 0; e < E; e++) feas[e] = 1;
  for (int k = 0; k < pp; k++) {
    if (dense) {
      int lo = stage_dp(&tk, k, tk.div[k], f, mark, hi);
      stage_pick(&tk, k, tk.div[k], f, mark, hi, lo, feas, lists, remain);
    } else {
      tk.cap = stage_cap(&tk, k, time_cap);
      stage_fronts(&tk, k, tk.div[k], &F);
      fronts_pick(&tk, k, tk.div[k], &F, feas, lists, remain);
    }
  }
  free(F.pool); free(F.off); free(F.len);
  int best_e = -1;
  for (int e = 0; e < E; e++) {
    if (!feas[e]) continue;
    double wg[SEARCH_MAXPP] = {0}, c[SEARCH_MAXPP], opt[SEARCH_MAXPP];
    const int *res = lists + (size_t)e * tk.L;
    for (int k = 0, l = 0; k < pp; k++) {
      c[k] = tk.ens[e * pp + k];
      wg[k] = opt[k] = tk.eopt[e * pp + k];
      for (int j = 0; j < tk.div[k]; j++, l++) {
        int ty = cost_type_of(cm, l);
        wg[k] += tk.wg[ty * S + res[l]];
        c[k] += tk.ng[ty * S + res[l]];
        opt[k] += tk.opt[res[l]];
      }
    }
    double tt = cost_iteration(cm, pp, t->chunks, wg, c, opt);
    if (tt < plan->time_s) { plan->time_s = tt; best_e = e; }
  }
  if (best_e >= 0) {
    int step = o->mem_step > 0 ? o->mem_step : 1;
    plan->task = *t;
    plan->mode = mode;
    plan->buf = buf;
    plan->layers = malloc(sizeof(Strategy) * tk.L);
    for (int l = 0; l < tk.L; l++) plan->layers[l] = tk.ls[lists[(size_t)best_e * tk.L + l]];
    memcpy(plan->division, tk.div, sizeof tk.div);
    plan->embed = tk.es[best_e];
    plan->throughput = t->gbsz / plan->time_s;
    for (int k = 0; k < pp; k++) {
      plan->remain_mb[k] = (double)remain[best_e * pp + k] * step;
      plan->mem_mb[k] = tk.M - plan->remain_mb[k] + tk.mem_cache;
    }
  }
  plan->cells = tk.cells;
  free(f); free(mark); free(hi); free(feas); free(lists); free(remain);
  task_free(&tk);
  return best_e < 0;
}

int search_task(const CostModel *cm, const SearchOptions *o, const CostTask *t, int mode, int buf, SearchPlan *plan)
{
  return solve_task(cm, o, t, mode, buf, INFINITY, plan);
}

/* ---- the task list and the workers ---- */

typedef struct TaskDesc {
  CostTask t;
  int mode, buf, order;
  double bound;        /* throughput upper bound */
  int status;          /* 0 not run, 1 solved, 2 infeasible, 3 pruned, 4 empty */
  SearchPlan plan;
} TaskDesc;

typedef struct Pool {
  const CostModel *cm;
  const SearchOptions *o;
  TaskDesc *tasks;
  int *queue, ntasks, next, done;
  double topk[SEARCH_MAXK];   /* best throughputs so far, descending */
  long cells, pruned;
  double t0, last_print;
  pthread_mutex_t mu;
} Pool;

static int build_tasks(const CostModel *cm, const SearchOptions *o, TaskDesc **out)
{
  int bs[4096], nb = search_batch_sizes(o, bs, 4096), n = 0, cap = 1024;
  Strategy es[1024];
  int ne = strategy_enumerate(&o->space, 1, es, 1024), pps[16], npp = 0, cps[16], ncp = 0;
  for (int i = 0; i < ne; i++)
    if (npp == 0 || pps[npp - 1] != es[i].pp) pps[npp++] = es[i].pp;
  for (int i = 0; i < ne; i++) { /* the cp degrees present, each a task dimension */
    int k = 0;
    while (k < ncp && cps[k] != strategy_cp(&es[i])) k++;
    if (k == ncp && ncp < 16) cps[ncp++] = strategy_cp(&es[i]);
  }
  TaskDesc *ts = malloc(sizeof *ts * cap);
  int N = cm->world;
  for (int b = 0; b < nb; b++) {
    int gbsz = bs[b];
    for (int chunks = 1; chunks <= gbsz; chunks++) {
      if (o->settle_chunk > 0 && chunks != o->settle_chunk) continue;
      if (gbsz % chunks) continue;
      for (int p = 0; p < npp; p++) {
        int pp = pps[p];
        if (pp > chunks || pp > cm->nlayers) continue;
        int max_tp = N / pp > 1 ? N / pp : 1;
        if (o->space.max_tp > 0 && max_tp > o->space.max_tp) max_tp = o->space.max_tp;
        int max_dp = gbsz / chunks < N / pp ? gbsz / chunks : N / pp;
        if (max_dp < 1) max_dp = 1;
        int min_tp = N / pp / max_dp > 1 ? N / pp / max_dp : 1;
        for (int c = 0; c < ncp; c++)
          for (int mode = 0; mode < 3; mode++)
            for (int buf = 1; buf <= max_tp; buf *= 2) {
              int mt = min_tp / cps[c] > 1 ? min_tp / cps[c] : 1; /* cp ranks hold no samples of their own */
              if (mode == SEARCH_SP_ONLY ? buf != max_tp : (buf < mt || buf * pp > N)) continue;
              if (cps[c] > 1 && (mode != SEARCH_TP_ONLY || buf * pp * cps[c] > N)) continue; /* cp: no Ulysses */
              if (n == cap) ts = realloc(ts, sizeof *ts * (cap *= 2));
              ts[n] = (TaskDesc){.t = {pp, gbsz, chunks, cps[c]}, .mode = mode, .buf = buf, .order = n};
              n++;
            }
      }
    }
  }
  *out = ts;
  return n;
}

static double kth_best(const Pool *p) { return p->topk[p->o->topk - 1]; }

/* Tasks that differ only in their tp/sp mode or buffer often reach the same plan, at the
 * same throughput: a repeated throughput is not recorded again, so the k-th best that
 * prunes is the k-th distinct plan's (two different plans with exactly equal throughputs
 * only make it prune less). */
static void record(Pool *p, double thr)
{
  int k = p->o->topk;
  for (int i = 0; i < k; i++) {
    if (thr == p->topk[i])
      break;
    if (thr > p->topk[i]) {
      memmove(&p->topk[i + 1], &p->topk[i], sizeof(double) * (k - 1 - i));
      p->topk[i] = thr;
      break;
    }
  }
}

static void progress(Pool *p, int final)
{
  double t = now_s() - p->t0;
  if (!final && t - p->last_print < 0.5) return;
  p->last_print = t;
  double eta = p->done ? t / p->done * (p->ntasks - p->done) : 0;
  fprintf(stderr, "\rgvc search: %d/%d tasks, best %.3f samples/s, %.1fs elapsed, ETA %.1fs%s", p->done, p->ntasks,
          p->topk[0], t, eta, final ? "\n" : "");
}

static void *worker(void *arg)
{
  Pool *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    if (p->next >= p->ntasks) { pthread_mutex_unlock(&p->mu); return NULL; }
    TaskDesc *td = &p->tasks[p->queue[p->next++]];
    int skip = p->o->prune && td->bound < kth_best(p) * (1 - 1e-12);
    double cap = p->o->prune && kth_best(p) > 0 ? td->t.gbsz / kth_best(p) : INFINITY;
    pthread_mutex_unlock(&p->mu);
    if (skip) td->status = 3;
    else if (solve_task(p->cm, p->o, &td->t, td->mode, td->buf, cap, &td->plan)) td->status = 2;
    else td->status = 1;
    pthread_mutex_lock(&p->mu);
    if (td->status == 1) record(p, td->plan.throughput);
    p->cells += td->plan.cells;
    p->pruned += td->status == 3;
    p->done++;
    if (p->o->progress) progress(p, 0);
    pthread_mutex_unlock(&p->mu);
  }
}

static int cmp_bound(const void *a, const void *b, void *ctx)
{
  const TaskDesc *ts = ctx;
  const TaskDesc *x = &ts[*(const int *)a], *y = &ts[*(const int *)b];
  if (x->bound != y->bound) return x->bound > y->bound ? -1 : 1;
  return x->order - y->order;
}

static int same_plan(const CostModel *cm, const SearchPlan *a, const SearchPlan *b)
{
  if (memcmp(&a->task, &b->task, sizeof a->task) || strategy_cmp(&a->embed, &b->embed))
    return 0;
  for (int i = 0; i < cm->nlayers; i++)
    if (strategy_cmp(&a->layers[i], &b->layers[i]))
      return 0;
  for (int s = 0; s < a->task.pp && s < SEARCH_MAXPP; s++)
    if (a->division[s] != b->division[s])
      return 0;
  return 1;
}

/* The best task not yet taken whose plan differs from every plan taken; -1 when none. */
static int best_new_plan(const Pool *p, int total, const SearchResult *r)
{
  int bi = -1;
  for (int i = 0; i < total; i++) {
    const TaskDesc *td = &p->tasks[i];
    if (td->status != 1 || td->plan.throughput <= 0) continue;
    if (bi >= 0 && td->plan.throughput <= p->tasks[bi].plan.throughput) continue;
    int seen = 0;
    for (int k = 0; k < r->nplans && !seen; k++)
      seen = same_plan(p->cm, &td->plan, &r->plans[k]);
    if (!seen) bi = i;
  }
  return bi;
}

/* insertion sort keeps this free of qsort_r portability questions; n is small */
static void sort_queue(int *q, int n, TaskDesc *ts)
{
  for (int i = 1; i < n; i++) {
    int v = q[i], j = i;
    while (j > 0 && cmp_bound(&q[j - 1], &v, ts) > 0) { q[j] = q[j - 1]; j--; }
    q[j] = v;
  }
}

static void task_bounds(const CostModel *cm, const SearchOptions *o, TaskDesc *ts, int n)
{
  for (int i = 0; i < n; i++) {
    Task tk = {.cm = cm, .o = o, .t = ts[i].t, .mode = ts[i].mode, .buf = ts[i].buf};
    if (task_setup(&tk)) { ts[i].bound = -1; ts[i].status = 4; }
    else ts[i].bound = ts[i].t.gbsz / task_bound(&tk);
    task_free(&tk);
  }
}

int search_run(const CostModel *cm, const SearchOptions *o, SearchResult *r)
{
  memset(r, 0, sizeof *r);
  Pool p = {.cm = cm, .o = o, .t0 = now_s()};
  p.ntasks = build_tasks(cm, o, &p.tasks);
  task_bounds(cm, o, p.tasks, p.ntasks);
  p.queue = malloc(sizeof(int) * (p.ntasks + 1));
  int nq = 0;
  for (int i = 0; i < p.ntasks; i++) if (p.tasks[i].status != 4) p.queue[nq++] = i;
  sort_queue(p.queue, nq, p.tasks);
  p.done = p.ntasks - nq;
  p.ntasks = nq + p.done;
  int total = p.ntasks;
  p.ntasks = nq; /* workers walk the queue */
  p.done = 0;
  pthread_mutex_init(&p.mu, NULL);
  int nt = o->threads > 0 ? o->threads : 1;
  pthread_t th[64];
  if (nt > 64) nt = 64;
  for (int i = 1; i < nt; i++) pthread_create(&th[i], NULL, worker, &p);
  worker(&p);
  for (int i = 1; i < nt; i++) pthread_join(th[i], NULL);
  if (o->progress) progress(&p, 1);
  pthread_mutex_destroy(&p.mu);
  /* best first, each plan once; ties keep Galvatron's insertion order */
  for (int k = 0; k < o->topk && k < SEARCH_MAXK; k++) {
    int bi = best_new_plan(&p, total, r);
    if (bi < 0) break;
    r->plans[r->nplans++] = p.tasks[bi].plan;
    p.tasks[bi].status = 5; /* taken: ownership of layers moves to r */
  }
  for (int i = 0; i < total; i++) {
    r->tasks_solved += p.tasks[i].status == 1 || p.tasks[i].status == 2 || p.tasks[i].status == 5;
    if (p.tasks[i].status == 1) free(p.tasks[i].plan.layers);
  }
  r->tasks = total;
  r->tasks_pruned = p.pruned;
  r->dp_cells = p.cells;
  r->search_time_s = now_s() - p.t0;
  free(p.queue);
  free(p.tasks);
  return r->nplans == 0;
}

void search_result_free(SearchResult *r)
{
  for (int i = 0; i < r->nplans; i++) free(r->plans[i].layers);
  r->nplans = 0;
}
