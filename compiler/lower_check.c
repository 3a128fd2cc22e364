/* lower_check.c - the one check of a resolved strategy (lower.h): whatever door set the
 * options (the command line, a .gvm strategy block, a Galvatron JSON config), this says
 * once why the plan is impossible, naming the options as that door spells them. */
#include "lower.h"

static const LowerSpelling plain = {"pp", "tp"};

/* Per-layer tp degrees: each divides the base degree (the largest), the micro-batch
 * divides into the row factors, consecutive groups, and nothing yet combined with it. */
static const char *check_layer_tp(Arena *a, const IrModel *m, const LowerOptions *o)
{
  if (o->sp || o->ulysses || !o->tp_consec)
    return arena_printf(a, "different tp degrees per layer work with consecutive tp groups and without sequence "
                        "parallelism only (not yet with %s)", o->sp ? "sequence parallelism" : o->ulysses ? "Ulysses" :
                        "strided tp groups");
  for (int i = 0; i < m->nlayers; i++) {
    int t = m->layers[i].kind == IR_LAYER_BLOCK ? o->layer_tp[i] : o->tp;
    if (t < 1 || t > o->tp || o->tp % t)
      return arena_printf(a, "%s: tp=%d does not divide the largest per-layer degree %d", m->layers[i].name, t, o->tp);
    if (o->micro_batch % (o->tp / t))
      return arena_printf(a, "%s: tp=%d runs on 1/%d of its group's micro-batch of %lld samples: not divisible (use a "
                          "micro-batch that is a multiple of %d)", m->layers[i].name, t, o->tp / t,
                          (long long)o->micro_batch, o->tp / t);
  }
  return NULL;
}

/* Context parallelism: the data-parallel ranks of a stage split into cp x dp, every
 * attention causal with a sequence of 2 x cp chunks (zigzag), and what it does not combine
 * with yet. */
static const char *check_cp(Arena *a, const IrModel *m, const LowerOptions *o, const char *cp_name)
{
  int tp = o->tp > 1 ? o->tp : 1;
  if ((o->world / o->pp / tp) % o->cp)
    return arena_printf(a, "the %d data-parallel ranks of a stage (world %d / pp %d / tp %d) are not divisible by %s %d",
                        o->world / o->pp / tp, o->world, o->pp, tp, cp_name, o->cp);
  const char *no = o->ulysses ? "Ulysses" : o->layer_tp ? "per-layer or vocabulary tp degrees" : o->vtp ? "vocabulary tp"
                   : o->bf16 ? "bf16 mixed precision" : NULL;
  if (no)
    return arena_printf(a, "context parallelism (%s %d) does not combine with %s yet", cp_name, o->cp, no);
  for (int li = 0; li < m->nlayers; li++)
    for (int i = m->layers[li].first_node; i < m->layers[li].first_node + m->layers[li].nnodes; i++) {
      const IrNode *nd = &m->nodes[i];
      const char *layer = m->layers[li].name;
      if (nd->op == IR_OP_ATTENTION && !nd->iattr[2])
        return arena_printf(a, "%s: attention is bidirectional (not causal): context parallelism (%s %d) splits "
                            "causal self-attention only (ring attention, zigzag)", layer, cp_name, o->cp);
      if (nd->op == IR_OP_ATTENTION && o->seq % (2 * o->cp))
        return arena_printf(a, "%s: attention: a sequence of %lld tokens is not divisible by 2 x %s %d (zigzag: %d "
                            "chunks, two per rank)", layer, (long long)o->seq, cp_name, o->cp, 2 * o->cp);
      if (nd->op == IR_OP_DROPOUT && nd->fattr[0] > 0)
        return arena_printf(a, "%s: dropout with context parallelism (%s %d) is not supported yet (its mask is keyed "
                            "by contiguous token rows)", layer, cp_name, o->cp);
    }
  return NULL;
}

const char *lower_check(Arena *a, const IrModel *m, const LowerOptions *o, const LowerSpelling *names)
{
  const LowerSpelling *n = names ? names : &plain;
  int tp = o->tp > 1 ? o->tp : 1;
  if (o->world < 1 || o->pp < 1 || o->world % o->pp || (o->world / o->pp) % tp)
    return arena_printf(a, "the world of %d ranks is not divisible by %s %d x %s %d", o->world, n->pp, o->pp, n->tp, tp);
  if (o->cp > 1) {
    const char *err = check_cp(a, m, o, n == &plain ? "cp" : names->pp[0] == '-' ? "--global_cp_deg" : "cp (cp_sizes_enc)");
    if (err)
      return err;
  }
  if (o->layer_tp) {
    const char *err = check_layer_tp(a, m, o);
    if (err)
      return err;
  }
  if (o->no_async_grad_reduce && o->zero == 2 && !o->layer_tp && (o->pp > 1 || o->sp || o->ulysses))
    return "no_async_grad_reduce with ZeRO-2 works without pipeline, sequence or Ulysses parallelism so far (their "
           "cross-stage and tp sums need the whole gradient arena, which ZeRO-2 scatters every micro-batch)";
  return NULL;
}

const char *lower_vocab_degree(Arena *a, const IrModel *m, int vtp, LowerOptions *o)
{
  if (vtp <= 1 || vtp == o->tp)
    return NULL;
  if (vtp < o->tp || vtp % o->tp)
    return arena_printf(a, "%d must be 1, the blocks' tp degree %d, or a multiple of it (a vocabulary degree below the "
                        "blocks' is not supported yet)", vtp, o->tp);
  int *lt = ARENA_ARRAY(a, int, m->nlayers);
  for (int i = 0; i < m->nlayers; i++)
    lt[i] = m->layers[i].kind != IR_LAYER_BLOCK ? vtp : o->layer_tp ? o->layer_tp[i] : o->tp;
  o->tp = vtp;
  o->layer_tp = lt;
  return NULL;
}
