/* lower_layout.c - which rows and columns of each value a rank holds: the tensor-parallel
 * split of a block (Megatron's @col/@row rule, sequence parallelism, Ulysses heads) and the
 * row conversions between layers of different per-layer tp degrees. */
#include "lower_impl.h"

#include <string.h>

/* Vocabulary parallelism of a non-block layer (the embedding, the head): 1 after an error. */
static int split_vocab_layer(L *l, int li, int tp)
{
  const IrModel *m = l->m;
  const IrLayer *ly = &m->layers[li];
  for (int k = 0; l->o->vtp > 1 && k < ly->nnodes; k++) {
    int ni = ly->first_node + k;
    const IrNode *n = &m->nodes[ni];
    int any = 0;
    for (int i = 0; i < n->nin; i++)
      any |= l->split[n->in[i]];
    if ((n->op == IR_OP_EMBEDDING || n->op == IR_OP_LINEAR) && n->tp == IR_TP_VOCAB) {
      if (m->params[n->param[0]].shape.d[0] % tp) {
        lower_fail(l, ni, arena_printf(l->a, "%s: a vocabulary of %lld is not divisible by vtp=%d", ly->name,
                                       (long long)m->params[n->param[0]].shape.d[0], tp));
        return 1;
      }
      l->tp_node[ni] = 1;
      l->split[n->out] = n->op == IR_OP_LINEAR;
    } else if (n->op == IR_OP_CROSS_ENTROPY && any) {
      l->tp_node[ni] = 1;
    } else if (any) {
      lower_fail(l, ni, arena_printf(l->a, "%s: %s cannot read vocabulary-split logits", ly->name, ir_op_name(n->op)));
      return 1;
    }
  }
  return 0;
}

/* Sequence parallelism of a vocabulary layer (vsp): every value with token rows holds this
 * rank's rows of the tp group, every weight's gradient is a partial sum over it. The ops
 * must work row by row. 1 after an error. */
static int split_vocab_rows(L *l, int li)
{
  const IrModel *m = l->m;
  const IrLayer *ly = &m->layers[li];
  for (int ni = ly->first_node; ni < ly->first_node + ly->nnodes; ni++) {
    const IrNode *n = &m->nodes[ni];
    switch (n->op) {
    case IR_OP_INPUT: case IR_OP_EMBEDDING: case IR_OP_POS_EMBEDDING: case IR_OP_LAYERNORM: case IR_OP_RMSNORM:
    case IR_OP_LINEAR: case IR_OP_SCALE: case IR_OP_ADD: case IR_OP_MUL: case IR_OP_DROPOUT: case IR_OP_GELU:
    case IR_OP_SILU: case IR_OP_RELU: case IR_OP_SOFTMAX: case IR_OP_CROSS_ENTROPY:
      break;
    default:
      lower_fail(l, ni, arena_printf(l->a, "%s: %s needs whole sequences: vocabulary sequence parallelism (vsp) "
                                     "cannot split this layer's token rows", ly->name, ir_op_name(n->op)));
      return 1;
    }
    if (n->op != IR_OP_CROSS_ENTROPY && m->values[n->out].shape.d[0] == IR_DIM_B)
      l->rsplit[n->out] = 1;
    for (int j = 0; j < n->nparam; j++)
      l->sp_partial[n->param[j]] = 1;
  }
  return 0;
}

/* A linear of block li (node k): Ulysses (every linear on this rank's rows with the whole
 * weight, all-to-all to heads where it feeds attention), Megatron @col / @row, or
 * replicated. Returns why it cannot run so, or NULL. */
static const char *split_linear(L *l, int li, int k, int tp, int ul, int sp, int any, int rany, int rall)
{
  const IrModel *m = l->m;
  const IrLayer *ly = &m->layers[li];
  int ni = ly->first_node + k;
  const IrNode *n = &m->nodes[ni];
  const char *why = NULL;
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
    return why;
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
  return why;
}

/* A grouped linear (a moe layer's expert linears) under tensor parallelism inside experts
 * (tp_of_ep): on a replicated input it splits each expert's outputs (gate, up), on a split
 * one each expert's inputs (down: partial sums all-reduced over tp); without tp_of_ep its
 * experts are whole on every tp rank. Returns why it cannot run so, or NULL. */
static const char *split_grouped(L *l, int ni, int tp, int any, int rany)
{
  const IrNode *n = &l->m->nodes[ni];
  const IrShape *w = &l->m->params[n->param[0]].shape; /* [experts, out, in] */
  int cols = l->split[n->in[0]];
  if (rany || (any && par_tp_of_ep(l->o) <= 1))
    return "cannot run on a tensor split by tensor or sequence parallelism";
  if (par_tp_of_ep(l->o) <= 1)
    return NULL;
  if (w->d[cols ? 2 : 1] % tp)
    return arena_printf(l->a, "each expert's ffn of %lld is not divisible by tp_of_ep=%d", (long long)w->d[cols ? 2 : 1],
                        tp);
  l->tp_node[ni] = 1;
  l->split[n->out] = (unsigned char)!cols;
  return NULL;
}

/* Node k of block li: marks which of its values are split (by columns: tensor parallel or
 * Ulysses heads; by rows: sequence parallel) and returns why it cannot run under the
 * block's layout, or NULL. */
static const char *split_block_node(L *l, int li, int k, int tp, int ul, int sp)
{
  const IrModel *m = l->m;
  const IrLayer *ly = &m->layers[li];
  int ni = ly->first_node + k;
  const IrNode *n = &m->nodes[ni];
  int any = 0, all = 1, rany = 0, rall = 1;
  int nin = n->op == IR_OP_ATTENTION && n->nin > 3 ? 3 : n->op == IR_OP_REL_BIAS ? 0 : n->nin; /* a bias: whole heads */
  for (int i = 0; i < nin; i++) {
    any |= l->split[n->in[i]];
    all &= l->split[n->in[i]];
    rany |= l->rsplit[n->in[i]];
    rall &= l->rsplit[n->in[i]];
  }
  const char *why = NULL;
  switch (n->op) {
  case IR_OP_LINEAR:
    why = split_linear(l, li, k, tp, ul, sp, any, rany, rall);
    break;
  case IR_OP_ATTENTION:
    if (any && !all)
      why = "q, k and v must all come from @col linears";
    else if (all && (n->iattr[0] % tp || n->iattr[1] % tp))
      why = arena_printf(l->a, "%lld heads (%lld kv heads) are not divisible by tp=%d", (long long)n->iattr[0],
                         (long long)n->iattr[1], tp);
    else if (rany)
      why = "attention needs whole sequences (put @col linears before it)";
    else if (n->nin > 3 && !all)
      why = "an attention with a position bias runs with its heads split under tensor parallelism (q, k and v from "
            "@col linears)";
    else if (n->nin > 3 && l->o->tp_per_layer)
      why = "a position bias does not work with per-layer tp degrees yet";
    l->split[n->out] = (unsigned char)all;
    l->tp_node[ni] = (unsigned char)all; /* heads split (tp or Ulysses) */
    break;
  case IR_OP_REL_BIAS: /* whole [T, T, H] on every rank; each sums its heads' part of the table's gradient */
    for (int j = 0; j < n->nparam; j++)
      l->sp_partial[n->param[j]] = 1;
    break;
  case IR_OP_ROPE: case IR_OP_GELU: case IR_OP_SILU: case IR_OP_RELU: case IR_OP_DROPOUT: case IR_OP_MUL:
  case IR_OP_ADD: case IR_OP_SCALE:
    if ((any && !all) || (rany && !rall) || (any && rany))
      why = "mixes tensors split in different ways (tensor- or sequence-parallel) with each other";
    l->split[n->out] = (unsigned char)all;
    l->rsplit[n->out] = (unsigned char)(rall && rany);
    break;
  case IR_OP_SOFTMAX: case IR_OP_SLICE: case IR_OP_CONCAT: /* on whole rows of the last dimension */
    if (any)
      why = arena_printf(l->a, "works on the last dimension, which tensor parallelism splits here (tp=%d); apply it "
                         "before the @col linear or after the @row linear, or train this block without tp", tp);
    else if (rany && !rall)
      why = "mixes tensors split in different ways (tensor- or sequence-parallel) with each other";
    l->rsplit[n->out] = (unsigned char)rany;
    break;
  case IR_OP_GROUPED_LINEAR:
    why = split_grouped(l, ni, tp, any, rany);
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
  return why;
}

/* Megatron's rule: a @col linear splits its output over the tp group, elementwise ops,
 * rope and attention (by heads) keep it split, and a @row linear gathers it back with an
 * all-reduce; everything else needs replicated inputs. Only blocks are split (the
 * embedding and head run replicated: vocabulary parallelism is their own degree). */
int lower_tp_split(L *l, int first, int last)
{
  const IrModel *m = l->m;
  int tp = l->o->tp, ul = l->o->ulysses && tp > 1, sp = (l->o->sp || ul || lower_vsp(l)) && tp > 1;
  if (tp <= 1)
    return 0;
  if (first > 0 && lower_layer_rows_split(l, first - 1)) /* received from the previous stage as split */
    l->rsplit[m->layers[first].in_value] = 1;
  if (sp && (l->o->micro_batch * l->o->seq) % tp) {
    lower_fail(l, -1, arena_printf(l->a, "sequence parallelism: %lld token rows (micro-batch %lld x seq %lld) are not "
                                   "divisible by tp=%d", (long long)(l->o->micro_batch * l->o->seq),
                                   (long long)l->o->micro_batch, (long long)l->o->seq, tp));
    return 1;
  }
  int64_t S = par_src_seq(l->o);
  if (sp && m->src_value >= 0 && (l->o->micro_batch * S) % tp) { /* an encoder's rows are split the same way */
    lower_fail(l, -1, arena_printf(l->a, "sequence parallelism: %lld source rows (micro-batch %lld x src_seq %lld) are "
                                   "not divisible by tp=%d (choose --src_seq so that they are)",
                                   (long long)(l->o->micro_batch * S), (long long)l->o->micro_batch, (long long)S, tp));
    return 1;
  }
  for (int li = first; li <= last; li++) {
    const IrLayer *ly = &m->layers[li];
    tp = lower_layer_tp(l, li); /* the base degree for the embedding, norm and head */
    if (ly->kind != IR_LAYER_BLOCK) {
      for (int k = 0; k < ly->nnodes; k++) /* a position bias: see split_block_node */
        for (int j = 0; m->nodes[ly->first_node + k].op == IR_OP_REL_BIAS && j < m->nodes[ly->first_node + k].nparam; j++)
          l->sp_partial[m->nodes[ly->first_node + k].param[j]] = 1;
      if (split_vocab_layer(l, li, tp) || (lower_layer_rows_split(l, li) && split_vocab_rows(l, li)))
        return 1;
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
    int *xs = ARENA_ARRAY(l->a, int, ly->nnodes * IR_MAX_IN), nxs = 0;
    for (int k = 0; k < ly->nnodes; k++) /* values crossing blocks that its entry slices */
      for (int i = 0; i < m->nodes[ly->first_node + k].nin; i++)
        if (lower_cross_rows_split(l, li, m->nodes[ly->first_node + k].in[i])) {
          xs[nxs++] = m->nodes[ly->first_node + k].in[i];
          l->rsplit[xs[nxs - 1]] = 1;
        }
    for (int k = 0; k < ly->nnodes; k++) {
      const IrNode *n = &m->nodes[ly->first_node + k];
      const char *why = split_block_node(l, li, k, tp, ul, sp);
      if (why) {
        const char *param = n->nparam ? arena_printf(l->a, " %s", m->params[n->param[0]].name) : "";
        lower_fail(l, ly->first_node + k, arena_printf(l->a, "%s: %s%s: %s", ly->name, ir_op_name(n->op), param, why));
        return 1;
      }
    }
    for (int j = 0; j < nxs; j++)
      l->rsplit[xs[j]] = 0;
    l->rsplit[ly->in_value] = (unsigned char)had; /* as received: the block's entry converts */
  }
  return 0;
}

int lower_cross_rows_split(const L *l, int li, int v)
{
  const IrModel *m = l->m;
  int p = m->values[v].producer;
  return p >= 0 && p < m->layers[li].first_node && v != m->layers[li].in_value && !m->values[v].is_index &&
         m->values[v].shape.d[0] == IR_DIM_B && !l->rsplit[v] && lower_layer_ulysses(l, li);
}

void lower_cross_enter(L *l, int li)
{
  const IrLayer *ly = &l->m->layers[li];
  struct LowerXs *x = &l->xs[li];
  int cap = ly->nnodes * IR_MAX_IN;
  x->v = ARENA_ARRAY(l->a, int, cap), x->whole = ARENA_ARRAY(l->a, int, cap);
  x->rows = ARENA_ARRAY(l->a, int, cap), x->had_grad = ARENA_ARRAY(l->a, int, cap);
  for (int ni = ly->first_node; ni < ly->first_node + ly->nnodes; ni++)
    for (int i = 0; i < l->m->nodes[ni].nin; i++) {
      int v = l->m->nodes[ni].in[i], seen = 0;
      for (int j = 0; j < x->n; j++)
        seen |= x->v[j] == v;
      if (seen || !lower_cross_rows_split(l, li, v))
        continue;
      int64_t full = lower_numel(l, v);
      int rows = lower_new_buf(l, lower_vname(l, li, v, "rows"), PC_SLOT, l->es * full / l->o->tp);
      SchedArg a[] = {sa_ctx(), lower_buf_arg(l, rows), lower_buf_arg(l, l->val[v]), sa_i64(full / l->o->tp)};
      lower_emit(l, ENT_gen_sp_slice, a, 4, "ulysses: my token rows of a value crossing blocks");
      x->v[x->n] = v, x->whole[x->n] = l->val[v], x->rows[x->n] = rows;
      x->n++;
    }
}

void lower_cross_layout(L *l, int li, int on)
{
  struct LowerXs *x = &l->xs[li];
  for (int j = 0; j < x->n; j++) {
    l->val[x->v[j]] = on ? x->rows[j] : x->whole[j];
    l->rsplit[x->v[j]] = (unsigned char)on;
  }
}

/* Before the layer's backward (on the sliced layout): each value's gradient so far is set
 * aside; after it, the slice's gradient is all-gathered and added to it. */
void lower_cross_grads(L *l, int li)
{
  struct LowerXs *x = &l->xs[li];
  for (int j = 0; j < x->n; j++) {
    int v = x->v[j];
    if (l->val[v] == x->rows[j]) { /* before: set aside */
      x->had_grad[j] = l->ginit[v] ? l->grad[v] : -1;
      l->grad[v] = -1;
      l->ginit[v] = 0;
      continue;
    }
    int g = l->grad[v], prev = x->had_grad[j];
    if (g < 0 || !l->ginit[v]) { /* nothing from this layer */
      l->grad[v] = prev;
      l->ginit[v] = prev >= 0;
      continue;
    }
    int64_t n = lower_numel(l, v);
    int whole = lower_new_buf(l, lower_vname(l, li, v, "grad_all_rows"), PC_TRANSIENT, l->es * n);
    SchedArg a[] = {sa_ctx(), lower_buf_arg(l, whole), lower_buf_arg(l, g), sa_i64(n / l->o->tp)};
    lower_emit(l, ENT_gen_sp_gather, a, 4, "ulysses: all-gather the gradient rows of a value crossing blocks");
    if (prev >= 0)
      EMIT(l, ENT_gen_grad, "its gradient from this layer, added", B(l, prev), B(l, whole), sa_i64(n), sa_i64(1));
    l->grad[v] = prev >= 0 ? prev : whole;
    l->ginit[v] = 1;
  }
}

/* Per-layer tp: value v's rows from row factor `from` to `to` (src -> dst buffers). A block of
 * degree t holds rows of tp/t of its tp-group's samples; a smaller factor all-gathers them
 * over the ranks that share the larger degree's group and the smaller degree's index, a
 * larger factor keeps this rank's slice (no communication). Only the needed rows move. */
void lower_rows_convert(L *l, int v, int dst, int src, int from, int to, const char *what)
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
void lower_rows_enter(L *l, int li)
{
  int v = l->m->layers[li].in_value, from = l->rowf[v], to = lower_layer_rowf(l, li);
  if (!l->o->tp_per_layer || from == to || l->m->values[v].is_index)
    return;
  int64_t all = lower_numel(l, v) * from;
  int buf = lower_new_buf(l, lower_vname(l, li, v, "layer_rows"), PC_SLOT, l->es * all / to);
  lower_rows_convert(l, v, buf, l->val[v], from, to, "the layer's input rows");
  l->conv_from[li] = l->val[v];
  l->conv_from_f[li] = from;
  l->val[v] = buf;
  l->rowf[v] = to;
}
