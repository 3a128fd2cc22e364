/* e2e_util.h - helpers of the end-to-end tests of generated programs (e2e_util.c). */
#ifndef GV_E2E_UTIL_H
#define GV_E2E_UTIL_H

#include "ir.h"
#include "lower.h"
#include "program/tensorfile.h"

enum { STEPS = 10 };
extern int e2e_failures, e2e_checks;   /* added to the test's own tally at the end */

/* Build BIN from a lowered program: via the C emitter + cc, or an LLVM object. 0 = ok. */
int e2e_build(const Lowered *lw, const char *bin, int via_c);
/* Train BIN on fixture FX for STEPS steps (launcher: e.g. "mpirun -n 2", NULL = one rank
 * without MPI; dump: write step-0 logits and grads there, or NULL; extra: more options);
 * fills losses[STEPS]; returns the log (malloc'd). */
char *e2e_train(const char *launcher, const char *bin, const char *fx, const char *dump, const char *extra,
                double *losses);
/* The same for `steps` steps (the schedule still decays over the run). */
char *e2e_train_n(const char *launcher, const char *bin, const char *fx, const char *dump, const char *extra, int steps,
                  double *losses);
/* Step-0 loss, logits and every gradient of DUMP against the fixture, with fp32's
 * tolerances (loss 1e-5 relative, logits 1e-5 and gradients 1e-4 of the tensor's max |ref|). */
void e2e_compare_dump(const IrModel *m, const char *dump, const struct gv_tf *fx);
/* The same with given tolerances: the loss (relative), the logits and each gradient (max
 * error over the tensor's max |ref|, plus grads_abs); seen[] gets the worst ratios observed
 * (loss, logits, gradients). */
struct e2e_tol { double loss, logits, grads, grads_abs; };
void e2e_compare_dump_tol(const IrModel *m, const char *dump, const struct gv_tf *fx, const struct e2e_tol *tol,
                          double seen[3]);

#endif
