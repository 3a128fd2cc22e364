/* test_cpu_core.c - runtime core on the CPU backend: arenas carved from a plan (planned ==
 * allocated, offsets, the counting allocator back to zero), tensor views and reshapes, the
 * backend registry, buffers of 2 MiB or more 2 MiB aligned (transparent huge pages), and the fatal path (a shape mismatch ends the process with the rank
 * prefix and both shapes on stderr; checked in a forked child). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gvrt.h"
#include "testutil.h"

static void test_arenas(void)
{
  struct gv_backend be;
  struct gv_plan_buf bufs[] = {{"w", GV_MEM_PARAMS, 0, 256}, {"b", GV_MEM_PARAMS, 256, 64},
                               {"act", GV_MEM_ACTS, 128, 1000}};
  struct gv_plan plan = {{320, 320, 0, 1152, 4096}, bufs, 3};
  struct gv_arenas a;
  gv_backend_init(&be, "cpu", 0);
  gv_arenas_init(&a, &be, &plan);
  CHECK_EQ_INT(320 + 320 + 1152 + 4096, be.allocated_bytes);
  CHECK((char *)gv_arenas_ptr(&a, &bufs[1]) - (char *)gv_arenas_ptr(&a, &bufs[0]) == 256);
  CHECK(((uintptr_t)gv_arenas_ptr(&a, &bufs[2]) & 63) == 0);
  CHECK(be.workspace == a.base[GV_MEM_WORKSPACE] && be.workspace_bytes == 4096);
  gv_arenas_free(&a);
  CHECK_EQ_INT(0, be.allocated_bytes);
  CHECK(be.workspace == NULL);
  gv_backend_free(&be);
}

/* Small buffers are 64-byte aligned; from 2 MiB on, 2 MiB aligned (backend.c asks for huge
 * pages for them), written end to end and freed. */
static void test_alloc_alignment(void)
{
  struct gv_backend be;
  gv_backend_init(&be, "cpu", 0);
  size_t sizes[] = {100, (size_t)2 << 20, ((size_t)5 << 20) + 3};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = gv_dev_alloc(&be, sizes[i]);
    uintptr_t align = sizes[i] >= ((size_t)2 << 20) ? ((uintptr_t)2 << 20) : 64;
    CHECK(p != NULL && ((uintptr_t)p & (align - 1)) == 0);
    memset(p, 1, sizes[i]);
    CHECK_EQ_INT((long long)sizes[i], (long long)be.allocated_bytes);
    gv_dev_free(&be, (void **)&p, sizes[i]);
    CHECK(p == NULL && be.allocated_bytes == 0);
  }
  gv_backend_free(&be);
}

static void test_tensors(void)
{
  float buf[24];
  char s[64];
  struct gv_tensor t = gv_tensor_4d(buf, GV_DTYPE_F32, 2, 3, 4, 0);
  CHECK_EQ_INT(24, gv_tensor_numel(&t));
  CHECK_EQ_INT(96, gv_tensor_bytes(&t));
  CHECK_STR("[2, 3, 4] f32", gv_tensor_str(&t, s, sizeof s));
  struct gv_tensor v = gv_tensor_view(&t, 1, 1);
  CHECK(v.data == buf + 12 && v.shape[0] == 1 && v.shape[2] == 4);
  int64_t shp[2] = {6, 4};
  struct gv_tensor r = gv_tensor_reshape(&t, 2, shp);
  CHECK(r.ndim == 2 && r.shape[0] == 6 && r.data == buf);
  CHECK_EQ_INT(2, gv_dtype_size(GV_DTYPE_BF16));
  CHECK_STR("cpu", gv_backend_names()[0]);
}

/* Runs fn in a child; returns its stderr and whether it died abnormally. */
static int dies(void (*fn)(void), char *err, size_t n)
{
  int fd[2];
  if (pipe(fd)) return 0;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 2);
    close(fd[0]);
    fn();
    _exit(0);
  }
  close(fd[1]);
  ssize_t k, got = 0;
  while ((k = read(fd[0], err + got, n - 1 - (size_t)got)) > 0) got += k;
  err[got] = 0;
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void bad_linear(void)
{
  struct gv_backend be;
  float x[6], w[6], y[4];
  struct gv_tensor tx = gv_tensor_4d(x, GV_DTYPE_F32, 2, 3, 0, 0), tw = gv_tensor_4d(w, GV_DTYPE_F32, 3, 2, 0, 0),
                   ty = gv_tensor_4d(y, GV_DTYPE_F32, 2, 2, 0, 0);
  gv_backend_init(&be, "cpu", 0);
  gv_linear_fwd(&be, &ty, &tx, &tw, NULL);
}

static void bad_backend(void)
{
  struct gv_backend be;
  gv_backend_init(&be, "tpu", 0);
}

int main(void)
{
  char err[2048];
  test_arenas();
  test_alloc_alignment();
  test_tensors();
  CHECK(dies(bad_linear, err, sizeof err));
  CHECK(strstr(err, "[rank 0") && strstr(err, "linear_fwd: x [2, 3] f32, w [3, 2] f32, y [2, 2] f32"));
  CHECK(strstr(err, "ops.c:"));
  CHECK(dies(bad_backend, err, sizeof err));
  CHECK(strstr(err, "unknown or not compiled-in backend 'tpu'"));
  return tu_report("test_cpu_core");
}
