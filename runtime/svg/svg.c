/* svg.c - the tiny SVG writer of svg.h. */
#include "svg.h"

#include <stdarg.h>
#include <string.h>

void svg_escape(FILE *f, const char *s)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    switch (c) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&apos;", f); break;
    default:
      if (c >= 0x20 || c == '\t') fputc(c, f);
    }
  }
}

void svg_begin(FILE *f, double width, double height, const char *title)
{
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
             "font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\">\n<title>",
          width, height, width, height);
  svg_escape(f, title);
  fprintf(f, "</title>\n<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
             "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#f2f2f2\"/>"
             "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#bbbbbb\" stroke-width=\"2\"/></pattern></defs>\n"
             "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n",
          width, height);
}

void svg_end(FILE *f) { fputs("</svg>\n", f); }

int svg_write_file(const char *path, double width, double height, const char *title, const char *body, size_t len)
{
  FILE *f = fopen(path, "w");
  if (!f) return 1;
  svg_begin(f, width, height, title);
  fwrite(body, 1, len, f);
  svg_end(f);
  return fclose(f) != 0;
}

void svg_rect(FILE *f, double x, double y, double w, double h, const char *fill, const char *stroke, double stroke_w,
              int dash)
{
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"", x, y, w > 0 ? w : 0, h > 0 ? h : 0,
          fill ? fill : "none");
  if (stroke) fprintf(f, " stroke=\"%s\" stroke-width=\"%.1f\"", stroke, stroke_w);
  if (dash) fputs(" stroke-dasharray=\"4 2\"", f);
  fputs("/>\n", f);
}

void svg_line(FILE *f, double x1, double y1, double x2, double y2, const char *stroke, double w, int dash)
{
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\"%s/>\n", x1, y1,
          x2, y2, stroke, w, dash ? " stroke-dasharray=\"6 3\"" : "");
}

void svg_text(FILE *f, double x, double y, double size, const char *anchor, int bold, const char *fill,
              const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\"", x, y, size);
  if (strcmp(anchor, "start")) fprintf(f, " text-anchor=\"%s\"", anchor);
  if (bold) fputs(" font-weight=\"bold\"", f);
  fprintf(f, " fill=\"%s\">", fill ? fill : "#000000");
  svg_escape(f, buf);
  fputs("</text>\n", f);
}

double svg_text_width(const char *s, double size)
{
  double w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) w += 0.6; /* DejaVu Sans averages ~0.6 em; count code points */
  return w * size;
}
