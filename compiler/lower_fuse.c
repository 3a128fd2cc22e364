/* lower_fuse.c - emitting a call, and fusing it into the call before it where the runtime
 * has one entry for the pair (linear + tanh GELU forward and backward, residual add + norm).
 * Arguments are picked by name from the entry table. */
#include "lower_impl.h"

#include <string.h>

static int same_buf(const SchedArg *a, const SchedArg *b)
{
  return a->kind == SA_BUF && b->kind == SA_BUF && a->arena == -1 && b->arena == -1 && a->i == b->i;
}

/* Argument `name` of a call to entry e. */
static const SchedArg *arg(Entry e, const SchedArg *a, const char *name) { return &a[entry_arg(e, name)]; }
static int64_t iarg(Entry e, const SchedArg *a, const char *name) { return arg(e, a, name)->i; }

/* Where a fused call's argument comes from: parameter `to` takes argument `from` of a call
 * to `e` with arguments `a`; to == NULL: every other parameter, by its own name. */
typedef struct Pick { const char *to; Entry e; const SchedArg *a; const char *from; } Pick;

/* Replace the function's last call by a call to `fused` whose arguments are picked by name
 * from the two calls it fuses; its buffers' live ranges extend to that call. */
static void rewrite_last(L *l, Entry fused, const Pick *picks, int npicks, const char *comment)
{
  const SchedCallee *fn = entry_callee(fused);
  SchedCall *c = &l->cur->calls[l->cur->ncalls - 1];
  SchedArg *a = ARENA_ARRAY(l->a, SchedArg, fn->nparams);
  for (int i = 0; i < fn->nparams; i++) {
    const char *name = fn->params[i].name;
    const Pick *p = NULL;
    for (int k = 0; k < npicks && !p; k++)
      if (picks[k].to && !strcmp(picks[k].to, name))
        p = &picks[k];
    for (int k = 0; k < npicks && !p; k++)
      if (!picks[k].to)
        p = &picks[k];
    a[i] = *arg(p->e, p->a, p->from ? p->from : name);
    if (a[i].kind == SA_BUF && a[i].arena == -1)
      plan_use(l->plan, (int)a[i].i, l->cur_fn, l->cur->ncalls - 1);
  }
  c->fn = fn, c->args = a, c->nargs = fn->nparams, c->comment = comment;
}

/* A tanh GELU right after the linear producing its input becomes one linear_gelu call (the
 * linear's output stays written: the GELU's backward reads it); the GELU's backward right
 * after the input-gradient GEMM of the linear consuming its output (which overwrote that
 * gradient: the GELU output's only consumer) becomes one linear_dgelu call. On cuda each
 * pair is one cuBLASLt GEMM with a GELU epilogue. Returns 1 when fused. */
static int fuse_gelu(L *l, Entry fn, const SchedArg *a)
{
  if (!l->cur->ncalls || (fn != ENT_gen_gelu_fwd && fn != ENT_gen_gelu_bwd) || iarg(fn, a, "tanh_form") != 1)
    return 0;
  const SchedCall *p = &l->cur->calls[l->cur->ncalls - 1];
  const SchedArg *q = p->args;
  int prev = entry_of(p);
  if (fn == ENT_gen_gelu_fwd) {
    const Entry lin = ENT_gen_linear_fwd;
    if (prev != lin || !same_buf(arg(lin, q, "y"), arg(fn, a, "x")) ||
        iarg(lin, q, "M") * iarg(lin, q, "N") != iarg(fn, a, "n"))
      return 0;
    Pick f[] = {{"y", fn, a, "y"}, {"pre", lin, q, "y"}, {NULL, lin, q, NULL}};
    rewrite_last(l, ENT_gen_linear_gelu_fwd, f, 3, arena_printf(l->a, "%s + gelu (fused)", p->comment));
    return 1;
  }
  const Entry lin = ENT_gen_linear_bwd;   /* its dx is the GELU output's gradient */
  if (iarg(fn, a, "flags") != 0 || prev != lin || !same_buf(arg(lin, q, "dx"), arg(fn, a, "dy")) ||
      (iarg(lin, q, "flags") & ACC_DX) || iarg(lin, q, "M") * iarg(lin, q, "K") != iarg(fn, a, "n"))
    return 0;
  PlanBuf *mid = &l->plan->bufs[arg(lin, q, "dx")->i]; /* the GELU output's gradient: no longer exists */
  Pick f[] = {{"dpre", fn, a, "dx"}, {"pre", fn, a, "x"}, {NULL, lin, q, NULL}};
  rewrite_last(l, ENT_gen_linear_dgelu_bwd, f, 3, arena_printf(l->a, "%s + gelu backward (fused)", p->comment));
  if (mid->cls == PC_TRANSIENT && mid->first == mid->last && mid->last == l->cur->ncalls - 1)
    mid->bytes = 0;
  return 1;
}

/* A norm right after the residual add producing its input becomes one add_layernorm /
 * add_rmsnorm call (the sum is still written: the residual stream reads it later), unless
 * the norm would overwrite the sum in place. The backward needs nothing: the norm's dx
 * already accumulates into the residual stream's gradient. Returns 1 when fused. */
static int fuse_add_norm(L *l, Entry fn, const SchedArg *a, const char *comment)
{
  if (!l->cur->ncalls || (fn != ENT_gen_layernorm_fwd && fn != ENT_gen_rmsnorm_fwd))
    return 0;
  const SchedCall *p = &l->cur->calls[l->cur->ncalls - 1];
  const SchedArg *q = p->args;
  const Entry add = ENT_gen_add_fwd;
  if (entry_of(p) != add || !same_buf(arg(add, q, "y"), arg(fn, a, "x")) || same_buf(arg(fn, a, "y"), arg(add, q, "y")) ||
      iarg(add, q, "n") != iarg(fn, a, "M") * iarg(fn, a, "C"))
    return 0;
  const char *c = arena_printf(l->a, "add + %s (fused)", comment ? comment : "norm");
  Pick f[] = {{"h", add, q, "y"}, {"a", add, q, "a"}, {"b", add, q, "b"}, {"bias", fn, a, "b"}, {NULL, fn, a, NULL}};
  rewrite_last(l, fn == ENT_gen_layernorm_fwd ? ENT_gen_add_layernorm_fwd : ENT_gen_add_rmsnorm_fwd, f, 5, c);
  return 1;
}

void lower_emit(L *l, Entry fn, SchedArg *args, int n, const char *comment)
{
  if (fuse_gelu(l, fn, args) || fuse_add_norm(l, fn, args, comment))
    return;
  int call = l->cur->ncalls;
  for (int i = 0; i < n; i++)
    if (args[i].kind == SA_BUF && args[i].arena == -1)
      plan_use(l->plan, (int)args[i].i, l->cur_fn, call);
  SchedCall *c = sched_call(l->prog, l->cur, entry_callee(fn), args, n);
  c->comment = comment;
}
