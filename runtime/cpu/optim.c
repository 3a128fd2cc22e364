/* optim.c - the CPU backend's optimizer entry: AdamW is gv_optim_adamw_step itself
 * (runtime/optim/adamw.c), so the table entry and the host function agree bit for bit.
 * A gradient that is bf16 or scaled (the clipping coefficient) is widened/scaled into a
 * stack buffer one chunk at a time (kernels never allocate); AdamW is element-wise, so
 * chunking changes no result. With p_bf16 the new master is rounded into the bf16
 * parameter (gv_bf16_from_float, as gv_copy rounds). */
#include "cpu/cpu.h"

enum { ADAMW_CHUNK = 4096 };

/* Elements [first, first + len) of one tensor. */
static void adamw_chunk(const struct gv_adamw *opt, const struct gv_adamw_tensor *ts, enum gv_dtype gdt, int64_t first,
                        int64_t len, int t, float lr, float gscale)
{
  const float *g = (const float *)ts->g + first;
  if (gdt == GV_DTYPE_BF16 || gscale != 1.0f) {
    float gf[ADAMW_CHUNK];
    for (int64_t i = 0; i < len; i++) {
      float x = gdt == GV_DTYPE_BF16 ? gv_bf16_to_float(((const uint16_t *)ts->g)[first + i]) : g[i];
      gf[i] = gscale != 1.0f ? x * gscale : x;
    }
    gv_optim_adamw_step(opt, ts->p + first, gf, ts->m + first, ts->v + first, (size_t)len, t, lr, ts->decay);
  } else {
    gv_optim_adamw_step(opt, ts->p + first, g, ts->m + first, ts->v + first, (size_t)len, t, lr, ts->decay);
  }
  if (ts->p_bf16)
    for (int64_t i = 0; i < len; i++)
      ts->p_bf16[first + i] = gv_bf16_from_float(ts->p[first + i]);
}

/* Every chunk of every tensor in one parallel loop: one barrier for the whole update instead
 * of one per tensor (a few hundred a step, each waiting for a preempted thread on a busy
 * machine). Chunk c belongs to the tensor k with first[k] <= c < first[k + 1]. */
void gv_cpu_adamw_multi(struct gv_backend *be, const struct gv_adamw *opt, const struct gv_adamw_tensor *ts, int nt,
                        enum gv_dtype gdt, int t, float lr, float gscale)
{
  (void)be;
  if (nt <= 0) return;
  int64_t first[nt + 1];
  first[0] = 0;
  for (int k = 0; k < nt; k++) first[k + 1] = first[k] + (ts[k].n + ADAMW_CHUNK - 1) / ADAMW_CHUNK;
#pragma omp parallel for schedule(static) if (first[nt] > 1)
  for (int64_t c = 0; c < first[nt]; c++) {
    int lo = 0, hi = nt - 1;                 /* the last k with first[k] <= c */
    while (lo < hi) {
      int mid = (lo + hi + 1) / 2;
      if (first[mid] <= c) lo = mid; else hi = mid - 1;
    }
    int64_t at = (c - first[lo]) * ADAMW_CHUNK, n = ts[lo].n;
    adamw_chunk(opt, &ts[lo], gdt, at, n - at < ADAMW_CHUNK ? n - at : ADAMW_CHUNK, t, lr, gscale);
  }
}
