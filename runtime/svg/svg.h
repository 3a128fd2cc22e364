/* svg.h - a tiny SVG writer: a self-contained document (no scripts, no external fonts or
 * files) of rectangles, lines and text, with XML escaping of every string it writes.
 * Coordinates are pixels; numbers are printed with one decimal so output is stable. */
#ifndef GV_SVG_H
#define GV_SVG_H

#include <stdio.h>

/* Opens the document (width x height, white background, one sans-serif font family from
 * the system) and its <defs>: a diagonal hatch pattern "hatch" for idle or summarised areas. */
void svg_begin(FILE *f, double width, double height, const char *title);
void svg_end(FILE *f);
/* A whole document into path: svg_begin (width x height), the body already drawn (e.g. into
 * an open_memstream buffer, so the height is known), svg_end. Returns 0, or 1 when the file
 * cannot be written (the caller names it). */
int svg_write_file(const char *path, double width, double height, const char *title, const char *body, size_t len);
/* XML text: & < > " ' escaped, control bytes dropped. */
void svg_escape(FILE *f, const char *s);
/* A rectangle; stroke NULL for none, dash 1 for a dashed outline; fill may be "url(#hatch)". */
void svg_rect(FILE *f, double x, double y, double w, double h, const char *fill, const char *stroke, double stroke_w,
              int dash);
void svg_line(FILE *f, double x1, double y1, double x2, double y2, const char *stroke, double w, int dash);
/* Text at (x, y) baseline; anchor "start", "middle" or "end"; bold 0/1; printf format. */
void svg_text(FILE *f, double x, double y, double size, const char *anchor, int bold, const char *fill,
              const char *fmt, ...) __attribute__((format(printf, 8, 9)));
/* Approximate width of text in the sans-serif font (for fitting labels into boxes). */
double svg_text_width(const char *s, double size);

#endif
