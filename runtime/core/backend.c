/* backend.c - the list of compiled-in backends (QBE's tlist[]), the start-up check that no
 * table entry is NULL, the one counting device allocator and the workspace. This is the
 * only file of the runtime that contains #ifdef GV_HAVE_CUDA. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "gvrt.h"
#include "cpu/cpu.h"

#ifdef GV_HAVE_CUDA
extern const struct gv_backend_ops gv_cuda_ops;
int gv_cuda_available(char *why, size_t why_len); /* runtime/cuda/backend.cu */
#endif

static const struct gv_backend_ops *const backends[] = {
  &gv_cpu_ops,
#ifdef GV_HAVE_CUDA
  &gv_cuda_ops,
#endif
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

const char *const *gv_backend_names(void)
{
  static const char *const names[] = {
    "cpu",
#ifdef GV_HAVE_CUDA
    "cuda",
#endif
    NULL};
  return names;
}

int gv_backend_available(const char *name, char *why, size_t why_len)
{
  if (!strcmp(name, "cpu"))
    return 1;
#ifdef GV_HAVE_CUDA
  if (!strcmp(name, "cuda"))
    return gv_cuda_available(why, why_len);
#endif
  if (why && why_len)
    snprintf(why, why_len, "backend '%s' is not compiled in", name);
  return 0;
}

/* Every entry of the table is mandatory: walk it as an array of function pointers. */
static void check_table(const struct gv_backend_ops *ops)
{
  typedef void (*fn)(void);
  const char *p = (const char *)ops + offsetof(struct gv_backend_ops, init);
  size_t n = (sizeof *ops - offsetof(struct gv_backend_ops, init)) / sizeof(fn);
  for (size_t i = 0; i < n; i++) {
    fn f;
    memcpy(&f, p + i * sizeof(fn), sizeof f);
    GV_CHECK(f != NULL, "backend '%s': table entry %zu is NULL", ops->name, i);
  }
}

void gv_backend_init(struct gv_backend *be, const char *name, int device)
{
  memset(be, 0, sizeof *be);
  for (size_t i = 0; i < NBACKENDS; i++)
    if (!strcmp(backends[i]->name, name)) be->ops = backends[i];
  GV_CHECK(be->ops != NULL, "unknown or not compiled-in backend '%s'", name);
  check_table(be->ops);
  be->device = device;
  be->ops->init(be);
}

void gv_backend_free(struct gv_backend *be)
{
  if (!be->ops) return;
  be->ops->shutdown(be);
  if (be->allocated_bytes)
    gv_log(GV_LOG_WARN, "backend %s freed with %zu device bytes still allocated", be->ops->name,
           be->allocated_bytes);
  be->ops = NULL;
}

size_t gv_backend_workspace_bytes(struct gv_backend *be, int64_t B, int64_t T, int64_t S,
                                  int64_t H, int64_t KV, int64_t D)
{
  return be->ops->attention_workspace(be, B, T, S, H, KV, D);
}

void gv_backend_set_workspace(struct gv_backend *be, void *ptr, size_t bytes)
{
  be->workspace = ptr;
  be->workspace_bytes = bytes;
}

void gv_backend_sync(struct gv_backend *be) { be->ops->sync(be); }

void gv_backend_set_matmul_precision(struct gv_backend *be, const char *name)
{
  static const char *const names[] = {"highest", "high", "medium"};
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, names[i])) {
      be->matmul_precision = i;
      if (i && !strcmp(be->ops->name, "cpu"))
        gv_log(GV_LOG_INFO, "--matmul_precision %s: the cpu backend computes in fp32 (highest)", name);
      return;
    }
  gv_fatalf(__FILE__, __LINE__, "--matmul_precision", "gvrt", "'%s' is not highest, high or medium", name);
}

void *gv_backend_stream(struct gv_backend *be) { return be->stream; }

void gv_backend_mem_info(struct gv_backend *be, size_t *used, size_t *total) { be->ops->mem_info(be, used, total); }

void *gv_dev_alloc(struct gv_backend *be, size_t bytes)
{
  void *p = be->ops->alloc(be, bytes);
  GV_CHECK(p != NULL || bytes == 0, "%s: out of memory allocating %zu bytes", be->ops->name, bytes);
  be->allocated_bytes += bytes;
  return p;
}

void gv_dev_free(struct gv_backend *be, void **p, size_t bytes)
{
  if (!*p) return;
  be->ops->release(be, *p, bytes);
  be->allocated_bytes -= bytes;
  *p = NULL;
}

void gv_dev_memcpy(struct gv_backend *be, void *dst, const void *src, size_t n,
                   enum gv_copy_dir dir)
{
  be->ops->copy_bytes(be, dst, src, n, dir);
}
