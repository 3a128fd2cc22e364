/* lower.c - model IR -> schedule IR for one rank: forward, backward (compile-time
 * autodiff from each primitive's rule) and recompute of checkpointed layers, plus the
 * memory plan of every buffer they touch. Buffers are referenced by plan id while calls
 * are emitted and patched to (arena, offset, stride) once the plan is assigned.
 *
 * Kept for backward: the inputs each primitive's backward reads (linear: x; norms: x and
 * their statistics; gelu/silu: x; mul: both operands; attention: q, k, v, o and the
 * log-sum-exp; cross-entropy: logits and lse) and every layer's output (the next layer's
 * input, i.e. its checkpoint). A checkpointed layer keeps only its output: its forward is
 * replayed into transient buffers at the start of its backward. */
#include "lower.h"

#include <string.h>


#include "lower_impl.h"

/* ---- shapes and buffers ---- */

/* Local sizes: a value split by tensor parallelism holds 1/tp of its last dimension. */
int64_t lower_numel(const L *l, int v)
{
  const IrShape *s = &l->m->values[v].shape;
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++)
    n *= ir_dim(s->d[i], l->o->micro_batch, l->o->seq);
  int64_t div = l->rowf ? l->rowf[v] : 1;
  if (l->split && (l->split[v] || l->rsplit[v]))
    div *= l->vdeg ? l->vdeg[v] : l->o->tp;
  return n / div;
}

int64_t lower_last_dim(const L *l, int v)
{
  const IrShape *s = &l->m->values[v].shape;
  int64_t d = ir_dim(s->d[s->rank - 1], l->o->micro_batch, l->o->seq);
  return l->split && l->split[v] ? d / (l->vdeg ? l->vdeg[v] : l->o->tp) : d;
}

/* Megatron's rule: a @col linear splits its output over the tp group, elementwise ops,
 * rope and attention (by heads) keep it split, and a @row linear gathers it back with an
 * all-reduce; everything else needs replicated inputs. Only blocks are split (the
 * embedding and head run replicated: vocabulary parallelism is their own degree). */

int lower_tp_split(L *l, int first, int last)
{
  const IrModel *m = l->m;
  int tp = l->o->tp, ul = l->o->ulysses && tp > 1, sp = (l->o->sp || ul) && tp > 1;
  if (tp <= 1)
    return 0;
  if (first > 0 && lower_layer_rows_split(l, first - 1)) /* received from the previous stage as split */
    l->rsplit[m->layers[first].in_value] = 1;
  if (sp && (l->o->micro_batch * l->o->seq) % tp) {
    l->err = arena_printf(l->a, "sequence parallelism: %lld token rows are not divisible by tp=%d",
                          (long long)(l->o->micro_batch * l->o->seq), tp);
    return 1;
  }
  for (int li = first; li <= last; li++) {
    const IrLayer *ly = &m->layers[li];
    tp = lower_layer_tp(l, li); /* the base degree for the embedding, norm and head */
    if (ly->kind != IR_LAYER_BLOCK) { /* vocabulary parallelism of the embedding and the head */
      for (int k = 0; l->o->vtp && k < ly->nnodes; k++) {
        int ni = ly->first_node + k;
        const IrNode *n = &m->nodes[ni];
        int any = 0;
        for (int i = 0; i < n->nin; i++)
          any |= l->split[n->in[i]];
        if ((n->op == IR_OP_EMBEDDING || n->op == IR_OP_LINEAR) && n->tp == IR_TP_VOCAB) {
          if (m->params[n->param[0]].shape.d[0] % tp) {
            l->err = arena_printf(l->a, "%s: a vocabulary of %lld is not divisible by vtp=%d", ly->name,
                                  (long long)m->params[n->param[0]].shape.d[0], tp);
            return 1;
          }
          l->tp_node[ni] = 1;
          l->split[n->out] = n->op == IR_OP_LINEAR;
        } else if (n->op == IR_OP_CROSS_ENTROPY && any) {
          l->tp_node[ni] = 1;
        } else if (any) {
          l->err = arena_printf(l->a, "%s: %s cannot read vocabulary-split logits", ly->name, ir_op_name(n->op));
          return 1;
        }
      }
      continue;
    }
    for (int k = 0; k < ly->nnodes; k++)
      l->vdeg[m->nodes[ly->first_node + k].out] = tp;
    if (tp <= 1)
      continue;
    /* a block's input rows are split when the block wants them so (the previous block
     * passes them split, or a slice is made at entry) and whole otherwise (a gather at
     * entry); the analysis sees the block's own view, the entry conversions restore it */
    ul = lower_layer_ulysses(l, li);
    sp = lower_layer_rows_split(l, li);
    int had = l->rsplit[ly->in_value];
    l->rsplit[ly->in_value] = (unsigned char)sp;
    for (int k = 0; k < ly->nnodes; k++) {
      int ni = ly->first_node + k;
      const IrNode *n = &m->nodes[ni];
      int any = 0, all = 1, rany = 0, rall = 1;
      for (int i = 0; i < n->nin; i++) {
        any |= l->split[n->in[i]];
        all &= l->split[n->in[i]];
        rany |= l->rsplit[n->in[i]];
        rall &= l->rsplit[n->in[i]];
      }
      const char *why = NULL;
      switch (n->op) {
      case IR_OP_LINEAR:
        if (ul) { /* Ulysses: every linear on this rank's token rows with the whole weight */
          if (any) { /* heads -> rows first */
            l->ul_in[ni] = 1;
          } else if (!rall) {
            why = "Ulysses needs the block's tensors split by token rows";
          }
          int to_heads = 0; /* rows -> heads after it when it feeds attention (directly or via rope) */
          for (int q = k + 1; q < ly->nnodes; q++) {
            const IrNode *c = &m->nodes[ly->first_node + q];
            for (int i = 0; i < c->nin; i++)
              to_heads |= c->in[i] == n->out && (c->op == IR_OP_ATTENTION || c->op == IR_OP_ROPE);
          }
          if (to_heads && m->params[n->param[0]].shape.d[0] % tp)
            why = arena_printf(l->a, "its %lld outputs are not divisible by the Ulysses degree %d",
                               (long long)m->params[n->param[0]].shape.d[0], tp);
          l->ul_out[ni] = (unsigned char)to_heads;
          l->split[n->out] = (unsigned char)to_heads;
          l->rsplit[n->out] = (unsigned char)!to_heads;
          for (int j = 0; j < n->nparam; j++)
            l->sp_partial[n->param[j]] = 1; /* each rank saw its rows only */
          break;
        }
        if (n->tp == IR_TP_COL) {
          if (any)
            why = "a @col linear needs a replicated input (put a @row linear before it)";
          else if (m->params[n->param[0]].shape.d[0] % tp)
            why = arena_printf(l->a, "its %lld outputs are not divisible by tp=%d", (long long)m->params[n->param[0]].shape.d[0], tp);
          l->split[n->out] = 1;
          l->tp_node[ni] = 1;
        } else if (n->tp == IR_TP_ROW) {
          if (!any)
            why = "a @row linear needs an input split by a @col linear";
          l->tp_node[ni] = 1;
          l->rsplit[n->out] = (unsigned char)sp;
        } else if (any || rany) {
          why = "a linear without @col/@row cannot read a tensor- or sequence-parallel split";
        }
        break;
      case IR_OP_ATTENTION:
        if (any && !all)
          why = "q, k and v must all come from @col linears";
        else if (all && (n->iattr[0] % tp || n->iattr[1] % tp))
          why = arena_printf(l->a, "%lld heads (%lld kv heads) are not divisible by tp=%d", (long long)n->iattr[0],
                             (long long)n->iattr[1], tp);
        else if (rany)
          why = "attention needs whole sequences (put @col linears before it)";
        l->split[n->out] = (unsigned char)all;
        l->tp_node[ni] = (unsigned char)all; /* heads split (tp or Ulysses) */
        break;
      case IR_OP_ROPE: case IR_OP_GELU: case IR_OP_SILU: case IR_OP_RELU: case IR_OP_DROPOUT: case IR_OP_MUL:
      case IR_OP_ADD:
        if ((any && !all) || (rany && !rall) || (any && rany))
          why = "mixes tensors split in different ways (tensor- or sequence-parallel) with each other";
        l->split[n->out] = (unsigned char)all;
        l->rsplit[n->out] = (unsigned char)(rall && rany);
        break;
      case IR_OP_LAYERNORM: case IR_OP_RMSNORM:
        if (any)
          why = "cannot run on a tensor split by tensor parallelism (put a @row linear before it)";
        l->rsplit[n->out] = (unsigned char)rany;
        for (int j = 0; rany && j < n->nparam; j++)
          l->sp_partial[n->param[j]] = 1; /* each rank sees its rows only */
        break;
      default:
        if (any || rany)
          why = "cannot run on a tensor split by tensor or sequence parallelism";
      }
      if (why) {
        l->err = arena_printf(l->a, "%s: %s %s: %s", ly->name, ir_op_name(n->op),
                              n->nparam ? m->params[n->param[0]].name : "", why);
        return 1;
      }
    }
    l->rsplit[ly->in_value] = (unsigned char)had; /* as received: the block's entry converts */
  }
  return 0;
}

static int64_t rows(const L *l, int v) { return lower_numel(l, v) / lower_last_dim(l, v); }

int lower_new_buf(L *l, const char *name, PlanClass cls, int64_t bytes)
{
  return plan_buf(l->plan, name, PLAN_ACTS, cls, bytes);
}

static const char *vname(L *l, int layer, int v, const char *what)
{
  return arena_printf(l->a, "%s.v%d.%s", l->m->layers[layer].name, v, what);
}

/* ---- emitting calls ---- */

SchedArg lower_buf_arg(L *l, int buf) /* a buffer argument, patched after planning */
{
  SchedArg a = sa_buf(-1, buf, 0);
  return a;
}

static SchedArg B(L *l, int buf) { return lower_buf_arg(l, buf); }
static SchedArg V(L *l, int v) { return B(l, l->val[v]); }

/* ---- fusing a call into the one before it ---- */

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
#define EMIT(l, fn, comment, ...) do { SchedArg a_[] = {sa_ctx(), __VA_ARGS__}; \
    lower_emit((l), (fn), a_, (int)(sizeof a_ / sizeof a_[0]), (comment)); } while (0)

static SchedArg P(L *l, const IrNode *n, int k) { return k < n->nparam ? B(l, l->pbuf[n->param[k]]) : sa_null(); }
static SchedArg G(L *l, const IrNode *n, int k) { return k < n->nparam ? B(l, l->gbuf[n->param[k]]) : sa_null(); }

/* ---- forward rules ---- */

/* "linear layers.0.attn.q.weight": the op and the parameter it reads, for dumps and C. */
static const char *node_comment(L *l, const IrNode *n)
{
  if (!n->nparam)
    return ir_op_name(n->op);
  return arena_printf(l->a, "%s %s", ir_op_name(n->op), l->m->params[n->param[0]].name);
}

/* Which token rows of the micro-batch a dropout's value holds (its mask is keyed by global
 * element index): 0 all, 1 the slice of the tp group (sequence parallel, Ulysses), f >= 2
 * the slice of a per-layer-tp block of row factor f. */
static int64_t dropout_rows(const L *l, int v) { return l->rsplit[v] ? 1 : l->rowf[v] > 1 ? l->rowf[v] : 0; }

static void fwd_node(L *l, int ni, PlanClass aux_cls, int layer)
{
  const IrNode *n = &l->m->nodes[ni];
  const char *c = node_comment(l, n);
  int y = n->out;
  int64_t M = rows(l, y), N = lower_last_dim(l, y), cnt = lower_numel(l, y);
  switch (n->op) {
  case IR_OP_INPUT:
    break;
  case IR_OP_LINEAR: {
    int64_t K = lower_last_dim(l, n->in[0]);
    if (l->ul_in[ni] || l->ul_out[ni]) { /* Ulysses: all-to-all between token rows and heads */
      int64_t tp = l->o->tp, Kw = l->m->params[n->param[0]].shape.d[1];
      int64_t R = rows(l, n->in[0]) / (l->ul_in[ni] ? tp : 1); /* this rank's token rows */
      SchedArg xin = V(l, n->in[0]);
      if (l->ul_in[ni]) { /* heads -> rows: [tp*R, Kw/tp] -> [R, Kw], kept for the backward */
        int xr = lower_new_buf(l, vname(l, layer, n->in[0], "rows"), aux_cls, l->es * R * Kw);
        int scratch = lower_new_buf(l, vname(l, layer, n->in[0], "a2a"), PC_TRANSIENT, l->es * R * Kw);
        EMIT(l, ENT_gen_ul_heads_to_rows, "ulysses: all-to-all heads -> rows", B(l, xr), xin, B(l, scratch), sa_i64(R),
             sa_i64(Kw));
        l->ul_keep[ni] = xr;
        xin = B(l, xr);
      }
      int64_t Nw = l->m->params[n->param[0]].shape.d[0];
      if (l->ul_out[ni]) { /* rows -> heads: [R, Nw] -> [tp*R, Nw/tp] */
        int yr = lower_new_buf(l, vname(l, layer, y, "rows"), PC_TRANSIENT, l->es * R * Nw);
        int scratch = lower_new_buf(l, vname(l, layer, y, "a2a"), PC_TRANSIENT, l->es * R * Nw);
        EMIT(l, ENT_gen_linear_fwd, c, B(l, yr), xin, P(l, n, 0), P(l, n, 1), sa_i64(R), sa_i64(Kw), sa_i64(Nw));
        EMIT(l, ENT_gen_ul_rows_to_heads, "ulysses: all-to-all rows -> heads", V(l, y), B(l, yr), B(l, scratch),
             sa_i64(R), sa_i64(Nw));
      } else {
        EMIT(l, ENT_gen_linear_fwd, c, V(l, y), xin, P(l, n, 0), P(l, n, 1), sa_i64(R), sa_i64(Kw), sa_i64(Nw));
      }
      break;
    }
    if (l->tp_node[ni] && l->rsplit[n->in[0]]) { /* sequence parallel: gather the rows of x once */
      int x = n->in[0];
      if (l->sp_gathered[x] < 0) {
        int64_t shard = lower_numel(l, x);
        l->sp_gathered[x] = lower_new_buf(l, vname(l, layer, x, "gathered"), aux_cls, l->es * shard * l->o->tp);
        EMIT(l, ENT_gen_sp_gather, "sp: all-gather the token rows", B(l, l->sp_gathered[x]), V(l, x), sa_i64(shard));
      }
      EMIT(l, ENT_gen_linear_fwd, c, V(l, y), B(l, l->sp_gathered[x]), P(l, n, 0), P(l, n, 1), sa_i64(M), sa_i64(K),
           sa_i64(N)); /* y: whole rows, split features */
      break;
    }
    if (l->tp_node[ni] && n->tp == IR_TP_ROW && l->rsplit[y]) { /* partial sums, reduce-scattered by rows */
      int full = lower_new_buf(l, vname(l, layer, y, "partial"), PC_TRANSIENT, l->es * lower_numel(l, y) * l->o->tp);
      EMIT(l, ENT_gen_linear_fwd_partial, c, B(l, full), V(l, n->in[0]), P(l, n, 0), P(l, n, 1), sa_i64(M * l->o->tp),
           sa_i64(K), sa_i64(N));
      EMIT(l, ENT_gen_sp_reduce_scatter, "sp: sum over tp, keep my rows", V(l, y), B(l, full), sa_i64(lower_numel(l, y)),
           sa_i64(0));
      break;
    }
    if (l->tp_node[ni] && n->tp == IR_TP_ROW) /* partial sums, all-reduced over tp; bias added once */
      EMIT(l, ENT_gen_linear_fwd_row, c, sa_i64(lower_tp_group(l, layer)), V(l, y), V(l, n->in[0]), P(l, n, 0), P(l, n, 1), sa_i64(M), sa_i64(K),
           sa_i64(N));
    else
      EMIT(l, ENT_gen_linear_fwd, c, V(l, y), V(l, n->in[0]), P(l, n, 0), P(l, n, 1), sa_i64(M), sa_i64(K), sa_i64(N));
    break;
  }
  case IR_OP_EMBEDDING:
    if (l->tp_node[ni]) /* my rows of the table; other ranks' tokens are zero here, then summed */
      EMIT(l, ENT_gen_vocab_embedding_fwd, c, V(l, y), V(l, n->in[0]), P(l, n, 0), sa_i64(M),
           sa_i64(l->m->params[n->param[0]].shape.d[0] / l->o->tp), sa_i64(N));
    else
      EMIT(l, ENT_gen_embedding_fwd, c, V(l, y), V(l, n->in[0]), P(l, n, 0), sa_i64(M), sa_i64(l->o->seq),
           sa_i64(l->m->params[n->param[0]].shape.d[0]), sa_i64(N), sa_i64(0));
    break;
  case IR_OP_POS_EMBEDDING: {
    int from_float = !l->m->values[n->in[0]].is_index;
    if (from_float)
      EMIT(l, ENT_gen_grad, "pos_embedding: y = x", V(l, y), V(l, n->in[0]), sa_i64(cnt), sa_i64(0));
    EMIT(l, ENT_gen_embedding_fwd, "pos_embedding: y += pos", V(l, y), sa_null(), P(l, n, 0), sa_i64(M),
         sa_i64(l->o->seq), sa_i64(l->m->params[n->param[0]].shape.d[0]), sa_i64(N), sa_i64(from_float));
    break;
  }
  case IR_OP_LAYERNORM:
    l->aux0[ni] = lower_new_buf(l, vname(l, layer, y, "mean"), aux_cls, 4 * M);
    l->aux1[ni] = lower_new_buf(l, vname(l, layer, y, "rstd"), aux_cls, 4 * M);
    EMIT(l, ENT_gen_layernorm_fwd, c, V(l, y), B(l, l->aux0[ni]), B(l, l->aux1[ni]), V(l, n->in[0]), P(l, n, 0),
         P(l, n, 1), sa_i64(M), sa_i64(N), sa_f32((float)n->fattr[0]));
    break;
  case IR_OP_RMSNORM:
    l->aux1[ni] = lower_new_buf(l, vname(l, layer, y, "rstd"), aux_cls, 4 * M);
    EMIT(l, ENT_gen_rmsnorm_fwd, c, V(l, y), B(l, l->aux1[ni]), V(l, n->in[0]), P(l, n, 0), sa_i64(M), sa_i64(N),
         sa_f32((float)n->fattr[0]));
    break;
  case IR_OP_GELU:
    EMIT(l, ENT_gen_gelu_fwd, c, V(l, y), V(l, n->in[0]), sa_i64(cnt), sa_i64(n->iattr[0]));
    break;
  case IR_OP_SILU: case IR_OP_RELU:
    EMIT(l, n->op == IR_OP_SILU ? ENT_gen_silu_fwd : ENT_gen_relu_fwd, c, V(l, y), V(l, n->in[0]), sa_i64(cnt));
    break;
  case IR_OP_MUL:
    EMIT(l, ENT_gen_mul_fwd, c, V(l, y), V(l, n->in[0]), V(l, n->in[1]), sa_i64(cnt));
    break;
  case IR_OP_ADD:
    EMIT(l, ENT_gen_add_fwd, c, V(l, y), V(l, n->in[0]), V(l, n->in[1]), sa_i64(cnt));
    break;
  case IR_OP_ROPE: {
    int64_t D = n->iattr[0];
    EMIT(l, ENT_gen_rope_fwd, c, V(l, y), V(l, n->in[0]), sa_i64(l->o->micro_batch / l->rowf[y]), sa_i64(l->o->seq),
         sa_i64(N / D), sa_i64(D), sa_f32((float)n->fattr[0]));
    break;
  }
  case IR_OP_ATTENTION: {
    int64_t tpl = l->tp_node[ni] ? lower_layer_tp(l, layer) : 1, H = n->iattr[0] / tpl, KV = n->iattr[1] / tpl, D = N / H;
    l->aux1[ni] = lower_new_buf(l, vname(l, layer, y, "lse"), aux_cls, 4 * l->o->micro_batch / l->rowf[y] * H * l->o->seq);
    EMIT(l, ENT_gen_attention_fwd, c, V(l, y), B(l, l->aux1[ni]), V(l, n->in[0]), V(l, n->in[1]), V(l, n->in[2]),
         sa_i64(l->o->micro_batch / l->rowf[y]), sa_i64(l->o->seq), sa_i64(H), sa_i64(KV), sa_i64(D), sa_i64(n->iattr[2]));
    break;
  }
  case IR_OP_DROPOUT:
    EMIT(l, ENT_gen_dropout_fwd, c, V(l, y), V(l, n->in[0]), sa_i64(M), sa_i64(N), sa_i64(N * (l->split[y] ? l->vdeg[y] : 1)),
         sa_f32((float)n->fattr[0]), sa_i64(ni), sa_i64(dropout_rows(l, y)), sa_i64(lower_tp_group(l, layer)));
    break;
  case IR_OP_CROSS_ENTROPY: {
    int64_t Mx = rows(l, n->in[0]), Vx = lower_last_dim(l, n->in[0]);
    l->aux1[ni] = lower_new_buf(l, vname(l, layer, y, "lse"), aux_cls, 4 * Mx);
    if (l->tp_node[ni]) { /* vocabulary-parallel: global max, sum and target logit over the group */
      int scratch = lower_new_buf(l, vname(l, layer, y, "target_logit"), PC_TRANSIENT, 4 * Mx);
      EMIT(l, ENT_gen_vocab_xent_fwd, c, V(l, y), B(l, l->aux1[ni]), B(l, scratch), V(l, n->in[0]), V(l, n->in[1]),
           sa_i64(Mx), sa_i64(Vx));
    } else {
      EMIT(l, ENT_gen_xent_fwd, c, V(l, y), B(l, l->aux1[ni]), V(l, n->in[0]), V(l, n->in[1]), sa_i64(Mx), sa_i64(Vx));
    }
    break;
  }
  default:
    l->err = arena_printf(l->a, "%s: the '%s' primitive has no lowering yet", l->m->layers[layer].name, c);
  }
}

/* ---- backward rules ---- */

/* The gradient buffer of value v, created on first use. */
static int grad_of(L *l, int layer, int v)
{
  if (l->grad[v] < 0)
    l->grad[v] = lower_new_buf(l, vname(l, layer, v, "grad"), PC_TRANSIENT, l->es * lower_numel(l, v));
  return l->grad[v];
}

static int wants_grad(const L *l, int v) { return !l->m->values[v].is_index; }

/* Where an op writes the gradient of input v: its buffer when the op can write it with
 * the flags it is given (acc), else a temporary accumulated afterwards (see fold). */
typedef struct GradOut { int v, buf, tmp; } GradOut;

static GradOut gout(L *l, int layer, int v, int acc)
{
  GradOut g = {v, -1, -1};
  if (v < 0 || !wants_grad(l, v))
    return g;
  g.buf = grad_of(l, layer, v);
  if (l->ginit[v] != acc) {
    g.tmp = lower_new_buf(l, vname(l, layer, v, "grad_part"), PC_TRANSIENT, l->es * lower_numel(l, v));
    g.buf = g.tmp;
  }
  return g;
}

static void fold(L *l, GradOut g)
{
  if (g.v < 0 || g.buf < 0)
    return;
  if (g.tmp >= 0)
    EMIT(l, ENT_gen_grad, "fan-in", B(l, l->grad[g.v]), B(l, g.tmp), sa_i64(lower_numel(l, g.v)), sa_i64(l->ginit[g.v]));
  l->ginit[g.v] = 1;
}

static SchedArg GB(L *l, GradOut g) { return g.buf >= 0 ? B(l, g.buf) : sa_null(); }

/* Accumulate into inputs' gradients only if all of them already hold one. */
static int acc_all(const L *l, const IrNode *n, int count)
{
  int any = 0, all = 1;
  for (int i = 0; i < count; i++)
    if (wants_grad(l, n->in[i])) {
      any = 1;
      all = all && l->ginit[n->in[i]];
    }
  return any && all;
}

static void bwd_node(L *l, int ni, int layer)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  if (n->op == IR_OP_INPUT)
    return;
  if (n->op != IR_OP_CROSS_ENTROPY && (l->grad[y] < 0 || !l->ginit[y]))
    return; /* nothing flows back through this value */
  int64_t M = rows(l, y), N = lower_last_dim(l, y), cnt = lower_numel(l, y);
  SchedArg dy = n->op == IR_OP_CROSS_ENTROPY ? sa_null() : B(l, l->grad[y]);
  int acc = acc_all(l, n, n->nin);
  int flags = acc ? ACC_DX : 0;
  const char *c = node_comment(l, n);
  GradOut g0 = n->nin > 0 ? gout(l, layer, n->in[0], acc) : (GradOut){-1, -1, -1};
  GradOut g1 = n->nin > 1 && n->op != IR_OP_CROSS_ENTROPY ? gout(l, layer, n->in[1], acc) : (GradOut){-1, -1, -1};
  GradOut g2 = n->nin > 2 ? gout(l, layer, n->in[2], acc) : (GradOut){-1, -1, -1};
  switch (n->op) {
  case IR_OP_LINEAR: {
    int64_t K = lower_last_dim(l, n->in[0]);
    if (l->ul_in[ni] || l->ul_out[ni]) { /* Ulysses: the mirror all-to-alls */
      int64_t tp = l->o->tp, Kw = l->m->params[n->param[0]].shape.d[1], Nw = l->m->params[n->param[0]].shape.d[0];
      int64_t R = rows(l, n->in[0]) / (l->ul_in[ni] ? tp : 1);
      SchedArg dyr = dy;
      if (l->ul_out[ni]) { /* gradient of the heads layout -> rows */
        int t = lower_new_buf(l, vname(l, layer, y, "grad_rows"), PC_TRANSIENT, l->es * R * Nw);
        int scratch = lower_new_buf(l, vname(l, layer, y, "grad_a2a"), PC_TRANSIENT, l->es * R * Nw);
        EMIT(l, ENT_gen_ul_heads_to_rows, "ulysses: gradient heads -> rows", B(l, t), dy, B(l, scratch), sa_i64(R),
             sa_i64(Nw));
        dyr = B(l, t);
      }
      SchedArg xin = l->ul_in[ni] ? B(l, l->ul_keep[ni]) : V(l, n->in[0]);
      if (l->ul_in[ni] && g0.buf >= 0) { /* dx in rows, then rows -> heads into x's gradient */
        int t = lower_new_buf(l, vname(l, layer, n->in[0], "grad_rows"), PC_TRANSIENT, l->es * R * Kw);
        int scratch = lower_new_buf(l, vname(l, layer, n->in[0], "grad_a2a"), PC_TRANSIENT, l->es * R * Kw);
        EMIT(l, ENT_gen_linear_bwd, c, B(l, t), G(l, n, 0), G(l, n, 1), dyr, xin, P(l, n, 0), sa_i64(R), sa_i64(Kw),
             sa_i64(Nw), sa_i64(ACC_DW));
        GradOut gx = gout(l, layer, n->in[0], 0);
        EMIT(l, ENT_gen_ul_rows_to_heads, "ulysses: gradient rows -> heads", GB(l, gx), B(l, t), B(l, scratch),
             sa_i64(R), sa_i64(Kw));
        fold(l, gx);
        g0.v = -1;
      } else {
        EMIT(l, ENT_gen_linear_bwd, c, GB(l, g0), G(l, n, 0), G(l, n, 1), dyr, xin, P(l, n, 0), sa_i64(R), sa_i64(Kw),
             sa_i64(Nw), sa_i64(flags | ACC_DW));
      }
      break;
    }
    if (l->tp_node[ni] && l->rsplit[n->in[0]]) { /* sp @col: full-row partial dx, reduce-scattered by rows */
      int64_t shard = lower_numel(l, n->in[0]);
      int full = lower_new_buf(l, vname(l, layer, n->in[0], "grad_rows"), PC_TRANSIENT, l->es * shard * l->o->tp);
      EMIT(l, ENT_gen_linear_bwd, c, B(l, full), G(l, n, 0), G(l, n, 1), dy, B(l, l->sp_gathered[n->in[0]]), P(l, n, 0),
           sa_i64(M), sa_i64(K), sa_i64(N), sa_i64(ACC_DW));
      if (g0.buf >= 0) {
        int acc0 = l->ginit[n->in[0]];
        EMIT(l, ENT_gen_sp_reduce_scatter, "sp: sum over tp, keep my rows", B(l, grad_of(l, layer, n->in[0])),
             B(l, full), sa_i64(shard), sa_i64(acc0));
        l->ginit[n->in[0]] = 1;
        g0.v = -1; /* folded here */
      }
      break;
    }
    if (l->tp_node[ni] && n->tp == IR_TP_ROW && l->rsplit[y]) { /* sp @row: gather dy's rows first */
      int64_t shard = lower_numel(l, y);
      int full = lower_new_buf(l, vname(l, layer, y, "grad_rows"), PC_TRANSIENT, l->es * shard * l->o->tp);
      EMIT(l, ENT_gen_sp_gather, "sp: all-gather the gradient rows", B(l, full), dy, sa_i64(shard));
      EMIT(l, ENT_gen_linear_bwd, c, GB(l, g0), G(l, n, 0), G(l, n, 1), B(l, full), V(l, n->in[0]), P(l, n, 0),
           sa_i64(M * l->o->tp), sa_i64(K), sa_i64(N), sa_i64(flags | ACC_DW));
      break;
    }
    if (l->tp_node[ni] && (n->tp == IR_TP_COL || n->tp == IR_TP_VOCAB) && g0.buf >= 0) { /* partial dx: all-reduce it alone */
      if (l->ginit[n->in[0]] && g0.tmp < 0)
        g0 = gout(l, layer, n->in[0], 0);
      EMIT(l, ENT_gen_linear_bwd, c, GB(l, g0), G(l, n, 0), G(l, n, 1), dy, V(l, n->in[0]), P(l, n, 0), sa_i64(M),
           sa_i64(K), sa_i64(N), sa_i64(ACC_DW));
      EMIT(l, ENT_gen_all_reduce, "tp: sum the partial input gradient", sa_i64(lower_tp_group(l, layer)), GB(l, g0),
           sa_i64(M * K));
      break;
    }
    EMIT(l, ENT_gen_linear_bwd, c, GB(l, g0), G(l, n, 0), G(l, n, 1), dy, V(l, n->in[0]), P(l, n, 0), sa_i64(M),
         sa_i64(K), sa_i64(N), sa_i64(flags | ACC_DW));
    break;
  }
  case IR_OP_EMBEDDING:
    if (l->tp_node[ni])
      EMIT(l, ENT_gen_vocab_embedding_bwd, c, G(l, n, 0), dy, V(l, n->in[0]), sa_i64(M),
           sa_i64(l->m->params[n->param[0]].shape.d[0] / l->o->tp), sa_i64(N));
    else
      EMIT(l, ENT_gen_embedding_bwd, c, G(l, n, 0), dy, V(l, n->in[0]), sa_i64(M), sa_i64(l->o->seq),
           sa_i64(l->m->params[n->param[0]].shape.d[0]), sa_i64(N), sa_i64(ACC_DW));
    break;
  case IR_OP_POS_EMBEDDING:
    EMIT(l, ENT_gen_embedding_bwd, c, G(l, n, 0), dy, sa_null(), sa_i64(M), sa_i64(l->o->seq),
         sa_i64(l->m->params[n->param[0]].shape.d[0]), sa_i64(N), sa_i64(ACC_DW));
    if (g0.buf >= 0)
      EMIT(l, ENT_gen_grad, "pos_embedding: dx = dy", GB(l, g0), dy, sa_i64(cnt), sa_i64(acc));
    break;
  case IR_OP_LAYERNORM:
    EMIT(l, ENT_gen_layernorm_bwd, c, GB(l, g0), G(l, n, 0), G(l, n, 1), dy, V(l, n->in[0]), P(l, n, 0),
         B(l, l->aux0[ni]), B(l, l->aux1[ni]), sa_i64(M), sa_i64(N), sa_i64(flags | ACC_DW));
    break;
  case IR_OP_RMSNORM:
    EMIT(l, ENT_gen_rmsnorm_bwd, c, GB(l, g0), G(l, n, 0), dy, V(l, n->in[0]), P(l, n, 0), B(l, l->aux1[ni]),
         sa_i64(M), sa_i64(N), sa_i64(flags | ACC_DW));
    break;
  case IR_OP_GELU:
    EMIT(l, ENT_gen_gelu_bwd, c, GB(l, g0), dy, V(l, n->in[0]), sa_i64(cnt), sa_i64(n->iattr[0]), sa_i64(flags));
    break;
  case IR_OP_SILU: case IR_OP_RELU:
    EMIT(l, n->op == IR_OP_SILU ? ENT_gen_silu_bwd : ENT_gen_relu_bwd, c, GB(l, g0), dy, V(l, n->in[0]), sa_i64(cnt),
         sa_i64(flags));
    break;
  case IR_OP_MUL:
    EMIT(l, ENT_gen_mul_bwd, c, GB(l, g0), GB(l, g1), dy, V(l, n->in[0]), V(l, n->in[1]), sa_i64(cnt), sa_i64(flags));
    break;
  case IR_OP_ADD:
    if (g0.buf >= 0)
      EMIT(l, ENT_gen_grad, "add: da = dy", GB(l, g0), dy, sa_i64(cnt), sa_i64(acc));
    if (g1.buf >= 0)
      EMIT(l, ENT_gen_grad, "add: db = dy", GB(l, g1), dy, sa_i64(cnt), sa_i64(acc));
    break;
  case IR_OP_ROPE: {
    int64_t D = n->iattr[0];
    EMIT(l, ENT_gen_rope_bwd, c, GB(l, g0), dy, sa_i64(l->o->micro_batch / l->rowf[y]), sa_i64(l->o->seq), sa_i64(N / D),
         sa_i64(D), sa_f32((float)n->fattr[0]), sa_i64(flags));
    break;
  }
  case IR_OP_ATTENTION: {
    int64_t tpl = l->tp_node[ni] ? lower_layer_tp(l, layer) : 1, H = n->iattr[0] / tpl, KV = n->iattr[1] / tpl, D = N / H;
    EMIT(l, ENT_gen_attention_bwd, c, GB(l, g0), GB(l, g1), GB(l, g2), dy, V(l, n->in[0]), V(l, n->in[1]),
         V(l, n->in[2]), V(l, y), B(l, l->aux1[ni]), sa_i64(l->o->micro_batch / l->rowf[y]), sa_i64(l->o->seq), sa_i64(H),
         sa_i64(KV), sa_i64(D), sa_i64(n->iattr[2]), sa_i64(flags));
    break;
  }
  case IR_OP_DROPOUT:
    EMIT(l, ENT_gen_dropout_bwd, c, GB(l, g0), dy, sa_i64(M), sa_i64(N), sa_i64(N * (l->split[y] ? l->vdeg[y] : 1)),
         sa_f32((float)n->fattr[0]), sa_i64(ni), sa_i64(dropout_rows(l, y)), sa_i64(lower_tp_group(l, layer)),
         sa_i64(flags));
    break;
  case IR_OP_CROSS_ENTROPY: {
    int64_t Mx = rows(l, n->in[0]), Vx = lower_last_dim(l, n->in[0]);
    GradOut gl = gout(l, layer, n->in[0], 0);
    EMIT(l, l->tp_node[ni] ? ENT_gen_vocab_xent_bwd : ENT_gen_xent_bwd, c, GB(l, gl), V(l, n->in[0]),
         B(l, l->aux1[ni]), V(l, n->in[1]), sa_i64(Mx), sa_i64(Vx));
    fold(l, gl);
    g0.v = -1;
    break;
  }
  default:
    break;
  }
  fold(l, g0);
  fold(l, g1);
  fold(l, g2);
}
#undef EMIT

/* ---- placement, functions ---- */

int lower_layer_of_value(const L *l, int v)
{
  int p = l->m->values[v].producer;
  if (p < 0)
    return -1;
  for (int i = 0; i < l->m->nlayers; i++)
    if (p >= l->m->layers[i].first_node && p < l->m->layers[i].first_node + l->m->layers[i].nnodes)
      return i;
  return -1;
}

void lower_mark_needed(L *l)
{
  for (int v = 0; v < l->m->nvalues; v++)
    l->needed[v] = (unsigned char)ir_value_saved(l->m, v);
}

/* ZeRO-3: gather a layer's parameter shards from the data-parallel group into the one
 * buffer its kernels read (before its forward, and again before its backward). */
static void z3_gather(L *l, int li)
{
  int64_t dp = l->o->world / l->o->pp / lower_layer_tp(l, li), n = l->z3[li].range / dp / l->es;
  SchedArg a[] = {sa_ctx(), sa_i64(li), lower_buf_arg(l, l->z3_gather), lower_buf_arg(l, l->z3[li].pshard), sa_i64(n)};
  lower_emit(l, ENT_gen_zero3_gather, a, 5, arena_printf(l->a, "zero3: gather %s", l->m->layers[li].name));
}

/* Per-layer tp: value v's rows from row factor `from` to `to` (src -> dst buffers). A block of
 * degree t holds rows of tp/t of its tp-group's samples; a smaller factor all-gathers them
 * over the ranks that share the larger degree's group and the smaller degree's index, a
 * larger factor keeps this rank's slice (no communication). Only the needed rows move. */
static void rows_convert(L *l, int v, int dst, int src, int from, int to, const char *what)
{
  int64_t all = lower_numel(l, v) * l->rowf[v], T = l->o->tp;
  if (to < from) {
    SchedArg a[] = {sa_ctx(), sa_i64(T / from), sa_i64(T / to), lower_buf_arg(l, dst), lower_buf_arg(l, src),
                    sa_i64(all / from)};
    lower_emit(l, ENT_gen_rows_gather, a, 6, arena_printf(l->a, "per-layer tp: gather %s", what));
  } else {
    SchedArg a[] = {sa_ctx(), sa_i64(T / to), sa_i64(T / from), lower_buf_arg(l, dst), lower_buf_arg(l, src),
                    sa_i64(all / to)};
    lower_emit(l, ENT_gen_rows_slice, a, 6, arena_printf(l->a, "per-layer tp: my slice of %s", what));
  }
}

/* At a layer's entry: its input in the layer's row factor (kept per slot for recomputation). */
static void rows_enter(L *l, int li)
{
  int v = l->m->layers[li].in_value, from = l->rowf[v], to = lower_layer_rowf(l, li);
  if (!l->o->layer_tp || from == to || l->m->values[v].is_index)
    return;
  int64_t all = lower_numel(l, v) * from;
  int buf = lower_new_buf(l, vname(l, li, v, "layer_rows"), PC_SLOT, l->es * all / to);
  rows_convert(l, v, buf, l->val[v], from, to, "the layer's input rows");
  l->conv_from[li] = l->val[v];
  l->conv_from_f[li] = from;
  l->val[v] = buf;
  l->rowf[v] = to;
}

/* Forward of layer li: values kept per slot unless checkpointed (or recomputing). */
void lower_forward_layer(L *l, int li, int recompute)
{
  if (!recompute)
    rows_enter(l, li);
  if (l->z3 && l->z3[li].range && !recompute)
    z3_gather(l, li);
  const IrLayer *cl = &l->m->layers[li];
  for (int k = 0; l->sp_gathered && k < cl->nnodes; k++) /* gathers are per pass (recompute gathers again) */
    for (int i = 0; i < l->m->nodes[cl->first_node + k].nin; i++)
      l->sp_gathered[l->m->nodes[cl->first_node + k].in[i]] = -1;
  if ((l->o->sp || l->o->ulysses) && l->o->tp > 1 && !recompute) {
    int v = cl->in_value;
    int64_t full = lower_numel(l, v) * (l->rsplit[v] ? l->o->tp : 1);
    int want = lower_layer_rows_split(l, li);
    if (want && !l->rsplit[v] && !l->m->values[v].is_index) { /* slice my token rows */
      int slice = lower_new_buf(l, vname(l, li, v, "rows"), PC_SLOT, l->es * full / l->o->tp);
      SchedArg a[] = {sa_ctx(), lower_buf_arg(l, slice), lower_buf_arg(l, l->val[v]), sa_i64(full / l->o->tp)};
      lower_emit(l, ENT_gen_sp_slice, a, 4, "sp: my token rows");
      l->sp_in_full[li] = l->val[v];
      l->sp_in_slice[li] = slice;
      l->val[v] = slice;
      l->rsplit[v] = 1;
    } else if (!want && l->rsplit[v]) { /* a layer on whole rows (replicated or Megatron tp) */
      int whole = lower_new_buf(l, vname(l, li, v, "all_rows"), PC_SLOT, l->es * full);
      SchedArg a[] = {sa_ctx(), lower_buf_arg(l, whole), lower_buf_arg(l, l->val[v]), sa_i64(full / l->o->tp)};
      lower_emit(l, ENT_gen_sp_gather, a, 4, "sp: all-gather the token rows");
      l->sp_gather_from[li] = l->val[v];
      l->val[v] = whole;
      l->rsplit[v] = 0;
    }
  }
  const IrLayer *ly = &l->m->layers[li];
  int ckpt = l->o->checkpoint && l->o->checkpoint[li];
  for (int k = 0; k < ly->nnodes; k++) {
    int ni = ly->first_node + k, y = l->m->nodes[ni].out;
    for (int i = 0; i < l->m->nodes[ni].nin; i++) {
      int v = l->m->nodes[ni].in[i], src = lower_layer_of_value(l, v);
      if (src >= 0 && src != li && v != ly->in_value && !l->err)
        l->err = arena_printf(l->a, "%s reads a value of %s that is not its input; cannot lower", ly->name,
                              l->m->layers[src].name);
    }
    if (l->m->nodes[ni].op == IR_OP_CROSS_ENTROPY) {
      l->val[y] = l->io_loss;
    } else if (!(recompute && y == ly->out_value)) {
      int keep = y == ly->out_value || (!ckpt && l->needed[y]);
      l->val[y] = lower_new_buf(l, vname(l, li, y, ir_op_name(l->m->nodes[ni].op)), keep ? PC_SLOT : PC_TRANSIENT,
                          l->es * lower_numel(l, y));
    }
    if (recompute && y == ly->out_value)
      continue; /* the output is kept: no need to recompute it */
    fwd_node(l, ni, ckpt ? PC_TRANSIENT : PC_SLOT, li);
  }
}

/* Backward of layer li (replaying its forward first when it is checkpointed). */
void lower_backward_layer(L *l, int li)
{
  const IrLayer *ly = &l->m->layers[li];
  int z3 = l->z3 && l->z3[li].range;
  if (z3) { /* full parameters again, and a zeroed full gradient for this layer */
    z3_gather(l, li);
    SchedArg f[] = {sa_ctx(), lower_buf_arg(l, l->z3_grad), sa_i64(l->z3[li].range / l->es), sa_f32(0.0f)};
    lower_emit(l, ENT_gen_fill, f, 4, "zero3: the layer's full gradient");
  }
  int v = ly->in_value, conv = l->conv_from[li] >= 0, dst = -1;
  int spconv = (l->sp_in_slice && l->sp_in_slice[li] >= 0) || (l->sp_gather_from && l->sp_gather_from[li] >= 0);
  if (conv || spconv) { /* the input's gradient is made in this layer's rows, converted back below into
                           the buffer already given to it (a stage's received input sends that back) */
    dst = l->grad[v];
    l->grad[v] = -1;
  }
  if (l->o->checkpoint && l->o->checkpoint[li])
    lower_forward_layer(l, li, 1);
  for (int k = ly->nnodes - 1; k >= 0; k--)
    bwd_node(l, ly->first_node + k, li);
  if (conv) {
    int from = l->rowf[v], to = l->conv_from_f[li];
    if (l->grad[v] >= 0) {
      if (dst < 0)
        dst = lower_new_buf(l, vname(l, li, v, "grad_layer_rows"), PC_TRANSIENT, l->es * lower_numel(l, v) * from / to);
      rows_convert(l, v, dst, l->grad[v], from, to, "the input's gradient rows");
      l->grad[v] = dst;
    }
    l->val[v] = l->conv_from[li];
    l->rowf[v] = to;
  }
  if (l->sp_in_slice && l->sp_in_slice[li] >= 0 && l->grad[v] >= 0) { /* the producer wants whole rows back */
    int64_t shard = lower_numel(l, v);
    int whole = dst >= 0 ? dst : lower_new_buf(l, vname(l, li, v, "grad_all_rows"), PC_TRANSIENT, l->es * shard * l->o->tp);
    SchedArg a[] = {sa_ctx(), lower_buf_arg(l, whole), lower_buf_arg(l, l->grad[v]), sa_i64(shard)};
    lower_emit(l, ENT_gen_sp_gather, a, 4, "sp: all-gather the gradient rows");
    l->grad[v] = whole;
    l->val[v] = l->sp_in_full[li];
    l->rsplit[v] = 0;
  } else if (l->sp_gather_from && l->sp_gather_from[li] >= 0 && l->grad[v] >= 0) { /* replicated grad: my rows */
    int64_t all = lower_numel(l, v);
    int mine = dst >= 0 ? dst : lower_new_buf(l, vname(l, li, v, "grad_rows"), PC_TRANSIENT, l->es * all / l->o->tp);
    SchedArg a[] = {sa_ctx(), lower_buf_arg(l, mine), lower_buf_arg(l, l->grad[v]), sa_i64(all / l->o->tp)};
    lower_emit(l, ENT_gen_sp_slice, a, 4, "sp: my rows of the gradient");
    l->grad[v] = mine;
    l->val[v] = l->sp_gather_from[li];
    l->rsplit[v] = 1;
  }
  if (l->grad[v] < 0)
    l->grad[v] = dst; /* no gradient reached the input: it keeps the buffer it had (if any) */
  if (z3) { /* sum over the data-parallel group; each rank adds its shard to its gradients */
    int64_t dp = l->o->world / l->o->pp / lower_layer_tp(l, li);
    SchedArg a[] = {sa_ctx(), sa_i64(li), lower_buf_arg(l, l->z3[li].gshard), lower_buf_arg(l, l->z3_grad),
                    sa_i64(l->z3[li].range / dp / l->es)};
    lower_emit(l, ENT_gen_zero3_reduce_scatter, a, 5, arena_printf(l->a, "zero3: reduce-scatter %s", ly->name));
  }
  SchedArg ready[] = {sa_ctx(), sa_i64(l->stage), sa_i64(li)};
  lower_emit(l, ENT_gen_grads_ready, ready, 3,
             arena_printf(l->a, "%s's gradients are final after the last micro-batch: start their reduction", ly->name));
}
