/* lower_program.c - a rank's program from the model IR: the pipeline partition, one
 * memory plan and forward/backward/zero functions per stage (rules in lower.c), the
 * boundary buffers pipeline transfers use, and gvp_describe(), which declares every
 * stage to the runtime. One binary serves all ranks; each rank runs its stage's part. */
#include <string.h>

#include "lower_impl.h"

int *lower_partition(Arena *a, const IrModel *m, int pp, const int *division, const char **err)
{
  int nb = 0;
  for (int i = 0; i < m->nlayers; i++)
    nb += m->layers[i].kind == IR_LAYER_BLOCK;
  if (pp < 1 || pp > (nb ? nb : 1)) {
    *err = arena_printf(a, "pp=%d needs at least %d blocks, %s has %d", pp, pp, m->name, nb);
    return NULL;
  }
  int *per = ARENA_ARRAY(a, int, pp), sum = 0;
  for (int s = 0; s < pp; s++) {
    per[s] = division ? division[s] : nb / pp + (s >= pp - nb % pp ? 1 : 0);
    if (per[s] < 1) {
      *err = arena_printf(a, "pp_division gives stage %d no layer", s);
      return NULL;
    }
    sum += per[s];
  }
  if (sum != nb) {
    *err = arena_printf(a, "pp_division sums to %d layers but %s has %d blocks", sum, m->name, nb);
    return NULL;
  }
  int *stage = ARENA_ARRAY(a, int, m->nlayers), s = 0, seen = 0;
  for (int i = 0; i < m->nlayers; i++) {
    if (m->layers[i].kind == IR_LAYER_BLOCK) {
      if (seen == per[s] && s < pp - 1) {
        s++;
        seen = 0;
      }
      seen++;
    }
    stage[i] = m->layers[i].kind == IR_LAYER_BLOCK || i == 0 ? s : (seen ? s : 0);
  }
  for (int i = m->nlayers - 1; i >= 0 && m->layers[i].kind != IR_LAYER_BLOCK; i--)
    stage[i] = pp - 1; /* final norm and head go with the last block */
  return stage;
}

/* ---- one stage ---- */

typedef struct Stage {
  L l;
  int first, last;           /* layers [first, last] */
  int in_act, in_grad, out_act, out_grad;
  int64_t in_elems, out_elems;
  int logits;
  int64_t shard_bytes;       /* ZeRO: bytes of the gradient/optimizer shard of one dp rank */
  signed char *split_dim;    /* per parameter: -1 replicated, 0 rows or 1 columns split over tp */
  int *zlayer;               /* per parameter: its ZeRO-3 layer, -1 when not sharded */
  int64_t *zrel;             /* per parameter: ZeRO-3 byte offset inside its layer's range */
  int *ptp;                  /* per parameter: the tp degree of its layer (per-layer tp) */
  int *player;               /* per parameter: the first layer using it (its backward finishes the gradient) */
  int64_t grad_acc;          /* no_async_grad_reduce: the accumulator's offset in the grads arena, or -1 */
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

static void init_stage(Stage *st, Arena *a, const IrModel *m, const LowerOptions *o, SchedProgram *prog, int s,
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
  l->split = ARENA_ARRAY(a, unsigned char, m->nvalues);
  l->tp_node = ARENA_ARRAY(a, unsigned char, m->nnodes);
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
  for (int i = 0; i < m->nvalues; i++)
    l->vdeg[i] = o->tp, l->rowf[i] = 1;
  for (int li = 0; li < m->nlayers; li++) { /* a value starts in its producer's rows (stage boundaries too) */
    l->conv_from[li] = -1;
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
    if (stage_of[i] == s) {
      if (st->first < 0)
        st->first = i;
      st->last = i;
    }
  st->in_act = st->in_grad = st->out_act = st->out_grad = st->logits = -1;
}

/* How a tensor-parallel node splits its parameter j: a @col weight by rows (outputs) and
 * its bias by columns; a @row weight by columns (inputs), its bias replicated. */
static int split_of(const L *l, const IrNode *n, int node, int j)
{
  if (!l->tp_node[node])
    return -1;
  if (n->op == IR_OP_EMBEDDING) /* vocabulary rows */
    return 0;
  if (n->op != IR_OP_LINEAR)
    return -1;
  if (n->tp == IR_TP_COL || n->tp == IR_TP_VOCAB)
    return j == 0 ? 0 : 1;
  return j == 0 ? 1 : -1;
}

/* ZeRO-3 for a block: its parameters laid out in one range (padded so the data-parallel
 * ranks get equal shards), kernels reading them from the shared gather buffer and
 * writing gradients to the shared full-gradient buffer; only the shards persist. */
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
      if (l->pbuf[pi] >= 0)
        continue;
      int64_t cnt = 1;
      for (int d = 0; d < m->params[pi].shape.rank; d++)
        cnt *= m->params[pi].shape.d[d];
      st->split_dim[pi] = (signed char)split_of(l, n, node, j); /* ZeRO-3 shards this rank's tp block */
      if (st->split_dim[pi] >= 0)
        cnt /= lower_layer_tp(l, li);
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
  st->player = ARENA_ARRAY(l->a, int, m->nparams);
  for (int i = 0; i < m->nparams; i++)
    st->zlayer[i] = -1;
  if (l->o->zero == 3) {
    l->z3 = ARENA_ARRAY(l->a, struct LowerZ3, m->nlayers);
    l->z3_gather = plan_buf(l->plan, "zero3.gathered_params (one block at a time)", PLAN_PARAMS, PC_STATIC, 0);
    l->z3_grad = plan_buf(l->plan, "zero3.full_grads (one block at a time)", PLAN_GRADS, PC_STATIC, 0);
    for (int li = st->first; li <= st->last; li++)
      if (m->layers[li].kind == IR_LAYER_BLOCK && (!l->o->zero3_layers || l->o->zero3_layers[li]))
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
        int64_t owned = cnt;
        if (lower_zero2_per_param(l)) { /* ZeRO-2 per parameter over its layer's dp group (run.c) */
          int64_t dp = lower_layer_dp(l, li), chunk = gv_prog_zero2_chunk(cnt, dp);
          cnt = chunk * dp;
          owned = chunk;
        }
        l->pbuf[pi] = plan_buf(l->plan, p->name, PLAN_PARAMS, PC_STATIC, l->es * cnt);
        l->gbuf[pi] = plan_buf(l->plan, arena_printf(l->a, "%s.grad", p->name), PLAN_GRADS, PC_STATIC, l->es * cnt);
        if (l->o->zero != 2 || lower_zero2_per_param(l)) /* flat ZeRO-2: one optimizer shard (lower_stage) */
          l->mbuf[pi] = plan_buf(l->plan, arena_printf(l->a, "%s.adam", p->name), PLAN_OPTIM, PC_STATIC,
                                 lower_state_bytes(l, owned));
      }
    }
}

static void set_function(L *l, const char *what, int fn)
{
  l->cur = sched_func(l->prog, arena_printf(l->a, "gvp_%s_s%d", what, l->stage));
  l->cur_fn = fn;
}

static void lower_stage(Stage *st)
{
  L *l = &st->l;
  const IrModel *m = l->m;
  int64_t BT = l->o->micro_batch * l->o->seq;
  if (lower_tp_split(l, st->first, st->last))
    return;
  plan_params(st);
  l->io_tokens = l->val[m->tokens_value] = lower_new_buf(l, "io.tokens", PC_SLOT, 4 * BT);
  l->io_labels = l->val[m->labels_value] = lower_new_buf(l, "io.labels", PC_SLOT, 4 * BT);
  l->io_loss = lower_new_buf(l, "io.loss", PC_SLOT, 4);
  int segs = -1; /* token types, when the model reads them: all zero (one segment) */
  for (int i = 0; i < m->nnodes && m->segments_value >= 0; i++)
    for (int k = 0; k < m->nodes[i].nin; k++)
      if (m->nodes[i].in[k] == m->segments_value)
        segs = 1;
  int vin = m->layers[st->first].in_value, vout = m->layers[st->last].out_value;
  if (l->stage > 0) { /* received activation, and the gradient sent back */
    st->in_elems = lower_numel(l, vin);
    st->in_act = l->val[vin] = lower_new_buf(l, "stage.in", PC_SLOT, l->es * st->in_elems);
    st->in_grad = l->grad[vin] = plan_buf(l->plan, "stage.in.grad", PLAN_ACTS, PC_STATIC, l->es * st->in_elems);
  }
  if (l->stage < l->o->pp - 1) { /* sent activation, and its gradient received back */
    st->out_elems = lower_numel(l, vout);
    st->out_grad = plan_buf(l->plan, "stage.out.grad", PLAN_ACTS, PC_STATIC, l->es * st->out_elems);
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
    st->out_act = l->val[vout];
  set_function(l, "bwd", FN_BWD);
  if (st->out_grad >= 0) {
    l->grad[vout] = st->out_grad;
    l->ginit[vout] = 1;
  }
  for (int i = st->last; i >= st->first && !l->err; i--)
    lower_backward_layer(l, i);
  lower_emit(l, ENT_gen_backward_done, (SchedArg[]){sa_ctx(), sa_i64(l->stage)}, 2,
             "the micro-batch's backward is done (no_async_grad_reduce reduces here)");
  for (int i = 0; i < m->nnodes; i++)
    if (m->nodes[i].op == IR_OP_CROSS_ENTROPY && l->val[m->nodes[i].in[0]] >= 0)
      st->logits = l->val[m->nodes[i].in[0]];
  plan_assign(l->plan);
  if (l->o->zero == 2 && !lower_zero2_per_param(l)) { /* ZeRO-2: grads reduce-scattered into dp shards; AdamW */
    int64_t dp = lower_dp(l->o, l->o->tp), *ab = l->plan->arena_bytes;
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
    int64_t r = pr->shape.rank == 2 ? pr->shape.d[0] : 1, c = pr->shape.d[pr->shape.rank - 1];
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
                                                             sa_i64(l->o->layer_tp ? st->ptp[i] : 0)}, 5);
  }
  if (st->grad_acc >= 0)
    sched_call(prog, d, entry_callee(ENT_prog_grad_reduce), (SchedArg[]){sa_ctx(), sa_i64(s), sa_i64(1), sa_i64(st->grad_acc)}, 4);
  if (l->o->zero == 2 || lower_zero2_per_param(l)) /* shard_bytes 0: ZeRO-2 per parameter */
    sched_call(prog, d, entry_callee(ENT_prog_zero), (SchedArg[]){sa_ctx(), sa_i64(s), sa_i64(2), sa_i64(st->shard_bytes)}, 4);
  for (int li = st->first; l->z3 && li <= st->last; li++)
    if (l->z3[li].range) {
      SchedArg z[] = {sa_ctx(), sa_i64(s), sa_i64(li), sa_i64(off(p, l->z3[li].pshard)), sa_i64(off(p, l->z3[li].gshard)),
                      sa_i64(off(p, l->z3[li].mshard)), sa_i64(l->z3[li].range)};
      sched_call(prog, d, entry_callee(ENT_prog_zero3_layer), z, 7);
    }
  SchedArg io[] = {sa_ctx(), sa_i64(s), sa_i64(off(p, l->io_tokens)), sa_i64(off(p, l->io_labels)),
                   sa_i64(off(p, l->io_loss)), sa_i64(p->slot_bytes), sa_i64(p->slots)};
  sched_call(prog, d, entry_callee(ENT_prog_io), io, 7);
  if (l->o->pp > 1) {
    SchedArg b[] = {sa_ctx(), sa_i64(s), sa_i64(off(p, st->in_act)), sa_i64(off(p, st->in_grad)),
                    sa_i64(off(p, st->out_act)), sa_i64(off(p, st->out_grad)), sa_i64(st->in_elems),
                    sa_i64(st->out_elems)};
    sched_call(prog, d, entry_callee(ENT_prog_boundary), b, 8);
  }
  if (st->logits >= 0 && p->bufs[st->logits].cls == PC_SLOT)
    sched_call(prog, d, entry_callee(ENT_prog_logits), (SchedArg[]){sa_ctx(), sa_i64(s), sa_i64(off(p, st->logits))}, 3);
  SchedArg fns[] = {sa_ctx(), sa_i64(s), sa_fn(arena_printf(l->a, "gvp_fwd_s%d", l->stage)),
                    sa_fn(arena_printf(l->a, "gvp_bwd_s%d", l->stage)), sa_fn(arena_printf(l->a, "gvp_zero_s%d", l->stage))};
  sched_call(prog, d, entry_callee(ENT_prog_stage), fns, 5);
}

static void describe(SchedProgram *prog, const Stage *st, int nstages)
{
  const L *l0 = &st[0].l;
  const IrModel *m = l0->m;
  const LowerOptions *o = l0->o;
  SchedFunc *d = sched_func(prog, "gvp_describe");
  int64_t cp = o->cp > 1 ? o->cp : 1; /* o->seq is the local sequence under cp: the program's is cp times it */
  SchedArg model[] = {sa_ctx(), sa_str(m->name), sa_i64(o->world), sa_i64(o->pp), sa_i64(o->micro_batch),
                      sa_i64(o->seq * cp), sa_i64(m->vocab)};
  sched_call(prog, d, entry_callee(ENT_prog_model), model, 7);
  if (cp > 1)
    sched_call(prog, d, entry_callee(ENT_prog_cp), (SchedArg[]){sa_ctx(), sa_i64(cp)}, 2);
  sched_call(prog, d, entry_callee(ENT_prog_pipeline), (SchedArg[]){sa_ctx(), sa_i64(o->pipeline_1f1b), sa_i64(o->chunks)}, 3);
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
      SchedArg at[] = {sa_ctx(), sa_i64(o->micro_batch), sa_i64(o->seq), sa_i64(o->seq), sa_i64(H),
                       sa_i64(m->nodes[i].iattr[1]), sa_i64(D)};
      sched_call(prog, d, entry_callee(ENT_prog_attention), at, 7);
      break;
    }
  for (int s = 0; s < nstages; s++)
    describe_stage(prog, d, &st[s]);
}

Lowered *lower_model(Arena *a, const IrModel *m, const LowerOptions *o, LowerError *err)
{
  *err = (LowerError){NULL, -1};
  if (m->tokens_value < 0 || m->labels_value < 0 || m->loss_value < 0) {
    err->msg = "the model has no tokens, labels or loss: only language models with a cross-entropy loss can be trained";
    return NULL;
  }
  if ((err->msg = lower_check(a, m, o, NULL)))
    return NULL;
  if (o->cp > 1) { /* context parallelism: every shape on this rank's seq / cp tokens of a sample */
    LowerOptions *local = ARENA_NEW(a, LowerOptions);
    *local = *o;
    local->seq = o->seq / o->cp;
    o = local;
  }
  const int *stage_of = o->stage_of_layer;
  if (!stage_of && !(stage_of = lower_partition(a, m, o->pp, NULL, &err->msg)))
    return NULL;
  SchedProgram *prog = sched_new(a);
  static const char *const arena_names[PLAN_KINDS] = {
    [PLAN_PARAMS] = "params", [PLAN_GRADS] = "grads", [PLAN_OPTIM] = "optim", [PLAN_ACTS] = "acts",
    [PLAN_WORKSPACE] = "workspace"};
  for (int k = 0; k < PLAN_KINDS; k++)
    prog->arena_names[k] = arena_names[k];
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
  describe(prog, st, o->pp);
  out->prog = prog;
  out->plan = out->plans[0];
  const char *bad = sched_verify(prog);
  if (bad) {
    err->msg = bad;
    return NULL;
  }
  return out;
}
