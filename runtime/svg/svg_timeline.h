/* svg_timeline.h - one training step's pipeline timeline drawn with svg.h: a row per stage
 * (or rank), each micro-batch's forward and backward as a box numbered by micro-batch,
 * idle time hatched (the bubble), the gradient reduction that backward does not hide, a
 * time axis, a dashed mark (the predicted step time) and the legend. Shared by the plan
 * picture (gvc: the cost model's times) and the training binary's --timeline (the times it
 * measured), so the prediction and the run can be laid side by side. */
#ifndef GV_SVG_TIMELINE_H
#define GV_SVG_TIMELINE_H

#include <stdio.h>

#define SVG_TL_WIDTH 1200.0  /* the document width the rows are laid out for */
#define SVG_TL_MARGIN 20.0

typedef struct SvgTlRow {
  const char *label;     /* "stage 1", "rank 3 (stage 1)" */
  int n;                 /* micro-batches */
  const double *ev;      /* 4 per micro-batch: forward start, end, backward start, end (s from the step's start) */
  double sync0, sync1;   /* the exposed gradient reduction (none when sync1 <= sync0) */
} SvgTlRow;

typedef struct SvgTlStats {
  double span;           /* the last end of any forward or backward */
  double bubble;         /* idle fraction of the rows' time up to span */
  double worst_sync;     /* the longest exposed gradient reduction */
  int worst_row;
} SvgTlStats;

/* The rows' statistics (no drawing). */
void svg_timeline_stats(const SvgTlRow *rows, int nrows, SvgTlStats *st);
/* Draws the rows from *y down (advancing it) with the axis and legend; mark_s > 0 draws the
 * dashed mark labelled mark_label. */
void svg_timeline(FILE *f, double *y, const SvgTlRow *rows, int nrows, double mark_s, const char *mark_label);
/* "0", "12.5 us", "3.42 ms", "1.234 s" */
void svg_fmt_time(double s, char *buf, size_t n);

#endif
