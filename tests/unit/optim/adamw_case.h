/* adamw_case.h - the AdamW cases shared by the backend tests (cpu: test_adamw_backend.c,
 * cuda: tests/ops/cuda_adamw): deterministic parameters, moments and gradients of mixed
 * signs and magnitudes (zeros included), and the host reference, gv_optim_adamw_step, run
 * for a few steps with decay on and off. */
#ifndef GV_ADAMW_CASE_H
#define GV_ADAMW_CASE_H

#include <stdint.h>
#include <stdlib.h>

#include "gvrt.h"

/* Not a multiple of the CPU chunk (4096) nor of a CUDA block. */
enum { AC_N = 10007, AC_STEPS = 3 };

static const struct gv_adamw ac_opt = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};

struct adamw_case {
  float p[AC_N], m[AC_N], v[AC_N];
  float g[AC_STEPS][AC_N];        /* the gradient of each step, as f32 (bf16: widened) */
  uint16_t gb[AC_STEPS][AC_N];    /* the same gradients rounded to bf16 */
};

/* Uniform in [-1, 1) from a 64-bit LCG (Knuth's MMIX constants). */
static float ac_uniform(uint64_t *s)
{
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(*s >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

/* Fills c; with bf16 set, g holds the widened bf16 values so both paths see equal inputs. */
static struct adamw_case *ac_make(int bf16)
{
  struct adamw_case *c = calloc(1, sizeof *c);
  uint64_t s = 42;
  for (int i = 0; i < AC_N; i++) {
    c->p[i] = ac_uniform(&s);
    c->m[i] = 0.01f * ac_uniform(&s);
    c->v[i] = 1e-4f * (ac_uniform(&s) + 1.0f);
  }
  for (int k = 0; k < AC_STEPS; k++)
    for (int i = 0; i < AC_N; i++) {
      float scale = (i % 3 == 0) ? 1e-3f : (i % 3 == 1) ? 1.0f : 30.0f;
      float x = (i % 97 == 0) ? 0.0f : scale * ac_uniform(&s);
      c->gb[k][i] = gv_bf16_from_float(x);
      c->g[k][i] = bf16 ? gv_bf16_to_float(c->gb[k][i]) : x;
    }
  return c;
}

/* lr and decay of step k (1-based t = k + 1): decay on steps 0 and 2. */
static float ac_lr(int k) { return 1e-3f * (float)(k + 1); }
static int ac_decay(int k) { return k != 1; }

/* The reference: gv_optim_adamw_step on host copies. */
static void ac_reference(struct adamw_case *c)
{
  for (int k = 0; k < AC_STEPS; k++)
    gv_optim_adamw_step(&ac_opt, c->p, c->g[k], c->m, c->v, AC_N, k + 1, ac_lr(k), ac_decay(k));
}


/* ---- multi-tensor steps (gv_adamw_multi): tensors of these sizes (an empty one, one
 * element, around the CPU chunk, the whole case), decay on the odd ones, one step with the
 * clipping scale, the bf16 parameter copies written (mixed precision) ---- */

enum { AM_T = 5 };
static const int64_t am_sizes[AM_T] = {0, 1, 4095, 4097, AC_N};
static const float am_gscale = 0.37f;

/* Offset of tensor k in the case's flat arrays (the tensors are consecutive slices; sizes
 * add up to less than AC_N * 2, so two cases' worth of storage: p, m, v of 2 * AC_N). */
static int64_t am_off(int k)
{
  int64_t o = 0;
  for (int i = 0; i < k; i++) o += am_sizes[i];
  return o;
}

struct adamw_multi_case {
  float p[2 * AC_N], m[2 * AC_N], v[2 * AC_N], g[2 * AC_N];
  uint16_t gb[2 * AC_N], pb[2 * AC_N];
};

static struct adamw_multi_case *am_make(void)
{
  struct adamw_multi_case *c = calloc(1, sizeof *c);
  uint64_t s = 7;
  for (int i = 0; i < 2 * AC_N; i++) {
    c->p[i] = ac_uniform(&s);
    c->m[i] = 0.01f * ac_uniform(&s);
    c->v[i] = 1e-4f * (ac_uniform(&s) + 1.0f);
    c->g[i] = (i % 3 == 0 ? 1e-3f : i % 3 == 1 ? 1.0f : 30.0f) * ac_uniform(&s);
    c->gb[i] = gv_bf16_from_float(c->g[i]);
  }
  return c;
}

/* The tensors of case c (pointers into base_* arrays of the same layout: host or device),
 * gradients g (f32) or gb (bf16) as gdt says, the bf16 copies when low. */
static void am_tensors(struct gv_adamw_tensor *ts, float *p, float *m, float *v, const void *g, uint16_t *pb,
                       enum gv_dtype gdt, int low)
{
  for (int k = 0; k < AM_T; k++) {
    int64_t o = am_off(k);
    ts[k] = (struct gv_adamw_tensor){p + o, (const char *)g + o * (int64_t)gv_dtype_size(gdt), m + o, v + o,
                                     low ? pb + o : NULL, am_sizes[k], k % 2};
  }
}

#endif
