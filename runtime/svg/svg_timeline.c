/* svg_timeline.c - the pipeline timeline rows of svg_timeline.h. Okabe-Ito colours: forward
 * sky blue, backward blue, exposed reduction reddish purple; idle hatched grey. */
#include "svg_timeline.h"

#include <math.h>

#include "svg.h"

#define LABEL_W 130.0
#define ROW_H 24.0

void svg_fmt_time(double s, char *buf, size_t n)
{
  if (s <= 0) snprintf(buf, n, "0");
  else if (s >= 1) snprintf(buf, n, "%.4g s", s);
  else if (s >= 1e-3) snprintf(buf, n, "%.4g ms", s * 1e3);
  else snprintf(buf, n, "%.4g us", s * 1e6);
}

void svg_timeline_stats(const SvgTlRow *rows, int nrows, SvgTlStats *st)
{
  double busy = 0;
  st->span = st->worst_sync = 0;
  st->worst_row = 0;
  for (int k = 0; k < nrows; k++)
    for (int i = 0; i < 4 * rows[k].n; i += 2) {
      st->span = fmax(st->span, rows[k].ev[i + 1]);
      busy += rows[k].ev[i + 1] - rows[k].ev[i];
    }
  for (int k = 0; k < nrows; k++)
    if (rows[k].sync1 - rows[k].sync0 > st->worst_sync) {
      st->worst_sync = rows[k].sync1 - rows[k].sync0;
      st->worst_row = k;
    }
  st->bubble = st->span > 0 && nrows ? 1 - busy / (nrows * st->span) : 0;
}

/* 1, 2 or 5 times a power of ten, at least raw. */
static double nice_step(double raw)
{
  double mag = pow(10, floor(log10(raw))), r = raw / mag;
  return mag * (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10);
}

static double swatch(FILE *f, double x, double y, const char *fill, const char *label)
{
  svg_rect(f, x, y - 11, 14, 14, fill, "#555555", 1, 0);
  svg_text(f, x + 19, y, 12, "start", 0, "#222222", "%s", label);
  return x + 19 + svg_text_width(label, 12) + 18;
}

static void draw_row(FILE *f, const SvgTlRow *row, double x0, double yy, double span, double scale)
{
  svg_text(f, SVG_TL_MARGIN, yy + 15, 12, "start", 0, "#222222", "%s", row->label);
  svg_rect(f, x0, yy + 2, span * scale, ROW_H - 5, "url(#hatch)", NULL, 0, 0);
  for (int i = 0; i < row->n; i++)
    for (int b = 0; b < 2; b++) {
      const double *e = row->ev + 4 * i + 2 * b;
      double x = x0 + e[0] * scale, w = (e[1] - e[0]) * scale;
      svg_rect(f, x, yy + 2, w, ROW_H - 5, b ? "#0072B2" : "#56B4E9", "#ffffff", w > 3 ? 0.5 : 0, 0);
      char lab[16];
      snprintf(lab, sizeof lab, "%d", i);
      if (w >= svg_text_width(lab, 11) + 4)
        svg_text(f, x + w / 2, yy + 15, 11, "middle", 0, b ? "#ffffff" : "#000000", "%s", lab);
    }
  if (row->sync1 > row->sync0)
    svg_rect(f, x0 + row->sync0 * scale, yy + 2, (row->sync1 - row->sync0) * scale, ROW_H - 5, "#CC79A7", NULL, 0, 0);
}

void svg_timeline(FILE *f, double *y, const SvgTlRow *rows, int nrows, double mark_s, const char *mark_label)
{
  SvgTlStats st;
  svg_timeline_stats(rows, nrows, &st);
  double total = fmax(st.span, mark_s);
  for (int k = 0; k < nrows; k++) total = fmax(total, rows[k].sync1);
  double tmax = (total > 0 ? total : 1) * 1.02, x0 = SVG_TL_MARGIN + LABEL_W;
  double axis_w = SVG_TL_WIDTH - 2 * SVG_TL_MARGIN - LABEL_W - 10, scale = axis_w / tmax, top = *y + 20;
  char t[32];
  for (int k = 0; k < nrows; k++) draw_row(f, &rows[k], x0, top + k * ROW_H, st.span, scale);
  double bottom = top + nrows * ROW_H, step = nice_step(tmax / 5);
  svg_line(f, x0, bottom, x0 + axis_w, bottom, "#555555", 1, 0);
  for (int i = 0; i * step <= tmax; i++) {
    double v = i * step, x = x0 + v * scale;
    svg_fmt_time(v, t, sizeof t);
    svg_line(f, x, bottom, x, bottom + 4, "#555555", 1, 0);
    svg_text(f, x, bottom + 16, 11, i == 0 ? "start" : "middle", 0, "#555555", "%s", t);
  }
  if (mark_s > 0) {
    double xp = x0 + mark_s * scale;
    svg_fmt_time(mark_s, t, sizeof t);
    svg_line(f, xp, top - 2, xp, bottom, "#000000", 1.5, 1);
    svg_text(f, xp - 4, top - 5, 11, "end", 1, "#222222", "%s: %s", mark_label, t);
  }
  *y = bottom + 34;
  double x = swatch(f, SVG_TL_MARGIN, *y, "#56B4E9", "forward (micro-batch number)");
  x = swatch(f, x, *y, "#0072B2", "backward");
  x = swatch(f, x, *y, "#CC79A7", "gradient reduction not hidden by backward");
  x = swatch(f, x, *y, "url(#hatch)", "idle (bubble)");
  if (mark_s > 0) {
    svg_line(f, x, *y - 4, x + 20, *y - 4, "#000000", 1.5, 1);
    svg_text(f, x + 26, *y, 12, "start", 0, "#222222", "%s", mark_label);
  }
}
