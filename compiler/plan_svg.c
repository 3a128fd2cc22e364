/* plan_svg.c - lays out the picture of plan_svg.h: header, layers by stage, memory bars,
 * pipeline timeline, for each plan one under the other. Colours are the Okabe-Ito palette
 * (distinguishable with the common colour-vision deficiencies); text is 11 px or larger. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */

#include "plan_svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "svg.h"
#include "svg_timeline.h"
#include "diag.h"

#define W SVG_TL_WIDTH  /* document width */
#define M SVG_TL_MARGIN
#define CW (W - 2 * M)
#define LABEL_W 130.0 /* stage labels left of the bars */
#define BOX_W 96.0    /* one layer */
#define BOX_H 62.0
#define GAP 4.0
#define PAD 6.0

/* Okabe-Ito */
#define C_ORANGE "#E69F00"
#define C_SKY "#56B4E9"
#define C_GREEN "#009E73"
#define C_YELLOW "#F0E442"
#define C_BLUE "#0072B2"
#define C_VERMILION "#D55E00"
#define C_PURPLE "#CC79A7"
#define C_GREY "#999999"
#define C_TEXT "#222222"
#define C_DIM "#555555"

static const char *const dp_fill[] = {C_SKY, C_ORANGE, C_GREEN};
static const char *const dp_name[] = {"ddp", "ZeRO-2", "ZeRO-3"};

static const struct { const char *name, *fill; } mem_kind[PSVG_NMEM] = {
    {"parameters", C_BLUE},        {"gradients", C_SKY},         {"optimizer state", C_GREEN},
    {"model states (params, grads, optimizer)", C_BLUE},         {"kept activations", C_ORANGE},
    {"workspace (transient buffers)", C_PURPLE},                {"outside the plan (context)", C_GREY}};

void plan_svg_from_cost(PlanPicture *pic, const CostModel *cm, const CostTask *t, const CostResult *r)
{
  pic->world = cm->world;
  pic->pp = t->pp;
  pic->chunks = t->chunks;
  pic->gbsz = t->gbsz;
  pic->gpipe = !cm->pipeline_1f1b;
  pic->megatron_sp = cm->sequence_parallel;
  pic->time_s = r->time_s;
  for (int k = 0; k < t->pp && k < PSVG_MAXPP; k++) {
    pic->fwd_s[k] = r->fwd_s[k];
    pic->bwd_s[k] = r->bwd_s[k];
    pic->sync_s[k] = r->sync_s[k];
    pic->mem_mb[k][PSVG_STATES] = r->states_mb[k];
    pic->mem_mb[k][PSVG_ACTS] = r->act_mb[k];
    pic->mem_mb[k][PSVG_WORK] = r->buffer_mb[k];
    pic->mem_mb[k][PSVG_OUTSIDE] = r->context_mb[k];
  }
}

/* ---- small helpers ---- */

static void fmt_mem(double mb, char *buf, size_t n)
{
  if (mb >= 1024) snprintf(buf, n, "%.1f GB", mb / 1024);
  else if (mb >= 10) snprintf(buf, n, "%.0f MB", mb);
  else if (mb >= 1) snprintf(buf, n, "%.1f MB", mb);
  else snprintf(buf, n, "%.0f KB", mb * 1024);
}

static double mem_total(const PlanPicture *p, int k)
{
  double t = 0;
  for (int j = 0; j < PSVG_NMEM; j++) t += p->mem_mb[k][j];
  return t;
}

static int over_budget(const PlanPicture *p, int k) { return p->budget_mb > 0 && mem_total(p, k) > p->budget_mb; }

static const char *sched_name(const PlanPicture *p) { return p->gpipe ? "GPipe" : "1F1B"; }

/* The stage's block range among the non-vocabulary layers: 0 when it has none. */
static int stage_blocks(const PlanPicture *p, int k, int *first, int *last)
{
  int b = 0, n = 0;
  for (int i = 0; i < p->nlayers; i++) {
    if (!p->layers[i].block) continue;
    if (p->layers[i].stage == k) {
      if (!n++) *first = b;
      *last = b;
    }
    b++;
  }
  return n;
}

static void stage_label(const PlanPicture *p, int k, char *buf, size_t n)
{
  int a = 0, b = 0;
  const char *over = over_budget(p, k) ? " OVER BUDGET" : "";
  int nb = stage_blocks(p, k, &a, &b);
  if (nb > 1) snprintf(buf, n, "stage %d: layers %d-%d%s", k, a, b, over);
  else if (nb == 1) snprintf(buf, n, "stage %d: layer %d%s", k, a, over);
  else snprintf(buf, n, "stage %d: no blocks%s", k, over);
}

static void seq_split(const PlanPicture *p, const Strategy *s, char *buf, size_t n)
{
  if (s->sp > 1) snprintf(buf, n, "sp %d Ulysses", s->sp);
  else if (s->tp > 1 && p->megatron_sp) snprintf(buf, n, "sp %d Megatron", s->tp);
  else snprintf(buf, n, "sp 1");
}

/* One line per strategy: "tp 2 dp 4 sp 2 Megatron ZeRO-3 ckpt". */
static void strategy_line(const PlanPicture *p, const Strategy *s, char *buf, size_t n)
{
  char sq[32];
  seq_split(p, s, sq, sizeof sq);
  snprintf(buf, n, "tp %d dp %d %s %s%s", s->tp, s->dp, sq, dp_name[s->dp_type], s->ckpt ? " ckpt" : "");
}

static void fit(const char *s, double width, double size, char *buf, size_t n)
{
  snprintf(buf, n, "%s", s);
  size_t len = strlen(buf);
  if (svg_text_width(buf, size) <= width) return;
  while (len > 1 && svg_text_width(buf, size) + 0.6 * size > width) buf[--len] = 0;
  snprintf(buf + len, n - len, "~");
}

static void section_title(FILE *f, double *y, const char *text)
{
  *y += 26;
  svg_text(f, M, *y, 15, "start", 1, C_TEXT, "%s", text);
  *y += 8;
}

static double swatch(FILE *f, double x, double y, const char *fill, const char *stroke, int dash, const char *label)
{
  svg_rect(f, x, y - 11, 14, 14, fill, stroke ? stroke : C_DIM, stroke ? 2 : 1, dash);
  svg_text(f, x + 19, y, 12, "start", 0, C_TEXT, "%s", label);
  return x + 19 + svg_text_width(label, 12) + 18;
}

/* ---- layers ---- */

static void layer_box(FILE *f, const PlanPicture *p, const PsvgLayer *l, double x, double y)
{
  const Strategy *s = &l->s;
  char name[64], sq[32];
  svg_rect(f, x, y, BOX_W, BOX_H, dp_fill[s->dp_type], s->ckpt ? "#000000" : C_DIM, s->ckpt ? 2 : 1, s->ckpt);
  fit(l->name, BOX_W - 8, 12, name, sizeof name);
  svg_text(f, x + 4, y + 14, 12, "start", 1, "#000000", "%s", name);
  svg_text(f, x + 4, y + 28, 11, "start", 0, "#000000", "tp %d  dp %d", s->tp, s->dp);
  if (l->vocab && s->tp > 1) snprintf(sq, sizeof sq, "vocab split %d", s->tp);
  else seq_split(p, s, sq, sizeof sq);
  svg_text(f, x + 4, y + 42, 11, "start", 0, "#000000", "%s", sq);
  svg_text(f, x + 4, y + 56, 11, "start", 0, "#000000", "%s%s", dp_name[s->dp_type], s->ckpt ? "  ckpt" : "");
}

/* Layers flow left to right in stage frames; a stage that does not fit the row starts a new
 * one, a stage wider than a row continues on the next. */
static void draw_layers(FILE *f, const PlanPicture *p, double *y)
{
  const double row_h = 18 + BOX_H + 2 * PAD + 10;
  double x = M, top = *y;
  int i = 0;
  while (i < p->nlayers) {
    int k = p->layers[i].stage, e = i;
    while (e < p->nlayers && p->layers[e].stage == k) e++;
    char label[96];
    stage_label(p, k, label, sizeof label);
    double lw = svg_text_width(label, 12) + 2 * PAD;
    double gw = fmax(2 * PAD + (e - i) * (BOX_W + GAP) - GAP, lw);
    if (x > M && x + fmin(gw, CW) > M + CW) { x = M; top += row_h; }
    int cont = 0;
    while (i < e) {
      int fits = (int)((M + CW - x - 2 * PAD + GAP) / (BOX_W + GAP));
      if (fits < 1) { x = M; top += row_h; continue; }
      int take = e - i < fits ? e - i : fits;
      double sw = fmax(2 * PAD + take * (BOX_W + GAP) - GAP, take == e - i ? lw : 0);
      svg_rect(f, x, top + 18, sw, BOX_H + 2 * PAD, over_budget(p, k) ? "#fbe3d6" : "#f4f4f4",
               over_budget(p, k) ? C_VERMILION : C_GREY, over_budget(p, k) ? 2 : 1, 0);
      svg_text(f, x + 2, top + 13, 12, "start", 1, over_budget(p, k) ? C_VERMILION : C_TEXT, "%s%s", label,
               cont ? " (cont.)" : "");
      for (int j = 0; j < take; j++) layer_box(f, p, &p->layers[i + j], x + PAD + j * (BOX_W + GAP), top + 18 + PAD);
      i += take;
      x += sw + 10;
      cont = 1;
      if (i < e) { x = M; top += row_h; }
    }
  }
  *y = top + row_h;
}

/* More layers than fit: one box per stage listing its runs of equal strategies. */
static void draw_stage_summary(FILE *f, const PlanPicture *p, double *y)
{
  const double bw = 380, line = 15;
  int per_row = (int)((CW + 10) / (bw + 10)), max_lines = 4;
  double bh = 22 + line * (max_lines + 1);
  for (int k = 0; k < p->pp; k++) {
    double x = M + (k % per_row) * (bw + 10), top = *y + (k / per_row) * (bh + 10);
    char label[96], buf[160];
    stage_label(p, k, label, sizeof label);
    svg_rect(f, x, top, bw, bh, over_budget(p, k) ? "#fbe3d6" : "#f4f4f4", over_budget(p, k) ? C_VERMILION : C_GREY,
             over_budget(p, k) ? 2 : 1, 0);
    svg_text(f, x + 6, top + 16, 12, "start", 1, over_budget(p, k) ? C_VERMILION : C_TEXT, "%s", label);
    int lines = 0;
    for (int i = 0; i < p->nlayers;) {
      if (p->layers[i].stage != k) { i++; continue; }
      int e = i;
      while (e + 1 < p->nlayers && p->layers[e + 1].stage == k && p->layers[e + 1].vocab == p->layers[i].vocab &&
             !strategy_cmp(&p->layers[e + 1].s, &p->layers[i].s))
        e++;
      if (lines < max_lines) {
        char st[96];
        strategy_line(p, &p->layers[i].s, st, sizeof st);
        if (e > i) snprintf(buf, sizeof buf, "%s..%s: %s", p->layers[i].name, p->layers[e].name, st);
        else snprintf(buf, sizeof buf, "%s: %s", p->layers[i].name, st);
        char fitted[160];
        fit(buf, bw - 12, 11, fitted, sizeof fitted);
        svg_text(f, x + 6, top + 32 + line * lines, 11, "start", 0, C_TEXT, "%s", fitted);
      } else if (lines == max_lines) {
        svg_text(f, x + 6, top + 32 + line * lines, 11, "start", 0, C_DIM, "...");
      }
      lines++;
      i = e + 1;
    }
  }
  *y += ((p->pp + per_row - 1) / per_row) * (bh + 10);
}

static void draw_layer_section(FILE *f, const PlanPicture *p, double *y)
{
  section_title(f, y, "Layers by pipeline stage");
  if (p->pp > PSVG_MAXPP) {
    *y += 16;
    svg_text(f, M, *y, 12, "start", 0, C_TEXT, "%d stages of %d layers: too many to draw stage by stage.", p->pp,
             p->nlayers);
    for (int i = 0, lines = 0; i < p->nlayers && lines < 8; lines++) {
      int e = i;
      while (e + 1 < p->nlayers && !strategy_cmp(&p->layers[e + 1].s, &p->layers[i].s)) e++;
      char st[96];
      strategy_line(p, &p->layers[i].s, st, sizeof st);
      *y += 16;
      if (e > i) svg_text(f, M, *y, 12, "start", 0, C_TEXT, "%s..%s (stages %d-%d): %s", p->layers[i].name,
                          p->layers[e].name, p->layers[i].stage, p->layers[e].stage, st);
      else svg_text(f, M, *y, 12, "start", 0, C_TEXT, "%s (stage %d): %s", p->layers[i].name, p->layers[i].stage, st);
      i = e + 1;
    }
    *y += 8;
    return;
  }
  *y += 6;
  if (p->nlayers > PSVG_MAXLAYERS) {
    *y += 2;
    svg_text(f, M, *y + 10, 12, "start", 0, C_DIM, "%d layers: one box per stage with its runs of equal strategies",
             p->nlayers);
    *y += 18;
    draw_stage_summary(f, p, y);
  } else {
    draw_layers(f, p, y);
  }
  *y += 10;
  double x = M;
  for (int d = 0; d < 3; d++) x = swatch(f, x, *y, dp_fill[d], NULL, 0, dp_name[d]);
  x = swatch(f, x, *y, "#ffffff", "#000000", 1, "activation checkpointing (ckpt)");
  svg_text(f, x, *y, 12, "start", 0, C_TEXT, "embedding / head: split by vocabulary");
  *y += 17;
  svg_text(f, M, *y, 12, "start", 0, C_DIM,
           "tp: Megatron tensor-parallel degree; sp: token rows split (Megatron: over the tp group; Ulysses: "
           "all-to-all over sp ranks); dp: data-parallel degree");
  *y += 6;
}

/* ---- memory ---- */

static void draw_memory(FILE *f, const PlanPicture *p, double *y)
{
  double maxv = p->budget_mb;
  int used[PSVG_NMEM] = {0}, over = 0;
  int n = p->pp < PSVG_MAXPP ? p->pp : PSVG_MAXPP;
  for (int k = 0; k < n; k++) {
    maxv = fmax(maxv, mem_total(p, k));
    over += over_budget(p, k);
    for (int j = 0; j < PSVG_NMEM; j++) used[j] |= p->mem_mb[k][j] > 0;
  }
  char title[256], b[32];
  snprintf(title, sizeof title, "Memory per stage and GPU%s%s%s", p->mem_note ? " (" : "", p->mem_note ? p->mem_note : "",
           p->mem_note ? ")" : "");
  section_title(f, y, title);
  if (p->pp > PSVG_MAXPP) {
    *y += 16;
    svg_text(f, M, *y, 12, "start", 0, C_TEXT, "%d stages: not drawn stage by stage.", p->pp);
    *y += 6;
    return;
  }
  const double bar_w = CW - LABEL_W - 160, row = 22, x0 = M + LABEL_W;
  double scale = maxv > 0 ? bar_w / (maxv * 1.02) : 0, top = *y + 18;
  if (p->budget_mb > 0) {
    fmt_mem(p->budget_mb, b, sizeof b);
    svg_text(f, x0 + p->budget_mb * scale, top - 4, 12, "middle", 1, C_TEXT, "budget %s", b);
  }
  for (int k = 0; k < n; k++) {
    double yy = top + k * row, x = x0;
    int ob = over_budget(p, k);
    svg_text(f, M, yy + 14, 12, "start", ob, ob ? C_VERMILION : C_TEXT, "stage %d", k);
    for (int j = 0; j < PSVG_NMEM; j++) {
      double w = p->mem_mb[k][j] * scale;
      if (w <= 0) continue;
      svg_rect(f, x, yy + 2, w, row - 6, mem_kind[j].fill, NULL, 0, 0);
      x += w;
    }
    if (ob) svg_rect(f, x0, yy + 1, x - x0, row - 4, "none", C_VERMILION, 2.5, 0);
    fmt_mem(mem_total(p, k), b, sizeof b);
    svg_text(f, x + 6, yy + 14, 12, "start", ob, ob ? C_VERMILION : C_TEXT, "%s%s", b, ob ? "  over budget" : "");
  }
  if (p->budget_mb > 0)
    svg_line(f, x0 + p->budget_mb * scale, top, x0 + p->budget_mb * scale, top + n * row, "#000000", 1.5, 1);
  *y = top + n * row + 14;
  double x = M;
  for (int j = 0; j < PSVG_NMEM; j++)
    if (used[j]) x = swatch(f, x, *y, mem_kind[j].fill, NULL, 0, mem_kind[j].name);
  if (p->budget_mb > 0) {
    svg_line(f, x, *y - 4, x + 20, *y - 4, "#000000", 1.5, 1);
    svg_text(f, x + 26, *y, 12, "start", 0, C_TEXT, "budget per GPU");
  }
  if (over) {
    *y += 17;
    svg_text(f, M, *y, 12, "start", 1, C_VERMILION, "%d of %d stages over the budget", over, n);
  }
  *y += 6;
}

/* ---- timeline ---- */

/* Event times of one step: each stage runs its forwards (F) and backwards (B) in the
 * schedule's order; F(s,i) waits for F(s-1,i), B(s,i) for B(s+1,i). ops[s] lists 2*chunks
 * entries, +i for F(i) and -(i+1) for B(i). ev gets 4 times per micro-batch and stage
 * (svg_timeline.h's rows). */
static void simulate(const PlanPicture *p, double *ev)
{
  int S = p->pp, C = p->chunks;
  int *ops = malloc(sizeof(int) * (size_t)(S * 2 * C)), *next = calloc((size_t)S, sizeof(int));
  double *free_at = calloc((size_t)S, sizeof(double));
  for (int s = 0; s < S; s++) {
    int *o = ops + s * 2 * C, n = 0, warm = p->gpipe ? C : (S - 1 - s < C ? S - 1 - s : C);
    for (int i = 0; i < warm; i++) o[n++] = i;
    for (int i = 0; i < C - warm; i++) { o[n++] = warm + i; o[n++] = -(i + 1); }
    for (int i = C - warm; i < C; i++) o[n++] = -(i + 1);
  }
  for (int i = 0; i < 4 * S * C; i++) ev[i] = -1;
  for (int progress = 1; progress;) {
    progress = 0;
    for (int s = 0; s < S; s++) {
      while (next[s] < 2 * C) {
        int op = ops[s * 2 * C + next[s]], b = op < 0, i = b ? -op - 1 : op;
        /* the end time of what it waits for: the previous stage's forward, the next one's backward */
        int dep = b ? (s + 1 < S ? 4 * ((s + 1) * C + i) + 3 : 4 * (s * C + i) + 1) : (s > 0 ? 4 * ((s - 1) * C + i) + 1 : -1);
        if (dep >= 0 && ev[dep] < 0) break;
        double *e = ev + 4 * (s * C + i) + 2 * b;
        e[0] = fmax(free_at[s], dep >= 0 ? ev[dep] : 0);
        e[1] = e[0] + (b ? p->bwd_s[s] : p->fwd_s[s]);
        free_at[s] = e[1];
        next[s]++;
        progress = 1;
      }
    }
  }
  free(ops);
  free(next);
  free(free_at);
}

static void draw_timeline(FILE *f, const PlanPicture *p, double *y)
{
  char title[256], t[32], ws[32];
  snprintf(title, sizeof title, "Pipeline timeline of one step (%s, %d micro-batch%s per stage; the cost model's times)",
           sched_name(p), p->chunks, p->chunks == 1 ? "" : "es");
  section_title(f, y, title);
  double busy = 0;
  for (int k = 0; k < p->pp && k < PSVG_MAXPP; k++) busy += p->fwd_s[k] + p->bwd_s[k];
  if (p->pp > PSVG_MAXPP || (double)p->pp * p->chunks > 20000 || busy <= 0) {
    *y += 16;
    svg_text(f, M, *y, 12, "start", 0, C_TEXT, "%s", busy <= 0 ? "no per-stage times" : "too many stages or micro-batches to draw");
    *y += 6;
    return;
  }
  int S = p->pp, C = p->chunks;
  double *ev = malloc(sizeof(double) * (size_t)(4 * S * C));
  SvgTlRow *rows = calloc((size_t)S, sizeof *rows);
  char (*labels)[16] = calloc((size_t)S, sizeof *labels);
  simulate(p, ev);
  for (int k = 0; k < S; k++) {
    snprintf(labels[k], sizeof labels[k], "stage %d", k);
    double end = 0;
    for (int i = 0; i < 4 * C; i++) end = fmax(end, ev[4 * k * C + i]);
    rows[k] = (SvgTlRow){labels[k], C, ev + 4 * k * C, end, end + p->sync_s[k]};
  }
  SvgTlStats st;
  svg_timeline_stats(rows, S, &st);
  svg_timeline(f, y, rows, S, p->time_s, "predicted step time");
  *y += 17;
  svg_fmt_time(st.span, t, sizeof t);
  svg_fmt_time(st.worst_sync, ws, sizeof ws);
  svg_text(f, M, *y, 12, "start", 0, C_DIM,
           "schedule from the per-stage micro-batch times: %s; bubble %.0f%% of the stages' time; exposed gradient "
           "reduction up to %s (stage %d)", t, 100 * st.bubble, ws, st.worst_row);
  *y += 6;
  free(ev);
  free(rows);
  free(labels);
}

/* ---- the document ---- */

static void draw_plan(FILE *f, const PlanPicture *p, int index, int n, double *y)
{
  char t[32];
  svg_fmt_time(p->time_s, t, sizeof t);
  *y += 26;
  if (n > 1) svg_text(f, M, *y, 18, "start", 1, C_TEXT, "#%d %s: predicted step %.6f s (%s), %.3f samples/s", index + 1,
                      p->model, p->time_s, t, p->time_s > 0 ? p->gbsz / p->time_s : 0);
  else svg_text(f, M, *y, 18, "start", 1, C_TEXT, "%s: predicted step %.6f s (%s), %.3f samples/s", p->model, p->time_s,
                t, p->time_s > 0 ? p->gbsz / p->time_s : 0);
  *y += 19;
  svg_text(f, M, *y, 13, "start", 0, C_TEXT, "%d ranks, %d pipeline stage%s (%s), %d micro-batch%s, global batch %d",
           p->world, p->pp, p->pp == 1 ? "" : "s", sched_name(p), p->chunks, p->chunks == 1 ? "" : "es", p->gbsz);
  if (p->source) {
    *y += 17;
    svg_text(f, M, *y, 12, "start", 0, C_DIM, "%s", p->source);
  }
  draw_layer_section(f, p, y);
  draw_memory(f, p, y);
  draw_timeline(f, p, y);
  *y += 14;
}

int plan_svg_write(const char *path, const PlanPicture *pics, int n)
{
  char *body = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&body, &len);
  double y = 0;
  for (int i = 0; i < n; i++) {
    if (i) svg_line(mem, M, y, W - M, y, C_GREY, 1, 0);
    draw_plan(mem, &pics[i], i, n, &y);
  }
  fclose(mem);
  char title[256];
  snprintf(title, sizeof title, "%s: parallel plan%s", n ? pics[0].model : "", n > 1 ? "s" : "");
  int rc = svg_write_file(path, W, ceil(y + M), title, body, len);
  free(body);
  if (rc) diag_plain(NULL, "%s: cannot write the picture", path);
  return rc;
}
