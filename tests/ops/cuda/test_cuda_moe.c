/* test_cuda_moe.c - the CUDA backend's mixture-of-experts kernels (runtime/cuda/moe.cu)
 * against the CPU backend's (checked against PyTorch in tests/ops/moe): top-k, take, the
 * routing permutation and its inverse, the per-expert GEMM and the load-balancing loss,
 * forward and backward, with and without the accumulate flags, in f32. Expert ids exact;
 * values within 1e-5 (1 + |cpu|). The routing scratch lives in the backend's workspace.
 * Exits 77 (ctest: skipped) when no CUDA device can be used; tests/ops/cuda_gemm/emu runs it
 * on the host emulator (suite moe). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt.h"
#include "testutil.h"
#include "cuda_testutil.h"

static struct gv_backend cpu, cu;
static uint64_t rng = 0x2545f4914f6cdd1dull;
enum { M = 20, E = 6, K = 2, C = 12, N = 7 };

static double urand(double lo, double hi)
{
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (double)(rng >> 11) * 0x1p-53;
}

/* One tensor on both backends: h (host, the CPU backend's memory) and d (the device). */
struct pair {
  struct gv_tensor h, d;
};

static struct pair mk(enum gv_dtype dt, int64_t a, int64_t b, int64_t c, int fill)
{
  struct pair p;
  int64_t n = a * (b ? b : 1) * (c ? c : 1);
  void *h = calloc((size_t)n, 4), *d = gv_dev_alloc(&cu, (size_t)n * 4);
  p.h = gv_tensor_4d(h, dt, a, b, c, 0);
  p.d = gv_tensor_4d(d, dt, a, b, c, 0);
  for (int64_t i = 0; fill && dt == GV_DTYPE_F32 && i < n; i++) ((float *)h)[i] = (float)urand(-1, 1);
  gv_dev_memcpy(&cu, d, h, (size_t)n * 4, GV_COPY_H2D);
  return p;
}

static void release(struct pair *p)
{
  free(p->h.data);
  gv_dev_free(&cu, &p->d.data, gv_tensor_bytes(&p->d));
}

static void same(const char *what, const struct pair *p)
{
  int64_t n = gv_tensor_numel(&p->h);
  void *got = malloc((size_t)n * 4);
  gv_dev_memcpy(&cu, got, p->d.data, (size_t)n * 4, GV_COPY_D2H);
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double a = p->h.dtype == GV_DTYPE_I32 ? ((int32_t *)p->h.data)[i] : ((float *)p->h.data)[i];
    double b = p->h.dtype == GV_DTYPE_I32 ? ((int32_t *)got)[i] : ((float *)got)[i];
    double e = fabs(a - b) / (1.0 + fabs(a));
    worst = e > worst ? e : worst;
  }
  double tol = p->h.dtype == GV_DTYPE_I32 ? 0.0 : 1e-5;
  printf("%s %s (worst %.2g)\n", worst <= tol ? "ok  " : "FAIL", what, worst);
  CHECK(worst <= tol);
  free(got);
}

static void run(int flags)
{
  struct pair lg = mk(GV_DTYPE_F32, M, E, 0, 1), idx = mk(GV_DTYPE_I32, M, K, 0, 0);
  for (int64_t i = 0; i < M; i++) /* the last expert is never chosen */
    ((float *)lg.h.data)[i * E + E - 1] -= 10.0f;
  gv_dev_memcpy(&cu, lg.d.data, lg.h.data, sizeof(float) * M * E, GV_COPY_H2D);
  gv_topk(&cpu, &idx.h, &lg.h);
  gv_topk(&cu, &idx.d, &lg.d);
  same("topk ids", &idx);

  struct pair v = mk(GV_DTYPE_F32, M, K, 0, 1), dl = mk(GV_DTYPE_F32, M, E, 0, 1);
  gv_take_fwd(&cpu, &v.h, &lg.h, &idx.h);
  gv_take_fwd(&cu, &v.d, &lg.d, &idx.d);
  same("take y", &v);
  gv_take_bwd(&cpu, &dl.h, &v.h, &idx.h, flags);
  gv_take_bwd(&cu, &dl.d, &v.d, &idx.d, flags);
  same("take dx", &dl);

  struct pair x = mk(GV_DTYPE_F32, M, C, 0, 1), xp = mk(GV_DTYPE_F32, M * K, C, 0, 0);
  struct pair dx = mk(GV_DTYPE_F32, M, C, 0, 1);
  gv_moe_permute_fwd(&cpu, &xp.h, &x.h, &idx.h, E);
  gv_moe_permute_fwd(&cu, &xp.d, &x.d, &idx.d, E);
  same("permute xp", &xp);
  gv_moe_permute_bwd(&cpu, &dx.h, &xp.h, &idx.h, E, flags);
  gv_moe_permute_bwd(&cu, &dx.d, &xp.d, &idx.d, E, flags);
  same("permute dx", &dx);

  struct pair w = mk(GV_DTYPE_F32, E, N, C, 1), y = mk(GV_DTYPE_F32, M * K, N, 0, 0);
  struct pair dxp = mk(GV_DTYPE_F32, M * K, C, 0, 1), dw = mk(GV_DTYPE_F32, E, N, C, 1);
  gv_moe_grouped_fwd(&cpu, &y.h, &xp.h, &w.h, &idx.h);
  gv_moe_grouped_fwd(&cu, &y.d, &xp.d, &w.d, &idx.d);
  same("grouped y", &y);
  gv_moe_grouped_bwd(&cpu, &dxp.h, &dw.h, &y.h, &xp.h, &w.h, &idx.h, flags);
  gv_moe_grouped_bwd(&cu, &dxp.d, &dw.d, &y.d, &xp.d, &w.d, &idx.d, flags);
  same("grouped dx", &dxp);
  same("grouped dw (an expert without tokens)", &dw);

  struct pair g = mk(GV_DTYPE_F32, M, K, 0, 1), u = mk(GV_DTYPE_F32, M, C, 0, 0);
  struct pair dyp = mk(GV_DTYPE_F32, M * K, C, 0, 1), dg = mk(GV_DTYPE_F32, M, K, 0, 1);
  gv_moe_unpermute_fwd(&cpu, &u.h, &xp.h, &g.h, &idx.h, E);
  gv_moe_unpermute_fwd(&cu, &u.d, &xp.d, &g.d, &idx.d, E);
  same("unpermute y", &u);
  gv_moe_unpermute_bwd(&cpu, &dyp.h, &dg.h, &u.h, &xp.h, &g.h, &idx.h, E, flags);
  gv_moe_unpermute_bwd(&cu, &dyp.d, &dg.d, &u.d, &xp.d, &g.d, &idx.d, E, flags);
  same("unpermute dyp", &dyp);
  same("unpermute dgates", &dg);

  struct pair loss = mk(GV_DTYPE_F32, 1, 0, 0, 0);
  gv_softmax_fwd(&cpu, &lg.h, &lg.h);
  gv_softmax_fwd(&cu, &lg.d, &lg.d);
  gv_moe_aux_fwd(&cpu, &loss.h, &lg.h, &idx.h, 0.3f);
  gv_moe_aux_fwd(&cu, &loss.d, &lg.d, &idx.d, 0.3f);
  same("aux loss", &loss);
  gv_moe_aux_bwd(&cpu, &dl.h, &idx.h, 0.3f, flags);
  gv_moe_aux_bwd(&cu, &dl.d, &idx.d, 0.3f, flags);
  same("aux dprobs", &dl);
  struct pair *all[] = {&lg, &idx, &v, &dl, &x, &xp, &dx, &w, &y, &dxp, &dw, &g, &u, &dyp, &dg, &loss};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    release(all[i]);
}

int main(void)
{
  if (tu_cuda_begin(&cpu, &cu))
    return 77;
  size_t ws = 1 << 16; /* the routing: (M K + E + 1) i32 */
  void *wsp = gv_dev_alloc(&cu, ws);
  gv_backend_set_workspace(&cu, wsp, ws);
  run(0);
  run(GV_ACC_DX | GV_ACC_DW);
  gv_dev_free(&cu, &wsp, ws);
  gv_backend_free(&cu);
  gv_backend_free(&cpu);
  return tu_report("cuda moe ops");
}
