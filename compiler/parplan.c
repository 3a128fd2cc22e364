/* parplan.c - the resolved parallel strategy (parplan.h): the layer rows from the plan's
 * defaults, the degrees derived from them once, the stage partition, and the one check of
 * a plan, whatever door filled it. */
#include "parplan.h"

#include <stdio.h>
#include <string.h>

void parplan_defaults(ParPlan *p)
{
  memset(p, 0, sizeof *p);
  p->nodes = p->gpus_per_node = p->world = 1;
  p->pp = p->tp = p->tp_consec = p->vtp = p->cp = p->ep = p->tp_of_ep = 1;
  p->pipeline_1f1b = 1;
  p->dp_type = DP_DDP;
}

void parplan_layers(Arena *a, const IrModel *m, ParPlan *p)
{
  p->nlayers = m->nlayers;
  p->layer = ARENA_ARRAY(a, ParLayer, m->nlayers);
  for (int i = 0; i < m->nlayers; i++) {
    int block = m->layers[i].kind == IR_LAYER_BLOCK;
    p->layer[i] = (ParLayer){.tp = p->tp > 1 ? p->tp : 1,
                             .sp = !block ? PAR_SP_NONE : p->ulysses ? PAR_SP_ULYSSES : p->sp ? PAR_SP_MEGATRON : PAR_SP_NONE,
                             .dp_type = block || p->dp_type != DP_ZERO3 ? p->dp_type : DP_DDP};
  }
}

/* Per-layer tp degrees: each divides the base degree (the largest), the micro-batch divides
 * into the row factors, consecutive groups, and nothing yet combined with it. */
static const char *check_layer_tp(Arena *a, const IrModel *m, const ParPlan *p)
{
  if (p->sp || p->ulysses || !p->tp_consec)
    return arena_printf(a, "different tp degrees per layer work with consecutive tp groups and without sequence "
                        "parallelism only (not yet with %s)", p->sp ? "sequence parallelism" : p->ulysses ? "Ulysses" :
                        "strided tp groups");
  for (int i = 0; i < m->nlayers; i++) {
    int t = p->layer[i].tp;
    if (t < 1 || t > p->tp || p->tp % t)
      return arena_printf(a, "%s: tp=%d does not divide the largest per-layer degree %d", m->layers[i].name, t, p->tp);
    if (p->micro_batch % (p->tp / t))
      return arena_printf(a, "%s: tp=%d runs on 1/%d of its group's micro-batch of %lld samples: not divisible (use a "
                          "micro-batch that is a multiple of %d)", m->layers[i].name, t, p->tp / t,
                          (long long)p->micro_batch, p->tp / t);
  }
  return NULL;
}

/* Context parallelism: the data-parallel ranks of a stage split into cp x dp, every
 * attention causal, unscaled and unbiased with a sequence of 2 x cp chunks (zigzag), and
 * what it does not combine with yet. */
static const char *check_cp(Arena *a, const IrModel *m, const ParPlan *p, const char *cp_name)
{
  int tp = p->tp > 1 ? p->tp : 1;
  if ((p->world / p->pp / tp) % p->cp)
    return arena_printf(a, "the %d data-parallel ranks of a stage (world %d / pp %d / tp %d) are not divisible by %s %d",
                        p->world / p->pp / tp, p->world, p->pp, tp, cp_name, p->cp);
  const char *no = p->ulysses ? "Ulysses" : p->tp_per_layer ? "per-layer or vocabulary tp degrees"
                   : p->vtp > 1 ? "vocabulary tp" : p->bf16 ? "bf16 mixed precision" : NULL;
  if (no)
    return arena_printf(a, "context parallelism (%s %d) does not combine with %s yet", cp_name, p->cp, no);
  for (int li = 0; li < m->nlayers; li++)
    for (int i = m->layers[li].first_node; i < m->layers[li].first_node + m->layers[li].nnodes; i++) {
      const IrNode *nd = &m->nodes[i];
      const char *layer = m->layers[li].name;
      if (nd->op == IR_OP_ATTENTION && !nd->iattr[2])
        return arena_printf(a, "%s: attention is bidirectional (not causal): context parallelism (%s %d) splits "
                            "causal self-attention only (ring attention, zigzag)", layer, cp_name, p->cp);
      if (nd->op == IR_OP_ATTENTION && (nd->nin > 3 || nd->fattr[0] != 0))
        return arena_printf(a, "%s: attention with a bias or its own scale: context parallelism (%s %d) does not "
                            "support it yet (ring attention scales by 1/sqrt(D), without bias)", layer, cp_name, p->cp);
      if (nd->op == IR_OP_ATTENTION && p->seq % (2 * p->cp))
        return arena_printf(a, "%s: attention: a sequence of %lld tokens is not divisible by 2 x %s %d (zigzag: %d "
                            "chunks, two per rank)", layer, (long long)p->seq, cp_name, p->cp, 2 * p->cp);
      if (nd->op == IR_OP_DROPOUT && nd->fattr[0] > 0)
        return arena_printf(a, "%s: dropout with context parallelism (%s %d) is not supported yet (its mask is keyed "
                            "by contiguous token rows)", layer, cp_name, p->cp);
      if (nd->op == IR_OP_REL_BIAS || nd->op == IR_OP_MOE_AUX_LOSS)
        return arena_printf(a, "%s: %s with context parallelism (%s %d) is not supported yet (it needs the whole "
                            "sequence's tokens)", layer, nd->op == IR_OP_REL_BIAS ? "a relative position bias"
                            : "an MoE load-balancing loss", cp_name, p->cp);
    }
  return NULL;
}

/* Expert parallelism: ep consecutive ranks of a stage's data-parallel group (at one tp index)
 * share each MoE layer's experts, which must divide by ep; what it does not combine with yet. */
static const char *check_ep(Arena *a, const IrModel *m, const ParPlan *p, const char *ep_name)
{
  int tp = p->tp > 1 ? p->tp : 1, dp = p->world / p->pp / tp / par_cp(p), moe = 0;
  if (dp % p->ep)
    return arena_printf(a, "%s %d must divide the %d data-parallel ranks of a stage (world %d / pp %d / tp %d%s): "
                        "expert-parallel groups are carved from the data-parallel group", ep_name, p->ep, dp, p->world,
                        p->pp, tp, p->cp > 1 ? " / cp" : "");
  const char *no = p->cp > 1 ? "context parallelism" : p->sp ? "sequence parallelism" : p->ulysses ? "Ulysses"
                   : p->tp_per_layer ? "per-layer or vocabulary tp degrees" : NULL;
  if (no)
    return arena_printf(a, "expert parallelism (%s %d) does not combine with %s yet", ep_name, p->ep, no);
  for (int li = 0; li < m->nlayers; li++)
    for (int i = m->layers[li].first_node; i < m->layers[li].first_node + m->layers[li].nnodes; i++) {
      const IrNode *nd = &m->nodes[i];
      if (nd->op != IR_OP_GROUPED_LINEAR)
        continue;
      moe = 1;
      if (nd->iattr[0] % p->ep)
        return arena_printf(a, "%s: %s has %lld experts, not divisible by %s %d (each expert-parallel rank holds "
                            "experts / ep of them)", m->layers[li].name, m->params[nd->param[0]].name,
                            (long long)nd->iattr[0], ep_name, p->ep);
    }
  if (!moe)
    return arena_printf(a, "%s %d: %s has no mixture-of-experts layer (grouped_linear) to spread", ep_name, p->ep,
                        m->name);
  return NULL;
}

/* Tensor parallelism inside each expert: the attention's tp group splits every expert's ffn
 * (an expert layout independent of attention's is not implemented). */
static const char *check_tp_of_ep(Arena *a, const IrModel *m, const ParPlan *p, const char *name, const char *tp_name)
{
  int tp = p->tp > 1 ? p->tp : 1;
  if (p->tp_of_ep != tp)
    return arena_printf(a, "%s %d must be 1 or equal %s %d: the experts are split over the attention's tensor-parallel "
                        "group (an expert layout independent of attention's is not implemented)", name, p->tp_of_ep,
                        tp_name, tp);
  const char *no = p->cp > 1 ? "context parallelism" : p->sp ? "sequence parallelism" : p->ulysses ? "Ulysses"
                   : p->tp_per_layer ? "per-layer or vocabulary tp degrees" : NULL;
  if (no)
    return arena_printf(a, "tensor parallelism inside experts (%s %d) does not combine with %s yet", name,
                        p->tp_of_ep, no);
  int moe = 0; /* each expert's ffn divides by tp: checked by the lowering (lower_layout.c) */
  for (int i = 0; i < m->nnodes; i++)
    moe |= m->nodes[i].op == IR_OP_GROUPED_LINEAR;
  if (!moe)
    return arena_printf(a, "%s %d: %s has no mixture-of-experts layer (grouped_linear) to split", name, p->tp_of_ep,
                        m->name);
  return NULL;
}

/* The world splits into pp stages of tp-groups. */
static int world_divides(const ParPlan *p, int tp)
{
  return p->world >= 1 && p->pp >= 1 && p->world % p->pp == 0 && (p->world / p->pp) % tp == 0;
}

const char *parplan_check(Arena *a, const IrModel *m, const ParPlan *p, const ParSpelling *names)
{
  static const ParSpelling plain = {"pp", "tp", "cp", "ep", "tp_of_ep"};
  const ParSpelling *n = names ? names : &plain;
  int tp = p->tp > 1 ? p->tp : 1;
  if (!world_divides(p, tp))
    return arena_printf(a, "the world of %d ranks is not divisible by %s %d x %s %d", p->world, n->pp, p->pp, n->tp, tp);
  if (p->cp > 1) {
    const char *err = check_cp(a, m, p, n->cp ? n->cp : "cp");
    if (err)
      return err;
  }
  if (p->ep > 1) {
    const char *err = check_ep(a, m, p, n->ep ? n->ep : "ep");
    if (err)
      return err;
  }
  if (p->vsp > 1 && tp > 1 && p->cp > 1)
    return "vocabulary sequence parallelism (vsp) with context parallelism is not supported yet";
  if (p->tp_of_ep > 1) {
    const char *err = check_tp_of_ep(a, m, p, n->tp_of_ep ? n->tp_of_ep : "tp_of_ep", n->tp);
    if (err)
      return err;
  }
  if (p->tp_per_layer) {
    const char *err = check_layer_tp(a, m, p);
    if (err)
      return err;
  }
  if (p->no_async_grad_reduce && p->dp_type == DP_ZERO2 && !p->any_zero3 && !p->tp_per_layer &&
      (p->pp > 1 || p->sp || p->ulysses))
    return "no_async_grad_reduce with ZeRO-2 works without pipeline, sequence or Ulysses parallelism so far (their "
           "cross-stage and tp sums need the whole gradient arena, which ZeRO-2 scatters every micro-batch)";
  return NULL;
}

int *parplan_partition(Arena *a, const IrModel *m, int pp, const int *division, const char **err)
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

/* The base degree: the blocks' largest, or a vocabulary degree above it (which must be a
 * multiple); the non-block layers run on it. NULL, or why vtp is impossible. */
static const char *base_degree(Arena *a, const IrModel *m, ParPlan *p)
{
  int tb = 0;
  for (int i = 0; i < m->nlayers; i++)
    if (m->layers[i].kind == IR_LAYER_BLOCK && p->layer[i].tp > tb)
      tb = p->layer[i].tp;
  if (!tb)
    tb = p->tp > 1 ? p->tp : 1;
  int vtp = p->vtp > 1 ? p->vtp : 1;
  if (vtp > 1 && vtp != tb && (vtp < tb || vtp % tb))
    return arena_printf(a, "%d must be 1, the blocks' tp degree %d, or a multiple of it (a vocabulary degree below the "
                        "blocks' is not supported yet)", vtp, tb);
  p->tp = vtp > tb ? vtp : tb;
  return NULL;
}

/* The summaries the lowering reads besides the rows: per-layer degrees, which sequence
 * parallelism and ZeRO-3 some block runs; Ulysses and SP need a degree above 1. */
static void summarize(const IrModel *m, ParPlan *p)
{
  p->tp_per_layer = p->sp = p->ulysses = p->any_zero3 = 0;
  for (int i = 0; i < m->nlayers; i++) {
    ParLayer *l = &p->layer[i];
    if (m->layers[i].kind != IR_LAYER_BLOCK) {
      l->tp = p->tp;
      l->sp = PAR_SP_NONE; /* vsp: vocab_rows, once the micro-batch is known */
      l->ckpt = 0;
    }
    if (p->tp <= 1)
      l->sp = PAR_SP_NONE;
    p->tp_per_layer |= l->tp != p->tp;
    p->sp |= l->sp == PAR_SP_MEGATRON;
    p->ulysses |= l->sp == PAR_SP_ULYSSES;
    p->any_zero3 |= l->dp_type == DP_ZERO3;
  }

}

/* vsp: the vocabulary layers on token rows of the tp group where the blocks share one degree
 * and it divides the micro-batch's rows; else they run replicated over the group (the same
 * numbers; par_vsp_replicated says so). */
static void vocab_rows(const IrModel *m, ParPlan *p)
{
  int rows = p->vsp > 1 && p->tp > 1 && !p->tp_per_layer && (p->micro_batch * p->seq) % p->tp == 0 &&
             (m->src_value < 0 || (p->micro_batch * par_src_seq(p)) % p->tp == 0);
  for (int i = 0; i < m->nlayers; i++)
    if (m->layers[i].kind != IR_LAYER_BLOCK)
      p->layer[i].sp = rows ? PAR_SP_VOCAB : PAR_SP_NONE;
}

const char *par_vsp_replicated(Arena *a, const IrModel *m, const ParPlan *p)
{
  if (p->vsp <= 1 || p->tp <= 1)
    return NULL;
  for (int i = 0; i < m->nlayers; i++)
    if (p->layer[i].sp == PAR_SP_VOCAB)
      return NULL;
  if (p->tp_per_layer)
    return "with per-layer tp degrees";
  const char *src = m->src_value < 0 ? "" : arena_printf(a, " (and %lld source rows)", (long long)(p->micro_batch * par_src_seq(p)));
  return arena_printf(a, "the micro-batch's %lld token rows%s are not divisible by it", (long long)(p->micro_batch * p->seq), src);
}

/* The micro-batch a global batch implies: global / (chunks x dp of the base degree). */
static const char *micro_batch(Arena *a, ParPlan *p)
{
  int64_t per = (int64_t)p->chunks * p->dp;
  if (p->micro_batch || p->global_batch <= 0 || per <= 0) {
    p->micro_batch = p->micro_batch ? p->micro_batch : 1;
    return NULL;
  }
  if (p->global_batch % per)
    return arena_printf(a, "%d is not divisible by chunks %d x dp %d", p->global_batch, p->chunks, p->dp);
  p->micro_batch = p->global_batch / per;
  return NULL;
}

int parplan_resolve(Arena *a, const IrModel *m, ParPlan *p, const ParSpelling *names, ParError *err)
{
  *err = (ParError){NULL, PAR_KEY_NONE};
  if (p->resolved)
    return 0;
  if (!p->layer)
    parplan_layers(a, m, p);
  if ((err->msg = base_degree(a, m, p))) {
    err->key = PAR_KEY_VTP;
    return 1;
  }
  summarize(m, p);
  p->chunks = p->chunks > 0 ? p->chunks : p->pp;
  int divides = world_divides(p, p->tp) && (p->world / p->pp / p->tp) % par_cp(p) == 0;
  p->dp = divides ? par_layer_dp(p, p->tp) : 0;
  if (divides && (err->msg = micro_batch(a, p))) {
    err->key = PAR_KEY_GLOBAL_BATCH;
    return 1;
  }
  if (!p->micro_batch)
    p->micro_batch = 1;
  vocab_rows(m, p);
  if ((err->msg = parplan_check(a, m, p, names)))
    return 1;
  const int *stage = parplan_partition(a, m, p->pp, p->division, &err->msg);
  if (!stage) {
    err->key = p->division ? PAR_KEY_DIVISION : PAR_KEY_PP;
    return 1;
  }
  for (int i = 0; i < m->nlayers; i++) {
    p->layer[i].stage = stage[i];
    p->layer[i].dp = par_layer_dp(p, p->layer[i].tp);  /* world / pp / tp / cp: every row's, once */
  }
  p->resolved = 1;
  return 0;
}

Strategy parplan_strategy(const IrModel *m, const ParPlan *p, int i)
{
  const ParLayer *l = &p->layer[i];
  int block = m->layers[i].kind == IR_LAYER_BLOCK;
  int ul = l->sp == PAR_SP_ULYSSES || l->sp == PAR_SP_VOCAB, deg = block || ul ? l->tp : p->vtp > 1 ? p->tp : 1;
  Strategy s = {p->pp, ul ? 1 : deg, ul ? deg : 1, l->dp > 0 ? l->dp : 1, l->dp_type, block && l->ckpt, p->tp_consec,
                par_cp(p)};
  if (strategy_sdp(&s) == 1)
    s.dp_type = DP_DDP;
  return s;
}

int64_t parplan_default_seq(const IrModel *m)
{
  return m->max_seq && m->max_seq < 1024 ? m->max_seq : 1024;
}

void parplan_no_source(char *buf, size_t n, const char *given, const char *model)
{
  snprintf(buf, n, "%s: model '%s' reads no src_tokens: only an encoder-decoder has a source length (give this "
           "model its one sequence length)", given, model);
}
