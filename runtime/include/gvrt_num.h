/* gvrt_num.h - strict numbers for every option and key that gvc and the training binary
 * read: the whole text must be the number (no "12ab", no empty string, no "2.5" where an
 * integer is expected), within a stated range, never NaN or infinite. Header-only, so the
 * compiler and the runtime share the one implementation without linking one into the
 * other. Callers print the message: "OPTION 'TEXT': " + gv_num_expected(). */
#ifndef GVRT_NUM_H
#define GVRT_NUM_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The accepted values: [lo, hi], an open end when lo_open/hi_open; integer: whole numbers. */
struct gv_num_range {
  double lo, hi;
  int integer, lo_open, hi_open;
};

/* Initialisers: struct gv_num_range r = GV_NUM_INT(1, 8); (or in a table) */
#define GV_NUM_INT(lo, hi) {(double)(lo), (double)(hi), 1, 0, 0}
#define GV_NUM_REAL(lo, hi) {(lo), (hi), 0, 0, 0}

static inline int gv_num_in_range(double v, const struct gv_num_range *r)
{
  return !isnan(v) && (r->lo_open ? v > r->lo : v >= r->lo) && (r->hi_open ? v < r->hi : v <= r->hi);
}

/* Parses the whole of s as the range's kind of number; 0 and *out set, or 1. */
static inline int gv_num_parse(const char *s, const struct gv_num_range *r, double *out)
{
  char *end = NULL;
  double v;
  if (!s || !*s)
    return 1;
  errno = 0;
  if (r->integer) {
    long long i = strtoll(s, &end, 10);
    if (errno == ERANGE)
      return 1;
    v = (double)i;
  } else {
    v = strtod(s, &end);
    if (!isfinite(v))
      return 1;
  }
  if (end == s || *end || !gv_num_in_range(v, r))
    return 1;
  *out = v;
  return 0;
}

static inline int gv_num_parse_int(const char *s, const struct gv_num_range *r, int64_t *out)
{
  double v;
  if (gv_num_parse(s, r, &v))
    return 1;
  *out = (int64_t)v;
  return 0;
}

/* "an integer in 1..1024", "0 or 1", "a number in [0, 1)", "a number >= 0",
 * "a finite number" into buf. */
static inline const char *gv_num_expected(const struct gv_num_range *r, char *buf, size_t n)
{
  if (r->integer && r->lo == 0 && r->hi == 1)
    snprintf(buf, n, "0 or 1");
  else if (r->integer)
    snprintf(buf, n, "an integer in %.0f..%.0f", r->lo, r->hi);
  else if (isinf(r->lo) && isinf(r->hi))
    snprintf(buf, n, "a finite number");
  else if (isinf(r->hi))
    snprintf(buf, n, "a number %s %g", r->lo_open ? ">" : ">=", r->lo);
  else
    snprintf(buf, n, "a number in %c%g, %g%c", r->lo_open ? '(' : '[', r->lo, r->hi, r->hi_open ? ')' : ']');
  return buf;
}

#endif
