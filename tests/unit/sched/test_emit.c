/* test_emit.c - the C and LLVM emitters run the same schedule program and must leave
 * bit-identical state: via the ORC JIT, via C source compiled by cc, and via an LLVM
 * object file linked by cc. The callees below are exported by this executable. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "sched.h"
#include "testutil.h"

typedef struct State { double acc; int64_t iacc; char log[256]; int calls; } State;
typedef void (*GenFn)(void *ctx, char *const *bases, int64_t slot);

/* ---- callees (public so generated code links against them) ---- */
void t_add(void *ctx, int64_t i, int32_t j, float f, double d);
void t_axpy(void *ctx, void *y, void *x, int64_t n, float a);
void t_log(void *ctx, const char *s);
void t_call(void *ctx, void *fn, void *bases, int64_t slot);

void t_add(void *ctx, int64_t i, int32_t j, float f, double d)
{
  State *s = ctx;
  s->iacc += i * 3 + j;
  s->acc = s->acc * 1.0000001 + (double)f + d;
  s->calls++;
}

void t_axpy(void *ctx, void *y, void *x, int64_t n, float a)
{
  float *Y = y;
  const float *X = x;
  for (int64_t k = 0; k < n; k++)
    Y[k] += a * X[k];
  ((State *)ctx)->calls++;
}

void t_log(void *ctx, const char *s)
{
  State *st = ctx;
  strncat(st->log, s, sizeof st->log - strlen(st->log) - 1);
  st->calls++;
}

void t_call(void *ctx, void *fn, void *bases, int64_t slot)
{
  ((GenFn)fn)(ctx, bases, slot);
}

/* ---- the program ---- */

/* The callees as the schedule IR declares them (the emitters declare them from these). */
static const SchedParam p_add[] = {{SA_CTX, "ctx"}, {SA_I64, "i"}, {SA_I32, "j"}, {SA_F32, "f"}, {SA_F64, "d"}};
static const SchedParam p_axpy[] = {{SA_CTX, "ctx"}, {SA_BUF, "y"}, {SA_BUF, "x"}, {SA_I64, "n"}, {SA_F32, "a"}};
static const SchedParam p_log[] = {{SA_CTX, "ctx"}, {SA_STR, "s"}};
static const SchedParam p_call[] = {{SA_CTX, "ctx"}, {SA_FN, "fn"}, {SA_BUF, "bases"}, {SA_I64, "slot"}};
static const SchedCallee t_add_fn = {"t_add", p_add, 5, 0}, t_axpy_fn = {"t_axpy", p_axpy, 5, 0},
                         t_log_fn = {"t_log", p_log, 2, 0}, t_call_fn = {"t_call", p_call, 4, 0};

static SchedProgram *build(Arena *a)
{
  SchedProgram *p = sched_new(a);
  SchedFunc *step = sched_func(p, "gvp_step");
  for (int r = 0; r < 3; r++) {
    SchedArg add[] = {sa_ctx(), sa_i64(INT64_C(1) << 40 | r), sa_i32(-7 - r), sa_f32(0.1f * (float)r), sa_f64(1.0 / 3.0 + r)};
    sched_call(p, step, &t_add_fn, add, 5)->comment = "accumulate constants";
    /* y[slot] += a * x, with y per micro-batch slot (stride 64 bytes) and x shared */
    SchedArg axpy[] = {sa_ctx(), sa_buf(1, 0, 64), sa_buf(0, 16, 0), sa_i64(16), sa_f32(0.5f + (float)r)};
    sched_call(p, step, &t_axpy_fn, axpy, 5);
  }
  SchedArg lg[] = {sa_ctx(), sa_str("step \"done\"\n")};
  sched_call(p, step, &t_log_fn, lg, 2);

  SchedFunc *d = sched_func(p, "gvp_describe");
  SchedArg call0[] = {sa_ctx(), sa_fn("gvp_step"), sa_null(), sa_slot()};
  sched_call(p, d, &t_log_fn, (SchedArg[]){sa_ctx(), sa_str("describe;")}, 2);
  sched_call(p, d, &t_call_fn, call0, 4);
  return p;
}

/* Runs gvp_step directly for slots 0 and 1 on fresh buffers; returns the state. */
static void run(GenFn step, State *s, float *y)
{
  static float x[32];
  for (int k = 0; k < 32; k++)
    x[k] = (float)k * 0.25f - 1.0f;
  for (int k = 0; k < 32; k++)
    y[k] = 1.0f;
  char *bases[2] = {(char *)x, (char *)y};
  memset(s, 0, sizeof *s);
  step(s, bases, 0);
  step(s, bases, 1);
}

static GenFn load_so(const char *so, void **handle)
{
  *handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!*handle) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return NULL;
  }
  return (GenFn)(uintptr_t)dlsym(*handle, "gvp_step");
}

int main(int argc, char **argv)
{
  const char *dir = argc > 1 ? argv[1] : ".";
  Arena *a = arena_new(1 << 16);
  SchedProgram *p = build(a);
  CHECK(sched_verify(p) == NULL);

  /* dump is stable text */
  char *dump = NULL;
  size_t dn = 0;
  FILE *mf = open_memstream(&dump, &dn);
  sched_print(mf, p);
  fclose(mf);
  CHECK(strstr(dump, "t_axpy(ctx, a1+0+slot*64, a0+16, 16, 2.5:f32)") != NULL);
  CHECK(strstr(dump, "t_call(ctx, @gvp_step, null, slot)") != NULL);
  free(dump);

  /* C emitter -> cc -> .so */
  char csrc[512], cso[512], obj[512], oso[512], cmd[2048];
  snprintf(csrc, sizeof csrc, "%s/emit_test.c", dir);
  snprintf(cso, sizeof cso, "%s/emit_test_c.so", dir);
  snprintf(obj, sizeof obj, "%s/emit_test.o", dir);
  snprintf(oso, sizeof oso, "%s/emit_test_obj.so", dir);
  FILE *f = fopen(csrc, "w");
  CHECK(f && emit_c_program(p, f, "emit_test") == 0);
  fclose(f);
  snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Werror -O2 -fPIC -shared -o %s %s", cso, csrc);
  CHECK(system(cmd) == 0);

  State ref, got;
  float yref[32], y[32];
  void *h1 = NULL, *h2 = NULL;
  GenFn cstep = load_so(cso, &h1);
  CHECK(cstep != NULL);
  if (cstep)
    run(cstep, &ref, yref);
  CHECK_EQ_INT(7 * 2, ref.calls);
  CHECK_STR("step \"done\"\nstep \"done\"\n", ref.log);
  CHECK_CLOSE(1.0 + (0.5 + 1.5 + 2.5) * 1.0, yref[16 + 4], 0, 0); /* slot 1 (y[16..]), k=4 reads x[8] = 1 */
  CHECK_CLOSE(1.0, yref[0], 0, 0);                                  /* slot 0, k=0 reads x[4] = 0 */

  if (!emit_llvm_available()) {
    printf("LLVM not in this build: JIT/object paths skipped\n");
    return tu_report("unit_sched_emit");
  }
  /* LLVM JIT, optimised and not */
  for (int opt = 0; opt <= 2; opt += 2) {
    char *err = NULL;
    EmitJit *j = emit_llvm_jit(p, opt, &err);
    CHECK(j != NULL);
    if (!j) {
      fprintf(stderr, "jit: %s\n", err);
      continue;
    }
    GenFn jstep = (GenFn)(uintptr_t)emit_llvm_jit_lookup(j, "gvp_step", &err);
    CHECK(jstep != NULL);
    if (jstep) {
      run(jstep, &got, y);
      CHECK(memcmp(&got, &ref, sizeof ref) == 0);
      CHECK(memcmp(y, yref, sizeof y) == 0);
    }
    CHECK(emit_llvm_jit_lookup(j, "gvp_describe", &err) != NULL);
    emit_llvm_jit_free(&j);
  }

  /* LLVM object -> cc -> .so */
  char *err = NULL;
  CHECK(emit_llvm_object(p, obj, 2, &err) == 0);
  snprintf(cmd, sizeof cmd, "cc -shared -o %s %s", oso, obj);
  CHECK(system(cmd) == 0);
  GenFn ostep = load_so(oso, &h2);
  CHECK(ostep != NULL);
  if (ostep) {
    run(ostep, &got, y);
    CHECK(memcmp(&got, &ref, sizeof ref) == 0);
    CHECK(memcmp(y, yref, sizeof y) == 0);
  }
  arena_free(&a);
  return tu_report("unit_sched_emit");
}
