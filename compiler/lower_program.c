/* lower_program.c - a rank's program from the model IR: the pipeline partition, one
 * memory plan and forward/backward/zero functions per stage (rules in lower.c), the
 * boundary buffers pipeline transfers use, and gvp_describe(), which declares every
 * stage to the runtime. One binary serves all ranks; each rank runs its stage's part. */
#include <string.h>

#include "lower_impl.h"

/* ---- one stage ---- */

typedef struct Stage {
  L l;
  int first, last;           /* layers [first, last] */
  int in_act, in_grad, out_act, out_grad;
  int64_t in_elems, out_elems;
  /* the values received from the previous stage and sent to the next: the previous layer's
   * output, and values crossing blocks carried through (packed one after the other) */
  int *bin, nbin, *bout, nbout;
  int logits;
  int64_t logits_rows;       /* > 0: the logits hold this rank's token rows of the tp group (vsp) */
  int64_t logits_cols;       /* this rank's columns of them (below the vocabulary under vocabulary tp) */
  int64_t shard_bytes;       /* ZeRO: bytes of the gradient/optimizer shard of one dp rank */
  signed char *split_dim;    /* per parameter: -1 replicated, 0 rows or 1 columns split over tp */
  int *zlayer;               /* per parameter: its ZeRO-3 layer, -1 when not sharded */
  int64_t *zrel;             /* per parameter: ZeRO-3 byte offset inside its layer's range */
  int *ptp;                  /* per parameter: the tp degree of its layer (per-layer tp) */
  unsigned char *expert;     /* per parameter: an expert weight spread over the ep group (lower_expert_param) */
  unsigned char *by_expert;  /* per parameter: described as [experts, out x in] (tp_of_ep splits each expert's outputs) */
  unsigned char *grouped;    /* per parameter: a grouped linear's weight [experts, out, in] */
  int *player;               /* per parameter: the first layer using it (its backward finishes the gradient) */
  int64_t grad_acc;          /* no_async_grad_reduce: the accumulator's offset in the grads arena, or -1 */
  unsigned char *vocab_param; /* per parameter: its rows are the (padded) vocabulary */
} Stage;

static int param_init(const IrModel *m, int pi, double *std)
{
  *std = 0.02;
  for (int i = 0; i < m->nnodes; i++) {
    const IrNode *n = &m->nodes[i];
    for (int k = 0; k < n->nparam; k++)
      if (n->param[k] == pi) {
        if (k == 1 || (n->op == IR_OP_RMSNORM && n->fattr[1] == 1.0))
          return 1; /* bias (or norm shift), or an RMSNorm scale of offset 1 (1 + w): zeros */
        if (n->op == IR_OP_LAYERNORM || n->op == IR_OP_RMSNORM)
          return 2; /* norm scale: ones */
        return 0;
      }
  }
  return 0;
}

/* The values that enter stage s: produced by a layer of an earlier stage, read by a layer of
 * stage s or later (a value read two stages on is carried through the one between). The
 * first is the input of the stage's first layer. */
static int *boundary_values(Arena *a, const IrModel *m, const int *stage_of, int s, int *n)
{
  int *last_reader = ARENA_ARRAY(a, int, m->nvalues ? m->nvalues : 1), *pstage = ARENA_ARRAY(a, int, m->nvalues ? m->nvalues : 1);
  for (int v = 0; v < m->nvalues; v++)
    last_reader[v] = pstage[v] = -1;
  int first = -1;
  for (int li = 0; li < m->nlayers; li++) {
    const IrLayer *ly = &m->layers[li];
    if (first < 0 && stage_of[li] == s)
      first = li;
    for (int ni = ly->first_node; ni < ly->first_node + ly->nnodes; ni++) {
      pstage[m->nodes[ni].out] = stage_of[li];
      for (int i = 0; i < m->nodes[ni].nin; i++)
        if (stage_of[li] > last_reader[m->nodes[ni].in[i]])
          last_reader[m->nodes[ni].in[i]] = stage_of[li];
    }
  }
  int *out = ARENA_ARRAY(a, int, m->nvalues ? m->nvalues : 1);
  *n = 0;
  int lead = first >= 0 ? m->layers[first].in_value : -1;
  if (lead >= 0 && !m->values[lead].is_index && pstage[lead] >= 0 && pstage[lead] < s)
    out[(*n)++] = lead;
  for (int v = 0; v < m->nvalues; v++)
    if (v != lead && !m->values[v].is_index && pstage[v] >= 0 && pstage[v] < s && last_reader[v] >= s)
      out[(*n)++] = v;
  return out;
}

static void init_stage(Stage *st, Arena *a, const IrModel *m, const ParPlan *o, SchedProgram *prog, int s,
                       const int *stage_of)
{
  L *l = &st->l;
  memset(st, 0, sizeof *st);
  int64_t slots = o->pp == 1 ? 1 : o->pipeline_1f1b ? (o->pp - s < o->chunks ? o->pp - s : o->chunks) : o->chunks;
  *l = (L){.a = a, .m = m, .o = o, .prog = prog, .stage = s, .es = o->bf16 ? 2 : 4, .err_node = -1};
  l->plan = plan_new(a, slots);
  l->val = ARENA_ARRAY(a, int, m->nvalues);
  l->grad = ARENA_ARRAY(a, int, m->nvalues);
  l->ginit = ARENA_ARRAY(a, unsigned char, m->nvalues);
  l->needed = ARENA_ARRAY(a, unsigned char, m->nvalues);
  l->cross = lower_cross_values(a, m);
  l->split = ARENA_ARRAY(a, unsigned char, m->nvalues);
  l->tp_node = ARENA_ARRAY(a, unsigned char, m->nnodes);
  lower_find_ep_mlps(l);
  lower_find_swiglus(l);
  l->rsplit = ARENA_ARRAY(a, unsigned char, m->nvalues);
  l->sp_partial = ARENA_ARRAY(a, unsigned char, m->nparams);
  l->sp_gathered = ARENA_ARRAY(a, int, m->nvalues);
  l->ul_out = ARENA_ARRAY(a, unsigned char, m->nnodes);
  l->ul_in = ARENA_ARRAY(a, unsigned char, m->nnodes);
  l->ul_keep = ARENA_ARRAY(a, int, m->nnodes);
  l->sp_in_full = ARENA_ARRAY(a, int, m->nlayers);
  l->sp_in_slice = ARENA_ARRAY(a, int, m->nlayers);
  l->sp_gather_from = ARENA_ARRAY(a, int, m->nlayers);
  for (int i = 0; i < m->nvalues; i++)
    l->sp_gathered[i] = -1;
  for (int i = 0; i < m->nlayers; i++)
    l->sp_in_full[i] = l->sp_in_slice[i] = l->sp_gather_from[i] = -1;
  l->vdeg = ARENA_ARRAY(a, int, m->nvalues);
  l->rowf = ARENA_ARRAY(a, int, m->nvalues);
  l->conv_from = ARENA_ARRAY(a, int, m->nlayers);
  l->conv_from_f = ARENA_ARRAY(a, int, m->nlayers);
  l->in_after = ARENA_ARRAY(a, struct LowerIn, m->nlayers);
  l->xs = ARENA_ARRAY(a, struct LowerXs, m->nlayers);
  for (int i = 0; i < m->nvalues; i++)
    l->vdeg[i] = o->tp, l->rowf[i] = 1;
  for (int li = 0; li < m->nlayers; li++) { /* a value starts in its producer's rows (stage boundaries too) */
    l->conv_from[li] = l->in_after[li].buf = -1;
    for (int k = 0; k < m->layers[li].nnodes; k++)
      l->rowf[m->nodes[m->layers[li].first_node + k].out] = lower_layer_rowf(l, li);
  }
  l->aux0 = ARENA_ARRAY(a, int, m->nnodes);
  l->aux1 = ARENA_ARRAY(a, int, m->nnodes);
  l->pbuf = ARENA_ARRAY(a, int, m->nparams);
  l->gbuf = ARENA_ARRAY(a, int, m->nparams);
  l->mbuf = ARENA_ARRAY(a, int, m->nparams);
  for (int i = 0; i < m->nvalues; i++)
    l->val[i] = l->grad[i] = -1;
  for (int i = 0; i < m->nparams; i++)
    l->pbuf[i] = l->gbuf[i] = l->mbuf[i] = -1;
  st->first = -1;
  for (int i = 0; i < m->nlayers; i++)
    if (o->layer[i].stage == s) {
      if (st->first < 0)
        st->first = i;
      st->last = i;
    }
  st->in_act = st->in_grad = st->out_act = st->out_grad = st->logits = -1;
  st->bin = boundary_values(a, m, stage_of, s, &st->nbin);
  st->bout = boundary_values(a, m, stage_of, s + 1, &st->nbout);
  st->vocab_param = ARENA_ARRAY(a, unsigned char, m->nparams);
  if (o->vocab > 0 && lower_vocab_params(m, st->vocab_param))
    lower_fail(l, -1, "vocabulary padding: the LM head cannot be padded");
}

/* How a tensor-parallel node splits its parameter j: a @col weight by rows (outputs) and
 * its bias by columns; a @row weight by columns (inputs), its bias replicated. */
static int split_of(const L *l, const IrNode *n, int node, int j)
{
  if (!l->tp_node[node])
    return -1;
  if (n->op == IR_OP_EMBEDDING) /* vocabulary rows */
    return 0;
  if (n->op == IR_OP_GROUPED_LINEAR) /* tp_of_ep: columns of [experts, out x in] or of [experts x out, in] */
    return j == 0 ? 1 : -1;
  if (n->op != IR_OP_LINEAR)
    return -1;
  if (n->tp == IR_TP_COL || n->tp == IR_TP_VOCAB)
    return j == 0 ? 0 : 1;
  return j == 0 ? 1 : -1;
}

/* tp_of_ep: a grouped linear splitting each expert's outputs, its weight described as
 * [experts, out x in] so that each rank's part is a block of columns. */
static int split_by_expert(const L *l, const IrNode *n, int node)
{
  return n->op == IR_OP_GROUPED_LINEAR && l->tp_node[node] && !l->split[n->in[0]];
}

/* ZeRO-3 for a block: its parameters laid out in one range (padded so the data-parallel
 * ranks get equal shards), kernels reading them from the shared gather buffer and
 * writing gradients to the shared full-gradient buffer; only the shards persist. Expert
 * weights under expert parallelism stay out of it (plan_params: this rank's experts whole,
 * reduced over their expert-data-parallel group). */
static void plan_zero3_layer(Stage *st, int li, int64_t dp)
{
  L *l = &st->l;
  const IrModel *m = l->m;
  int64_t rel = 0;
  for (int k = 0; k < m->layers[li].nnodes; k++) {
    int node = m->layers[li].first_node + k;
    const IrNode *n = &m->nodes[node];
    for (int j = 0; j < n->nparam; j++) {
      int pi = n->param[j];
      if (l->pbuf[pi] >= 0 || lower_expert_param(l, n, j))
        continue;
      int64_t cnt = 1;
      for (int d = 0; d < m->params[pi].shape.rank; d++)
        cnt *= m->params[pi].shape.d[d];
      st->split_dim[pi] = (signed char)split_of(l, n, node, j); /* ZeRO-3 shards this rank's tp block */
      if (st->split_dim[pi] >= 0)
        cnt /= lower_layer_tp(l, li);
      st->by_expert[pi] = (unsigned char)split_by_expert(l, n, node);
      st->grouped[pi] = (unsigned char)(n->op == IR_OP_GROUPED_LINEAR && j == 0);
      st->zlayer[pi] = li;
      st->ptp[pi] = lower_layer_tp(l, li);
      st->player[pi] = li;
      st->zrel[pi] = rel;
      l->pbuf[pi] = plan_alias(l->plan, m->params[pi].name, l->z3_gather, rel, l->es * cnt);
      l->gbuf[pi] = plan_alias(l->plan, arena_printf(l->a, "%s.grad", m->params[pi].name), l->z3_grad, rel, l->es * cnt);
      rel += (l->es * cnt + 63) / 64 * 64;
    }
  }
  int64_t range = gv_prog_shard_range(rel, dp);
  l->z3[li].range = range;
  l->z3[li].pshard = plan_buf(l->plan, arena_printf(l->a, "%s.zero3.param_shard", m->layers[li].name), PLAN_PARAMS,
                              PC_STATIC, range / dp);
  l->z3[li].gshard = plan_buf(l->plan, arena_printf(l->a, "%s.zero3.grad_shard", m->layers[li].name), PLAN_GRADS,
                              PC_STATIC, range / dp);
  l->z3[li].mshard = plan_buf(l->plan, arena_printf(l->a, "%s.zero3.adam_m_v", m->layers[li].name), PLAN_OPTIM,
                              PC_STATIC, lower_state_bytes(l, range / dp / l->es));
  if (range > l->plan->bufs[l->z3_gather].bytes)
    l->plan->bufs[l->z3_gather].bytes = l->plan->bufs[l->z3_grad].bytes = range;
}

/* Parameters read by the stage's layers (a tied weight is planned on every stage using it). */
static void plan_params(Stage *st)
{
  L *l = &st->l;
  const IrModel *m = l->m;
  st->split_dim = ARENA_ARRAY(l->a, signed char, m->nparams);
  st->zlayer = ARENA_ARRAY(l->a, int, m->nparams);
  st->zrel = ARENA_ARRAY(l->a, int64_t, m->nparams);
  st->ptp = ARENA_ARRAY(l->a, int, m->nparams);
  st->expert = ARENA_ARRAY(l->a, unsigned char, m->nparams);
  st->by_expert = ARENA_ARRAY(l->a, unsigned char, m->nparams);
  st->grouped = ARENA_ARRAY(l->a, unsigned char, m->nparams);
  st->player = ARENA_ARRAY(l->a, int, m->nparams);
  for (int i = 0; i < m->nparams; i++)
    st->zlayer[i] = -1;
  if (l->o->any_zero3) {
    l->z3 = ARENA_ARRAY(l->a, struct LowerZ3, m->nlayers);
    l->z3_gather = plan_buf(l->plan, "zero3.gathered_params (one block at a time)", PLAN_PARAMS, PC_STATIC, 0);
    l->z3_grad = plan_buf(l->plan, "zero3.full_grads (one block at a time)", PLAN_GRADS, PC_STATIC, 0);
    for (int li = st->first; li <= st->last; li++)
      if (l->o->layer[li].dp_type == DP_ZERO3)
        plan_zero3_layer(st, li, lower_layer_dp(l, li)); /* its own dp degree */
  }
  for (int li = st->first; li <= st->last; li++)
    for (int k = 0; k < m->layers[li].nnodes; k++) {
      int node = m->layers[li].first_node + k;
      const IrNode *n = &m->nodes[node];
      for (int j = 0; j < n->nparam; j++) {
        int pi = n->param[j];
        if (l->pbuf[pi] >= 0) {
          if (st->ptp[pi] != lower_layer_tp(l, li))
            lower_fail(l, node, arena_printf(l->a, "parameter %s is shared by layers of different tp degrees",
                                             m->params[pi].name));
          continue;
        }
        st->ptp[pi] = lower_layer_tp(l, li);
        st->player[pi] = li;
        const IrParam *p = &m->params[pi];
        int64_t cnt = 1;
        for (int d = 0; d < p->shape.rank; d++)
          cnt *= p->shape.d[d];
        st->split_dim[pi] = (signed char)split_of(l, n, node, j);
        if (st->split_dim[pi] >= 0)
          cnt /= lower_layer_tp(l, li);
        st->by_expert[pi] = (unsigned char)split_by_expert(l, n, node);
      st->grouped[pi] = (unsigned char)(n->op == IR_OP_GROUPED_LINEAR && j == 0);
        st->grouped[pi] = (unsigned char)(n->op == IR_OP_GROUPED_LINEAR && j == 0);
        st->expert[pi] = (unsigned char)lower_expert_param(l, n, j);
        if (st->expert[pi]) /* this rank's experts */
          cnt /= par_ep(l->o);
        int64_t owned = cnt;
        if (lower_zero2_per_param(l)) { /* ZeRO-2 per parameter over its layer's (expert-)dp group (run.c) */
          int64_t dp = st->expert[pi] ? par_expert_grad_ranks(l->o, &l->o->layer[li]) : lower_layer_dp(l, li),
                  chunk = gv_prog_zero2_chunk(cnt, dp);
          cnt = chunk * dp;
          owned = chunk;
        }
        l->pbuf[pi] = plan_buf(l->plan, p->name, PLAN_PARAMS, PC_STATIC, l->es * cnt);
        l->gbuf[pi] = plan_buf(l->plan, arena_printf(l->a, "%s.grad", p->name), PLAN_GRADS, PC_STATIC, l->es * cnt);
        if (!lower_zero2_flat(l)) /* flat ZeRO-2: one optimizer shard (lower_stage) */
          l->mbuf[pi] = plan_buf(l->plan, arena_printf(l->a, "%s.adam", p->name), PLAN_OPTIM, PC_STATIC,
                                 lower_state_bytes(l, owned));
      }
    }
}

static int64_t boundary_elems(const L *l, const int *v, int n)
{
  int64_t e = 0;
  for (int k = 0; k < n; k++)
    e += lower_numel(l, v[k]);
  return e;
}

/* The values sent to the next stage: one is sent from its own buffer; several are packed
 * into one buffer kept per slot (one transfer per micro-batch). */
static void send_values(Stage *st)
{
  L *l = &st->l;
  if (st->nbout == 1) {
    st->out_act = l->val[st->bout[0]];
    return;
  }
  st->out_act = lower_new_buf(l, "stage.out (packed)", PC_SLOT, l->es * st->out_elems);
  for (int k = 0, at = 0; k < st->nbout; at += (int)lower_numel(l, st->bout[k]), k++) {
    int v = st->bout[k];
    int64_t n = lower_numel(l, v);
    int part = plan_alias(l->plan, lower_vname(l, st->last, v, "sent"), st->out_act, (int64_t)l->es * at, l->es * n);
    EMIT(l, ENT_gen_grad, arena_printf(l->a, "pipeline: pack %s", lower_vname(l, st->last, v, "sent")), B(l, part),
         V(l, v), sa_i64(n), sa_i64(0));
  }
}

/* Several received values: their gradients packed into the one buffer sent back (zeros
 * where none reached a value). */
static void return_gradients(Stage *st)
{
  L *l = &st->l;
  for (int k = 0, at = 0; k < st->nbin; at += (int)lower_numel(l, st->bin[k]), k++) {
    int v = st->bin[k];
    int64_t n = lower_numel(l, v);
    int part = plan_alias(l->plan, lower_vname(l, st->first, v, "grad_sent"), st->in_grad, (int64_t)l->es * at, l->es * n);
    if (l->grad[v] >= 0 && l->ginit[v])
      EMIT(l, ENT_gen_grad, "pipeline: pack a received value's gradient", B(l, part), B(l, l->grad[v]), sa_i64(n),
           sa_i64(0));
    else
      EMIT(l, ENT_gen_fill, "pipeline: no gradient reached this received value", B(l, part), sa_i64(n), sa_f32(0.0f));
  }
}

static void set_function(L *l, const char *what, int fn)
{
  l->cur = sched_func(l->prog, arena_printf(l->a, "gvp_%s_s%d", what, l->stage));
  l->cur_fn = fn;
}

static int reads_value(const IrModel *m, int v)
{
  for (int i = 0; i < m->nnodes && v >= 0; i++)
    for (int k = 0; k < m->nodes[i].nin; k++)
      if (m->nodes[i].in[k] == v)
        return 1;
  return 0;
}

static int reads_segments(const IrModel *m) { return reads_value(m, m->segments_value); }

/* Does the model read src_tokens (an encoder's embedding, or an attention's key mask)? */
int lower_reads_src(const IrModel *m)
{
  for (int i = 0; i < m->nnodes; i++)
    if (m->nodes[i].op == IR_OP_ATTENTION && m->nodes[i].iattr[3])
      return 1;
  return reads_value(m, m->src_value);
}

static void lower_stage(Stage *st)
{
  L *l = &st->l;
  const IrModel *m = l->m;
  int64_t BT = l->o->micro_batch * l->o->seq;
  if (lower_tp_split(l, st->nbin > 1 ? 0 : st->first, st->last)) /* from 0: the layouts of values crossing blocks */
    return;
  plan_params(st);
  l->io_tokens = l->val[m->tokens_value] = lower_new_buf(l, "io.tokens", PC_SLOT, 4 * BT);
  l->io_labels = l->val[m->labels_value] = lower_new_buf(l, "io.labels", PC_SLOT, 4 * BT);
  l->io_loss = lower_new_buf(l, "io.loss", PC_SLOT, 4);
  l->io_pixels = reads_value(m, m->pixels_value) /* images, in the program's float type */
                     ? (l->val[m->pixels_value] = lower_new_buf(l, "io.pixels", PC_SLOT, l->es * lower_numel(l, m->pixels_value)))
                     : -1;
  int64_t BS = l->o->micro_batch * par_src_seq(l->o); /* the source's ids [B, S] */
  l->io_src = lower_reads_src(m) ? (l->val[m->src_value] = lower_new_buf(l, "io.src", PC_SLOT, 4 * BS)) : -1;
  int segs = reads_segments(m) ? 1 : -1; /* token types, when the model reads them: all zero (one segment) */
  if (l->stage > 0 && st->nbin == 1) { /* received activation, and the gradient sent back */
    int vin = st->bin[0];
    st->in_elems = lower_numel(l, vin);
    st->in_act = l->val[vin] = lower_new_buf(l, "stage.in", PC_SLOT, l->es * st->in_elems);
    st->in_grad = l->grad[vin] = plan_buf(l->plan, "stage.in.grad", PLAN_ACTS, PC_STATIC, l->es * st->in_elems);
  } else if (l->stage > 0) { /* several, packed: each value an alias of its part */
    st->in_elems = boundary_elems(l, st->bin, st->nbin);
    st->in_act = lower_new_buf(l, "stage.in (packed)", PC_SLOT, l->es * st->in_elems);
    st->in_grad = plan_buf(l->plan, "stage.in.grad (packed)", PLAN_ACTS, PC_STATIC, l->es * st->in_elems);
    for (int k = 0, at = 0; k < st->nbin; at += (int)lower_numel(l, st->bin[k]), k++)
      l->val[st->bin[k]] = plan_alias(l->plan, lower_vname(l, st->first, st->bin[k], "received"), st->in_act,
                                      (int64_t)l->es * at, l->es * lower_numel(l, st->bin[k]));
  }
  if (l->stage < l->o->pp - 1) { /* sent activation, and its gradient received back */
    st->out_elems = boundary_elems(l, st->bout, st->nbout);
    st->out_grad = plan_buf(l->plan, st->nbout > 1 ? "stage.out.grad (packed)" : "stage.out.grad", PLAN_ACTS,
                            PC_STATIC, l->es * st->out_elems);
  }
  lower_mark_needed(l);
  set_function(l, "fwd", FN_FWD);
  if (segs > 0) {
    l->val[m->segments_value] = lower_new_buf(l, "io.segments", PC_SLOT, 4 * BT);
    SchedArg z[] = {sa_ctx(), lower_buf_arg(l, l->val[m->segments_value]), sa_i64(4 * BT)};
    lower_emit(l, ENT_gen_zero, z, 3, "token types: one segment (i32 zeros)");
  }
  for (int i = st->first; i <= st->last && !l->err; i++)
    lower_forward_layer(l, i, 0);
  if (l->stage < l->o->pp - 1)
    lower_aux_stage_loss(l); /* MoE load-balancing terms of a stage without the head: its own loss */
  if (l->stage < l->o->pp - 1)
    send_values(st);
  set_function(l, "bwd", FN_BWD);
  if (st->out_grad >= 0 && st->nbout == 1) {
    l->grad[st->bout[0]] = st->out_grad;
    l->ginit[st->bout[0]] = 1;
  } else if (st->out_grad >= 0) { /* the received gradients, accumulated into by this stage's readers */
    for (int k = 0, at = 0; k < st->nbout; at += (int)lower_numel(l, st->bout[k]), k++) {
      int v = st->bout[k];
      l->grad[v] = plan_alias(l->plan, lower_vname(l, st->last, v, "grad_received"), st->out_grad, (int64_t)l->es * at,
                              l->es * lower_numel(l, v));
      l->ginit[v] = 1;
    }
  }
  for (int i = st->last; i >= st->first && !l->err; i--)
    lower_backward_layer(l, i);
  if (l->stage > 0 && st->nbin > 1)
    return_gradients(st);
  lower_emit(l, ENT_gen_backward_done, (SchedArg[]){sa_ctx(), sa_i64(l->stage)}, 2,
             "the micro-batch's backward is done (no_async_grad_reduce reduces here)");
  for (int i = 0; i < m->nnodes; i++)
    if (m->nodes[i].op == IR_OP_CROSS_ENTROPY && l->val[m->nodes[i].in[0]] >= 0) {
      st->logits = l->val[m->nodes[i].in[0]];
      st->logits_rows = l->rsplit[m->nodes[i].in[0]] ? lower_rows(l, m->nodes[i].in[0]) : 0;
      st->logits_cols = lower_last_dim(l, m->nodes[i].in[0]); /* < vocab: split by vocabulary tp */
    }
  plan_assign(l->plan);
  if (lower_zero2_flat(l)) { /* ZeRO-2: grads reduce-scattered into dp shards; AdamW */
    int64_t dp = (int64_t)l->o->dp * par_cp(l->o), *ab = l->plan->arena_bytes; /* shards over dp x cp */
    ab[PLAN_PARAMS] = ab[PLAN_GRADS] = gv_prog_shard_range(ab[PLAN_GRADS], dp);
    st->shard_bytes = ab[PLAN_GRADS] / dp;
    plan_append(l->plan, "zero.adam_m_v (this rank's shard)", PLAN_OPTIM, lower_state_bytes(l, st->shard_bytes / l->es), 64);
  }
  st->grad_acc = -1;
  if (l->o->no_async_grad_reduce) { /* the reduced gradients, laid out like the gradient arena */
    int64_t *ab = l->plan->arena_bytes;
    st->grad_acc = ab[PLAN_GRADS];
    plan_append(l->plan, "grads.reduced (no_async_grad_reduce accumulator)", PLAN_GRADS, ab[PLAN_GRADS], 64);
  }
  set_function(l, "zero", FN_ZERO);
  SchedArg zero[] = {sa_ctx(), sa_buf(PLAN_GRADS, 0, 0), sa_i64(l->plan->arena_bytes[PLAN_GRADS] / l->es), sa_f32(0.0f)};
  sched_call(l->prog, l->cur, entry_callee(ENT_gen_fill), zero, 4)->comment = "zero every gradient of the stage";
}

/* Rewrite the stage's buffer-id arguments into (arena, offset, stride). */
static void patch_stage(Stage *st, int first_func)
{
  L *l = &st->l;
  for (int f = first_func; f < l->prog->nfuncs; f++)
    for (int c = 0; c < l->prog->funcs[f].ncalls; c++) {
      SchedCall *call = &l->prog->funcs[f].calls[c];
      for (int k = 0; k < call->nargs; k++) {
        SchedArg *a = &call->args[k];
        if (a->kind != SA_BUF || a->arena != -1)
          continue;
        const PlanBuf *b = &l->plan->bufs[a->i];
        *a = sa_buf(b->kind, b->offset, plan_stride(l->plan, (int)a->i));
      }
    }
}

/* ---- the decode step (generation with a KV cache) ---- */

/* Whether the program gets a decode step: one stage, no tensor parallelism of any kind (tp,
 * sequence parallel, Ulysses, vocabulary tp all make tp > 1), no context parallelism, no ZeRO-3 (its gathers are
 * collectives over the data-parallel group, which samples on one rank), a causal language
 * model without token types. */
static int decode_applies(const IrModel *m, const ParPlan *o)
{
  if (o->pp != 1 || o->tp != 1 || o->cp > 1 || o->any_zero3 || reads_segments(m) || reads_value(m, m->pixels_value) ||
      lower_reads_src(m))
    return 0;
  for (int i = 0; i < m->nnodes; i++) /* (a position bias is made for the whole sequence) */
    if (m->nodes[i].op == IR_OP_ATTENTION && (!m->nodes[i].iattr[2] || m->nodes[i].nin > 3))
      return 0;
  return 1;
}

/* The forward of one token (micro-batch 1, sequence 1) as gvp_decode_s0, from the same IR
 * and rules as the training forward: the position-dependent ops read the runtime's decode
 * position, attention appends to and reads the KV cache. Its activations get a plan of their
 * own (an arena the runtime allocates for sampling); its parameters are the training
 * plan's, at the same offsets. */
static void lower_decode(Stage *d, const Stage *train, const int *stage_of)
{
  const L *tl = &train->l;
  const IrModel *m = tl->m;
  ParPlan *one = ARENA_NEW(tl->a, ParPlan);
  *one = *tl->o;
  one->micro_batch = one->seq = 1;
  ParLayer *rows = ARENA_ARRAY(tl->a, ParLayer, m->nlayers ? m->nlayers : 1);
  for (int i = 0; i < m->nlayers; i++) { /* no recomputation: there is no backward */
    rows[i] = tl->o->layer[i];
    rows[i].ckpt = 0;
  }
  one->layer = rows;
  init_stage(d, tl->a, m, one, tl->prog, 0, stage_of);
  L *l = &d->l;
  l->decode = 1;
  if (lower_tp_split(l, d->first, d->last))
    return;
  for (int pi = 0; pi < m->nparams; pi++)
    if (tl->pbuf[pi] >= 0)
      l->pbuf[pi] = plan_buf(l->plan, m->params[pi].name, PLAN_PARAMS, PC_STATIC, tl->plan->bufs[tl->pbuf[pi]].bytes);
  l->io_tokens = l->val[m->tokens_value] = plan_buf(l->plan, "decode.token", PLAN_ACTS, PC_STATIC, 4);
  lower_mark_needed(l);
  set_function(l, "decode", FN_FWD);
  for (int i = d->first; i <= d->last && !l->err; i++)
    lower_forward_layer(l, i, 0);
  for (int i = 0; i < m->nnodes; i++)
    if (m->nodes[i].op == IR_OP_CROSS_ENTROPY && l->val[m->nodes[i].in[0]] >= 0)
      d->logits = l->val[m->nodes[i].in[0]];
  plan_assign(l->plan);
  for (int pi = 0; pi < m->nparams; pi++) /* the training plan's parameters */
    if (l->pbuf[pi] >= 0)
      l->plan->bufs[l->pbuf[pi]].offset = tl->plan->bufs[tl->pbuf[pi]].offset;
}

/* ---- describe ---- */

static int64_t off(const Plan *p, int buf) { return buf >= 0 ? p->bufs[buf].offset : -1; }

static void describe_stage(SchedProgram *prog, SchedFunc *d, const Stage *st)
{
  const L *l = &st->l;
  const IrModel *m = l->m;
  const Plan *p = l->plan;
  int64_t s = l->stage;
  for (int k = 0; k < PLAN_KINDS; k++)
    sched_call(prog, d, entry_callee(ENT_prog_arena), (SchedArg[]){sa_ctx(), sa_i64(s), sa_i64(k), sa_i64(p->arena_bytes[k])}, 4);
  for (int i = 0; i < m->nparams; i++) {
    if (l->pbuf[i] < 0)
      continue;
    const IrParam *pr = &m->params[i];
    int64_t r = 1, c = pr->shape.d[pr->shape.rank - 1]; /* rows: every dim but the last (experts x out) */
    for (int q = 0; q + 1 < pr->shape.rank; q++)
      r *= pr->shape.d[q];
    if (st->by_expert[i]) { /* each expert's block of outputs is a block of columns */
      c *= r / pr->shape.d[0];
      r = pr->shape.d[0];
    }
    double std;
    int init = param_init(m, i, &std);
    int z = st->zlayer[i];
    int split = st->split_dim[i] < 0 && l->sp_partial[i] ? -2 : st->split_dim[i];
    SchedArg a[] = {sa_ctx(), sa_str(pr->name), sa_i64(s), sa_i64(r), sa_i64(c), sa_i64(split), sa_i64(z),
                    sa_i64(z >= 0 ? st->zrel[i] : off(p, l->pbuf[i])), sa_i64(z >= 0 ? st->zrel[i] : off(p, l->gbuf[i])),
                    sa_i64(z >= 0 ? -1 : off(p, l->mbuf[i])), sa_i64(pr->shape.rank >= 2), sa_i64(init), sa_f64(std)};
    sched_call(prog, d, entry_callee(ENT_prog_param), a, 13);
    /* the layer finishing its gradient, and (per-layer tp) its own degree */
    sched_call(prog, d, entry_callee(ENT_prog_param_layer), (SchedArg[]){sa_ctx(), sa_str(pr->name), sa_i64(s), sa_i64(st->player[i]),
                                                             sa_i64(l->o->tp_per_layer ? st->ptp[i] : 0)}, 5);
    if (st->grouped[i]) /* spread over the ep group under ep; read and written in either description */
      sched_call(prog, d, entry_callee(ENT_prog_param_expert), (SchedArg[]){sa_ctx(), sa_str(pr->name), sa_i64(s)}, 3);
    if (l->o->vocab > 0 && st->vocab_param[i])
      sched_call(prog, d, entry_callee(ENT_prog_vocab_param), (SchedArg[]){sa_ctx(), sa_str(pr->name), sa_i64(s),
                                                                            sa_i64(l->o->vocab)}, 4);
  }
  if (st->grad_acc >= 0)
    sched_call(prog, d, entry_callee(ENT_prog_grad_reduce), (SchedArg[]){sa_ctx(), sa_i64(s), sa_i64(1), sa_i64(st->grad_acc)}, 4);
  if (l->o->dp_type == DP_ZERO2) /* shard_bytes 0: ZeRO-2 per parameter */
    sched_call(prog, d, entry_callee(ENT_prog_zero), (SchedArg[]){sa_ctx(), sa_i64(s), sa_i64(2), sa_i64(st->shard_bytes)}, 4);
  for (int li = st->first; l->z3 && li <= st->last; li++)
    if (l->z3[li].range) {
      SchedArg z[] = {sa_ctx(), sa_i64(s), sa_i64(li), sa_i64(off(p, l->z3[li].pshard)), sa_i64(off(p, l->z3[li].gshard)),
                      sa_i64(off(p, l->z3[li].mshard)), sa_i64(l->z3[li].range)};
      sched_call(prog, d, entry_callee(ENT_prog_zero3_layer), z, 7);
    }
  SchedArg io[] = {sa_ctx(), sa_i64(s), sa_i64(off(p, l->io_tokens)), sa_i64(off(p, l->io_labels)),
                   sa_i64(l->stage == l->o->pp - 1 || l->naux_loss ? off(p, l->io_loss) : -1), sa_i64(p->slot_bytes),
                   sa_i64(p->slots)};
  sched_call(prog, d, entry_callee(ENT_prog_io), io, 7);
  if (l->io_pixels >= 0) {
    const IrShape *ps = &m->values[m->pixels_value].shape;
    SchedArg im[] = {sa_ctx(), sa_i64(s), sa_i64(off(p, l->io_pixels)), sa_i64(ps->d[1]), sa_i64(ps->d[2])};
    sched_call(prog, d, entry_callee(ENT_prog_images), im, 5);
  }
  if (l->io_src >= 0)
    sched_call(prog, d, entry_callee(ENT_prog_src), (SchedArg[]){sa_ctx(), sa_i64(s), sa_i64(off(p, l->io_src)),
                                                                 sa_i64(par_src_seq(l->o))}, 4);
  if (l->o->pp > 1) {
    SchedArg b[] = {sa_ctx(), sa_i64(s), sa_i64(off(p, st->in_act)), sa_i64(off(p, st->in_grad)),
                    sa_i64(off(p, st->out_act)), sa_i64(off(p, st->out_grad)), sa_i64(st->in_elems),
                    sa_i64(st->out_elems)};
    sched_call(prog, d, entry_callee(ENT_prog_boundary), b, 8);
  }
  if (st->logits >= 0 && p->bufs[st->logits].cls == PC_SLOT)
    sched_call(prog, d, entry_callee(ENT_prog_logits), (SchedArg[]){sa_ctx(), sa_i64(s), sa_i64(off(p, st->logits))}, 3);
  if (st->logits >= 0 && p->bufs[st->logits].cls == PC_SLOT && st->logits_rows > 0)
    sched_call(prog, d, entry_callee(ENT_prog_logits_rows), (SchedArg[]){sa_ctx(), sa_i64(s), sa_i64(st->logits_rows)}, 3);
  if (st->logits >= 0 && p->bufs[st->logits].cls == PC_SLOT && st->logits_cols < m->vocab)
    sched_call(prog, d, entry_callee(ENT_prog_logits_cols),
               (SchedArg[]){sa_ctx(), sa_i64(s), sa_i64(st->logits_cols), sa_i64(m->vocab / st->logits_cols)}, 4);
  SchedArg fns[] = {sa_ctx(), sa_i64(s), sa_fn(arena_printf(l->a, "gvp_fwd_s%d", l->stage)),
                    sa_fn(arena_printf(l->a, "gvp_bwd_s%d", l->stage)), sa_fn(arena_printf(l->a, "gvp_zero_s%d", l->stage))};
  sched_call(prog, d, entry_callee(ENT_prog_stage), fns, 5);
}

/* The decode step's description (its learned positions: the rows of the position table). */
static void describe_decode(SchedProgram *prog, SchedFunc *f, const Stage *d)
{
  const L *l = &d->l;
  int64_t positions = 0;
  for (int i = 0; i < l->m->nnodes; i++)
    if (l->m->nodes[i].op == IR_OP_POS_EMBEDDING)
      positions = l->m->params[l->m->nodes[i].param[0]].shape.d[0];
  SchedArg a[] = {sa_ctx(), sa_i64(0), sa_fn("gvp_decode_s0"), sa_i64(off(l->plan, l->io_tokens)),
                  sa_i64(off(l->plan, d->logits)), sa_i64(l->plan->arena_bytes[PLAN_ACTS]),
                  sa_i64(l->decode_caches), sa_i64(positions)};
  sched_call(prog, f, entry_callee(ENT_prog_decode), a, 8);
}

static void describe(SchedProgram *prog, const Stage *st, int nstages, const Stage *decode)
{
  const L *l0 = &st[0].l;
  const IrModel *m = l0->m;
  const ParPlan *o = l0->o;
  SchedFunc *d = sched_func(prog, "gvp_describe");
  int64_t cp = o->cp > 1 ? o->cp : 1; /* o->seq is the local sequence under cp: the program's is cp times it */
  SchedArg model[] = {sa_ctx(), sa_str(m->name), sa_i64(o->world), sa_i64(o->pp), sa_i64(o->micro_batch),
                      sa_i64(o->seq * cp), sa_i64(m->vocab)};
  sched_call(prog, d, entry_callee(ENT_prog_model), model, 7);
  if (cp > 1)
    sched_call(prog, d, entry_callee(ENT_prog_cp), (SchedArg[]){sa_ctx(), sa_i64(cp)}, 2);
  if (par_ep(o) > 1)
    sched_call(prog, d, entry_callee(ENT_prog_ep), (SchedArg[]){sa_ctx(), sa_i64(par_ep(o))}, 2);
  if (par_tp_of_ep(o) > 1)
    sched_call(prog, d, entry_callee(ENT_prog_tp_of_ep), (SchedArg[]){sa_ctx(), sa_i64(par_tp_of_ep(o))}, 2);
  sched_call(prog, d, entry_callee(ENT_prog_pipeline), (SchedArg[]){sa_ctx(), sa_i64(o->pipeline_1f1b), sa_i64(o->chunks)}, 3);
  if (o->vocab > 0) /* padded: the true vocabulary, and the parameters whose rows it is */
    sched_call(prog, d, entry_callee(ENT_prog_vocab), (SchedArg[]){sa_ctx(), sa_i64(o->vocab)}, 2);
  if (o->global_batch > 0)
    sched_call(prog, d, entry_callee(ENT_prog_batch), (SchedArg[]){sa_ctx(), sa_i64(o->global_batch)}, 2);
  if (o->bf16)
    sched_call(prog, d, entry_callee(ENT_prog_precision), (SchedArg[]){sa_ctx(), sa_str("bf16")}, 2);
  if (o->tp > 1)
    sched_call(prog, d, entry_callee(ENT_prog_tp), (SchedArg[]){sa_ctx(), sa_i64(o->tp), sa_i64(o->tp_consec)}, 3);
  for (int i = 0; i < m->nnodes; i++) /* every attention of a model has one shape */
    if (m->nodes[i].op == IR_OP_ATTENTION) {
      const IrShape *os = &m->values[m->nodes[i].out].shape;
      int64_t H = m->nodes[i].iattr[0], D = os->d[os->rank - 1] / H; /* global heads: an upper bound under tp */
      int64_t S = m->src_value >= 0 && par_src_seq(o) > o->seq ? par_src_seq(o) : o->seq; /* the longest keys */
      SchedArg at[] = {sa_ctx(), sa_i64(o->micro_batch), sa_i64(S), sa_i64(S), sa_i64(H),
                       sa_i64(m->nodes[i].iattr[1]), sa_i64(D)};
      sched_call(prog, d, entry_callee(ENT_prog_attention), at, 7);
      break;
    }
  for (int s = 0; s < nstages; s++)
    describe_stage(prog, d, &st[s]);
  if (decode)
    describe_decode(prog, d, decode);
}

Lowered *lower_model(Arena *a, const IrModel *m, const ParPlan *plan, LowerError *err)
{
  *err = (LowerError){NULL, -1};
  if (m->tokens_value < 0 || m->labels_value < 0 || m->loss_value < 0) {
    err->msg = "the model has no tokens, labels or loss: only language models with a cross-entropy loss can be trained";
    return NULL;
  }
  ParPlan *o = ARENA_NEW(a, ParPlan); /* the stages keep a pointer to it */
  ParError perr;
  *o = *plan;
  if (parplan_resolve(a, m, o, NULL, &perr)) {
    err->msg = perr.msg;
    return NULL;
  }
  const ParPlan *resolved = o;
  for (int i = 0; i < m->nnodes; i++) /* an image model's sequence is its patches and the class token */
    if (m->nodes[i].op == IR_OP_CLASS_TOKEN && (m->nodes[i].iattr[0] != o->seq || o->cp > 1)) {
      err->msg = o->cp > 1 ? "context parallelism splits a sequence of tokens; an image model's patches are not "
                             "split so (train it without --global_cp_deg)"
                           : arena_printf(a, "an image model reads sequences of %lld (its %lld patches and the class "
                                          "token): compile it with --seq %lld, not %lld", (long long)m->nodes[i].iattr[0],
                                          (long long)m->nodes[i].iattr[0] - 1, (long long)m->nodes[i].iattr[0],
                                          (long long)o->seq);
      err->node = i;
      return NULL;
    }
  if (o->cp > 1) { /* context parallelism: every shape on this rank's seq / cp tokens of a sample */
    o = ARENA_NEW(a, ParPlan);
    *o = *resolved;
    o->seq = resolved->seq / resolved->cp;
    o->src_seq = resolved->src_seq / resolved->cp;
  }
  SchedProgram *prog = sched_new(a);
  static const char *const arena_names[PLAN_KINDS] = {
    [PLAN_PARAMS] = "params", [PLAN_GRADS] = "grads", [PLAN_OPTIM] = "optim", [PLAN_ACTS] = "acts",
    [PLAN_WORKSPACE] = "workspace"};
  for (int k = 0; k < PLAN_KINDS; k++)
    prog->arena_names[k] = arena_names[k];
  int *stage_of = ARENA_ARRAY(a, int, m->nlayers ? m->nlayers : 1);
  for (int li = 0; li < m->nlayers; li++)
    stage_of[li] = o->layer[li].stage;
  Stage *st = ARENA_ARRAY(a, Stage, o->pp);
  Lowered *out = ARENA_NEW(a, Lowered);
  out->plans = ARENA_ARRAY(a, Plan *, o->pp);
  out->nstages = o->pp;
  for (int s = 0; s < o->pp; s++) {
    int first_func = prog->nfuncs;
    init_stage(&st[s], a, m, o, prog, s, stage_of);
    if (st[s].first < 0) {
      err->msg = arena_printf(a, "pipeline stage %d has no layer", s);
      return NULL;
    }
    lower_stage(&st[s]);
    if (st[s].l.err) {
      *err = (LowerError){st[s].l.err, st[s].l.err_node};
      return NULL;
    }
    patch_stage(&st[s], first_func);
    out->plans[s] = st[s].l.plan;
  }
  Stage *decode = NULL;
  if (decode_applies(m, o)) {
    int first_func = prog->nfuncs;
    decode = ARENA_NEW(a, Stage);
    lower_decode(decode, &st[0], stage_of);
    if (decode->l.err) {
      *err = (LowerError){decode->l.err, decode->l.err_node};
      return NULL;
    }
    patch_stage(decode, first_func);
  }
  describe(prog, st, o->pp, decode);
  out->prog = prog;
  out->strategy = resolved;
  out->plan = out->plans[0];
  const char *bad = sched_verify(prog);
  if (bad) {
    err->msg = bad;
    return NULL;
  }
  return out;
}
