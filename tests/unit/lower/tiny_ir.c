/* tiny_ir.c - hand-built IR of the fixture models (see tiny_ir.h). */
#include "tiny_ir.h"

#include <stdio.h>
#include <string.h>

enum { V = 256, C = 64, L = 2, H = 4, S = 64, CAP = 512 };

typedef struct Bld { Arena *a; IrModel *m; int layer; } Bld;

static int value(Bld *b, int rank, int64_t d0, int64_t d1, int64_t d2, int is_index)
{
  IrValue *v = &b->m->values[b->m->nvalues];
  v->shape.rank = rank;
  v->shape.d[0] = d0;
  v->shape.d[1] = d1;
  v->shape.d[2] = d2;
  v->is_index = is_index;
  v->producer = -1;
  return b->m->nvalues++;
}

static int param(Bld *b, const char *name, int64_t r, int64_t c)
{
  for (int i = 0; i < b->m->nparams; i++)
    if (!strcmp(b->m->params[i].name, name))
      return i;
  IrParam *p = &b->m->params[b->m->nparams];
  p->name = arena_strdup(b->a, name);
  p->shape.rank = r ? 2 : 1;
  p->shape.d[0] = r ? r : c;
  p->shape.d[1] = r ? c : 0;
  p->layer = b->layer;
  p->tp_dim = -1;
  return b->m->nparams++;
}

static int node(Bld *b, IrOp op, int nin, const int *in, int out, int w, int bias)
{
  IrNode *n = &b->m->nodes[b->m->nnodes];
  n->op = op;
  n->nin = nin;
  memcpy(n->in, in, sizeof(int) * (size_t)nin);
  n->out = out;
  if (w >= 0)
    n->param[n->nparam++] = w;
  if (bias >= 0)
    n->param[n->nparam++] = bias;
  b->m->values[out].producer = b->m->nnodes;
  return b->m->nnodes++;
}

static void begin(Bld *b, const char *name, IrLayerKind kind, int in)
{
  IrLayer *ly = &b->m->layers[b->m->nlayers];
  ly->name = arena_strdup(b->a, name);
  ly->kind = kind;
  ly->first_node = b->m->nnodes;
  ly->first_param = b->m->nparams;
  ly->in_value = in;
  b->layer = b->m->nlayers++;
}

static int end(Bld *b, int out)
{
  IrLayer *ly = &b->m->layers[b->layer];
  ly->nnodes = b->m->nnodes - ly->first_node;
  ly->nparams = b->m->nparams - ly->first_param;
  ly->out_value = out;
  return out;
}

static int hid(Bld *b) { return value(b, 3, IR_DIM_B, IR_DIM_T, C, 0); }

/* Megatron's annotations, as examples/tiny.gvm writes them: q, k, v, up and gate are
 * column-parallel, o and down row-parallel. */
static IrTp tp_of(const char *name)
{
  const char *leaf = strrchr(name, '.');
  leaf = leaf ? leaf + 1 : name;
  if (!strcmp(leaf, "o") || !strcmp(leaf, "down"))
    return IR_TP_ROW;
  if (!strcmp(leaf, "q") || !strcmp(leaf, "k") || !strcmp(leaf, "v") || !strcmp(leaf, "up") || !strcmp(leaf, "gate"))
    return IR_TP_COL;
  return IR_TP_NONE;
}

static int linear(Bld *b, const char *name, int x, int64_t out, int64_t in, int with_bias)
{
  char w[128], bs[128];
  snprintf(w, sizeof w, "%s.weight", name);
  snprintf(bs, sizeof bs, "%s.bias", name);
  int y = value(b, 3, IR_DIM_B, IR_DIM_T, out, 0);
  int n = node(b, IR_OP_LINEAR, 1, &x, y, param(b, w, out, in), with_bias ? param(b, bs, 0, out) : -1);
  b->m->nodes[n].tp = tp_of(name);
  return y;
}

static int norm(Bld *b, const char *name, int x, int layernorm)
{
  char w[128], bs[128];
  snprintf(w, sizeof w, "%s.weight", name);
  snprintf(bs, sizeof bs, "%s.bias", name);
  int y = hid(b);
  int n = node(b, layernorm ? IR_OP_LAYERNORM : IR_OP_RMSNORM, 1, &x, y, param(b, w, 0, C),
               layernorm ? param(b, bs, 0, C) : -1);
  b->m->nodes[n].fattr[0] = 1e-5;
  return y;
}

static int binary(Bld *b, IrOp op, int x, int y, int64_t width)
{
  int in[2] = {x, y}, o = value(b, 3, IR_DIM_B, IR_DIM_T, width, 0);
  node(b, op, 2, in, o, -1, -1);
  return o;
}

static IrModel *model(Arena *a, const char *name, Bld *b)
{
  IrModel *m = ARENA_NEW(a, IrModel);
  m->name = name;
  m->layers = ARENA_ARRAY(a, IrLayer, 16);
  m->nodes = ARENA_ARRAY(a, IrNode, CAP);
  m->values = ARENA_ARRAY(a, IrValue, CAP);
  m->params = ARENA_ARRAY(a, IrParam, CAP);
  *b = (Bld){a, m, 0};
  m->tokens_value = value(b, 2, IR_DIM_B, IR_DIM_T, 0, 1);
  m->labels_value = value(b, 2, IR_DIM_B, IR_DIM_T, 0, 1);
  m->segments_value = m->pixels_value = m->src_value = -1;
  m->vocab = V;
  m->hidden = C;
  m->heads = H;
  m->nblocks = L;
  return m;
}

static void head(Bld *b, int x, const char *weight, int layernorm)
{
  begin(b, "final_norm", IR_LAYER_NORM, x);
  x = end(b, norm(b, "final_norm", x, layernorm));
  begin(b, "head", IR_LAYER_HEAD, x);
  int logits = value(b, 3, IR_DIM_B, IR_DIM_T, V, 0);
  node(b, IR_OP_LINEAR, 1, &x, logits, param(b, weight, V, C), -1);
  int in[2] = {logits, b->m->labels_value};
  b->m->loss_value = value(b, 1, 1, 0, 0, 0);
  node(b, IR_OP_CROSS_ENTROPY, 2, in, b->m->loss_value, -1, -1);
  end(b, b->m->loss_value);
}

static int attention(Bld *b, const char *pre, int x, int kv, int rope, int bias)
{
  char n[128];
  int D = C / H;
  snprintf(n, sizeof n, "%s.attn.q", pre);
  int q = linear(b, n, x, H * D, C, bias);
  snprintf(n, sizeof n, "%s.attn.k", pre);
  int k = linear(b, n, x, kv * D, C, bias);
  snprintf(n, sizeof n, "%s.attn.v", pre);
  int v = linear(b, n, x, kv * D, C, bias);
  if (rope) {
    int qr = value(b, 3, IR_DIM_B, IR_DIM_T, H * D, 0), kr = value(b, 3, IR_DIM_B, IR_DIM_T, kv * D, 0);
    int nq = node(b, IR_OP_ROPE, 1, &q, qr, -1, -1), nk = node(b, IR_OP_ROPE, 1, &k, kr, -1, -1);
    b->m->nodes[nq].iattr[0] = b->m->nodes[nk].iattr[0] = D;
    b->m->nodes[nq].fattr[0] = b->m->nodes[nk].fattr[0] = 10000.0;
    q = qr;
    k = kr;
  }
  int in[3] = {q, k, v}, o = value(b, 3, IR_DIM_B, IR_DIM_T, H * D, 0);
  int na = node(b, IR_OP_ATTENTION, 3, in, o, -1, -1);
  b->m->nodes[na].iattr[0] = H;
  b->m->nodes[na].iattr[1] = kv;
  b->m->nodes[na].iattr[2] = 1;
  snprintf(n, sizeof n, "%s.attn.o", pre);
  return linear(b, n, o, C, H * D, bias);
}

IrModel *tiny_ir_gpt(Arena *a)
{
  Bld b;
  IrModel *m = model(a, "tiny_gpt", &b);
  m->max_seq = S;
  begin(&b, "embedding", IR_LAYER_EMBED, m->tokens_value);
  int e = hid(&b), x = hid(&b);
  node(&b, IR_OP_EMBEDDING, 1, &m->tokens_value, e, param(&b, "embedding.weight", V, C), -1);
  node(&b, IR_OP_POS_EMBEDDING, 1, &e, x, param(&b, "pos_embedding.weight", S, C), -1);
  end(&b, x);
  for (int i = 0; i < L; i++) {
    char pre[32], n[64];
    snprintf(pre, sizeof pre, "layers.%d", i);
    begin(&b, pre, IR_LAYER_BLOCK, x);
    snprintf(n, sizeof n, "%s.ln1", pre);
    int h = attention(&b, pre, norm(&b, n, x, 1), H, 0, 1);
    x = binary(&b, IR_OP_ADD, x, h, C);
    snprintf(n, sizeof n, "%s.ln2", pre);
    int u = norm(&b, n, x, 1);
    snprintf(n, sizeof n, "%s.mlp.up", pre);
    u = linear(&b, n, u, 4 * C, C, 1);
    int g = value(&b, 3, IR_DIM_B, IR_DIM_T, 4 * C, 0);
    int ng = node(&b, IR_OP_GELU, 1, &u, g, -1, -1);
    m->nodes[ng].iattr[0] = 1;
    snprintf(n, sizeof n, "%s.mlp.down", pre);
    x = end(&b, binary(&b, IR_OP_ADD, x, linear(&b, n, g, C, 4 * C, 1), C));
  }
  head(&b, x, "embedding.weight", 1);
  return m;
}

IrModel *tiny_ir_llama(Arena *a)
{
  enum { KV = 2, F = 160 };
  Bld b;
  IrModel *m = model(a, "tiny_llama", &b);
  begin(&b, "embedding", IR_LAYER_EMBED, m->tokens_value);
  int x = hid(&b);
  node(&b, IR_OP_EMBEDDING, 1, &m->tokens_value, x, param(&b, "embedding.weight", V, C), -1);
  end(&b, x);
  for (int i = 0; i < L; i++) {
    char pre[32], n[64];
    snprintf(pre, sizeof pre, "layers.%d", i);
    begin(&b, pre, IR_LAYER_BLOCK, x);
    snprintf(n, sizeof n, "%s.ln1", pre);
    x = binary(&b, IR_OP_ADD, x, attention(&b, pre, norm(&b, n, x, 0), KV, 1, 0), C);
    snprintf(n, sizeof n, "%s.ln2", pre);
    int u = norm(&b, n, x, 0);
    snprintf(n, sizeof n, "%s.mlp.gate", pre);
    int gate = linear(&b, n, u, F, C, 0);
    snprintf(n, sizeof n, "%s.mlp.up", pre);
    int up = linear(&b, n, u, F, C, 0);
    int s = value(&b, 3, IR_DIM_B, IR_DIM_T, F, 0);
    node(&b, IR_OP_SILU, 1, &gate, s, -1, -1);
    int h = binary(&b, IR_OP_MUL, s, up, F);
    snprintf(n, sizeof n, "%s.mlp.down", pre);
    x = end(&b, binary(&b, IR_OP_ADD, x, linear(&b, n, h, C, F, 0), C));
  }
  head(&b, x, "head.weight", 0);
  return m;
}
