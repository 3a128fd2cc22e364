/* testutil.h - assertions for C unit tests: each failure prints the expression text,
 * file and line, and the test exits non-zero at the end (a test that fails says so). */
#ifndef GV_TESTUTIL_H
#define GV_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tu_failures, tu_checks;

#define CHECK(cond) do { tu_checks++; if (!(cond)) { tu_failures++; \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)

#define CHECK_EQ_INT(expected, actual) do { long long e_ = (long long)(expected), a_ = (long long)(actual); \
      tu_checks++; if (e_ != a_) { tu_failures++; fprintf(stderr, "%s:%d: %s == %s failed: expected %lld, got %lld\n", \
      __FILE__, __LINE__, #expected, #actual, e_, a_); } } while (0)

/* |actual - expected| <= atol + rtol * |expected| */
#define CHECK_CLOSE(expected, actual, atol, rtol) do { double e_ = (double)(expected), a_ = (double)(actual); \
      tu_checks++; if (!(fabs(a_ - e_) <= (atol) + (rtol) * fabs(e_))) { tu_failures++; \
      fprintf(stderr, "%s:%d: %s ~ %s failed: expected %.9g, got %.9g (atol %g, rtol %g)\n", \
      __FILE__, __LINE__, #expected, #actual, e_, a_, (double)(atol), (double)(rtol)); } } while (0)

#define CHECK_STR(expected, actual) do { const char *e_ = (expected), *a_ = (actual); tu_checks++; \
      if (!a_ || strcmp(e_, a_)) { tu_failures++; fprintf(stderr, "%s:%d: %s == %s failed: expected \"%s\", got \"%s\"\n", \
      __FILE__, __LINE__, #expected, #actual, e_, a_ ? a_ : "(null)"); } } while (0)

/* Call at the end of main: prints the tally, returns the exit code. */
static inline int tu_report(const char *name)
{
  printf("%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
  return tu_failures ? 1 : 0;
}

#endif
