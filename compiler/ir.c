/* ir.c - queries on the model IR: op names, symbolic dimensions, the values backward
 * keeps, and the analytic costs of layers (FLOPs, parameters, activation bytes) that
 * `gvc info` prints and the search's analytic cost model uses. FLOPs count matmuls only
 * (linear: 2MKN, grouped_linear the same over the routed rows; attention: 4·B·H·Tq·Tk·D for QK^T and AV over the full
 * Tq x Tk rectangle: T x T, an encoder's S x S, a cross-attention's T x S),
 * the convention of the PaLM MFU formula; backward is twice forward. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

const char *ir_op_name(IrOp op)
{
  static const char *names[] = {
#define X(name, spelling, nin, nparam) spelling,
    IR_OPS(X)
#undef X
  };
  return op >= 0 && op < IR_OP_COUNT ? names[op] : "?";
}

int64_t ir_dim(int64_t d, int64_t micro_batch, int64_t seq, int64_t src_seq)
{
  return d == IR_DIM_B ? micro_batch : d == IR_DIM_T ? seq : d == IR_DIM_S ? (src_seq > 0 ? src_seq : seq) : d;
}

int64_t ir_len_dim(const IrShape *s)
{
  for (int i = 0; i < s->rank; i++)
    if (s->d[i] == IR_DIM_T || s->d[i] == IR_DIM_S)
      return s->d[i];
  return IR_DIM_T;
}

static int64_t numel(const IrModel *m, int v, int64_t B, int64_t T, int64_t S)
{
  const IrShape *s = &m->values[v].shape;
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++)
    n *= ir_dim(s->d[i], B, T, S);
  return n;
}

/* The resolved length (T or S) of value v. */
static int64_t len_of(const IrModel *m, int v, int64_t T, int64_t S)
{
  return ir_dim(ir_len_dim(&m->values[v].shape), 1, T, S);
}

void ir_mark_saved(const IrModel *m, unsigned char *saved)
{
  for (int i = 0; i < m->nnodes; i++) {
    const IrNode *n = &m->nodes[i];
    switch (n->op) {
    case IR_OP_LINEAR: case IR_OP_LAYERNORM: case IR_OP_RMSNORM: case IR_OP_GELU: case IR_OP_SILU:
    case IR_OP_RELU: case IR_OP_EMBEDDING: case IR_OP_PATCH_EMBED: /* the pixels: the weight's gradient */
      saved[n->in[0]] = 1;
      break;
    case IR_OP_MUL: case IR_OP_CROSS_ENTROPY:
      saved[n->in[0]] = saved[n->in[1]] = 1;
      break;
    case IR_OP_ATTENTION:
      saved[n->in[0]] = saved[n->in[1]] = saved[n->in[2]] = saved[n->out] = 1;
      if (n->nin > 3) /* the position bias (its backward recomputes the probabilities) */
        saved[n->in[3]] = 1;
      break;
    case IR_OP_SOFTMAX: /* its backward reads its output */
      saved[n->out] = 1;
      break;
    case IR_OP_TAKE: case IR_OP_MOE_PERMUTE: case IR_OP_MOE_AUX_LOSS: /* the expert ids */
      saved[n->in[1]] = 1;
      break;
    case IR_OP_GROUPED_LINEAR:
      saved[n->in[0]] = saved[n->in[1]] = 1;
      break;
    case IR_OP_MOE_UNPERMUTE:
      saved[n->in[0]] = saved[n->in[1]] = saved[n->in[2]] = 1;
      break;
    default:
      break;
    }
  }
}

int ir_value_saved(const IrModel *m, int v)
{
  if (!m->saved) {
    /* the front end fills m->saved from its arena; an IR built by hand gets it here */
    unsigned char *s = calloc((size_t)(m->nvalues ? m->nvalues : 1), 1);
    ir_mark_saved(m, s);
    ((IrModel *)m)->saved = s;
  }
  return m->saved[v];
}

double ir_node_flops(const IrModel *m, const IrNode *n, int64_t B, int64_t T, int64_t S)
{
  if (n->op == IR_OP_LINEAR) {
    const IrShape *w = &m->params[n->param[0]].shape;
    return 2.0 * (double)(numel(m, n->out, B, T, S) / w->d[0]) * (double)w->d[0] * (double)w->d[1];
  }
  if (n->op == IR_OP_PATCH_EMBED) { /* a GEMM over the unfolded patches */
    const IrShape *w = &m->params[n->param[0]].shape;
    return 2.0 * (double)numel(m, n->out, B, T, S) * (double)(w->d[1] * w->d[2] * w->d[3]);
  }
  if (n->op == IR_OP_GROUPED_LINEAR) { /* every routed row through one expert */
    const IrShape *w = &m->params[n->param[0]].shape;
    return 2.0 * (double)(numel(m, n->out, B, T, S) / w->d[1]) * (double)w->d[1] * (double)w->d[2];
  }
  if (n->op == IR_OP_ATTENTION) {
    int64_t Tq = len_of(m, n->out, T, S), Tk = len_of(m, n->in[1], T, S);
    int64_t width = numel(m, n->out, B, T, S) / (B * Tq); /* H * D */
    return 4.0 * (double)B * (double)Tq * (double)Tk * (double)width;
  }
  return 0.0;
}

/* Statistics an op keeps in fp32 beside its output (norm mean/rstd, log-sum-exps). */
static double aux_bytes(const IrModel *m, const IrNode *n, int64_t B, int64_t T, int64_t S)
{
  const IrShape *ls = &m->values[n->in[0]].shape; /* logits [B, T, V] or [B, V] (a classifier) */
  int64_t L = len_of(m, n->out, T, S);
  int64_t rows = n->op == IR_OP_CROSS_ENTROPY ? numel(m, n->in[0], B, T, S) / ir_dim(ls->d[ls->rank - 1], B, T, S) : B * L;
  switch (n->op) {
  case IR_OP_LAYERNORM: return 8.0 * (double)rows;
  case IR_OP_RMSNORM: return 4.0 * (double)rows;
  case IR_OP_ATTENTION: return 4.0 * (double)B * (double)n->iattr[0] * (double)L;
  case IR_OP_CROSS_ENTROPY: return 4.0 * (double)rows;
  default: return 0.0;
  }
}

IrCost ir_layer_cost(const IrModel *m, int layer, int64_t B, int64_t T, int64_t S, int dtype_bytes)
{
  const IrLayer *ly = &m->layers[layer];
  IrCost c = {0};
  for (int k = 0; k < ly->nnodes; k++) {
    const IrNode *n = &m->nodes[ly->first_node + k];
    double f = ir_node_flops(m, n, B, T, S);
    c.flops_fwd += f;
    c.flops_bwd += 2.0 * f;
    if (n->op == IR_OP_CROSS_ENTROPY)
      continue; /* the loss is a scalar */
    if (ir_value_saved(m, n->out) || n->out == ly->out_value)
      c.act_bytes += (double)numel(m, n->out, B, T, S) * dtype_bytes;
    c.act_bytes += aux_bytes(m, n, B, T, S);
  }
  for (int i = 0; i < m->nparams; i++)
    if (m->params[i].layer == layer) {
      int64_t n = 1;
      for (int d = 0; d < m->params[i].shape.rank; d++)
        n *= m->params[i].shape.d[d];
      c.params += n;
    }
  if (ly->out_value >= 0 && ly->out_value != m->loss_value)
    c.boundary_bytes = (double)numel(m, ly->out_value, B, T, S) * dtype_bytes;
  return c;
}

IrCost ir_model_cost(const IrModel *m, int64_t B, int64_t T, int64_t S, int dtype_bytes)
{
  IrCost t = {0};
  for (int i = 0; i < m->nlayers; i++) {
    IrCost c = ir_layer_cost(m, i, B, T, S, dtype_bytes);
    t.flops_fwd += c.flops_fwd;
    t.flops_bwd += c.flops_bwd;
    t.params += c.params;
    t.act_bytes += c.act_bytes;
    t.boundary_bytes += c.boundary_bytes;
  }
  return t;
}

int64_t ir_model_params(const IrModel *m)
{
  int64_t total = 0;
  for (int i = 0; i < m->nparams; i++) {
    int64_t n = 1;
    for (int d = 0; d < m->params[i].shape.rank; d++)
      n *= m->params[i].shape.d[d];
    total += n;
  }
  return total;
}

const IrLayer *ir_find_layer(const IrModel *m, const char *name)
{
  for (int i = 0; i < m->nlayers; i++)
    if (!strcmp(m->layers[i].name, name))
      return &m->layers[i];
  return NULL;
}
