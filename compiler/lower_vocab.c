/* lower_vocab.c - Megatron's vocabulary padding (gvc compile --make-vocab-size-divisible-by
 * N): the vocabulary rounded up to a multiple of N x the tp degree, so that vocabulary
 * parallelism splits it evenly (a 257-token vocabulary under --vocab_tp 2). The padded
 * model is a copy of the IR whose embedding tables, LM head weight and logits have the
 * padded vocabulary; the rest of the compiler sees an ordinary model. The program declares
 * the true vocabulary (gv_prog_vocab, gv_prog_vocab_param): the loss masks the padded
 * logits, sampling ignores them, checkpoints keep the true rows. */
#include "lower.h"

#include <string.h>

/* The logits' producer chain, from the cross-entropy's input up to the linear making it:
 * marks those values and the linear's weight; an error when it is no plain linear. */
static const char *mark_head(const IrModel *m, unsigned char *vocab_param, unsigned char *vocab_value)
{
  for (int i = 0; i < m->nnodes; i++) {
    if (m->nodes[i].op != IR_OP_CROSS_ENTROPY)
      continue;
    int v = m->nodes[i].in[0];
    while (v >= 0 && m->values[v].producer >= 0) {
      const IrNode *n = &m->nodes[m->values[v].producer];
      if (vocab_value)
        vocab_value[v] = 1;
      if (n->op == IR_OP_LINEAR) {
        if (n->nparam > 1)
          return "the LM head has a bias; vocabulary padding supports heads without one";
        vocab_param[n->param[0]] = 1;
        break;
      }
      if (n->op != IR_OP_SCALE)
        return "the logits are not made by a linear (and a scale); cannot pad the vocabulary";
      v = n->in[0];
    }
  }
  return NULL;
}

const char *lower_vocab_params(const IrModel *m, unsigned char *vocab_param)
{
  memset(vocab_param, 0, (size_t)m->nparams);
  for (int i = 0; i < m->nnodes; i++)
    if (m->nodes[i].op == IR_OP_EMBEDDING && m->params[m->nodes[i].param[0]].shape.d[0] == m->vocab)
      vocab_param[m->nodes[i].param[0]] = 1;
  return mark_head(m, vocab_param, NULL);
}

const IrModel *lower_pad_vocab(Arena *a, const IrModel *m, int64_t multiple, const char **err)
{
  *err = NULL;
  int64_t V = m->vocab, Vp = (V + multiple - 1) / multiple * multiple;
  if (Vp == V)
    return m;
  unsigned char *param = ARENA_ARRAY(a, unsigned char, m->nparams), *value = ARENA_ARRAY(a, unsigned char, m->nvalues);
  memset(value, 0, (size_t)m->nvalues);
  if ((*err = lower_vocab_params(m, param)) || (*err = mark_head(m, param, value)))
    return NULL;
  IrModel *p = ARENA_NEW(a, IrModel);
  *p = *m;
  p->vocab = Vp;
  p->saved = NULL;
  p->params = ARENA_ARRAY(a, IrParam, m->nparams);
  p->values = ARENA_ARRAY(a, IrValue, m->nvalues);
  memcpy(p->params, m->params, sizeof *p->params * (size_t)m->nparams);
  memcpy(p->values, m->values, sizeof *p->values * (size_t)m->nvalues);
  for (int i = 0; i < m->nparams; i++)
    if (param[i])
      p->params[i].shape.d[0] = Vp;
  for (int v = 0; v < m->nvalues; v++)
    if (value[v])
      p->values[v].shape.d[p->values[v].shape.rank - 1] = Vp;
  return p;
}
