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

void gv_cpu_adamw_multi(struct gv_backend *be, const struct gv_adamw *opt, const struct gv_adamw_tensor *ts, int nt,
                        enum gv_dtype gdt, int t, float lr, float gscale)
{
  (void)be;
  for (int k = 0; k < nt; k++) {
    int64_t n = ts[k].n, chunks = (n + ADAMW_CHUNK - 1) / ADAMW_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
      int64_t first = c * ADAMW_CHUNK;
      adamw_chunk(opt, &ts[k], gdt, first, n - first < ADAMW_CHUNK ? n - first : ADAMW_CHUNK, t, lr, gscale);
    }
  }
}
