/* lower_bwd.c - the backward rule of each primitive (gradients written or accumulated into
 * each input's gradient buffer), and the backward of a layer (replaying its forward first
 * when it is checkpointed). */
#include "lower_impl.h"

#include <string.h>

/* The gradient buffer of value v, created on first use. */
static int grad_of(L *l, int layer, int v)
{
  if (l->grad[v] < 0)
    l->grad[v] = lower_new_buf(l, lower_vname(l, layer, v, "grad"), PC_TRANSIENT, l->es * lower_numel(l, v));
  return l->grad[v];
}

static int wants_grad(const L *l, int v) { return !l->m->values[v].is_index && v != l->m->pixels_value; }

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
    g.tmp = lower_new_buf(l, lower_vname(l, layer, v, "grad_part"), PC_TRANSIENT, l->es * lower_numel(l, v));
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

/* An input the op reads twice (x * x, attention(q, kv, kv)) written without accumulation:
 * the later part goes into a temporary added after the earlier (fold), or it would
 * overwrite it; accumulated, both parts add into the one buffer in turn. */
static GradOut own_part(L *l, int layer, GradOut g, int acc, int repeated)
{
  if (g.buf >= 0 && g.tmp < 0 && !acc && repeated) {
    g.tmp = lower_new_buf(l, lower_vname(l, layer, g.v, "grad_part"), PC_TRANSIENT, l->es * lower_numel(l, g.v));
    g.buf = g.tmp;
  }
  return g;
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

/* A linear's gradients (mirroring fwd_linear's forms); returns what is left of x's gradient
 * to fold (g0.v = -1 when it was folded here). */
static GradOut bwd_linear(L *l, int ni, int layer, const char *c, SchedArg dy, int flags, GradOut g0)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  int64_t M = lower_rows(l, y), N = lower_last_dim(l, y);
  int64_t K = lower_last_dim(l, n->in[0]);
  if (l->ul_in[ni] || l->ul_out[ni]) { /* Ulysses: the mirror all-to-alls */
    int64_t tp = l->o->tp, Kw = l->m->params[n->param[0]].shape.d[1], Nw = l->m->params[n->param[0]].shape.d[0];
    int64_t R = lower_rows(l, n->in[0]) / (l->ul_in[ni] ? tp : 1);
    SchedArg dyr = dy;
    if (l->ul_out[ni]) { /* gradient of the heads layout -> rows */
      int t = lower_new_buf(l, lower_vname(l, layer, y, "grad_rows"), PC_TRANSIENT, l->es * R * Nw);
      int scratch = lower_new_buf(l, lower_vname(l, layer, y, "grad_a2a"), PC_TRANSIENT, l->es * R * Nw);
      EMIT(l, ENT_gen_ul_heads_to_rows, "ulysses: gradient heads -> rows", B(l, t), dy, B(l, scratch), sa_i64(R),
           sa_i64(Nw));
      dyr = B(l, t);
    }
    SchedArg xin = l->ul_in[ni] ? B(l, l->ul_keep[ni]) : V(l, n->in[0]);
    if (l->ul_in[ni] && g0.buf >= 0) { /* dx in rows, then rows -> heads into x's gradient */
      int t = lower_new_buf(l, lower_vname(l, layer, n->in[0], "grad_rows"), PC_TRANSIENT, l->es * R * Kw);
      int scratch = lower_new_buf(l, lower_vname(l, layer, n->in[0], "grad_a2a"), PC_TRANSIENT, l->es * R * Kw);
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
    return g0;
  }
  if (l->tp_node[ni] && l->rsplit[n->in[0]]) { /* sp @col: full-row partial dx, reduce-scattered by rows */
    int64_t shard = lower_numel(l, n->in[0]);
    int full = lower_new_buf(l, lower_vname(l, layer, n->in[0], "grad_rows"), PC_TRANSIENT, l->es * shard * l->o->tp);
    EMIT(l, ENT_gen_linear_bwd, c, B(l, full), G(l, n, 0), G(l, n, 1), dy, B(l, l->sp_gathered[n->in[0]]), P(l, n, 0),
         sa_i64(M), sa_i64(K), sa_i64(N), sa_i64(ACC_DW));
    if (g0.buf >= 0) {
      int acc0 = l->ginit[n->in[0]];
      EMIT(l, ENT_gen_sp_reduce_scatter, "sp: sum over tp, keep my rows", B(l, grad_of(l, layer, n->in[0])),
           B(l, full), sa_i64(shard), sa_i64(acc0));
      l->ginit[n->in[0]] = 1;
      g0.v = -1; /* folded here */
    }
    return g0;
  }
  if (l->tp_node[ni] && n->tp == IR_TP_ROW && l->rsplit[y]) { /* sp @row: gather dy's rows first */
    int64_t shard = lower_numel(l, y);
    int full = lower_new_buf(l, lower_vname(l, layer, y, "grad_rows"), PC_TRANSIENT, l->es * shard * l->o->tp);
    EMIT(l, ENT_gen_sp_gather, "sp: all-gather the gradient rows", B(l, full), dy, sa_i64(shard));
    EMIT(l, ENT_gen_linear_bwd, c, GB(l, g0), G(l, n, 0), G(l, n, 1), B(l, full), V(l, n->in[0]), P(l, n, 0),
         sa_i64(M * l->o->tp), sa_i64(K), sa_i64(N), sa_i64(flags | ACC_DW));
    return g0;
  }
  if (l->tp_node[ni] && (n->tp == IR_TP_COL || n->tp == IR_TP_VOCAB) && g0.buf >= 0) { /* partial dx: all-reduce it alone */
    if (l->ginit[n->in[0]] && g0.tmp < 0)
      g0 = gout(l, layer, n->in[0], 0);
    EMIT(l, ENT_gen_linear_bwd, c, GB(l, g0), G(l, n, 0), G(l, n, 1), dy, V(l, n->in[0]), P(l, n, 0), sa_i64(M),
         sa_i64(K), sa_i64(N), sa_i64(ACC_DW));
    EMIT(l, ENT_gen_all_reduce, "tp: sum the partial input gradient", sa_i64(lower_tp_group(l, layer)), GB(l, g0),
         sa_i64(M * K));
    return g0;
  }
  EMIT(l, ENT_gen_linear_bwd, c, GB(l, g0), G(l, n, 0), G(l, n, 1), dy, V(l, n->in[0]), P(l, n, 0), sa_i64(M),
       sa_i64(K), sa_i64(N), sa_i64(flags | ACC_DW));
  return g0;
}

/* Expert parallelism: the backward of the SwiGLU expert MLP whose down linear is node ni, in
 * one call (x and dy dispatched once, dx combined once); the MLP's inner values get no
 * gradient (the returned part is empty). */
static GradOut bwd_ep_mlp(L *l, int ni, SchedArg dy)
{
  const IrNode *n = &l->m->nodes[ni], *g = &l->m->nodes[l->ep_gate[ni]], *u = &l->m->nodes[l->ep_up[ni]];
  int xs = g->in[0], idx = n->in[1], layer = lower_layer_of_value(l, n->out);
  int partial = l->tp_node[l->ep_gate[ni]]; /* tp_of_ep: gate and up split by outputs, dx a partial sum */
  int acc = !partial && l->ginit[xs];
  GradOut gx = gout(l, layer, xs, acc);
  EMIT(l, ENT_gen_ep_mlp_bwd, "ep: the expert MLP's backward, one dispatch", GB(l, gx), G(l, g, 0), G(l, u, 0),
       G(l, n, 0), dy, V(l, xs), P(l, g, 0), P(l, u, 0), P(l, n, 0), V(l, idx),
       B(l, lower_ep_mlp_scratch(l, ni, layer)), sa_i64(lower_rows(l, idx)), sa_i64(lower_last_dim(l, idx)),
       sa_i64(n->iattr[0]), sa_i64(lower_last_dim(l, xs)), sa_i64(lower_last_dim(l, g->out)),
       sa_i64(lower_last_dim(l, n->out)), sa_i64((acc ? ACC_DX : 0) | ACC_DW));
  if (partial && gx.buf >= 0)
    EMIT(l, ENT_gen_all_reduce, "tp of ep: sum the experts' partial input gradient", sa_i64(lower_tp_group(l, layer)),
         GB(l, gx), sa_i64(lower_numel(l, xs)));
  fold(l, gx);
  return (GradOut){-1, -1, -1};
}

/* The mixture-of-experts ops' gradients (topk has none: its output is ids). */
static GradOut bwd_moe(L *l, int ni, const char *c, SchedArg dy, int flags, GradOut g0, GradOut g2)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out, x = n->in[0], idx = n->in[1];
  int64_t M = lower_rows(l, idx), k = lower_last_dim(l, idx), E = n->iattr[0];
  switch (n->op) {
  case IR_OP_TAKE:
    if (g0.buf >= 0)
      EMIT(l, ENT_gen_take_bwd, c, GB(l, g0), dy, V(l, idx), sa_i64(M), sa_i64(lower_last_dim(l, x)), sa_i64(k),
           sa_i64(flags));
    break;
  case IR_OP_MOE_PERMUTE:
    if (g0.buf >= 0)
      EMIT(l, ENT_gen_moe_permute_bwd, c, GB(l, g0), dy, V(l, idx), sa_i64(M), sa_i64(lower_last_dim(l, x)), sa_i64(k),
           sa_i64(E), sa_i64(flags));
    break;
  case IR_OP_GROUPED_LINEAR:
    if (l->ep_mlp[ni] == ni)
      return bwd_ep_mlp(l, ni, dy);
    if (l->tp_node[ni] && !l->split[x] && g0.buf >= 0) { /* tp_of_ep, split outputs: x's partial gradient alone */
      if (l->ginit[x] && g0.tmp < 0)
        g0 = gout(l, lower_layer_of_value(l, y), x, 0);
      flags &= ~ACC_DX;
    }
    if (lower_expert_param(l, n, 0)) {
      EMIT(l, ENT_gen_ep_grouped_bwd, c, GB(l, g0), G(l, n, 0), dy, V(l, x), P(l, n, 0), V(l, idx),
           B(l, lower_ep_scratch(l, ni, lower_layer_of_value(l, y))), sa_i64(M), sa_i64(k), sa_i64(E),
           sa_i64(lower_last_dim(l, y)), sa_i64(lower_last_dim(l, x)), sa_i64(flags | ACC_DW));
    } else {
      EMIT(l, ENT_gen_moe_grouped_bwd, c, GB(l, g0), G(l, n, 0), dy, V(l, x), P(l, n, 0), V(l, idx), sa_i64(M),
           sa_i64(k), sa_i64(E), sa_i64(lower_last_dim(l, y)), sa_i64(lower_last_dim(l, x)), sa_i64(flags | ACC_DW));
    }
    if (l->tp_node[ni] && !l->split[x] && g0.buf >= 0)
      EMIT(l, ENT_gen_all_reduce, "tp of ep: sum the experts' partial input gradient",
           sa_i64(lower_tp_group(l, lower_layer_of_value(l, y))), GB(l, g0), sa_i64(lower_numel(l, x)));
    break;
  case IR_OP_MOE_UNPERMUTE:
    if (g0.buf >= 0 || g2.buf >= 0)
      EMIT(l, ENT_gen_moe_unpermute_bwd, c, GB(l, g0), GB(l, g2), dy, V(l, x), V(l, n->in[2]), V(l, idx), sa_i64(M),
           sa_i64(lower_last_dim(l, y)), sa_i64(k), sa_i64(E), sa_i64(flags));
    break;
  case IR_OP_MOE_AUX_LOSS: /* dprobs = dy (when the probabilities are used) + the term's gradient */
    if (g0.buf < 0)
      break;
    if (dy.kind != SA_NULL)
      EMIT(l, ENT_gen_grad, "moe_aux_loss: dprobs = dy", GB(l, g0), dy, sa_i64(lower_numel(l, x)), sa_i64(flags != 0));
    if (n->fattr[0] != 0.0)
      EMIT(l, ENT_gen_moe_aux_bwd, c, GB(l, g0), V(l, idx), sa_i64(M), sa_i64(lower_last_dim(l, x)), sa_i64(k),
           sa_f32((float)n->fattr[0]), sa_i64(dy.kind != SA_NULL ? ACC_DX : flags));
    break;
  default:
    break;
  }
  return g0;
}

/* A node whose backward runs without a gradient of its output: the loss, and a nonzero
 * load-balancing term (its output may feed nothing). */
static int is_loss_source(const IrNode *n)
{
  return n->op == IR_OP_CROSS_ENTROPY || (n->op == IR_OP_MOE_AUX_LOSS && n->fattr[0] != 0.0);
}

/* The gradient of an attention's bias, zeroed before the first attention adds into it. */
static SchedArg bias_grad(L *l, const IrNode *n, int layer)
{
  if (n->nin < 4)
    return sa_null();
  int v = n->in[3], g = grad_of(l, layer, v);
  if (!l->ginit[v])
    EMIT(l, ENT_gen_fill, "attention: the bias gradient starts at zero", B(l, g), sa_i64(lower_numel(l, v)),
         sa_f32(0.0f));
  l->ginit[v] = 1;
  return B(l, g);
}

/* dx = dy with no call: where node ni passes its output's gradient to its first input
 * unchanged (a dropout at p = 0; a sum's first term, the residual stream; the input of a
 * position embedding's addition) and that input has no gradient yet, the input's gradient
 * becomes the output's buffer (a transient of this backward, complete here: every consumer
 * of the output came before). Returns 1 when it did; the caller then leaves input 0 alone
 * (a sum still writes its second term's gradient). */
static int pass_grad(L *l, int ni)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out, x = n->nin > 0 ? n->in[0] : -1;
  if (x < 0 || y < 0 || l->grad[y] < 0 || !l->ginit[y] || !wants_grad(l, x) || l->grad[x] >= 0 || l->cross[x] ||
      l->cross[y] || l->plan->bufs[l->grad[y]].cls != PC_TRANSIENT)
    return 0;
  int through = (n->op == IR_OP_ADD && n->in[1] != x) || n->op == IR_OP_POS_EMBEDDING;
  if (!lower_dropout_is_copy(l, ni) && !(through && lower_same_layout(l, x, y)))
    return 0;
  l->grad[x] = l->grad[y];
  l->ginit[x] = 1;
  return 1;
}

/* The image ops' backward (ViT): the patch embedding's weight and bias (the pixels have no
 * gradient), the class token's row, the first token's rows. */
static void bwd_image(L *l, int ni, int layer, const char *c, SchedArg dy, int flags, GradOut g0)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  int64_t M = lower_rows(l, y), N = lower_last_dim(l, y);
  if (n->op == IR_OP_PATCH_EMBED) {
    const IrShape *ps = &l->m->values[n->in[0]].shape;
    int64_t S = ps->d[2], Bl = lower_numel(l, n->in[0]) / (ps->d[1] * S * S);
    int rows = lower_new_buf(l, lower_vname(l, layer, y, "patch_rows"), PC_TRANSIENT, l->es * lower_numel(l, n->in[0]));
    EMIT(l, ENT_gen_patch_embed_bwd, c, G(l, n, 0), G(l, n, 1), dy, B(l, rows), V(l, n->in[0]), P(l, n, 0),
         sa_i64(Bl), sa_i64(ps->d[1]), sa_i64(S), sa_i64(n->iattr[0]), sa_i64(N), sa_i64(ACC_DW));
  } else if (n->op == IR_OP_CLASS_TOKEN) {
    int scratch = lower_new_buf(l, lower_vname(l, layer, y, "class_rows"), PC_TRANSIENT, l->es * (M / l->o->seq) * N);
    EMIT(l, ENT_gen_class_token_bwd, c, GB(l, g0), G(l, n, 0), dy, B(l, scratch), sa_i64(M / l->o->seq),
         sa_i64(l->o->seq - 1), sa_i64(N), sa_i64(flags | ACC_DW));
  } else if (g0.buf >= 0) {
    EMIT(l, ENT_gen_first_token_bwd, c, GB(l, g0), dy, sa_i64(M), sa_i64(l->o->seq), sa_i64(N), sa_i64(flags));
  }
}

/* The token and learned-position embeddings' backward (vocabulary tp, vsp rows); a
 * position embedding over a float input passes dy on to it. */
static void bwd_embedding(L *l, int ni, const char *c, SchedArg dy, int acc, GradOut g0)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  int64_t M = lower_rows(l, y), N = lower_last_dim(l, y), rows = l->m->params[n->param[0]].shape.d[0];
  if (n->op == IR_OP_EMBEDDING && l->tp_node[ni])
    EMIT(l, ENT_gen_vocab_embedding_bwd, c, G(l, n, 0), dy, V(l, n->in[0]), sa_i64(M), sa_i64(rows / l->o->tp), sa_i64(N));
  else if (n->op == IR_OP_EMBEDDING)
    EMIT(l, ENT_gen_embedding_bwd, c, G(l, n, 0), dy, V(l, n->in[0]), sa_i64(M), sa_i64(l->rsplit[y] ? M : lower_len(l, y)),
         sa_i64(rows), sa_i64(N), sa_i64(ACC_DW));
  else if (l->rsplit[y]) /* vsp: the positions of this rank's token rows */
    EMIT(l, ENT_gen_sp_pos_embedding_bwd, c, G(l, n, 0), dy, sa_i64(M), sa_i64(lower_len(l, y)), sa_i64(rows), sa_i64(N),
         sa_i64(ACC_DW));
  else
    EMIT(l, ENT_gen_embedding_bwd, c, G(l, n, 0), dy, sa_null(), sa_i64(M), sa_i64(lower_len(l, y)), sa_i64(rows), sa_i64(N),
         sa_i64(ACC_DW));
  if (n->op == IR_OP_POS_EMBEDDING && g0.buf >= 0)
    EMIT(l, ENT_gen_grad, "pos_embedding: dx = dy", GB(l, g0), dy, sa_i64(lower_numel(l, y)), sa_i64(acc));
}

/* Attention's backward: ring attention under cp (dK/dV go round with their block), or whole. */
static void bwd_attention(L *l, int ni, int layer, const char *c, SchedArg dy, int flags, GradOut g0, GradOut g1,
                          GradOut g2)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  int64_t N = lower_last_dim(l, y);
  int64_t tpl = l->tp_node[ni] ? lower_layer_tp(l, layer) : 1, H = n->iattr[0] / tpl, KV = n->iattr[1] / tpl, D = N / H;
  if (lower_cp(l)) { /* ring attention: dK/dV go round with their block */
    int64_t Bl = l->o->micro_batch / l->rowf[y];
    int scratch = lower_new_buf(l, lower_vname(l, layer, y, "ring_grad"), PC_TRANSIENT,
                                (int64_t)gv_ring_attention_scratch_bytes(Bl, l->o->seq, H, KV, D, 1));
    EMIT(l, ENT_gen_ring_attention_bwd, "attention: ring over cp (zigzag)", GB(l, g0), GB(l, g1), GB(l, g2), dy,
         V(l, n->in[0]), V(l, n->in[1]), V(l, n->in[2]), V(l, y), B(l, l->aux1[ni]), B(l, scratch), sa_i64(Bl),
         sa_i64(l->o->seq), sa_i64(H), sa_i64(KV), sa_i64(D), sa_i64(flags));
    return;
  }
  SchedArg dbias = bias_grad(l, n, layer), bias = n->nin > 3 ? V(l, n->in[3]) : sa_null();
  int64_t Bl = l->o->micro_batch / l->rowf[y], Tq = lower_len(l, y), Tk = lower_len(l, n->in[1]);
  if (Tq != Tk) /* an encoder-decoder's cross-attention: Tq x Tk */
    EMIT(l, ENT_gen_cross_attention_bwd, c, GB(l, g0), GB(l, g1), GB(l, g2), dy, V(l, n->in[0]), V(l, n->in[1]),
         V(l, n->in[2]), V(l, y), B(l, l->aux1[ni]), sa_i64(Bl), sa_i64(Tq), sa_i64(Tk), sa_i64(H), sa_i64(KV), sa_i64(D),
         sa_i64(n->iattr[2]), sa_i64(flags), sa_f32((float)n->fattr[0]), bias, dbias, sa_i64(n->iattr[0]),
         lower_key_mask(l, ni));
  else
    EMIT(l, ENT_gen_attention_bwd, c, GB(l, g0), GB(l, g1), GB(l, g2), dy, V(l, n->in[0]), V(l, n->in[1]),
         V(l, n->in[2]), V(l, y), B(l, l->aux1[ni]), sa_i64(Bl), sa_i64(Tq), sa_i64(H), sa_i64(KV), sa_i64(D),
         sa_i64(n->iattr[2]), sa_i64(flags), sa_f32((float)n->fattr[0]), bias, dbias, sa_i64(n->iattr[0]),
         lower_key_mask(l, ni));
}

/* mul(silu(gate), up) fused (lower_find_swiglus): up's gradient written as mul_bwd writes it
 * (a temporary folded in where up has one already), the gate's as silu_bwd would; where only
 * the gate's accumulates, one call for each. */
static void bwd_swiglu(L *l, int ni, int layer, SchedArg dy)
{
  int gate = l->m->nodes[l->swiglu[ni]].in[0], up = lower_swiglu_up(l, ni), acc = l->ginit[gate];
  int64_t cnt = lower_numel(l, l->m->nodes[ni].out);
  GradOut gg = gout(l, layer, gate, acc), gu = gout(l, layer, up, 0);
  const char *c = "swiglu backward: mul(silu(gate), up) (fused)";
  if (acc && gu.buf >= 0) {
    EMIT(l, ENT_gen_swiglu_bwd, c, sa_null(), GB(l, gu), dy, V(l, gate), V(l, up), sa_i64(cnt), sa_i64(0));
    EMIT(l, ENT_gen_swiglu_bwd, c, GB(l, gg), sa_null(), dy, V(l, gate), V(l, up), sa_i64(cnt), sa_i64(ACC_DX));
  } else {
    EMIT(l, ENT_gen_swiglu_bwd, c, GB(l, gg), GB(l, gu), dy, V(l, gate), V(l, up), sa_i64(cnt),
         sa_i64(acc ? ACC_DX : 0));
  }
  fold(l, gu);
  fold(l, gg);
}

static void bwd_node(L *l, int ni, int layer)
{
  const IrNode *n = &l->m->nodes[ni];
  int y = n->out;
  if (n->op == IR_OP_INPUT || lower_in_ep_mlp(l, ni) || lower_swiglu_silu(l, ni)) /* an expert MLP's part: in its
                                                            down linear's call; a silu: in its mul's swiglu call */
    return;
  int has_dy = l->grad[y] >= 0 && l->ginit[y];
  if (!is_loss_source(n) && !has_dy)
    return; /* nothing flows back through this value */
  if (l->swiglu[ni] >= 0) {
    bwd_swiglu(l, ni, layer, B(l, l->grad[y]));
    return;
  }
  if (n->op == IR_OP_REL_BIAS) { /* into the table's gradient only (its input gives the length) */
    int64_t Lq = lower_len(l, y);
    int ids = lower_new_buf(l, lower_vname(l, layer, y, "buckets"), PC_TRANSIENT, 4 * Lq * Lq);
    EMIT(l, ENT_gen_rel_bias_bwd, lower_node_comment(l, n), G(l, n, 0), B(l, l->grad[y]), B(l, ids),
         sa_i64(Lq), sa_i64(n->iattr[0]), sa_i64(n->iattr[1]), sa_i64(n->iattr[2]), sa_i64(n->iattr[3]));
    return;
  }
  int passed = pass_grad(l, ni);
  if (passed && n->op == IR_OP_DROPOUT)
    return;
  int64_t M = lower_rows(l, y), N = lower_last_dim(l, y), cnt = lower_numel(l, y);
  SchedArg dy = n->op == IR_OP_CROSS_ENTROPY || !has_dy ? sa_null() : B(l, l->grad[y]);
  int acc = acc_all(l, n, n->op == IR_OP_ATTENTION ? 3 : n->nin); /* not the bias: bias_grad */
  int flags = acc ? ACC_DX : 0;
  const char *c = lower_node_comment(l, n);
  GradOut g0 = n->nin > 0 && !passed ? gout(l, layer, n->in[0], acc) : (GradOut){-1, -1, -1};
  GradOut g1 = n->nin > 1 && n->op != IR_OP_CROSS_ENTROPY ? gout(l, layer, n->in[1], acc) : (GradOut){-1, -1, -1};
  GradOut g2 = n->nin > 2 ? gout(l, layer, n->in[2], acc) : (GradOut){-1, -1, -1};
  g1 = own_part(l, layer, g1, acc, n->in[0] == n->in[1]);
  g2 = own_part(l, layer, g2, acc, n->in[2] == n->in[0] || n->in[2] == n->in[1]);
  switch (n->op) {
  case IR_OP_LINEAR:
    g0 = bwd_linear(l, ni, layer, c, dy, flags, g0);
    break;
  case IR_OP_PATCH_EMBED: case IR_OP_CLASS_TOKEN: case IR_OP_FIRST_TOKEN:
    bwd_image(l, ni, layer, c, dy, flags, g0);
    break;
  case IR_OP_EMBEDDING: case IR_OP_POS_EMBEDDING:
    bwd_embedding(l, ni, c, dy, acc, g0);
    break;
  case IR_OP_LAYERNORM:
    EMIT(l, ENT_gen_layernorm_bwd, c, GB(l, g0), G(l, n, 0), G(l, n, 1), dy, V(l, n->in[0]), P(l, n, 0),
         B(l, l->aux0[ni]), B(l, l->aux1[ni]), sa_i64(M), sa_i64(N), sa_i64(flags | ACC_DW));
    break;
  case IR_OP_RMSNORM:
    EMIT(l, ENT_gen_rmsnorm_bwd, c, GB(l, g0), G(l, n, 0), dy, V(l, n->in[0]),
         lower_norm_offset(n) ? B(l, lower_norm_weight(l, ni, layer)) : P(l, n, 0),
         B(l, l->aux1[ni]), sa_i64(M), sa_i64(N), sa_i64(flags | ACC_DW));
    break;
  case IR_OP_SCALE:
    EMIT(l, ENT_gen_affine, c, GB(l, g0), dy, sa_i64(cnt), sa_f32((float)n->fattr[0]), sa_f32(0.0f), sa_i64(flags));
    break;
  case IR_OP_SOFTMAX:
    EMIT(l, ENT_gen_softmax_bwd, c, GB(l, g0), dy, V(l, y), sa_i64(M), sa_i64(N), sa_i64(flags));
    break;
  case IR_OP_SLICE: /* dx: dy in the sliced columns, 0 elsewhere */
    if (g0.buf >= 0 && !flags)
      EMIT(l, ENT_gen_fill, "slice: the gradient outside the slice", GB(l, g0), sa_i64(lower_numel(l, n->in[0])),
           sa_f32(0.0f));
    if (g0.buf >= 0)
      lower_copy_cols(l, GB(l, g0), n->in[0], n->iattr[0], dy, y, 0, n->iattr[1], ACC_DX, c);
    break;
  case IR_OP_CONCAT: {
    int64_t na = lower_last_dim(l, n->in[0]);
    if (g0.buf >= 0)
      lower_copy_cols(l, GB(l, g0), n->in[0], 0, dy, y, 0, na, flags, "concat: the first part's gradient");
    if (g1.buf >= 0)
      lower_copy_cols(l, GB(l, g1), n->in[1], 0, dy, y, na, lower_last_dim(l, n->in[1]), flags,
                      "concat: the second part's gradient");
    break;
  }
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
    int64_t D = n->iattr[0], rot = n->iattr[1] ? n->iattr[1] : D;
    EMIT(l, ENT_gen_rope_bwd, c, GB(l, g0), dy, sa_i64(l->o->micro_batch / l->rowf[y]), sa_i64(lower_len(l, y)), sa_i64(N / D),
         sa_i64(D), sa_i64(rot), sa_f32((float)n->fattr[0]), sa_i64(flags));
    break;
  }
  case IR_OP_ATTENTION:
    bwd_attention(l, ni, layer, c, dy, flags, g0, g1, g2);
    break;
  case IR_OP_DROPOUT:
    EMIT(l, ENT_gen_dropout_bwd, c, GB(l, g0), dy, sa_i64(M), sa_i64(N), sa_i64(N * (l->split[y] ? l->vdeg[y] : 1)),
         sa_f32((float)n->fattr[0]), sa_i64(ni), sa_i64(lower_dropout_rows(l, y)), sa_i64(lower_tp_group(l, layer)),
         sa_i64(flags));
    break;
  case IR_OP_CROSS_ENTROPY: {
    int64_t Mx = lower_rows(l, n->in[0]), Vx = lower_last_dim(l, n->in[0]);
    GradOut gl = gout(l, layer, n->in[0], 0);
    EMIT(l, l->tp_node[ni] ? ENT_gen_vocab_xent_bwd : ENT_gen_xent_bwd, c, GB(l, gl), V(l, n->in[0]),
         B(l, l->aux1[ni]), V(l, n->in[1]), sa_i64(Mx), sa_i64(Vx));
    fold(l, gl);
    g0.v = -1;
    break;
  }
  case IR_OP_TAKE: case IR_OP_MOE_PERMUTE: case IR_OP_GROUPED_LINEAR: case IR_OP_MOE_UNPERMUTE: case IR_OP_MOE_AUX_LOSS:
    g0 = bwd_moe(l, ni, c, dy, flags, g0, g2);
    break;
  default:
    break;
  }
  fold(l, g0);
  fold(l, g1);
  fold(l, g2);
}

/* ZeRO-3 layer li: the gradients that are partial sums over the tp group (sequence-parallel
 * norms, Ulysses' replicated weights) summed over it in the full gradient before the
 * reduce-scatter over dp, as the unsharded parameters' are before their reduction. */
static void z3_partial_sums(L *l, int li)
{
  const IrLayer *ly = &l->m->layers[li];
  for (int ni = ly->first_node; ni < ly->first_node + ly->nnodes; ni++)
    for (int j = 0; j < l->m->nodes[ni].nparam; j++) {
      int pi = l->m->nodes[ni].param[j], seen = 0;
      for (int q = ly->first_node; q <= ni; q++)
        for (int k = 0; k < l->m->nodes[q].nparam && !(q == ni && k >= j); k++)
          seen |= l->m->nodes[q].param[k] == pi;
      if (seen || !l->sp_partial[pi] || l->gbuf[pi] < 0)
        continue;
      EMIT(l, ENT_gen_all_reduce, "zero3: sum the partial gradient over the tp group", sa_i64(lower_tp_group(l, li)),
           B(l, l->gbuf[pi]), sa_i64(l->plan->bufs[l->gbuf[pi]].bytes / l->es));
    }
}

/* Backward of layer li (replaying its forward first when it is checkpointed). */
void lower_backward_layer(L *l, int li)
{
  const IrLayer *ly = &l->m->layers[li];
  int z3 = l->z3 && l->z3[li].range;
  if (z3) { /* full parameters again, and a zeroed full gradient for this layer */
    lower_z3_gather(l, li);
    SchedArg f[] = {sa_ctx(), lower_buf_arg(l, l->z3_grad), sa_i64(l->z3[li].range / l->es), sa_f32(0.0f)};
    lower_emit(l, ENT_gen_fill, f, 4, "zero3: the layer's full gradient");
  }
  int v = ly->in_value, conv = l->conv_from[li] >= 0, dst = -1, had = 0;
  int spconv = (l->sp_in_slice && l->sp_in_slice[li] >= 0) || (l->sp_gather_from && l->sp_gather_from[li] >= 0);
  if (conv || spconv) { /* the input's gradient is made in this layer's rows, converted back below into
                           the buffer already given to it (a stage's received input sends that back), or
                           added to the gradient other readers of the value gave it */
    dst = l->grad[v];
    had = l->ginit[v];
    l->grad[v] = -1;
    l->ginit[v] = 0;
    lower_in_layout(l, li, 1);
  }
  lower_cross_layout(l, li, 1);
  lower_cross_grads(l, li);
  if (l->o->layer[li].ckpt)
    lower_forward_layer(l, li, 1);
  for (int k = ly->nnodes - 1; k >= 0; k--)
    bwd_node(l, ly->first_node + k, li);
  if ((conv || spconv) && l->grad[v] >= 0) {
    int g = l->grad[v];
    lower_in_layout(l, li, 0); /* sizes below in the producer's layout */
    int64_t n = lower_numel(l, v);
    int out = dst >= 0 && !had ? dst : lower_new_buf(l, lower_vname(l, li, v, "grad_producer_rows"), PC_TRANSIENT, l->es * n);
    if (conv) {
      lower_in_layout(l, li, 1);
      lower_rows_convert(l, v, out, g, l->rowf[v], l->conv_from_f[li], "the input's gradient rows");
    } else if (l->sp_in_slice[li] >= 0) { /* the producer wants whole rows back */
      SchedArg a[] = {sa_ctx(), lower_buf_arg(l, out), lower_buf_arg(l, g), sa_i64(n / l->o->tp)};
      lower_emit(l, ENT_gen_sp_gather, a, 4, "sp: all-gather the gradient rows");
    } else { /* replicated grad: my rows */
      SchedArg a[] = {sa_ctx(), lower_buf_arg(l, out), lower_buf_arg(l, g), sa_i64(n)};
      lower_emit(l, ENT_gen_sp_slice, a, 4, "sp: my rows of the gradient");
    }
    if (had) /* other readers' gradient first: add this one */
      EMIT(l, ENT_gen_grad, "the input's gradient from this layer, added", B(l, dst), B(l, out), sa_i64(n), sa_i64(1));
    l->grad[v] = had ? dst : out;
    l->ginit[v] = 1;
  } else if (conv || spconv) { /* no gradient reached the input here: it keeps what it had (if any) */
    l->grad[v] = dst;
    l->ginit[v] = (unsigned char)had;
  }
  lower_in_layout(l, li, 0);
  lower_cross_layout(l, li, 0);
  lower_cross_grads(l, li);
  if (z3) { /* sum over the data-parallel group; each rank adds its shard to its gradients */
    z3_partial_sums(l, li);
    int64_t dp = lower_layer_dp(l, li);
    SchedArg a[] = {sa_ctx(), sa_i64(li), lower_buf_arg(l, l->z3[li].gshard), lower_buf_arg(l, l->z3_grad),
                    sa_i64(l->z3[li].range / dp / l->es)};
    lower_emit(l, ENT_gen_zero3_reduce_scatter, a, 5, arena_printf(l->a, "zero3: reduce-scatter %s", ly->name));
  }
  SchedArg ready[] = {sa_ctx(), sa_i64(l->stage), sa_i64(li)};
  lower_emit(l, ENT_gen_grads_ready, ready, 3,
             arena_printf(l->a, "%s's gradients are final after the last micro-batch: start their reduction", ly->name));
}
