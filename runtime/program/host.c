/* host.c - a run's host-side services: staging between the arenas (device memory under
 * --device cuda) and host buffers, with bf16 widened/narrowed on the way, and the clock.
 * Checkpoints, sampling, dumps and the timeline use them; they depend on nothing else of
 * the program, so those modules and run.c do not depend on each other through them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "program/run.h"

double gv_run_now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A host buffer of at least bytes, reused (grown) across calls; the run owns it. */
void *gv_run_host_scratch(struct gv_run *r, size_t bytes)
{
  if (bytes > r->host_scratch_bytes) {
    free(r->host_scratch);
    r->host_scratch = malloc(bytes);
    GV_CHECK(r->host_scratch != NULL, "out of host memory (%zu bytes of staging)", bytes);
    r->host_scratch_bytes = bytes;
  }
  return r->host_scratch;
}

/* bytes of arena memory at dev, copied to the scratch (returned; valid until the next call). */
const void *gv_run_to_host(struct gv_run *r, const void *dev, size_t bytes)
{
  void *h = gv_run_host_scratch(r, bytes);
  gv_dev_memcpy(&r->be, h, dev, bytes, GV_COPY_D2H);
  return h;
}

/* n elements of the program's float dtype at dev, on the host as fp32 (bf16 is widened in
 * place: element i's 4 bytes never reach element i+1's 2 bytes, read from the upper half);
 * valid until the next staging call. */
const float *gv_run_to_host_f32(struct gv_run *r, const void *dev, size_t n)
{
  if (r->fdt == GV_DTYPE_F32)
    return gv_run_to_host(r, dev, 4 * n);
  float *h = gv_run_host_scratch(r, 4 * n);
  uint16_t *b = (uint16_t *)h + n;
  gv_dev_memcpy(&r->be, b, dev, 2 * n, GV_COPY_D2H);
  for (size_t i = 0; i < n; i++)
    h[i] = gv_bf16_to_float(b[i]);
  return h;
}

void gv_run_from_host(struct gv_run *r, void *dev, const void *h, size_t bytes)
{
  if (h != dev)
    gv_dev_memcpy(&r->be, dev, h, bytes, GV_COPY_H2D);
}

void gv_run_from_host_f32(struct gv_run *r, void *dev, const float *h, size_t n)
{
  if (r->fdt == GV_DTYPE_F32) {
    gv_run_from_host(r, dev, h, 4 * n);
    return;
  }
  uint16_t *b = gv_run_host_scratch(r, 2 * n); /* when h is the scratch: element i's 2 bytes never pass its 4 */
  for (size_t i = 0; i < n; i++)
    b[i] = gv_bf16_from_float(h[i]);
  gv_dev_memcpy(&r->be, dev, b, 2 * n, GV_COPY_H2D);
}

float *gv_run_host_f32_for(struct gv_run *r, void *dev, size_t n, int f32)
{
  if (f32 && !strcmp(r->be.ops->name, "cpu"))
    return dev;
  return gv_run_host_scratch(r, sizeof(float) * (n ? n : 1));
}
