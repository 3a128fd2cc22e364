/* lower_fwd.c - the forward rule of each primitive (one node into its calls, under the
 * value layouts of lower_layout.c), and the forward (or recompute) of a layer. */
#include "lower_impl.h"

#include <string.h>

const char *lower_node_comment(L *l, const IrNode *n)
{
  if (!n->nparam)
    return ir_op_name(n->op);
  return arena_printf(l->a, "%s %s", ir_op_name(n->op), l->m->params[n->param[0]].name);
}


/* A linear: plain, Megatron row-parallel (all-reduced, or reduce-scattered by rows under
 * sequence parallelism), sequence-parallel @col (rows gathered once), or Ulysses (all-to-all
 * between token rows and heads around it). */
static void fwd_linear(L *l, int ni, PlanClass aux_cls, int layer, const char *c)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  int64_t M = lower_rows(l, y), N = lower_last_dim(l, y);
  int64_t K = lower_last_dim(l, n->in[0]);
  if (l->ul_in[ni] || l->ul_out[ni]) { /* Ulysses: all-to-all between token rows and heads */
    int64_t tp = l->o->tp, Kw = l->m->params[n->param[0]].shape.d[1];
    int64_t R = lower_rows(l, n->in[0]) / (l->ul_in[ni] ? tp : 1); /* this rank's token rows */
    SchedArg xin = V(l, n->in[0]);
    if (l->ul_in[ni]) { /* heads -> rows: [tp*R, Kw/tp] -> [R, Kw], kept for the backward */
      int xr = lower_new_buf(l, lower_vname(l, layer, n->in[0], "rows"), aux_cls, l->es * R * Kw);
      int scratch = lower_new_buf(l, lower_vname(l, layer, n->in[0], "a2a"), PC_TRANSIENT, l->es * R * Kw);
      EMIT(l, ENT_gen_ul_heads_to_rows, "ulysses: all-to-all heads -> rows", B(l, xr), xin, B(l, scratch), sa_i64(R),
           sa_i64(Kw));
      l->ul_keep[ni] = xr;
      xin = B(l, xr);
    }
    int64_t Nw = l->m->params[n->param[0]].shape.d[0];
    if (l->ul_out[ni]) { /* rows -> heads: [R, Nw] -> [tp*R, Nw/tp] */
      int yr = lower_new_buf(l, lower_vname(l, layer, y, "rows"), PC_TRANSIENT, l->es * R * Nw);
      int scratch = lower_new_buf(l, lower_vname(l, layer, y, "a2a"), PC_TRANSIENT, l->es * R * Nw);
      EMIT(l, ENT_gen_linear_fwd, c, B(l, yr), xin, P(l, n, 0), P(l, n, 1), sa_i64(R), sa_i64(Kw), sa_i64(Nw));
      EMIT(l, ENT_gen_ul_rows_to_heads, "ulysses: all-to-all rows -> heads", V(l, y), B(l, yr), B(l, scratch),
           sa_i64(R), sa_i64(Nw));
    } else {
      EMIT(l, ENT_gen_linear_fwd, c, V(l, y), xin, P(l, n, 0), P(l, n, 1), sa_i64(R), sa_i64(Kw), sa_i64(Nw));
    }
    return;
  }
  if (l->tp_node[ni] && l->rsplit[n->in[0]]) { /* sequence parallel: gather the rows of x once */
    int x = n->in[0];
    if (l->sp_gathered[x] < 0) {
      int64_t shard = lower_numel(l, x);
      l->sp_gathered[x] = lower_new_buf(l, lower_vname(l, layer, x, "gathered"), aux_cls, l->es * shard * l->o->tp);
      EMIT(l, ENT_gen_sp_gather, "sp: all-gather the token rows", B(l, l->sp_gathered[x]), V(l, x), sa_i64(shard));
    }
    EMIT(l, ENT_gen_linear_fwd, c, V(l, y), B(l, l->sp_gathered[x]), P(l, n, 0), P(l, n, 1), sa_i64(M), sa_i64(K),
         sa_i64(N)); /* y: whole rows, split features */
    return;
  }
  if (l->tp_node[ni] && n->tp == IR_TP_ROW && l->rsplit[y]) { /* partial sums, reduce-scattered by rows */
    int full = lower_new_buf(l, lower_vname(l, layer, y, "partial"), PC_TRANSIENT, l->es * lower_numel(l, y) * l->o->tp);
    EMIT(l, ENT_gen_linear_fwd_partial, c, B(l, full), V(l, n->in[0]), P(l, n, 0), P(l, n, 1), sa_i64(M * l->o->tp),
         sa_i64(K), sa_i64(N));
    EMIT(l, ENT_gen_sp_reduce_scatter, "sp: sum over tp, keep my rows", V(l, y), B(l, full), sa_i64(lower_numel(l, y)),
         sa_i64(0));
    return;
  }
  if (l->tp_node[ni] && n->tp == IR_TP_ROW) /* partial sums, all-reduced over tp; bias added once */
    EMIT(l, ENT_gen_linear_fwd_row, c, sa_i64(lower_tp_group(l, layer)), V(l, y), V(l, n->in[0]), P(l, n, 0), P(l, n, 1), sa_i64(M), sa_i64(K),
         sa_i64(N));
  else
    EMIT(l, ENT_gen_linear_fwd, c, V(l, y), V(l, n->in[0]), P(l, n, 0), P(l, n, 1), sa_i64(M), sa_i64(K), sa_i64(N));
}

/* offset + an RMSNorm's weight (Gemma's 1 + w) into a new transient buffer; the weight's
 * gradient is the plain norm's. */
int lower_norm_weight(L *l, int ni, int layer)
{
  const IrNode *n = &l->m->nodes[ni];
  int64_t C = l->m->params[n->param[0]].shape.d[0];
  int w = lower_new_buf(l, lower_vname(l, layer, n->out, "norm_weight"), PC_TRANSIENT, l->es * C);
  EMIT(l, ENT_gen_affine, "rmsnorm: offset + weight", B(l, w), P(l, n, 0), sa_i64(C), sa_f32(1.0f),
       sa_f32((float)n->fattr[1]), sa_i64(0));
  return w;
}

/* slice / concat: columns of one value into another's (the column copies of both ways). */
void lower_copy_cols(L *l, SchedArg dst, int dv, int64_t dst_col, SchedArg src, int sv, int64_t src_col, int64_t n,
                      int flags, const char *c)
{
  EMIT(l, ENT_gen_copy_cols, c, dst, src, sa_i64(lower_rows(l, dv)), sa_i64(lower_last_dim(l, dv)), sa_i64(dst_col),
       sa_i64(lower_last_dim(l, sv)), sa_i64(src_col), sa_i64(n), sa_i64(flags));
}

int lower_ep_scratch(L *l, int ni, int layer)
{
  const IrNode *n = &l->m->nodes[ni];
  int idx = n->in[1];
  int64_t rows = lower_rows(l, idx) * lower_last_dim(l, idx);
  return lower_new_buf(l, lower_vname(l, layer, n->out, "ep_scratch"), PC_TRANSIENT,
                       (int64_t)gv_ep_grouped_scratch_bytes(rows, lower_last_dim(l, n->in[0]), lower_last_dim(l, n->out),
                                                            par_ep(l->o), (size_t)l->es));
}

/* The image ops (ViT): the patch embedding (the patch rows a transient scratch, cut again
 * by the backward), the class token in front of the patches, the first token's rows. */
static void fwd_image(L *l, int ni, int layer, const char *c)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out, x = n->in[0];
  int64_t C = lower_last_dim(l, y);
  if (n->op == IR_OP_PATCH_EMBED) {
    const IrShape *ps = &l->m->values[x].shape;
    int64_t p = n->iattr[0], S = ps->d[2], Bl = lower_numel(l, x) / (ps->d[1] * S * S);
    int rows = lower_new_buf(l, lower_vname(l, layer, y, "patch_rows"), PC_TRANSIENT, l->es * lower_numel(l, x));
    EMIT(l, ENT_gen_patch_embed_fwd, c, V(l, y), B(l, rows), V(l, x), P(l, n, 0), P(l, n, 1), sa_i64(Bl),
         sa_i64(ps->d[1]), sa_i64(S), sa_i64(p), sa_i64(C));
  } else if (n->op == IR_OP_CLASS_TOKEN) {
    EMIT(l, ENT_gen_class_token_fwd, c, V(l, y), V(l, x), P(l, n, 0), sa_i64(lower_rows(l, y) / l->o->seq),
         sa_i64(l->o->seq - 1), sa_i64(C));
  } else {
    EMIT(l, ENT_gen_first_token_fwd, c, V(l, y), V(l, x), sa_i64(lower_rows(l, y)), sa_i64(l->o->seq), sa_i64(C));
  }
}

/* The node producing value v (-1: none). */
static int producer(const IrModel *m, int v)
{
  for (int i = 0; v >= 0 && i < m->nnodes; i++)
    if (m->nodes[i].out == v)
      return i;
  return -1;
}

/* The down linear ni of y = down(silu(gate(xs)) * up(xs)) (the stdlib moe's experts), each
 * value in between read once: its gate, up, silu and product nodes in part, 1; else 0. */
static int match_ep_mlp(const L *l, int ni, const int *uses, int part[4])
{
  const IrModel *m = l->m;
  const IrNode *d = &m->nodes[ni];
  int h = producer(m, d->in[0]);
  if (d->op != IR_OP_GROUPED_LINEAR || h < 0 || m->nodes[h].op != IR_OP_MUL)
    return 0;
  int s = producer(m, m->nodes[h].in[0]), u = producer(m, m->nodes[h].in[1]);
  if (s < 0 || u < 0 || m->nodes[s].op != IR_OP_SILU || m->nodes[u].op != IR_OP_GROUPED_LINEAR)
    return 0;
  int g = producer(m, m->nodes[s].in[0]);
  if (g < 0 || g == u || m->nodes[g].op != IR_OP_GROUPED_LINEAR || m->nodes[g].in[0] != m->nodes[u].in[0] ||
      m->nodes[g].in[1] != d->in[1] || m->nodes[u].in[1] != d->in[1])
    return 0;
  if (uses[d->in[0]] != 1 || uses[m->nodes[s].out] != 1 || uses[m->nodes[u].out] != 1 || uses[m->nodes[g].out] != 1)
    return 0;
  part[0] = g;
  part[1] = u;
  part[2] = s;
  part[3] = h;
  return 1;
}

/* Per value: how many node inputs read it. */
static int *value_uses(const L *l)
{
  int *uses = ARENA_ARRAY(l->a, int, l->m->nvalues ? l->m->nvalues : 1);
  for (int i = 0; i < l->m->nnodes; i++)
    for (int k = 0; k < l->m->nodes[i].nin; k++)
      uses[l->m->nodes[i].in[k]]++;
  return uses;
}

void lower_find_ep_mlps(L *l)
{
  const IrModel *m = l->m;
  l->ep_mlp = ARENA_ARRAY(l->a, int, m->nnodes);
  l->ep_gate = ARENA_ARRAY(l->a, int, m->nnodes);
  l->ep_up = ARENA_ARRAY(l->a, int, m->nnodes);
  int *uses = value_uses(l);
  for (int i = 0; i < m->nnodes; i++)
    l->ep_mlp[i] = -1;
  for (int i = 0; par_ep(l->o) > 1 && !l->o->ep_per_linear && i < m->nnodes; i++) {
    int part[4];
    if (!match_ep_mlp(l, i, uses, part))
      continue;
    l->ep_mlp[i] = i;
    for (int k = 0; k < 4; k++)
      l->ep_mlp[part[k]] = i;
    l->ep_gate[i] = part[0];
    l->ep_up[i] = part[1];
  }
}

/* The fused pairs are bit for bit the two calls: swiglu_fwd computes silu(gate) * up, its
 * backward dy * silu(gate) for up and (dy * up) * silu'(gate) for gate, as mul and silu do
 * (the product commutes); up's gradient is written, not accumulated, as mul_bwd's is (an up
 * read elsewhere folds it in afterwards), and the gate, read by the silu only, gets its
 * gradient from this call alone. Not under bf16, where the silu's output is rounded. */
void lower_find_swiglus(L *l)
{
  const IrModel *m = l->m;
  l->swiglu = ARENA_ARRAY(l->a, int, m->nnodes ? m->nnodes : 1);
  int *uses = value_uses(l);
  for (int i = 0; i < m->nnodes; i++)
    l->swiglu[i] = -1;
  for (int h = 0; l->es == 4 && h < m->nnodes; h++) {
    const IrNode *n = &m->nodes[h];
    if (n->op != IR_OP_MUL || n->in[0] == n->in[1] || l->ep_mlp[h] >= 0)
      continue;
    for (int k = 0; k < 2; k++) {
      int v = n->in[k], s = producer(m, v);
      if (s < 0 || m->nodes[s].op != IR_OP_SILU || l->ep_mlp[s] >= 0 || uses[v] != 1 || uses[m->nodes[s].in[0]] != 1 ||
          l->cross[v] || lower_layer_of_value(l, v) != lower_layer_of_value(l, n->out))
        continue;
      l->swiglu[h] = s;
      l->swiglu[s] = h;
      break;
    }
  }
}

int lower_ep_mlp_scratch(L *l, int ni, int layer)
{
  const IrNode *n = &l->m->nodes[ni], *g = &l->m->nodes[l->ep_gate[ni]];
  int idx = n->in[1];
  int64_t rows = lower_rows(l, idx) * lower_last_dim(l, idx), F = lower_last_dim(l, g->out),
          N = lower_last_dim(l, n->out);
  return lower_new_buf(l, lower_vname(l, layer, n->out, "ep_scratch"), PC_TRANSIENT,
                       (int64_t)gv_ep_mlp_scratch_bytes(rows, lower_last_dim(l, g->in[0]), F > N ? F : N, par_ep(l->o),
                                                        (size_t)l->es));
}

/* The mixture-of-experts ops (gvrt.h's routing contract): M token rows, k choices, E experts. */
static void fwd_moe(L *l, int ni, int layer, const char *c)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out, x = n->in[0], idx = n->op == IR_OP_TOPK ? y : n->in[1];
  int64_t M = lower_rows(l, idx), k = lower_last_dim(l, idx), E = n->iattr[0];
  switch (n->op) {
  case IR_OP_TAKE:
    EMIT(l, ENT_gen_take_fwd, c, V(l, y), V(l, x), V(l, idx), sa_i64(M), sa_i64(lower_last_dim(l, x)), sa_i64(k));
    break;
  case IR_OP_MOE_PERMUTE:
    EMIT(l, ENT_gen_moe_permute_fwd, c, V(l, y), V(l, x), V(l, idx), sa_i64(M), sa_i64(lower_last_dim(l, x)), sa_i64(k),
         sa_i64(E));
    break;
  case IR_OP_GROUPED_LINEAR:
    if (l->ep_mlp[ni] == ni) { /* the whole expert MLP: rows to the ranks holding their experts once, and back */
      const IrNode *g = &l->m->nodes[l->ep_gate[ni]], *u = &l->m->nodes[l->ep_up[ni]];
      EMIT(l, ENT_gen_ep_mlp_fwd, "ep: the expert MLP (gate, up, silu, product, down), one dispatch", V(l, y),
           V(l, g->in[0]), P(l, g, 0), P(l, u, 0), P(l, n, 0), V(l, idx), B(l, lower_ep_mlp_scratch(l, ni, layer)),
           sa_i64(M), sa_i64(k), sa_i64(E), sa_i64(lower_last_dim(l, g->in[0])), sa_i64(lower_last_dim(l, g->out)),
           sa_i64(lower_last_dim(l, y)));
    } else if (lower_expert_param(l, n, 0)) { /* rows to the ranks holding their experts and back */
      EMIT(l, ENT_gen_ep_grouped_fwd, c, V(l, y), V(l, x), P(l, n, 0), V(l, idx), B(l, lower_ep_scratch(l, ni, layer)),
           sa_i64(M), sa_i64(k), sa_i64(E), sa_i64(lower_last_dim(l, y)), sa_i64(lower_last_dim(l, x)));
    } else {
      EMIT(l, ENT_gen_moe_grouped_fwd, c, V(l, y), V(l, x), P(l, n, 0), V(l, idx), sa_i64(M), sa_i64(k), sa_i64(E),
           sa_i64(lower_last_dim(l, y)), sa_i64(lower_last_dim(l, x)));
    }
    if (l->tp_node[ni] && l->split[x]) /* tp_of_ep: each expert's inputs were split, its outputs are partial sums */
      EMIT(l, ENT_gen_all_reduce, "tp of ep: sum the experts' partial outputs", sa_i64(lower_tp_group(l, layer)),
           V(l, y), sa_i64(lower_numel(l, y)));
    break;
  case IR_OP_MOE_UNPERMUTE:
    EMIT(l, ENT_gen_moe_unpermute_fwd, c, V(l, y), V(l, x), V(l, n->in[2]), V(l, idx), sa_i64(M),
         sa_i64(lower_last_dim(l, y)), sa_i64(k), sa_i64(E));
    break;
  case IR_OP_MOE_AUX_LOSS: /* y = probs; the term goes into the loss after the cross-entropy (lower_aux_into_loss) */
    EMIT(l, ENT_gen_grad, "moe_aux_loss: y = probs", V(l, y), V(l, x), sa_i64(lower_numel(l, y)), sa_i64(0));
    if (n->fattr[0] == 0.0)
      break;
    l->aux1[ni] = lower_new_buf(l, lower_vname(l, layer, y, "aux_loss"), PC_SLOT, 4);
    EMIT(l, ENT_gen_moe_aux_fwd, c, B(l, l->aux1[ni]), V(l, x), V(l, idx), sa_i64(M), sa_i64(E), sa_i64(k),
         sa_f32((float)n->fattr[0]));
    if (l->cur_fn == FN_FWD) {
      if (!l->aux_loss)
        l->aux_loss = ARENA_ARRAY(l->a, int, l->m->nnodes);
      l->aux_loss[l->naux_loss++] = l->aux1[ni];
    }
    break;
  default: /* IR_OP_TOPK */
    EMIT(l, ENT_gen_topk, c, V(l, y), V(l, x), sa_i64(M), sa_i64(lower_last_dim(l, x)), sa_i64(k));
  }
}

/* The load-balancing terms of this stage's forward into its loss (after the cross-entropy,
 * which writes the loss; a stage without the head: lower_aux_stage_loss). */
static void lower_aux_into_loss(L *l)
{
  for (int i = 0; l->cur_fn == FN_FWD && i < l->naux_loss; i++)
    EMIT(l, ENT_gen_loss_add, "moe: the load-balancing loss into the loss", B(l, l->io_loss), B(l, l->aux_loss[i]));
}

void lower_aux_stage_loss(L *l)
{
  if (!l->naux_loss)
    return;
  SchedArg z[] = {sa_ctx(), lower_buf_arg(l, l->io_loss), sa_i64(4)};
  lower_emit(l, ENT_gen_zero, z, 3, "moe: this stage's loss is its load-balancing terms");
  lower_aux_into_loss(l);
}

/* The token and learned-position embeddings (vocabulary tp, vsp rows, the decode step). */
static void fwd_embedding(L *l, int ni, const char *c)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  int64_t M = lower_rows(l, y), N = lower_last_dim(l, y), cnt = lower_numel(l, y);
  if (n->op == IR_OP_EMBEDDING && l->tp_node[ni]) { /* my rows of the table; other ranks' tokens are zero here, then summed */
    EMIT(l, ENT_gen_vocab_embedding_fwd, c, V(l, y), V(l, n->in[0]), P(l, n, 0), sa_i64(M),
         sa_i64(l->m->params[n->param[0]].shape.d[0] / l->o->tp), sa_i64(N));
    return;
  }
  if (n->op == IR_OP_EMBEDDING) { /* (vsp: this rank's token rows, as one piece) */
    EMIT(l, ENT_gen_embedding_fwd, c, V(l, y), V(l, n->in[0]), P(l, n, 0), sa_i64(M), sa_i64(l->rsplit[y] ? M : lower_len(l, y)),
         sa_i64(l->m->params[n->param[0]].shape.d[0]), sa_i64(N), sa_i64(0));
    return;
  }
  int from_float = !l->m->values[n->in[0]].is_index;
  if (from_float)
    EMIT(l, ENT_gen_grad, "pos_embedding: y = x", V(l, y), V(l, n->in[0]), sa_i64(cnt), sa_i64(0));
  if (l->decode) {
    EMIT(l, ENT_gen_decode_pos_embedding, "pos_embedding: the decode position's row", V(l, y), P(l, n, 0),
         sa_i64(l->m->params[n->param[0]].shape.d[0]), sa_i64(N), sa_i64(from_float));
    return;
  }
  if (l->rsplit[y]) /* vsp: the positions of this rank's token rows */
    EMIT(l, ENT_gen_sp_pos_embedding_fwd, "pos_embedding: y += pos (vsp: my token rows)", V(l, y), P(l, n, 0),
         sa_i64(M), sa_i64(lower_len(l, y)), sa_i64(l->m->params[n->param[0]].shape.d[0]), sa_i64(N), sa_i64(from_float));
  else
    EMIT(l, ENT_gen_embedding_fwd, "pos_embedding: y += pos", V(l, y), sa_null(), P(l, n, 0), sa_i64(M),
         sa_i64(lower_len(l, y)), sa_i64(l->m->params[n->param[0]].shape.d[0]), sa_i64(N), sa_i64(from_float));
}

/* LayerNorm and RMSNorm, their statistics in aux buffers of class aux_cls. */
static void fwd_norm(L *l, int ni, PlanClass aux_cls, int layer, const char *c)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  int64_t M = lower_rows(l, y), N = lower_last_dim(l, y);
  if (n->op == IR_OP_LAYERNORM) {
    l->aux0[ni] = lower_new_buf(l, lower_vname(l, layer, y, "mean"), aux_cls, 4 * M);
    l->aux1[ni] = lower_new_buf(l, lower_vname(l, layer, y, "rstd"), aux_cls, 4 * M);
    EMIT(l, ENT_gen_layernorm_fwd, c, V(l, y), B(l, l->aux0[ni]), B(l, l->aux1[ni]), V(l, n->in[0]), P(l, n, 0),
         P(l, n, 1), sa_i64(M), sa_i64(N), sa_f32((float)n->fattr[0]));
    return;
  }
  SchedArg w = lower_norm_offset(n) ? B(l, l->aux0[ni]) : P(l, n, 0); /* made at the layer's start */
  l->aux1[ni] = lower_new_buf(l, lower_vname(l, layer, y, "rstd"), aux_cls, 4 * M);
  EMIT(l, ENT_gen_rmsnorm_fwd, c, V(l, y), B(l, l->aux1[ni]), V(l, n->in[0]), w, sa_i64(M), sa_i64(N),
       sa_f32((float)n->fattr[0]));
}

/* Attention: the decode step over the KV cache, ring attention under cp, or whole (queries
 * and keys of different lengths, an encoder-decoder's cross-attention: Tq x Tk). */
static void fwd_attention(L *l, int ni, PlanClass aux_cls, int layer, const char *c)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  int64_t N = lower_last_dim(l, y);
  int64_t tpl = l->tp_node[ni] ? lower_layer_tp(l, layer) : 1, H = n->iattr[0] / tpl, KV = n->iattr[1] / tpl, D = N / H;
  if (l->decode) { /* one query over the KV cache (the program has no tp) */
    l->aux1[ni] = lower_new_buf(l, lower_vname(l, layer, y, "lse"), PC_TRANSIENT, 4 * H);
    EMIT(l, ENT_gen_decode_attention, c, V(l, y), B(l, l->aux1[ni]), V(l, n->in[0]), V(l, n->in[1]),
         V(l, n->in[2]), sa_i64(l->decode_caches++), sa_i64(H), sa_i64(KV), sa_i64(D));
    return;
  }
  int64_t Tq = lower_len(l, y), Tk = lower_len(l, n->in[1]);
  l->aux1[ni] = lower_new_buf(l, lower_vname(l, layer, y, "lse"), aux_cls, 4 * l->o->micro_batch / l->rowf[y] * H * Tq);
  if (n->iattr[3] && (lower_cp(l) || l->rowf[y] != 1)) {
    lower_fail(l, ni, "an attention masked by src_tokens under context parallelism or with its micro-batch rows "
               "split (a per-layer tp degree below the program's): not supported (its keys would part from the "
               "source's rows); tp, sp, Ulysses, dp, ZeRO and pp are");
    return;
  }
  if (lower_cp(l)) { /* ring attention over the cp group: K/V blocks go round */
    int64_t Bl = l->o->micro_batch / l->rowf[y];
    int scratch = lower_new_buf(l, lower_vname(l, layer, y, "ring"), PC_TRANSIENT,
                                (int64_t)gv_ring_attention_scratch_bytes(Bl, l->o->seq, H, KV, D, 0));
    EMIT(l, ENT_gen_ring_attention_fwd, "attention: ring over cp (zigzag)", V(l, y), B(l, l->aux1[ni]),
         V(l, n->in[0]), V(l, n->in[1]), V(l, n->in[2]), B(l, scratch), sa_i64(Bl), sa_i64(l->o->seq), sa_i64(H),
         sa_i64(KV), sa_i64(D));
    return;
  }
  int64_t Bl = l->o->micro_batch / l->rowf[y];
  SchedArg bias = n->nin > 3 ? V(l, n->in[3]) : sa_null();
  if (Tq != Tk)
    EMIT(l, ENT_gen_cross_attention_fwd, c, V(l, y), B(l, l->aux1[ni]), V(l, n->in[0]), V(l, n->in[1]), V(l, n->in[2]),
         sa_i64(Bl), sa_i64(Tq), sa_i64(Tk), sa_i64(H), sa_i64(KV), sa_i64(D), sa_i64(n->iattr[2]),
         sa_f32((float)n->fattr[0]), bias, sa_i64(n->iattr[0]), lower_key_mask(l, ni));
  else
    EMIT(l, ENT_gen_attention_fwd, c, V(l, y), B(l, l->aux1[ni]), V(l, n->in[0]), V(l, n->in[1]), V(l, n->in[2]),
         sa_i64(Bl), sa_i64(Tq), sa_i64(H), sa_i64(KV), sa_i64(D), sa_i64(n->iattr[2]), sa_f32((float)n->fattr[0]), bias,
         sa_i64(n->iattr[0]), lower_key_mask(l, ni));
}

/* The cross-entropy loss (vocabulary-parallel under vtp, summed over the group under vsp). */
static void fwd_xent(L *l, int ni, PlanClass aux_cls, int layer, const char *c)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  int64_t Mx = lower_rows(l, n->in[0]), Vx = lower_last_dim(l, n->in[0]);
  l->aux1[ni] = lower_new_buf(l, lower_vname(l, layer, y, "lse"), aux_cls, 4 * Mx);
  if (l->tp_node[ni]) { /* vocabulary-parallel: global max, sum and target logit over the group */
    int scratch = lower_new_buf(l, lower_vname(l, layer, y, "target_logit"), PC_TRANSIENT, 4 * Mx);
    EMIT(l, ENT_gen_vocab_xent_fwd, c, V(l, y), B(l, l->aux1[ni]), B(l, scratch), V(l, n->in[0]), V(l, n->in[1]),
         sa_i64(Mx), sa_i64(Vx));
  } else {
    EMIT(l, ENT_gen_xent_fwd, c, V(l, y), B(l, l->aux1[ni]), V(l, n->in[0]), V(l, n->in[1]), sa_i64(Mx), sa_i64(Vx));
  }
  if (l->rsplit[n->in[0]]) /* vsp: each rank's loss is its rows' share */
    EMIT(l, ENT_gen_sp_loss_sum, "vsp: the loss summed over the tp group", V(l, y));
  lower_aux_into_loss(l);
}

static void fwd_node(L *l, int ni, PlanClass aux_cls, int layer)
{
  const IrNode *n = &l->m->nodes[ni];
  const char *c = lower_node_comment(l, n);
  int y = n->out;
  int64_t M = lower_rows(l, y), N = lower_last_dim(l, y), cnt = lower_numel(l, y);
  if (lower_in_ep_mlp(l, ni)) /* in its expert MLP's one call */
    return;
  switch (n->op) {
  case IR_OP_INPUT:
    break;
  case IR_OP_LINEAR:
    fwd_linear(l, ni, aux_cls, layer, c);
    break;
  case IR_OP_EMBEDDING: case IR_OP_POS_EMBEDDING:
    fwd_embedding(l, ni, c);
    break;
  case IR_OP_LAYERNORM: case IR_OP_RMSNORM:
    fwd_norm(l, ni, aux_cls, layer, c);
    break;
  case IR_OP_SCALE:
    EMIT(l, ENT_gen_affine, c, V(l, y), V(l, n->in[0]), sa_i64(cnt), sa_f32((float)n->fattr[0]),
         sa_f32((float)n->fattr[1]), sa_i64(0));
    break;
  case IR_OP_SOFTMAX:
    EMIT(l, ENT_gen_softmax_fwd, c, V(l, y), V(l, n->in[0]), sa_i64(M), sa_i64(N));
    break;
  case IR_OP_SLICE:
    lower_copy_cols(l, V(l, y), y, 0, V(l, n->in[0]), n->in[0], n->iattr[0], n->iattr[1], 0, c);
    break;
  case IR_OP_CONCAT: {
    int64_t na = lower_last_dim(l, n->in[0]);
    lower_copy_cols(l, V(l, y), y, 0, V(l, n->in[0]), n->in[0], 0, na, 0, "concat: the first part");
    lower_copy_cols(l, V(l, y), y, na, V(l, n->in[1]), n->in[1], 0, lower_last_dim(l, n->in[1]), 0, "concat: the second part");
    break;
  }
  case IR_OP_GELU:
    EMIT(l, ENT_gen_gelu_fwd, c, V(l, y), V(l, n->in[0]), sa_i64(cnt), sa_i64(n->iattr[0]));
    break;
  case IR_OP_SILU: case IR_OP_RELU:
    EMIT(l, n->op == IR_OP_SILU ? ENT_gen_silu_fwd : ENT_gen_relu_fwd, c, V(l, y), V(l, n->in[0]), sa_i64(cnt));
    break;
  case IR_OP_MUL:
    if (l->swiglu[ni] >= 0)
      EMIT(l, ENT_gen_swiglu_fwd, "swiglu: mul(silu(gate), up) (fused)", V(l, y),
           V(l, l->m->nodes[l->swiglu[ni]].in[0]), V(l, lower_swiglu_up(l, ni)), sa_i64(cnt));
    else
      EMIT(l, ENT_gen_mul_fwd, c, V(l, y), V(l, n->in[0]), V(l, n->in[1]), sa_i64(cnt));
    break;
  case IR_OP_ADD:
    EMIT(l, ENT_gen_add_fwd, c, V(l, y), V(l, n->in[0]), V(l, n->in[1]), sa_i64(cnt));
    break;
  case IR_OP_ROPE: {
    int64_t D = n->iattr[0], rot = n->iattr[1] ? n->iattr[1] : D;
    if (l->decode) {
      EMIT(l, ENT_gen_decode_rope, c, V(l, y), V(l, n->in[0]), sa_i64(N / D), sa_i64(D), sa_i64(rot),
           sa_f32((float)n->fattr[0]));
      break;
    }
    EMIT(l, ENT_gen_rope_fwd, c, V(l, y), V(l, n->in[0]), sa_i64(l->o->micro_batch / l->rowf[y]), sa_i64(lower_len(l, y)),
         sa_i64(N / D), sa_i64(D), sa_i64(rot), sa_f32((float)n->fattr[0]));
    break;
  }
  case IR_OP_ATTENTION:
    fwd_attention(l, ni, aux_cls, layer, c);
    break;
  case IR_OP_REL_BIAS: {
    int64_t Lq = lower_len(l, y); /* [L, L, H]: T, or an encoder's S */
    int ids = lower_new_buf(l, lower_vname(l, layer, y, "buckets"), PC_TRANSIENT, 4 * Lq * Lq);
    EMIT(l, ENT_gen_rel_bias_fwd, c, V(l, y), B(l, ids), P(l, n, 0), sa_i64(Lq), sa_i64(n->iattr[0]),
         sa_i64(n->iattr[1]), sa_i64(n->iattr[2]), sa_i64(n->iattr[3]));
    break;
  }
  case IR_OP_PATCH_EMBED: case IR_OP_CLASS_TOKEN: case IR_OP_FIRST_TOKEN:
    fwd_image(l, ni, layer, c);
    break;
  case IR_OP_DROPOUT:
    EMIT(l, ENT_gen_dropout_fwd, c, V(l, y), V(l, n->in[0]), sa_i64(M), sa_i64(N), sa_i64(N * (l->split[y] ? l->vdeg[y] : 1)),
         sa_f32((float)n->fattr[0]), sa_i64(ni), sa_i64(lower_dropout_rows(l, y)), sa_i64(lower_tp_group(l, layer)));
    break;
  case IR_OP_CROSS_ENTROPY:
    fwd_xent(l, ni, aux_cls, layer, c);
    break;
  case IR_OP_TOPK: case IR_OP_TAKE: case IR_OP_MOE_PERMUTE: case IR_OP_GROUPED_LINEAR: case IR_OP_MOE_UNPERMUTE:
  case IR_OP_MOE_AUX_LOSS:
    fwd_moe(l, ni, layer, c);
    break;
  default:
    lower_fail(l, ni, arena_printf(l->a, "%s: the '%s' primitive has no lowering yet", l->m->layers[layer].name, c));
  }
}

unsigned char *lower_cross_values(Arena *a, const IrModel *m)
{
  unsigned char *cross = ARENA_ARRAY(a, unsigned char, m->nvalues ? m->nvalues : 1);
  for (int li = 0; li < m->nlayers; li++) {
    const IrLayer *ly = &m->layers[li];
    for (int ni = ly->first_node; ni < ly->first_node + ly->nnodes; ni++)
      for (int i = 0; i < m->nodes[ni].nin; i++) {
        int v = m->nodes[ni].in[i], p = m->values[v].producer;
        if (p >= 0 && p < ly->first_node && v != ly->in_value && !m->values[v].is_index)
          cross[v] = 1;
      }
  }
  return cross;
}

/* A value v of layer src read across blocks by node ni of layer li is used in its producer's
 * layout: it must be whole by columns, in the rows layer li works on. */
static void cross_layout(L *l, int ni, int li, int v, int src)
{
  const char *why = NULL;
  int rows = l->m->layers[li].kind == IR_LAYER_BLOCK ? lower_layer_rows_split(l, li) : 0;
  if (l->split[v])
    why = "split by tensor parallelism there (read a value outside its @col/@row pair)";
  else if (l->m->values[v].shape.d[0] != IR_DIM_B) /* no sample rows (a position bias): the same everywhere */
    why = NULL;
  else if (l->rowf[v] != lower_layer_rowf(l, li))
    why = arena_printf(l->a, "held for 1/%d of the samples there but 1/%d here (per-layer tp degrees differ)",
                       l->rowf[v], lower_layer_rowf(l, li));
  else if (l->rsplit[v] && !rows)
    why = "split by token rows there (sequence parallelism) but read on whole rows here";
  if (why && !l->err)
    lower_fail(l, ni, arena_printf(l->a, "%s reads a value of %s across blocks, %s; cannot lower under this strategy",
                                   l->m->layers[li].name, l->m->layers[src].name, why));
}

/* Nodes whose forward keeps nothing beside its output and draws no random numbers (dropout
 * only at p = 0): when the backward reads neither that output nor anything made from it, the
 * recompute skips them. */
static int recompute_skippable(L *l, int ni)
{
  IrOp op = l->m->nodes[ni].op;
  return op == IR_OP_LINEAR || op == IR_OP_ADD || op == IR_OP_MUL || op == IR_OP_SCALE || op == IR_OP_GELU ||
         op == IR_OP_SILU || op == IR_OP_RELU || lower_dropout_is_copy(l, ni);
}

/* skip[k] = 1 where the recompute of layer li need not run its node k: the layer's output
 * (kept), and, walking back from it, pure ops whose value the backward does not read and
 * whose readers in the layer are all skipped (a pre-norm layer's last linear, whose output
 * only feeds the kept residual sum). */
static void recompute_skips(L *l, int li, unsigned char *skip)
{
  const IrLayer *ly = &l->m->layers[li];
  for (int k = ly->nnodes - 1; k >= 0; k--) {
    const IrNode *n = &l->m->nodes[ly->first_node + k];
    int y = n->out;
    skip[k] = y == ly->out_value;
    if (skip[k] || !recompute_skippable(l, ly->first_node + k) || l->needed[y] || l->cross[y])
      continue;
    int read = 0;
    for (int j = k + 1; j < ly->nnodes && !read; j++)
      for (int i = 0; i < l->m->nodes[ly->first_node + j].nin; i++)
        read |= !skip[j] && l->m->nodes[ly->first_node + j].in[i] == y;
    skip[k] = !read;
  }
}

/* vsp: the token ids a vocabulary layer reads (tokens, labels), this rank's rows of them,
 * kept for the backward (the i32 rows copied as floats' bytes). */
static void vocab_rows_enter(L *l, int li)
{
  const IrLayer *ly = &l->m->layers[li];
  for (int ni = ly->first_node; ni < ly->first_node + ly->nnodes; ni++)
    for (int i = 0; i < l->m->nodes[ni].nin; i++) {
      int v = l->m->nodes[ni].in[i];
      if (!l->m->values[v].is_index || l->m->values[v].shape.d[0] != IR_DIM_B || l->rsplit[v] || l->val[v] < 0)
        continue;
      int64_t mine = lower_numel(l, v) / l->o->tp;
      int rows = lower_new_buf(l, lower_vname(l, li, v, "rows"), PC_SLOT, 4 * mine);
      SchedArg a[] = {sa_ctx(), lower_buf_arg(l, rows), lower_buf_arg(l, l->val[v]), sa_i64(4 * mine / l->es)};
      lower_emit(l, ENT_gen_sp_slice, a, 4, "vsp: my token rows of the ids");
      l->val[v] = rows;
      l->rsplit[v] = 1;
    }
}

/* Forward of layer li: values kept per slot unless checkpointed (or recomputing). */
void lower_forward_layer(L *l, int li, int recompute)
{
  if (!recompute)
    lower_rows_enter(l, li);
  if (l->z3 && l->z3[li].range && !recompute)
    lower_z3_gather(l, li);
  const IrLayer *cl = &l->m->layers[li];
  for (int k = 0; l->sp_gathered && k < cl->nnodes; k++) /* gathers are per pass (recompute gathers again) */
    for (int i = 0; i < l->m->nodes[cl->first_node + k].nin; i++)
      l->sp_gathered[l->m->nodes[cl->first_node + k].in[i]] = -1;
  if ((l->o->sp || l->o->ulysses || lower_vsp(l)) && l->o->tp > 1 && !recompute) {
    int v = cl->in_value;
    int64_t full = lower_numel(l, v) * (l->rsplit[v] ? l->o->tp : 1);
    int want = lower_layer_rows_split(l, li);
    if (want && !l->rsplit[v] && !l->m->values[v].is_index) { /* slice my token rows */
      int slice = lower_new_buf(l, lower_vname(l, li, v, "rows"), PC_SLOT, l->es * full / l->o->tp);
      SchedArg a[] = {sa_ctx(), lower_buf_arg(l, slice), lower_buf_arg(l, l->val[v]), sa_i64(full / l->o->tp)};
      lower_emit(l, ENT_gen_sp_slice, a, 4, "sp: my token rows");
      l->sp_in_full[li] = l->val[v];
      l->sp_in_slice[li] = slice;
      l->val[v] = slice;
      l->rsplit[v] = 1;
    } else if (!want && l->rsplit[v]) { /* a layer on whole rows (replicated or Megatron tp) */
      int whole = lower_new_buf(l, lower_vname(l, li, v, "all_rows"), PC_SLOT, l->es * full);
      SchedArg a[] = {sa_ctx(), lower_buf_arg(l, whole), lower_buf_arg(l, l->val[v]), sa_i64(full / l->o->tp)};
      lower_emit(l, ENT_gen_sp_gather, a, 4, "sp: all-gather the token rows");
      l->sp_gather_from[li] = l->val[v];
      l->val[v] = whole;
      l->rsplit[v] = 0;
    }
  }
  const IrLayer *ly = &l->m->layers[li];
  if (!recompute && (l->conv_from[li] >= 0 || l->sp_in_slice[li] >= 0 || l->sp_gather_from[li] >= 0))
    l->in_after[li] = (struct LowerIn){l->val[ly->in_value], l->rsplit[ly->in_value], l->rowf[ly->in_value]};
  if (!recompute && l->o->layer[li].sp == PAR_SP_VOCAB)
    vocab_rows_enter(l, li);
  if (!recompute) {
    lower_cross_enter(l, li);
    lower_cross_layout(l, li, 1);
  }
  int ckpt = l->o->layer[li].ckpt;
  unsigned char *skip = arena_alloc(l->a, (size_t)ly->nnodes + 1); /* zeroed */
  if (recompute)
    recompute_skips(l, li, skip);
  for (int ni = ly->first_node; ni < ly->first_node + ly->nnodes; ni++) /* offset norm weights first, so that */
    if (lower_norm_offset(&l->m->nodes[ni]) && !(recompute && l->m->nodes[ni].out == ly->out_value)) /* add + norm fuse */
      l->aux0[ni] = lower_norm_weight(l, ni, li);
  for (int k = 0; k < ly->nnodes; k++) {
    int ni = ly->first_node + k, y = l->m->nodes[ni].out;
    for (int i = 0; i < l->m->nodes[ni].nin && !recompute; i++) {
      int v = l->m->nodes[ni].in[i], src = lower_layer_of_value(l, v);
      if (src >= 0 && src != li && v != ly->in_value)
        cross_layout(l, ni, li, v, src);
    }
    if (skip[k] || lower_swiglu_silu(l, ni))
      continue; /* the output is kept (its saved statistics too), or nothing the backward reads needs y, or
                   it is computed inside its mul's swiglu call */
    if (l->m->nodes[ni].op == IR_OP_CROSS_ENTROPY && l->decode) {
      continue; /* the decode step ends at the logits */
    } else if (l->m->nodes[ni].op == IR_OP_CROSS_ENTROPY) {
      l->val[y] = l->io_loss;
    } else if (lower_dropout_is_copy(l, ni) && !(recompute && y == ly->out_value) && !l->cross[y] &&
               (l->plan->bufs[l->val[l->m->nodes[ni].in[0]]].cls == PC_SLOT ||
                !(y == ly->out_value || (!ckpt && l->needed[y])))) {
      l->val[y] = l->val[l->m->nodes[ni].in[0]]; /* dropout at p = 0: the value is its input's buffer, no call */
      continue;
    } else if (!(recompute && (y == ly->out_value || l->cross[y]))) { /* a value crossing blocks: recomputed in place */
      int keep = y == ly->out_value || (!ckpt && l->needed[y]) || l->cross[y];
      int64_t eb = l->m->values[y].is_index ? 4 : l->es; /* expert ids are i32 */
      l->val[y] = lower_new_buf(l, lower_vname(l, li, y, ir_op_name(l->m->nodes[ni].op)), keep ? PC_SLOT : PC_TRANSIENT,
                          eb * lower_numel(l, y));
    }
    fwd_node(l, ni, ckpt && y != ly->out_value ? PC_TRANSIENT : PC_SLOT, li);
  }
  if (!recompute) {
    lower_in_layout(l, li, 0);
    lower_cross_layout(l, li, 0);
  }
}

void lower_in_layout(L *l, int li, int on)
{
  int v = l->m->layers[li].in_value;
  if (l->in_after[li].buf < 0)
    return;
  if (on) {
    l->val[v] = l->in_after[li].buf;
    l->rsplit[v] = (unsigned char)l->in_after[li].rsplit;
    l->rowf[v] = l->in_after[li].rowf;
  } else if (l->conv_from[li] >= 0) {
    l->val[v] = l->conv_from[li];
    l->rowf[v] = l->conv_from_f[li];
  } else if (l->sp_in_slice[li] >= 0) {
    l->val[v] = l->sp_in_full[li];
    l->rsplit[v] = 0;
  } else {
    l->val[v] = l->sp_gather_from[li];
    l->rsplit[v] = 1;
  }
}
