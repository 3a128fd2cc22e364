/* cuda_testutil.h - the start every CUDA kernel test shares: skip (exit code 77, which
 * ctest reports as skipped) when no usable GPU is present, else open the CPU reference
 * backend and the CUDA backend under test. Built with GV_TEST_CUDA_EMU, the CUDA backend
 * is the host emulator's (tests/ops/cuda_gemm/emu), which needs no GPU. */
#ifndef GV_CUDA_TESTUTIL_H
#define GV_CUDA_TESTUTIL_H

#include <stdio.h>

#include "gvrt.h"

#ifdef GV_TEST_CUDA_EMU
void emu_backend_init(struct gv_backend *be);
#endif

/* 0 with both backends open, or 77 (print the reason) when the test must be skipped.
 * cpu may be NULL for a test without a CPU reference. */
static inline int tu_cuda_begin(struct gv_backend *cpu, struct gv_backend *cu)
{
#ifdef GV_TEST_CUDA_EMU
  emu_backend_init(cu);
#else
  char why[256];
  if (!gv_backend_available("cuda", why, sizeof why)) {
    printf("skipping: no usable GPU (%s)\n", why);
    return 77;
  }
  gv_backend_init(cu, "cuda", 0);
#endif
  if (cpu)
    gv_backend_init(cpu, "cpu", 0);
  return 0;
}

#endif
