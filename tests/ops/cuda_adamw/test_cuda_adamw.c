/* test_cuda_adamw.c - gv_adamw on the cuda backend against the CPU reference
 * (gv_optim_adamw_step): f32 and bf16 gradients, several steps with decay on and off, all
 * of p, m, v within 1e-6 relative (the kernel rounds each fp32 operation like the CPU, so
 * it is usually bit-identical; the max ulp distance is printed). Without a usable GPU it
 * prints why and exits 77 (ctest: skipped).
 * gv_adamw_multi (one launch for several tensors, the clipping scale and the bf16
 * parameter copies fused in) against the CPU backend's: p, m, v within 1e-6 relative and
 * the bf16 copies equal to the rounding of the GPU's own new masters. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gvrt.h"
#include "testutil.h"
#include "cuda_testutil.h"
#include "unit/optim/adamw_case.h"


static struct gv_tensor upload(struct gv_backend *be, const void *h, enum gv_dtype t)
{
  size_t bytes = AC_N * gv_dtype_size(t);
  void *d = gv_dev_alloc(be, bytes);
  gv_dev_memcpy(be, d, h, bytes, GV_COPY_H2D);
  return gv_tensor_4d(d, t, AC_N, 0, 0, 0);
}

static void download(struct gv_backend *be, void *h, struct gv_tensor *d)
{
  gv_dev_memcpy(be, h, d->data, gv_tensor_bytes(d), GV_COPY_D2H);
  gv_dev_free(be, &d->data, gv_tensor_bytes(d));
}

static void run_cuda(struct gv_backend *be, struct adamw_case *c, int bf16)
{
  struct gv_tensor p = upload(be, c->p, GV_DTYPE_F32), m = upload(be, c->m, GV_DTYPE_F32),
                   v = upload(be, c->v, GV_DTYPE_F32);
  for (int k = 0; k < AC_STEPS; k++) {
    struct gv_tensor g = bf16 ? upload(be, c->gb[k], GV_DTYPE_BF16) : upload(be, c->g[k], GV_DTYPE_F32);
    gv_adamw(be, &ac_opt, &p, &g, &m, &v, k + 1, ac_lr(k), ac_decay(k));
    gv_backend_sync(be);
    gv_dev_free(be, &g.data, gv_tensor_bytes(&g));
  }
  download(be, c->p, &p);
  download(be, c->m, &m);
  download(be, c->v, &v);
}

static long ulps(float a, float b)
{
  int32_t ia, ib;
  memcpy(&ia, &a, 4);
  memcpy(&ib, &b, 4);
  if (ia < 0) ia = INT32_MIN - ia;
  if (ib < 0) ib = INT32_MIN - ib;
  return labs((long)ia - (long)ib);
}

static long compare(const char *what, const float *ref, const float *got)
{
  long worst = 0;
  for (int i = 0; i < AC_N; i++) {
    CHECK_CLOSE(ref[i], got[i], 0, 1e-6);
    long u = ulps(ref[i], got[i]);
    worst = u > worst ? u : worst;
    if (tu_failures > 20) break;
  }
  printf("  %s: max %ld ulp\n", what, worst);
  return worst;
}

static void check(struct gv_backend *be, int bf16)
{
  struct adamw_case *ref = ac_make(bf16), *got = ac_make(bf16);
  ac_reference(ref);
  run_cuda(be, got, bf16);
  printf("g %s:\n", bf16 ? "bf16" : "f32");
  compare("p", ref->p, got->p);
  compare("m", ref->m, got->m);
  compare("v", ref->v, got->v);
  free(ref);
  free(got);
}

/* n floats (or bf16) of host data on the device. */
static void *up(struct gv_backend *be, const void *h, size_t bytes)
{
  void *d = gv_dev_alloc(be, bytes);
  gv_dev_memcpy(be, d, h, bytes, GV_COPY_H2D);
  return d;
}

static void check_multi(struct gv_backend *be, enum gv_dtype gdt)
{
  struct adamw_multi_case *ref = am_make(), *got = am_make();
  struct gv_backend cpu;
  struct gv_adamw_tensor ts[AM_T];
  gv_backend_init(&cpu, "cpu", 0);
  am_tensors(ts, ref->p, ref->m, ref->v, gdt == GV_DTYPE_BF16 ? (const void *)ref->gb : ref->g, ref->pb, gdt, 1);
  gv_adamw_multi(&cpu, &ac_opt, ts, AM_T, gdt, 3, 2e-3f, am_gscale);
  gv_backend_free(&cpu);
  size_t fb = sizeof got->p, hb = sizeof got->pb;
  float *p = up(be, got->p, fb), *m = up(be, got->m, fb), *v = up(be, got->v, fb);
  void *g = gdt == GV_DTYPE_BF16 ? up(be, got->gb, hb) : up(be, got->g, fb);
  uint16_t *pb = up(be, got->pb, hb);
  am_tensors(ts, p, m, v, g, pb, gdt, 1);
  gv_adamw_multi(be, &ac_opt, ts, AM_T, gdt, 3, 2e-3f, am_gscale);
  gv_backend_sync(be);
  gv_dev_memcpy(be, got->p, p, fb, GV_COPY_D2H);
  gv_dev_memcpy(be, got->m, m, fb, GV_COPY_D2H);
  gv_dev_memcpy(be, got->v, v, fb, GV_COPY_D2H);
  gv_dev_memcpy(be, got->pb, pb, hb, GV_COPY_D2H);
  int bad = 0;
  for (int i = 0; i < 2 * AC_N; i++) {
    CHECK_CLOSE(ref->p[i], got->p[i], 0, 1e-6);
    CHECK_CLOSE(ref->m[i], got->m[i], 0, 1e-6);
    CHECK_CLOSE(ref->v[i], got->v[i], 0, 1e-6);
    bad += got->pb[i] != (i < am_off(AM_T - 1) + AC_N ? gv_bf16_from_float(got->p[i]) : ref->pb[i]);
  }
  CHECK_EQ_INT(0, bad);
  printf("multi-tensor, g %s: %d tensors, bf16 copies %s\n", gv_dtype_name(gdt), AM_T, bad ? "DIFFER" : "exact");
  gv_dev_free(be, (void **)&p, fb), gv_dev_free(be, (void **)&m, fb), gv_dev_free(be, (void **)&v, fb);
  gv_dev_free(be, &g, gdt == GV_DTYPE_BF16 ? hb : fb), gv_dev_free(be, (void **)&pb, hb);
  free(ref);
  free(got);
}

int main(void)
{
  struct gv_backend be;
  if (tu_cuda_begin(NULL, &be))
    return 77;
  check(&be, 0);
  check(&be, 1);
  check_multi(&be, GV_DTYPE_F32);
  check_multi(&be, GV_DTYPE_BF16);
  CHECK_EQ_INT(0, (long long)be.allocated_bytes);
  gv_backend_free(&be);
  return tu_report("test_cuda_adamw");
}
