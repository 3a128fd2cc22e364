/* emit_llvm.c - LLVM emitter for the schedule IR, through the LLVM 14 C API (typed
 * pointers). Each schedule function becomes `void f(i8* ctx, i8** bases, i64 slot)`;
 * each call is built from the same argument kinds the C emitter prints, so the two
 * programs are identical call for call. The module is either JIT-compiled with ORC
 * LLJIT (symbols resolve against the host process) or written as a PIC object file. */
#include "emit.h"

#include <stdlib.h>
#include <string.h>

#ifdef GV_HAVE_LLVM
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

typedef struct Builder {
  LLVMContextRef c;
  LLVMModuleRef m;
  LLVMBuilderRef b;
  LLVMTypeRef i8p, i8pp, i32, i64, f32, f64, vd;
  LLVMTypeRef fnty;      /* void(i8*, i8**, i64) */
  const SchedProgram *p;
  LLVMValueRef *funcs;   /* one per schedule function */
} Builder;

static char *dup_msg(const char *s)
{
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static char *take_error(LLVMErrorRef e)
{
  char *m = LLVMGetErrorMessage(e);
  char *d = dup_msg(m);
  LLVMDisposeErrorMessage(m);
  return d;
}

static LLVMTypeRef arg_type(Builder *B, SchedArgKind k)
{
  switch (k) {
  case SA_I32: return B->i32;
  case SA_I64: case SA_SLOT: return B->i64;
  case SA_F32: return B->f32;
  case SA_F64: return B->f64;
  default: return B->i8p;
  }
}

/* The callee's declaration, created on first use from its parameters (for the runtime's
 * entry points: the rows of gvrt_entries.h, the same table gvrt_program.h declares). */
static LLVMValueRef callee(Builder *B, const SchedCallee *fn, LLVMTypeRef *ty)
{
  LLVMTypeRef params[64];
  int n = fn->nparams < 64 ? fn->nparams : 64;
  for (int k = 0; k < n; k++)
    params[k] = arg_type(B, fn->params[k].kind);
  *ty = LLVMFunctionType(B->vd, params, (unsigned)n, 0);
  LLVMValueRef f = LLVMGetNamedFunction(B->m, fn->name);
  if (!f)
    f = LLVMAddFunction(B->m, fn->name, *ty);
  return f;
}

static LLVMValueRef build_arg(Builder *B, LLVMValueRef fn, const SchedArg *a)
{
  switch (a->kind) {
  case SA_CTX: return LLVMGetParam(fn, 0);
  case SA_SLOT: return LLVMGetParam(fn, 2);
  case SA_I32: return LLVMConstInt(B->i32, (unsigned long long)a->i, 1);
  case SA_I64: return LLVMConstInt(B->i64, (unsigned long long)a->i, 1);
  case SA_F32: return LLVMConstReal(B->f32, (double)(float)a->f);
  case SA_F64: return LLVMConstReal(B->f64, a->f);
  case SA_STR: return LLVMBuildGlobalStringPtr(B->b, a->s, "str");
  case SA_NULL: return LLVMConstNull(B->i8p);
  case SA_FN: {
    const SchedFunc *target = sched_find(B->p, a->s);
    LLVMValueRef f = B->funcs[target - B->p->funcs];
    return LLVMConstBitCast(f, B->i8p);
  }
  case SA_BUF: {
    LLVMValueRef idx = LLVMConstInt(B->i64, (unsigned long long)a->arena, 0);
    LLVMValueRef slotp = LLVMBuildGEP2(B->b, B->i8p, LLVMGetParam(fn, 1), &idx, 1, "basep");
    LLVMValueRef base = LLVMBuildLoad2(B->b, B->i8p, slotp, "base");
    LLVMValueRef off = LLVMConstInt(B->i64, (unsigned long long)a->i, 1);
    if (a->stride) {
      LLVMValueRef s = LLVMBuildMul(B->b, LLVMGetParam(fn, 2),
                                    LLVMConstInt(B->i64, (unsigned long long)a->stride, 1), "soff");
      off = LLVMBuildAdd(B->b, off, s, "off");
    }
    return LLVMBuildGEP2(B->b, LLVMInt8TypeInContext(B->c), base, &off, 1, "buf");
  }
  }
  return LLVMConstNull(B->i8p);
}

static void build_function(Builder *B, int fi)
{
  const SchedFunc *f = &B->p->funcs[fi];
  LLVMValueRef fn = B->funcs[fi];
  LLVMPositionBuilderAtEnd(B->b, LLVMAppendBasicBlockInContext(B->c, fn, "entry"));
  for (int j = 0; j < f->ncalls; j++) {
    const SchedCall *c = &f->calls[j];
    LLVMValueRef args[64];
    int n = c->nargs < 64 ? c->nargs : 64;
    for (int k = 0; k < n; k++)
      args[k] = build_arg(B, fn, &c->args[k]);
    LLVMTypeRef ty;
    LLVMValueRef target = callee(B, c->fn, &ty);
    LLVMBuildCall2(B->b, ty, target, args, (unsigned)n, "");
  }
  LLVMBuildRetVoid(B->b);
}

static LLVMModuleRef build_module(const SchedProgram *p, LLVMContextRef c, char **err)
{
  Builder B = {.c = c, .p = p};
  B.m = LLVMModuleCreateWithNameInContext("gvc_program", c);
  B.b = LLVMCreateBuilderInContext(c);
  B.i8p = LLVMPointerType(LLVMInt8TypeInContext(c), 0);
  B.i8pp = LLVMPointerType(B.i8p, 0);
  B.i32 = LLVMInt32TypeInContext(c);
  B.i64 = LLVMInt64TypeInContext(c);
  B.f32 = LLVMFloatTypeInContext(c);
  B.f64 = LLVMDoubleTypeInContext(c);
  B.vd = LLVMVoidTypeInContext(c);
  LLVMTypeRef params[3] = {B.i8p, B.i8pp, B.i64};
  B.fnty = LLVMFunctionType(B.vd, params, 3, 0);
  B.funcs = calloc((size_t)(p->nfuncs ? p->nfuncs : 1), sizeof *B.funcs);
  for (int i = 0; i < p->nfuncs; i++)
    B.funcs[i] = LLVMAddFunction(B.m, p->funcs[i].name, B.fnty);
  for (int i = 0; i < p->nfuncs; i++)
    build_function(&B, i);
  LLVMDisposeBuilder(B.b);
  free(B.funcs);
  char *msg = NULL;
  if (LLVMVerifyModule(B.m, LLVMReturnStatusAction, &msg)) {
    *err = dup_msg(msg ? msg : "module does not verify");
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(B.m);
    return NULL;
  }
  LLVMDisposeMessage(msg);
  return B.m;
}

static LLVMTargetMachineRef host_machine(int opt, char **err)
{
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  char *triple = LLVMGetDefaultTargetTriple();
  LLVMTargetRef t;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &t, &msg)) {
    *err = dup_msg(msg);
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    return NULL;
  }
  LLVMCodeGenOptLevel lvl = opt <= 0 ? LLVMCodeGenLevelNone : opt == 1 ? LLVMCodeGenLevelLess
                          : opt == 2 ? LLVMCodeGenLevelDefault : LLVMCodeGenLevelAggressive;
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(t, triple, "x86-64", "", lvl, LLVMRelocPIC,
                                                    LLVMCodeModelDefault);
  LLVMDisposeMessage(triple);
  return tm;
}

static int optimise(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt, char **err)
{
  if (opt <= 0)
    return 0;
  char pipeline[32];
  snprintf(pipeline, sizeof pipeline, "default<O%d>", opt > 3 ? 3 : opt);
  LLVMPassBuilderOptionsRef o = LLVMCreatePassBuilderOptions();
  LLVMErrorRef e = LLVMRunPasses(m, pipeline, tm, o);
  LLVMDisposePassBuilderOptions(o);
  if (e) {
    *err = take_error(e);
    return 1;
  }
  return 0;
}

int emit_llvm_available(void) { return 1; }

int emit_llvm_object(const SchedProgram *p, const char *path, int opt, char **err)
{
  LLVMContextRef c = LLVMContextCreate();
  LLVMModuleRef m = build_module(p, c, err);
  int rc = 1;
  if (!m)
    goto out_context;
  LLVMTargetMachineRef tm = host_machine(opt, err);
  if (!tm)
    goto out_module;
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(m, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
  char *layout = LLVMCopyStringRepOfTargetData(td);
  LLVMSetDataLayout(m, layout);
  LLVMDisposeMessage(layout);
  LLVMDisposeTargetData(td);
  if (optimise(m, tm, opt, err))
    goto out_machine;
  char *msg = NULL;
  if (LLVMTargetMachineEmitToFile(tm, m, (char *)path, LLVMObjectFile, &msg)) {
    *err = dup_msg(msg);
    LLVMDisposeMessage(msg);
    goto out_machine;
  }
  rc = 0;
out_machine:
  LLVMDisposeTargetMachine(tm);
out_module:
  LLVMDisposeModule(m);
out_context:
  LLVMContextDispose(c);
  return rc;
}

int emit_llvm_ir(const SchedProgram *p, const char *path, char **err)
{
  LLVMContextRef c = LLVMContextCreate();
  LLVMModuleRef m = build_module(p, c, err);
  int rc = 1;
  if (m) {
    char *msg = NULL;
    rc = LLVMPrintModuleToFile(m, path, &msg) ? 1 : 0;
    if (rc)
      *err = dup_msg(msg);
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(m);
  }
  LLVMContextDispose(c);
  return rc;
}

struct EmitJit { LLVMOrcLLJITRef jit; };

EmitJit *emit_llvm_jit(const SchedProgram *p, int opt, char **err)
{
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMModuleRef m = build_module(p, LLVMOrcThreadSafeContextGetContext(tsc), err);
  if (!m) {
    LLVMOrcDisposeThreadSafeContext(tsc);
    return NULL;
  }
  if (opt > 0) {
    LLVMTargetMachineRef tm = host_machine(opt, err);
    int bad = !tm || optimise(m, tm, opt, err);
    if (tm)
      LLVMDisposeTargetMachine(tm);
    if (bad) {
      LLVMDisposeModule(m);
      LLVMOrcDisposeThreadSafeContext(tsc);
      return NULL;
    }
  }
  EmitJit *j = calloc(1, sizeof *j);
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, NULL);
  if (e)
    goto fail;
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
  LLVMOrcDefinitionGeneratorRef gen;
  e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
  if (e)
    goto fail;
  LLVMOrcJITDylibAddGenerator(jd, gen);
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, tsc);
  LLVMOrcDisposeThreadSafeContext(tsc);
  tsc = NULL;
  e = LLVMOrcLLJITAddLLVMIRModule(j->jit, jd, tsm);
  if (e)
    goto fail;
  return j;
fail:
  *err = take_error(e);
  if (tsc) {
    LLVMDisposeModule(m);
    LLVMOrcDisposeThreadSafeContext(tsc);
  }
  emit_llvm_jit_free(&j);
  return NULL;
}

void *emit_llvm_jit_lookup(EmitJit *j, const char *name, char **err)
{
  LLVMOrcExecutorAddress addr = 0;
  LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, name);
  if (e) {
    *err = take_error(e);
    return NULL;
  }
  return (void *)(uintptr_t)addr;
}

void emit_llvm_jit_free(EmitJit **j)
{
  if (!*j)
    return;
  if ((*j)->jit)
    LLVMOrcDisposeLLJIT((*j)->jit);
  free(*j);
  *j = NULL;
}

#else /* no LLVM in this build */

static int unavailable(char **err)
{
  *err = strdup("the LLVM emitter is not part of this build (LLVM 14 was not found)");
  return 1;
}
int emit_llvm_available(void) { return 0; }
EmitJit *emit_llvm_jit(const SchedProgram *p, int opt, char **err) { unavailable(err); return NULL; }
void *emit_llvm_jit_lookup(EmitJit *j, const char *name, char **err) { unavailable(err); return NULL; }
void emit_llvm_jit_free(EmitJit **j) { *j = NULL; }
int emit_llvm_object(const SchedProgram *p, const char *path, int opt, char **err) { return unavailable(err); }
int emit_llvm_ir(const SchedProgram *p, const char *path, char **err) { return unavailable(err); }

#endif
