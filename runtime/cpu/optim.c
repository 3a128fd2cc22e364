/* optim.c - the CPU backend's optimizer entry: AdamW is gv_optim_adamw_step itself
 * (runtime/optim/adamw.c), so the table entry and the host function agree bit for bit.
 * A bf16 gradient is widened into a stack buffer one chunk at a time (kernels never
 * allocate); AdamW is element-wise, so chunking changes no result. */
#include "cpu/cpu.h"

enum { ADAMW_CHUNK = 4096 };

void gv_cpu_adamw(struct gv_backend *be, const struct gv_adamw *opt, struct gv_tensor *p,
                  const struct gv_tensor *g, struct gv_tensor *m, struct gv_tensor *v, int t,
                  float lr, int decay)
{
  (void)be;
  float *pp = cpu_f32(p), *mp = cpu_f32(m), *vp = cpu_f32(v);
  int64_t n = gv_tensor_numel(p);
  if (g->dtype == GV_DTYPE_F32) {
    gv_optim_adamw_step(opt, pp, cpu_f32(g), mp, vp, (size_t)n, t, lr, decay);
    return;
  }
  GV_CHECK(g->dtype == GV_DTYPE_BF16, "cpu adamw: g must be f32 or bf16, is %s", gv_dtype_name(g->dtype));
  const uint16_t *gh = g->data;
  int64_t chunks = (n + ADAMW_CHUNK - 1) / ADAMW_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; c++) {
    float gf[ADAMW_CHUNK];
    int64_t first = c * ADAMW_CHUNK, len = n - first < ADAMW_CHUNK ? n - first : ADAMW_CHUNK;
    for (int64_t i = 0; i < len; i++)
      gf[i] = gv_bf16_to_float(gh[first + i]);
    gv_optim_adamw_step(opt, pp + first, gf, mp + first, vp + first, (size_t)len, t, lr, decay);
  }
}
