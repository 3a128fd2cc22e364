/* opcheck.h - the fp64 oracle harness of the CPU op tests. Each op gets a tiny, obviously
 * correct fp64 reference (naive loops) in the test; the harness checks
 *  (a) the fp32 kernel's forward against the fp64 reference forward, and
 *  (b) the fp32 kernel's backward (fed dy = r) against central finite differences of the
 *      fp64 loss L = sum(ref(x) * r), so the gradient oracle shares no code with the kernel.
 * FD in fp64 with h = 1e-6 has truncation error ~h^2 and rounding ~1e-16/h = 1e-10, far below
 * the tolerances, which therefore only absorb the fp32 kernel's own rounding. */
#ifndef GV_OPCHECK_H
#define GV_OPCHECK_H

#include <stdint.h>
#include <stdlib.h>

#include "gvrt.h"
#include "testutil.h"

enum { OC_MAX_IN = 4 };

struct refop {
  int nin;                       /* differentiable inputs */
  int64_t n[OC_MAX_IN];          /* their element counts */
  int64_t nout;
  void (*fwd)(const struct refop *op, double *const *in, double *out);
  const void *ctx;               /* op parameters for fwd */
};

/* Deterministic uniform values in [lo, hi). */
static inline double oc_uniform(uint64_t *s, double lo, double hi)
{
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (double)(*s >> 11) * 0x1p-53;
}

static inline void oc_fill(float *f, double *d, int64_t n, uint64_t *s, double lo, double hi)
{
  for (int64_t i = 0; i < n; i++) {
    f[i] = (float)oc_uniform(s, lo, hi);
    if (d) d[i] = f[i];
  }
}

static inline double oc_loss(const struct refop *op, double *const *in, const double *r, double *out)
{
  double l = 0.0;
  op->fwd(op, in, out);
  for (int64_t i = 0; i < op->nout; i++) l += out[i] * r[i];
  return l;
}

/* grad[i] = dL/d in[which][i] by central differences. */
static inline void oc_fd_grad(const struct refop *op, double *const *in, const double *r, int which,
                              double *grad)
{
  double *out = malloc((size_t)op->nout * sizeof *out);
  for (int64_t i = 0; i < op->n[which]; i++) {
    double save = in[which][i], h = 1e-6 * (fabs(save) > 1.0 ? fabs(save) : 1.0);
    in[which][i] = save + h;
    double lp = oc_loss(op, in, r, out);
    in[which][i] = save - h;
    double lm = oc_loss(op, in, r, out);
    in[which][i] = save;
    grad[i] = (lp - lm) / (2.0 * h);
  }
  free(out);
}

/* |got - want| <= atol + rtol |want| element-wise; prints the first few misses. */
static inline void oc_check(const char *what, const float *got, const double *want, int64_t n,
                            double atol, double rtol)
{
  int64_t bad = 0;
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - want[i]), lim = atol + rtol * fabs(want[i]);
    if (err / lim > worst) worst = err / lim;
    if (!(err <= lim) && bad++ < 3)
      fprintf(stderr, "  %s[%lld]: got %.9g want %.9g\n", what, (long long)i, got[i], want[i]);
  }
  tu_checks++;
  if (bad) {
    tu_failures++;
    fprintf(stderr, "%s: %lld of %lld elements outside atol %g + rtol %g\n", what, (long long)bad,
            (long long)n, atol, rtol);
  } else if (getenv("GV_TEST_VERBOSE")) {
    printf("  %-28s ok (worst err/tol %.3f)\n", what, worst);
  }
}

/* Forward: kernel output vs the reference. Backward: each kernel gradient vs FD. */
static inline void oc_check_fwd(const char *what, const struct refop *op, double *const *in,
                                const float *got, double atol, double rtol)
{
  double *want = malloc((size_t)op->nout * sizeof *want);
  op->fwd(op, in, want);
  oc_check(what, got, want, op->nout, atol, rtol);
  free(want);
}

/* got vs factor * FD gradient: factor 2 checks a second backward with an accumulate flag. */
static inline void oc_check_grad_times(const char *what, const struct refop *op, double *const *in,
                                       const double *r, int which, const float *got, double factor,
                                       double atol, double rtol)
{
  double *want = malloc((size_t)op->n[which] * sizeof *want);
  oc_fd_grad(op, in, r, which, want);
  for (int64_t i = 0; i < op->n[which]; i++) want[i] *= factor;
  oc_check(what, got, want, op->n[which], atol * factor, rtol);
  free(want);
}

static inline void oc_check_grad(const char *what, const struct refop *op, double *const *in,
                                 const double *r, int which, const float *got, double atol,
                                 double rtol)
{
  oc_check_grad_times(what, op, in, r, which, got, 1.0, atol, rtol);
}

static inline double *oc_dup(const float *f, int64_t n)
{
  double *d = malloc((size_t)n * sizeof *d);
  for (int64_t i = 0; i < n; i++) d[i] = f[i];
  return d;
}

/* The CPU backend with a workspace large enough for attention up to S keys. */
static inline void oc_backend(struct gv_backend *be, int64_t S)
{
  gv_backend_init(be, "cpu", 0);
  size_t ws = gv_backend_workspace_bytes(be, 1, S, S, 1, 1, 1);
  gv_backend_set_workspace(be, gv_dev_alloc(be, ws), ws);
}

static inline void oc_backend_free(struct gv_backend *be)
{
  size_t ws = be->workspace_bytes;
  void *p = be->workspace;
  gv_backend_set_workspace(be, NULL, 0);
  gv_dev_free(be, &p, ws);
  gv_backend_free(be);
}

#endif
