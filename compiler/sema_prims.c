/* sema_prims.c - the primitives of the language as seen by the front end: their
 * signatures (positional and keyword parameters with defaults), shape rules, parameters
 * and tensor-parallel annotations; each call appends one IR node. Also the IR's final
 * pass: layer inputs and outputs, kinds, types and model facts. */
#include <stdio.h>
#include <string.h>

#include "diag.h"
#include "sema.h"

typedef struct Prim {
  const char *name;
  IrOp op;
  const char *params[9];   /* parameter names in order; NULL-terminated */
  int required;            /* how many must be given */
  unsigned annots;         /* allowed: 1 @col, 2 @row, 4 @vocab */
} Prim;

enum { A_COL = 1, A_ROW = 2, A_VOCAB = 4 };

static const Prim prims[] = {
  {"linear", IR_OP_LINEAR, {"x", "out", "bias", "tied"}, 2, A_COL | A_ROW | A_VOCAB},
  {"embedding", IR_OP_EMBEDDING, {"ids", "vocab", "dim", "tied"}, 3, A_VOCAB},
  {"pos_embedding", IR_OP_POS_EMBEDDING, {"x", "positions"}, 2, 0},
  {"layernorm", IR_OP_LAYERNORM, {"x", "eps"}, 1, 0},
  {"rmsnorm", IR_OP_RMSNORM, {"x", "eps", "offset"}, 1, 0},
  {"gelu", IR_OP_GELU, {"x"}, 1, 0},
  {"gelu_erf", IR_OP_GELU, {"x"}, 1, 0},
  {"silu", IR_OP_SILU, {"x"}, 1, 0},
  {"relu", IR_OP_RELU, {"x"}, 1, 0},
  {"mul", IR_OP_MUL, {"a", "b"}, 2, 0},
  {"add", IR_OP_ADD, {"a", "b"}, 2, 0},
  {"rope", IR_OP_ROPE, {"x", "head_dim", "base", "rot_dim"}, 2, 0},
  {"attention", IR_OP_ATTENTION, {"q", "k", "v", "heads", "kv_heads", "causal", "scale", "bias", "mask"}, 4, 0},
  {"relative_position_bias", IR_OP_REL_BIAS, {"x", "heads", "buckets", "max_distance", "bidirectional"}, 2, 0},
  {"dropout", IR_OP_DROPOUT, {"x", "p"}, 1, 0},
  {"cross_entropy", IR_OP_CROSS_ENTROPY, {"logits", "labels"}, 2, 0},
  {"scale", IR_OP_SCALE, {"x", "factor", "shift"}, 1, 0},
  {"softmax", IR_OP_SOFTMAX, {"x"}, 1, 0},
  {"slice", IR_OP_SLICE, {"x", "start", "len"}, 3, 0},
  {"concat", IR_OP_CONCAT, {"a", "b"}, 2, 0},
  {"topk", IR_OP_TOPK, {"x", "k"}, 2, 0},
  {"take", IR_OP_TAKE, {"x", "index"}, 2, 0},
  {"moe_permute", IR_OP_MOE_PERMUTE, {"x", "index", "experts"}, 3, 0},
  {"grouped_linear", IR_OP_GROUPED_LINEAR, {"x", "index", "experts", "out"}, 4, 0},
  {"moe_unpermute", IR_OP_MOE_UNPERMUTE, {"x", "index", "gates", "experts"}, 4, 0},
  {"moe_aux_loss", IR_OP_MOE_AUX_LOSS, {"probs", "index", "coeff"}, 2, 0},
  {"patch_embedding", IR_OP_PATCH_EMBED, {"pixels", "hidden", "patch", "image", "channels"}, 3, 0},
  {"class_token", IR_OP_CLASS_TOKEN, {"x"}, 1, 0},
  {"first_token", IR_OP_FIRST_TOKEN, {"x"}, 1, 0},
};
enum { NPRIMS = sizeof prims / sizeof prims[0] };

int sema_prim_find(const char *name)
{
  for (int i = 0; i < NPRIMS; i++)
    if (!strcmp(prims[i].name, name))
      return i;
  return -1;
}

const char *sema_prim_name(int prim) { return prims[prim].name; }
int sema_prim_count(void) { return NPRIMS; }

/* A value kind's name in messages (here, not in sema.c, so that sema.c uses this file and not
 * the reverse). */
const char *sema_kind_name(ValKind k)
{
  static const char *n[] = {"nothing", "int", "float", "bool", "string", "tensor", "function"};
  return n[k];
}

/* ---- IR building ---- */

#define GROW(b, arr, n, cap, T) do { if ((n) == (cap)) { int c_ = (cap) ? 2 * (cap) : 256; \
      (arr) = arena_realloc((b)->cx->perm, (arr), sizeof(T) * (size_t)(cap), sizeof(T) * (size_t)c_); (cap) = c_; } } while (0)

int sema_value(Builder *b, const IrShape *s, int is_index)
{
  GROW(b, b->m->values, b->m->nvalues, b->cap_values, IrValue);
  IrValue *v = &b->m->values[b->m->nvalues];
  v->shape = *s;
  v->is_index = is_index;
  v->producer = -1;
  return b->m->nvalues++;
}

const char *sema_shape_str(Builder *b, const IrShape *s)
{
  char buf[128] = "[";
  for (int i = 0; i < s->rank; i++) {
    char d[24];
    if (s->d[i] == IR_DIM_B)
      snprintf(d, sizeof d, "B");
    else if (s->d[i] == IR_DIM_T)
      snprintf(d, sizeof d, "T");
    else if (s->d[i] == IR_DIM_S)
      snprintf(d, sizeof d, "S");
    else
      snprintf(d, sizeof d, "%lld", (long long)s->d[i]);
    strncat(buf, i ? ", " : "", sizeof buf - strlen(buf) - 1);
    strncat(buf, d, sizeof buf - strlen(buf) - 1);
  }
  strncat(buf, "]", sizeof buf - strlen(buf) - 1);
  return arena_strdup(b->cx->perm, buf);
}

static int same_shape(const IrShape *a, const IrShape *c)
{
  if (a->rank != c->rank)
    return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->d[i] != c->d[i])
      return 0;
  return 1;
}

static uint64_t name_hash(const char *s)
{
  uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

/* The slot of parameter `name` in b's set: where it is, or the empty slot it would take. */
static int *param_slot(Builder *b, const char *name)
{
  int mask = b->param_slot_cap - 1;
  for (int i = (int)(name_hash(name) & (uint64_t)mask);; i = (i + 1) & mask)
    if (b->param_slots[i] < 0 || !strcmp(b->m->params[b->param_slots[i]].name, name))
      return &b->param_slots[i];
}

/* Keeps the set at most half full, so that a model of many thousands of parameters
 * checks each new name in constant time. */
static void param_set_grow(Builder *b)
{
  if (2 * (b->m->nparams + 1) <= b->param_slot_cap)
    return;
  int cap = b->param_slot_cap ? 2 * b->param_slot_cap : 1024;
  b->param_slots = arena_alloc(b->cx->perm, sizeof(int) * (size_t)cap);
  b->param_slot_cap = cap;
  for (int i = 0; i < cap; i++)
    b->param_slots[i] = -1;
  for (int i = 0; i < b->m->nparams; i++)
    *param_slot(b, b->m->params[i].name) = i;
}

/* A parameter named <scope>[.<label>].<leaf>; its name must be new. */
static int new_param(Builder *b, const AstNode *n, const char *leaf, int rank, int64_t d0, int64_t d1)
{
  char name[640];
  const char *lab = n->label;
  size_t len = strlen(b->scope);
  if (!len && !lab) {
    diag_error(b->cx, n->at, "the parameters of '%s' need a name: add 'as NAME'", n->name);
    return -1;
  }
  snprintf(name, sizeof name, "%s%s%s.%s", b->scope, len && lab ? "." : "", lab ? lab : "", leaf);
  param_set_grow(b);
  int *slot = param_slot(b, name);
  if (*slot >= 0) {
    diag_error(b->cx, n->at, "parameter '%s' is defined twice: give this call its own name with 'as NAME'", name);
    return -1;
  }
  GROW(b, b->m->params, b->m->nparams, b->cap_params, IrParam);
  IrParam *p = &b->m->params[b->m->nparams];
  memset(p, 0, sizeof *p);
  p->name = arena_strdup(b->cx->perm, name);
  p->shape.rank = rank;
  p->shape.d[0] = d0;
  p->shape.d[1] = d1;
  p->tp_dim = -1;
  p->layer = b->unit;
  p->is_bias_or_norm = rank == 1;
  *slot = b->m->nparams;
  return b->m->nparams++;
}

static int add_node(Builder *b, const AstNode *n, IrOp op, const int *in, int nin, const IrShape *out, int is_index)
{
  GROW(b, b->m->nodes, b->m->nnodes, b->cap_nodes, IrNode);
  IrNode *nd = &b->m->nodes[b->m->nnodes];
  memset(nd, 0, sizeof *nd);
  nd->op = op;
  nd->at = n->at;
  nd->call_at = b->depth ? b->call_at : n->at;
  nd->nin = nin;
  memcpy(nd->in, in, sizeof(int) * (size_t)nin);
  nd->out = sema_value(b, out, is_index);
  b->m->values[nd->out].producer = b->m->nnodes;
  return b->m->nnodes++;
}

/* ---- argument checking ---- */

typedef struct Args { Val v[9]; int given[9]; } Args;

static int collect(Builder *b, const Prim *p, const AstNode *n, Val *pos, int npos, const char **kwn, Val *kwv,
                   int nkw, Args *a)
{
  int np = 0;
  while (np < 9 && p->params[np])
    np++;
  memset(a, 0, sizeof *a);
  if (npos > np) {
    diag_error(b->cx, n->at, "'%s' takes at most %d argument%s, %d given", p->name, np, np == 1 ? "" : "s", npos);
    return 1;
  }
  for (int i = 0; i < npos; i++) {
    a->v[i] = pos[i];
    a->given[i] = 1;
  }
  for (int k = 0; k < nkw; k++) {
    int idx = -1;
    for (int i = 0; i < np; i++)
      if (!strcmp(p->params[i], kwn[k]))
        idx = i;
    if (idx < 0) {
      diag_error(b->cx, n->at, "'%s' has no parameter named '%s'", p->name, kwn[k]);
      return 1;
    }
    if (a->given[idx]) {
      diag_error(b->cx, n->at, "argument '%s' of '%s' is given twice", kwn[k], p->name);
      return 1;
    }
    a->v[idx] = kwv[k];
    a->given[idx] = 1;
  }
  for (int i = 0; i < p->required; i++)
    if (!a->given[i]) {
      diag_error(b->cx, n->at, "missing argument '%s' of '%s'", p->params[i], p->name);
      return 1;
    }
  return 0;
}

static int want(Builder *b, const AstNode *n, const Prim *p, const Args *a, int i, ValKind k)
{
  if (!a->given[i] || a->v[i].k == k || (k == V_FLOAT && a->v[i].k == V_INT))
    return 0;
  diag_error(b->cx, n->at, "type error: argument '%s' of '%s' must be a %s, got a %s", p->params[i], p->name,
             sema_kind_name(k), sema_kind_name(a->v[i].k));
  return 1;
}

static int positive(Builder *b, const AstNode *n, const Prim *p, const Args *a, int i)
{
  if (a->v[i].i > 0)
    return 0;
  diag_error(b->cx, n->at, "argument '%s' of '%s' must be positive, got %lld", p->params[i], p->name,
             (long long)a->v[i].i);
  return 1;
}

static double fnum(const Args *a, int i, double def)
{
  return !a->given[i] ? def : a->v[i].k == V_INT ? (double)a->v[i].i : a->v[i].f;
}

static const IrShape *shape(Builder *b, Val v) { return &b->m->values[v.i].shape; }
static int64_t last(const IrShape *s) { return s->d[s->rank - 1]; }

static Val tensor(int v) { return (Val){.k = V_TENSOR, .i = v}; }
/* The output of node nd (index first: add_node may move the node array). */
static Val node_out(Builder *b, int nd) { return tensor(b->m->nodes[nd].out); }

/* ---- the primitives ---- */

/* The weight `tied` names ("shared": the parameter "shared.weight"), which must exist with
 * shape [d0, d1]; -1 after a message otherwise. */
static int tied_param(Builder *b, const AstNode *n, const char *tied, int64_t d0, int64_t d1, const char *what)
{
  const char *tname = arena_printf(b->cx->perm, "%s.weight", tied);
  int w = -1;
  for (int i = 0; i < b->m->nparams; i++)
    if (!strcmp(b->m->params[i].name, tname))
      w = i;
  if (w < 0) {
    diag_error(b->cx, n->at, "tied weight '%s' is not defined (yet)", tname);
    return -1;
  }
  const IrShape *ws = &b->m->params[w].shape;
  if (ws->rank != 2 || ws->d[0] != d0 || ws->d[1] != d1) {
    diag_error(b->cx, n->at, "shape mismatch: tied weight '%s' is %s but this %s needs [%lld, %lld]", tname,
               sema_shape_str(b, ws), what, (long long)d0, (long long)d1);
    return -1;
  }
  return w;
}

static Val prim_linear(Builder *b, const AstNode *n, const Args *a, unsigned annot)
{
  const IrShape *xs = shape(b, a->v[0]);
  int64_t in = last(xs), out = a->v[1].i;
  IrShape ys = *xs;
  ys.d[ys.rank - 1] = out;
  int w = a->given[3] ? tied_param(b, n, a->v[3].s, out, in, "linear") : new_param(b, n, "weight", 2, out, in);
  if (w < 0)
    return (Val){V_NONE};
  int bias = a->given[2] ? (int)a->v[2].i : 1, bi = -1;
  if (bias && (bi = new_param(b, n, "bias", 1, out, 0)) < 0)
    return (Val){V_NONE};
  int in_v = (int)a->v[0].i;
  int nd = add_node(b, n, IR_OP_LINEAR, &in_v, 1, &ys, 0);
  IrNode *node = &b->m->nodes[nd];
  node->param[node->nparam++] = w;
  if (bi >= 0)
    node->param[node->nparam++] = bi;
  node->tp = annot == A_COL ? IR_TP_COL : annot == A_ROW ? IR_TP_ROW : annot == A_VOCAB ? IR_TP_VOCAB : IR_TP_NONE;
  if (!a->given[3] && node->tp != IR_TP_NONE)
    b->m->params[w].tp_dim = node->tp == IR_TP_ROW ? 1 : 0;
  if (bi >= 0 && node->tp != IR_TP_NONE && node->tp != IR_TP_ROW)
    b->m->params[bi].tp_dim = 0;
  b->m->params[w].tp = node->tp;
  return tensor(node->out);
}

static Val prim_embedding(Builder *b, const AstNode *n, const Args *a, unsigned annot)
{
  const IrShape *is = shape(b, a->v[0]);
  if (!b->m->values[a->v[0].i].is_index) {
    diag_error(b->cx, n->at, "type error: 'embedding' needs token ids (e.g. 'tokens'), got a float tensor %s",
               sema_shape_str(b, is));
    return (Val){V_NONE};
  }
  int w = a->given[3] ? tied_param(b, n, a->v[3].s, a->v[1].i, a->v[2].i, "embedding")
                      : new_param(b, n, "weight", 2, a->v[1].i, a->v[2].i);
  if (w < 0)
    return (Val){V_NONE};
  IrShape ys = *is;
  ys.d[ys.rank++] = a->v[2].i;
  int in_v = (int)a->v[0].i;
  int nd = add_node(b, n, IR_OP_EMBEDDING, &in_v, 1, &ys, 0);
  IrNode *node = &b->m->nodes[nd];
  node->param[node->nparam++] = w;
  node->tp = annot == A_VOCAB ? IR_TP_VOCAB : IR_TP_NONE;
  b->m->params[w].tp = node->tp;
  b->m->params[w].tp_dim = annot == A_VOCAB ? 0 : -1;
  return tensor(node->out);
}

static Val unary(Builder *b, const AstNode *n, IrOp op, Val x)
{
  int in_v = (int)x.i;
  IrShape s = *shape(b, x);
  int nd = add_node(b, n, op, &in_v, 1, &s, 0);
  return node_out(b, nd);
}

static Val prim_norm(Builder *b, const AstNode *n, const Args *a, IrOp op)
{
  int64_t c = last(shape(b, a->v[0]));
  int w = new_param(b, n, "weight", 1, c, 0), bi = -1;
  if (w < 0 || (op == IR_OP_LAYERNORM && (bi = new_param(b, n, "bias", 1, c, 0)) < 0))
    return (Val){V_NONE};
  Val y = unary(b, n, op, a->v[0]);
  IrNode *node = &b->m->nodes[b->m->nnodes - 1];
  node->param[node->nparam++] = w;
  if (bi >= 0)
    node->param[node->nparam++] = bi;
  node->fattr[0] = fnum(a, 1, op == IR_OP_LAYERNORM ? 1e-5 : 1e-6);
  node->fattr[1] = fnum(a, 2, 0.0); /* rmsnorm: y = x rstd (offset + w) */
  return y;
}

/* slice(x, start, len): columns start .. start + len - 1 of the last dimension. */
static Val prim_slice(Builder *b, const AstNode *n, const Args *a)
{
  int64_t w = last(shape(b, a->v[0])), start = a->v[1].i, len = a->v[2].i;
  if (start < 0 || len <= 0 || start + len > w) {
    diag_error(b->cx, n->at, "'slice' of %lld columns from %lld is outside the last dimension %s",
               (long long)len, (long long)start, sema_shape_str(b, shape(b, a->v[0])));
    return (Val){V_NONE};
  }
  IrShape ys = *shape(b, a->v[0]);
  ys.d[ys.rank - 1] = len;
  int in_v = (int)a->v[0].i;
  int nd = add_node(b, n, IR_OP_SLICE, &in_v, 1, &ys, 0);
  b->m->nodes[nd].iattr[0] = start;
  b->m->nodes[nd].iattr[1] = len;
  return node_out(b, nd);
}

/* concat(a, b): on the last dimension; the other dimensions must agree. */
static Val prim_concat(Builder *b, const AstNode *n, const Args *a)
{
  const IrShape *as = shape(b, a->v[0]), *bs = shape(b, a->v[1]);
  IrShape ys = *as;
  ys.d[ys.rank - 1] = last(as) + last(bs);
  IrShape bt = *bs;
  bt.d[bt.rank - 1] = last(as);
  if (!same_shape(as, &bt)) {
    diag_error(b->cx, n->at, "shape mismatch in 'concat': %s and %s differ in more than the last dimension",
               sema_shape_str(b, as), sema_shape_str(b, bs));
    return (Val){V_NONE};
  }
  int in[2] = {(int)a->v[0].i, (int)a->v[1].i};
  int nd = add_node(b, n, IR_OP_CONCAT, in, 2, &ys, 0);
  return node_out(b, nd);
}

static Val prim_binary(Builder *b, const AstNode *n, const Prim *p, Val x, Val y)
{
  const IrShape *xs = shape(b, x), *ys = shape(b, y);
  if (!same_shape(xs, ys)) {
    diag_error(b->cx, n->at, "shape mismatch in '%s': %s and %s", p->op == IR_OP_ADD ? "+" : "*",
               sema_shape_str(b, xs), sema_shape_str(b, ys));
    return (Val){V_NONE};
  }
  int in[2] = {(int)x.i, (int)y.i};
  int nd = add_node(b, n, p->op, in, 2, xs, 0);
  return node_out(b, nd);
}

/* Rotary embedding on heads of head_dim, rotating the first rot_dim of each (GPT-NeoX's
 * partial rotary; default: all of them). */
static Val prim_rope(Builder *b, const AstNode *n, const Prim *p, const Args *a)
{
  int64_t w = last(shape(b, a->v[0])), hd = a->v[1].i, rot = a->given[3] ? a->v[3].i : hd;
  if (w % hd || hd % 2) {
    diag_error(b->cx, n->at, "'rope' head_dim %lld must be even and divide the width %lld", (long long)hd,
               (long long)w);
    return (Val){V_NONE};
  }
  if (rot % 2 || rot > hd) {
    diag_error(b->cx, n->at, "'rope' rot_dim %lld must be even and at most head_dim %lld", (long long)rot,
               (long long)hd);
    return (Val){V_NONE};
  }
  Val y = unary(b, n, p->op, a->v[0]);
  IrNode *node = &b->m->nodes[b->m->nnodes - 1];
  node->iattr[0] = hd;
  node->iattr[1] = rot;
  node->fattr[0] = fnum(a, 2, 10000.0);
  return y;
}

/* A rope applied to an attention input must have the attention's head size: a smaller
 * head_dim would rotate pieces of each head as if they were heads of their own. */
static int rope_heads_match(Builder *b, const AstNode *n, Val x, const char *what, int64_t D)
{
  int pn = b->m->values[x.i].producer;
  if (pn < 0 || b->m->nodes[pn].op != IR_OP_ROPE || b->m->nodes[pn].iattr[0] == D)
    return 0;
  diag_error(b->cx, n->at, "'rope' of %s has head_dim %lld but the attention's heads have %lld dims (for a partial "
             "rotary embedding give rope head_dim = %lld and rot_dim = the rotated dims)", what,
             (long long)b->m->nodes[pn].iattr[0], (long long)D, (long long)D);
  diag_note(b->cx, b->m->nodes[pn].at, "the rope is here");
  return 1;
}

static Val prim_attention(Builder *b, const AstNode *n, const Prim *p, const Args *a)
{
  const IrShape *qs = shape(b, a->v[0]), *ks = shape(b, a->v[1]), *vs = shape(b, a->v[2]);
  int64_t H = a->v[3].i, KV = a->given[4] ? a->v[4].i : H;
  if (KV <= 0 || H % KV) {
    diag_error(b->cx, n->at, "%lld heads are not divisible by kv_heads=%lld", (long long)H, (long long)KV);
    return (Val){V_NONE};
  }
  if (last(qs) % H) {
    diag_error(b->cx, n->at, "the query width %lld is not divisible by %lld heads", (long long)last(qs), (long long)H);
    return (Val){V_NONE};
  }
  int64_t D = last(qs) / H;
  if (!same_shape(ks, vs) || last(ks) != KV * D || qs->rank != 3 || ks->rank != 3) {
    diag_error(b->cx, n->at, "shape mismatch in 'attention': q %s, k %s, v %s for %lld heads of %lld and %lld kv heads",
               sema_shape_str(b, qs), sema_shape_str(b, ks), sema_shape_str(b, vs), (long long)H, (long long)D,
               (long long)KV);
    return (Val){V_NONE};
  }
  if (rope_heads_match(b, n, a->v[0], "q", D) || rope_heads_match(b, n, a->v[1], "k", D))
    return (Val){V_NONE};
  int in[4] = {(int)a->v[0].i, (int)a->v[1].i, (int)a->v[2].i, a->given[7] ? (int)a->v[7].i : -1};
  if (a->given[7]) { /* an additive bias of the scores: [queries, keys, heads] (relative_position_bias) */
    const IrShape *bs = shape(b, a->v[7]);
    if (bs->rank != 3 || bs->d[0] != qs->d[1] || bs->d[1] != ks->d[1] || bs->d[2] != H) {
      IrShape want = {3, {qs->d[1], ks->d[1], H}};
      diag_error(b->cx, n->at, "shape mismatch in 'attention': the bias is %s, not [queries, keys, heads] = %s "
                 "(make it with relative_position_bias)", sema_shape_str(b, bs), sema_shape_str(b, &want));
      return (Val){V_NONE};
    }
  }
  double scale = fnum(a, 6, 0.0);
  if (a->given[6] && !(scale > 0.0)) {
    diag_error(b->cx, n->at, "the attention's scale must be positive, got %g", scale);
    return (Val){V_NONE};
  }
  if (a->given[8] && a->v[8].i != b->m->src_value) { /* key padding: the source's pad ids (0) */
    diag_error(b->cx, n->at, "the attention's mask must be 'src_tokens' (its keys are the source's positions; "
               "the source's pad id 0 masks a key)");
    return (Val){V_NONE};
  }
  if (a->given[8] && ks->d[1] != IR_DIM_S) {
    diag_error(b->cx, n->at, "the attention's mask 'src_tokens' masks source positions, but its keys %s are not "
               "computed from the source (their length is not S)", sema_shape_str(b, ks));
    return (Val){V_NONE};
  }
  int nd = add_node(b, n, p->op, in, a->given[7] ? 4 : 3, qs, 0);
  IrNode *node = &b->m->nodes[nd];
  node->iattr[0] = H;
  node->iattr[1] = KV;
  node->iattr[2] = a->given[5] ? a->v[5].i : 1;
  node->iattr[3] = a->given[8];
  node->fattr[0] = scale;
  return tensor(node->out);
}

/* T5's relative position bias: [L, L, heads] from a table [buckets, heads] (x: [B, L, C]
 * gives L: the target's T, or the source's S in an encoder). Buckets: bidirectional (encoder) halves them between earlier and later keys;
 * half of each side is exact distances, the rest log-spaced up to max_distance. */
static Val prim_rel_bias(Builder *b, const AstNode *n, const Args *a)
{
  const IrShape *xs = shape(b, a->v[0]);
  int64_t H = a->v[1].i, nb = a->given[2] ? a->v[2].i : 32, maxd = a->given[3] ? a->v[3].i : 128;
  int bidir = a->given[4] ? (int)a->v[4].i : 1;
  if (xs->rank != 3 || (xs->d[1] != IR_DIM_T && xs->d[1] != IR_DIM_S)) {
    diag_error(b->cx, n->at, "'relative_position_bias' needs a [B, T, C] (or source [B, S, C]) tensor for its length, got %s",
               sema_shape_str(b, xs));
    return (Val){V_NONE};
  }
  if (nb < (bidir ? 4 : 2) || nb % (bidir ? 4 : 2) || maxd <= nb / (bidir ? 4 : 2)) {
    diag_error(b->cx, n->at, "'relative_position_bias' needs buckets a positive multiple of %d and max_distance above "
               "%lld, got buckets %lld and max_distance %lld", bidir ? 4 : 2, (long long)(nb / (bidir ? 4 : 2)),
               (long long)nb, (long long)maxd);
    return (Val){V_NONE};
  }
  int w = new_param(b, n, "weight", 2, nb, H);
  if (w < 0)
    return (Val){V_NONE};
  IrShape ys = {3, {xs->d[1], xs->d[1], H}};
  int in[1] = {(int)a->v[0].i};
  int nd = add_node(b, n, IR_OP_REL_BIAS, in, 1, &ys, 0);
  IrNode *node = &b->m->nodes[nd];
  node->param[node->nparam++] = w;
  node->iattr[0] = H;
  node->iattr[1] = nb;
  node->iattr[2] = maxd;
  node->iattr[3] = bidir;
  return tensor(node->out);
}

static Val prim_xent(Builder *b, const AstNode *n, const Args *a)
{
  const IrShape *ls = shape(b, a->v[0]), *ts = shape(b, a->v[1]);
  if ((int)a->v[1].i == b->m->labels_value && ls->rank == 2 && ls->d[0] == IR_DIM_B) /* a classifier: one label a sample */
    b->m->values[a->v[1].i].shape = (IrShape){1, {IR_DIM_B}};
  if (!b->m->values[a->v[1].i].is_index || ts->rank != ls->rank - 1 || ts->d[0] != ls->d[0] ||
      (ts->rank > 1 && ts->d[1] != ls->d[1])) {
    diag_error(b->cx, n->at, "shape mismatch in 'cross_entropy': logits %s need integer labels of shape %s minus the "
               "last dimension, got %s", sema_shape_str(b, ls), sema_shape_str(b, ls), sema_shape_str(b, ts));
    return (Val){V_NONE};
  }
  if (b->m->loss_value >= 0) {
    diag_error(b->cx, n->at, "a model has one 'cross_entropy' loss; this is a second one");
    return (Val){V_NONE};
  }
  int in[2] = {(int)a->v[0].i, (int)a->v[1].i};
  IrShape one = {1, {1}};
  int nd = add_node(b, n, IR_OP_CROSS_ENTROPY, in, 2, &one, 0);
  b->m->loss_value = b->m->nodes[nd].out;
  return tensor(b->m->loss_value);
}

/* ---- images ---- */

/* patch_embedding(pixels, hidden, patch, image = 224, channels = 3): the model's `pixels`
 * input becomes [B, channels, image, image]; a convolution of stride `patch` (Hugging
 * Face's Conv2d weight [hidden, C, p, p]) gives [B, N, hidden], N = (image / patch)^2 patches
 * in row-major order. */
static Val prim_patch_embed(Builder *b, const AstNode *n, const Args *a)
{
  int64_t hid = a->v[1].i, p = a->v[2].i, img = a->given[3] ? a->v[3].i : 224, C = a->given[4] ? a->v[4].i : 3;
  if ((int)a->v[0].i != b->m->pixels_value) {
    diag_error(b->cx, n->at, "'patch_embedding' reads the model's image input 'pixels', got another tensor %s",
               sema_shape_str(b, shape(b, a->v[0])));
    return (Val){V_NONE};
  }
  if (img <= 0 || C <= 0 || img % p) {
    diag_error(b->cx, n->at, "'patch_embedding' needs patches that tile the image: image %lld is not a multiple of "
               "patch %lld (or image or channels is not positive)", (long long)img, (long long)p);
    return (Val){V_NONE};
  }
  IrShape ps = {4, {IR_DIM_B, C, img, img}};
  IrShape *cur = &b->m->values[a->v[0].i].shape;
  if (cur->rank == 4 && !same_shape(cur, &ps)) {
    diag_error(b->cx, n->at, "'pixels' is already %s for another patch_embedding, not %s", sema_shape_str(b, cur),
               sema_shape_str(b, &ps));
    return (Val){V_NONE};
  }
  *cur = ps;
  int w = new_param(b, n, "weight", 4, hid, C), bi = w < 0 ? -1 : new_param(b, n, "bias", 1, hid, 0);
  if (bi < 0)
    return (Val){V_NONE};
  b->m->params[w].shape.d[2] = b->m->params[w].shape.d[3] = p;
  IrShape ys = {3, {IR_DIM_B, (img / p) * (img / p), hid}};
  int in_v = (int)a->v[0].i;
  int nd = add_node(b, n, IR_OP_PATCH_EMBED, &in_v, 1, &ys, 0);
  IrNode *node = &b->m->nodes[nd];
  node->param[node->nparam++] = w;
  node->param[node->nparam++] = bi;
  node->iattr[0] = p;
  return tensor(node->out);
}

/* class_token(x): a learned row [1, 1, C] in front of each sample's N patch rows; the
 * result is the sequence, [B, T, C] with T = N + 1 (a program is compiled for that T). */
static Val prim_class_token(Builder *b, const AstNode *n, const Args *a)
{
  const IrShape *xs = shape(b, a->v[0]);
  if (xs->rank != 3 || xs->d[0] != IR_DIM_B || xs->d[1] < 1) {
    diag_error(b->cx, n->at, "'class_token' needs patch rows [B, N, C] (a patch_embedding's output), got %s",
               sema_shape_str(b, xs));
    return (Val){V_NONE};
  }
  int64_t N = xs->d[1], C = xs->d[2];
  int w = new_param(b, n, "weight", 3, 1, 1);
  if (w < 0)
    return (Val){V_NONE};
  b->m->params[w].shape.d[2] = C;
  IrShape ys = {3, {IR_DIM_B, IR_DIM_T, C}};
  int in_v = (int)a->v[0].i;
  int nd = add_node(b, n, IR_OP_CLASS_TOKEN, &in_v, 1, &ys, 0);
  IrNode *node = &b->m->nodes[nd];
  node->param[node->nparam++] = w;
  node->iattr[0] = N + 1; /* the sequence the program must be compiled for */
  return tensor(node->out);
}

/* first_token(x): [B, T, C] -> [B, C], each sample's first row (a classifier's input). */
static Val prim_first_token(Builder *b, const AstNode *n, const Args *a)
{
  const IrShape *xs = shape(b, a->v[0]);
  if (xs->rank != 3 || xs->d[0] != IR_DIM_B || xs->d[1] != IR_DIM_T) {
    diag_error(b->cx, n->at, "'first_token' needs a sequence [B, T, C], got %s", sema_shape_str(b, xs));
    return (Val){V_NONE};
  }
  IrShape ys = {2, {IR_DIM_B, xs->d[2]}};
  int in_v = (int)a->v[0].i;
  return node_out(b, add_node(b, n, IR_OP_FIRST_TOKEN, &in_v, 1, &ys, 0));
}

/* ---- mixture of experts ---- */

/* index (argument i) must be expert ids [lead..., k] whose leading dims are x's first `lead`
 * dims; `routed`: x is [lead..., k, C] (the routed layout), else [lead..., C]. Returns k, or
 * -1 after an error. With experts > 0, ids made by a topk must come from experts columns. */
static int64_t expert_ids(Builder *b, const AstNode *n, const Prim *p, const Args *a, int i, int routed, int64_t experts)
{
  const IrShape *xs = shape(b, a->v[0]), *is = shape(b, a->v[i]);
  int ok = b->m->values[a->v[i].i].is_index && xs->rank == is->rank + routed;
  for (int d = 0; ok && d < is->rank - 1 + routed; d++)
    ok = xs->d[d] == is->d[d];
  if (!ok) {
    diag_error(b->cx, n->at, "'%s' needs expert ids from 'topk' as its %s (shape %s for x %s)", p->name,
               p->params[i], routed ? "[..., k] of x's [..., k, C]" : "[..., k] beside x's [..., C]",
               sema_shape_str(b, xs));
    return -1;
  }
  int pn = b->m->values[a->v[i].i].producer;
  if (experts > 0 && pn >= 0 && b->m->nodes[pn].op == IR_OP_TOPK &&
      last(&b->m->values[b->m->nodes[pn].in[0]].shape) != experts) {
    diag_error(b->cx, n->at, "'%s' routes to %lld experts but its ids are the top-k of %lld columns", p->name,
               (long long)experts, (long long)last(&b->m->values[b->m->nodes[pn].in[0]].shape));
    diag_note(b->cx, b->m->nodes[pn].at, "the topk is here");
    return -1;
  }
  return last(is);
}

static Val prim_topk(Builder *b, const AstNode *n, const Args *a)
{
  IrShape ys = *shape(b, a->v[0]);
  int64_t k = a->v[1].i, N = last(&ys);
  if (k > N) {
    diag_error(b->cx, n->at, "%s: 'topk' of k = %lld from %lld columns: a token cannot choose %lld of %lld experts",
               b->unit >= 0 ? b->m->layers[b->unit].name : "?", (long long)k, (long long)N, (long long)k,
               (long long)N);
    return (Val){V_NONE};
  }
  ys.d[ys.rank - 1] = k;
  int in_v = (int)a->v[0].i;
  int nd = add_node(b, n, IR_OP_TOPK, &in_v, 1, &ys, 1);
  b->m->nodes[nd].iattr[1] = k;
  return node_out(b, nd);
}

/* take, moe_permute, moe_unpermute, moe_aux_loss: the ids' checks, then one node. */
static Val prim_route(Builder *b, const AstNode *n, const Prim *p, const Args *a)
{
  int routed = p->op == IR_OP_MOE_UNPERMUTE;
  int64_t E = p->op == IR_OP_MOE_PERMUTE || p->op == IR_OP_MOE_UNPERMUTE ? a->v[p->op == IR_OP_MOE_PERMUTE ? 2 : 3].i
              : p->op == IR_OP_MOE_AUX_LOSS ? last(shape(b, a->v[0])) : 0;
  int64_t k = expert_ids(b, n, p, a, 1, routed, E);
  if (k < 0)
    return (Val){V_NONE};
  IrShape ys = *shape(b, a->v[0]);
  int in[3] = {(int)a->v[0].i, (int)a->v[1].i, routed ? (int)a->v[2].i : -1};
  if (p->op == IR_OP_TAKE) {
    ys.d[ys.rank - 1] = k;
  } else if (p->op == IR_OP_MOE_PERMUTE) {
    if (ys.rank >= IR_MAX_RANK) {
      diag_error(b->cx, n->at, "'moe_permute' of a rank-%d tensor: at most %d dims before the routed one", ys.rank,
                 IR_MAX_RANK - 1);
      return (Val){V_NONE};
    }
    ys.d[ys.rank] = ys.d[ys.rank - 1];
    ys.d[ys.rank - 1] = k;
    ys.rank++;
  } else if (routed) {
    const IrShape *gs = shape(b, a->v[2]), *is = shape(b, a->v[1]);
    if (!same_shape(gs, is) || b->m->values[a->v[2].i].is_index) {
      diag_error(b->cx, n->at, "shape mismatch in 'moe_unpermute': gates %s must be float and shaped like the ids %s",
                 sema_shape_str(b, gs), sema_shape_str(b, is));
      return (Val){V_NONE};
    }
    ys.rank--;
    ys.d[ys.rank - 1] = ys.d[ys.rank];
  }
  int nd = add_node(b, n, p->op, in, routed ? 3 : 2, &ys, 0);
  b->m->nodes[nd].iattr[0] = E;
  b->m->nodes[nd].iattr[1] = k;
  b->m->nodes[nd].fattr[0] = p->op == IR_OP_MOE_AUX_LOSS ? fnum(a, 2, 0.0) : 0.0;
  return node_out(b, nd);
}

/* grouped_linear(x, index, experts, out): each routed row through its expert's weight
 * [experts, out, in] (no bias: the experts of Mixtral and its kind have none). */
static Val prim_grouped(Builder *b, const AstNode *n, const Prim *p, const Args *a)
{
  int64_t E = a->v[2].i, out = a->v[3].i, in = last(shape(b, a->v[0]));
  if (expert_ids(b, n, p, a, 1, 1, E) < 0)
    return (Val){V_NONE};
  int w = new_param(b, n, "weight", 3, E, out);
  if (w < 0)
    return (Val){V_NONE};
  b->m->params[w].shape.d[2] = in;
  b->m->params[w].is_bias_or_norm = 0;
  IrShape ys = *shape(b, a->v[0]);
  ys.d[ys.rank - 1] = out;
  int in_v[2] = {(int)a->v[0].i, (int)a->v[1].i};
  int nd = add_node(b, n, IR_OP_GROUPED_LINEAR, in_v, 2, &ys, 0);
  IrNode *node = &b->m->nodes[nd];
  node->param[node->nparam++] = w;
  node->iattr[0] = E;
  return tensor(node->out);
}

static unsigned annotation(Builder *b, const AstNode *n, const Prim *p)
{
  if (!n->annot)
    return 0;
  unsigned k = !strcmp(n->annot, "col") ? A_COL : !strcmp(n->annot, "row") ? A_ROW : !strcmp(n->annot, "vocab") ? A_VOCAB : 0;
  if (!k) {
    diag_error(b->cx, n->annot_at, "unknown annotation '@%s' (expected @col, @row or @vocab)", n->annot);
    return ~0u;
  }
  if (!(p->annots & k)) {
    diag_error(b->cx, n->annot_at, "'@%s' does not apply to '%s' (%s)", n->annot, p->name,
               p->annots ? "only @vocab applies to an embedding" : "only linear and embedding are split");
    return ~0u;
  }
  return k;
}

Val sema_prim_call(Builder *b, int pi, const AstNode *n, Val *pos, int npos, const char **kwn, Val *kwv, int nkw)
{
  const Prim *p = &prims[pi];
  Args a;
  if (collect(b, p, n, pos, npos, kwn, kwv, nkw, &a))
    return (Val){V_NONE};
  unsigned annot = annotation(b, n, p);
  if (annot == ~0u)
    return (Val){V_NONE};
  int tensors = p->op == IR_OP_ATTENTION || p->op == IR_OP_MOE_UNPERMUTE ? 3
                : p->op == IR_OP_MUL || p->op == IR_OP_ADD || p->op == IR_OP_CROSS_ENTROPY || p->op == IR_OP_CONCAT ||
                          p->op == IR_OP_TAKE || p->op == IR_OP_MOE_PERMUTE || p->op == IR_OP_GROUPED_LINEAR ||
                          p->op == IR_OP_MOE_AUX_LOSS
                      ? 2
                      : 1;
  for (int i = 0; i < tensors; i++)
    if (want(b, n, p, &a, i, V_TENSOR))
      return (Val){V_NONE};
  if (p->op != IR_OP_EMBEDDING && p->op != IR_OP_CROSS_ENTROPY && b->m->values[a.v[0].i].is_index) {
    diag_error(b->cx, n->at, "type error: '%s' needs a float tensor, got token ids", p->name);
    return (Val){V_NONE};
  }
  switch (p->op) {
  case IR_OP_LINEAR:
    if (want(b, n, p, &a, 1, V_INT) || positive(b, n, p, &a, 1) || want(b, n, p, &a, 2, V_BOOL) ||
        want(b, n, p, &a, 3, V_STR))
      return (Val){V_NONE};
    return prim_linear(b, n, &a, annot);
  case IR_OP_EMBEDDING:
    if (want(b, n, p, &a, 1, V_INT) || want(b, n, p, &a, 2, V_INT) || positive(b, n, p, &a, 1) ||
        positive(b, n, p, &a, 2) || want(b, n, p, &a, 3, V_STR))
      return (Val){V_NONE};
    return prim_embedding(b, n, &a, annot);
  case IR_OP_POS_EMBEDDING: {
    if (want(b, n, p, &a, 1, V_INT) || positive(b, n, p, &a, 1))
      return (Val){V_NONE};
    int w = new_param(b, n, "weight", 2, a.v[1].i, last(shape(b, a.v[0])));
    if (w < 0)
      return (Val){V_NONE};
    Val y = unary(b, n, p->op, a.v[0]);
    IrNode *node = &b->m->nodes[b->m->nnodes - 1];
    node->param[node->nparam++] = w;
    return y;
  }
  case IR_OP_LAYERNORM: case IR_OP_RMSNORM:
    if (want(b, n, p, &a, 1, V_FLOAT) || want(b, n, p, &a, 2, V_FLOAT))
      return (Val){V_NONE};
    return prim_norm(b, n, &a, p->op);
  case IR_OP_GELU: {
    Val y = unary(b, n, p->op, a.v[0]);
    b->m->nodes[b->m->nnodes - 1].iattr[0] = strcmp(p->name, "gelu_erf") != 0; /* 1: tanh form */
    return y;
  }
  case IR_OP_SILU: case IR_OP_RELU:
    return unary(b, n, p->op, a.v[0]);
  case IR_OP_MUL: case IR_OP_ADD:
    return prim_binary(b, n, p, a.v[0], a.v[1]);
  case IR_OP_ROPE:
    if (want(b, n, p, &a, 1, V_INT) || positive(b, n, p, &a, 1) || want(b, n, p, &a, 2, V_FLOAT) ||
        want(b, n, p, &a, 3, V_INT) || (a.given[3] && positive(b, n, p, &a, 3)))
      return (Val){V_NONE};
    return prim_rope(b, n, p, &a);
  case IR_OP_ATTENTION:
    if (want(b, n, p, &a, 3, V_INT) || positive(b, n, p, &a, 3) || want(b, n, p, &a, 4, V_INT) ||
        want(b, n, p, &a, 5, V_BOOL) || want(b, n, p, &a, 6, V_FLOAT) || want(b, n, p, &a, 7, V_TENSOR) ||
        want(b, n, p, &a, 8, V_TENSOR))
      return (Val){V_NONE};
    if (a.given[7] && b->m->values[a.v[7].i].is_index) {
      diag_error(b->cx, n->at, "type error: the attention's bias must be a float tensor, got token ids");
      return (Val){V_NONE};
    }
    return prim_attention(b, n, p, &a);
  case IR_OP_REL_BIAS:
    if (want(b, n, p, &a, 1, V_INT) || positive(b, n, p, &a, 1) || want(b, n, p, &a, 2, V_INT) ||
        want(b, n, p, &a, 3, V_INT) || want(b, n, p, &a, 4, V_BOOL))
      return (Val){V_NONE};
    return prim_rel_bias(b, n, &a);
  case IR_OP_DROPOUT: {
    if (want(b, n, p, &a, 1, V_FLOAT))
      return (Val){V_NONE};
    double pr = fnum(&a, 1, 0.0);
    if (pr < 0 || pr >= 1) {
      diag_error(b->cx, n->at, "dropout probability must be in [0, 1), got %g", pr);
      return (Val){V_NONE};
    }
    Val y = unary(b, n, p->op, a.v[0]);
    b->m->nodes[b->m->nnodes - 1].fattr[0] = pr;
    return y;
  }
  case IR_OP_CROSS_ENTROPY:
    return prim_xent(b, n, &a);
  case IR_OP_SCALE: {
    if (want(b, n, p, &a, 1, V_FLOAT) || want(b, n, p, &a, 2, V_FLOAT))
      return (Val){V_NONE};
    Val y = unary(b, n, p->op, a.v[0]);
    b->m->nodes[b->m->nnodes - 1].fattr[0] = fnum(&a, 1, 1.0);
    b->m->nodes[b->m->nnodes - 1].fattr[1] = fnum(&a, 2, 0.0);
    return y;
  }
  case IR_OP_SOFTMAX:
    return unary(b, n, p->op, a.v[0]);
  case IR_OP_SLICE:
    if (want(b, n, p, &a, 1, V_INT) || want(b, n, p, &a, 2, V_INT))
      return (Val){V_NONE};
    return prim_slice(b, n, &a);
  case IR_OP_CONCAT:
    return prim_concat(b, n, &a);
  case IR_OP_TOPK:
    if (want(b, n, p, &a, 1, V_INT) || positive(b, n, p, &a, 1))
      return (Val){V_NONE};
    return prim_topk(b, n, &a);
  case IR_OP_TAKE:
    return prim_route(b, n, p, &a);
  case IR_OP_MOE_PERMUTE:
    if (want(b, n, p, &a, 2, V_INT) || positive(b, n, p, &a, 2))
      return (Val){V_NONE};
    return prim_route(b, n, p, &a);
  case IR_OP_MOE_UNPERMUTE:
    if (want(b, n, p, &a, 3, V_INT) || positive(b, n, p, &a, 3))
      return (Val){V_NONE};
    return prim_route(b, n, p, &a);
  case IR_OP_MOE_AUX_LOSS:
    if (want(b, n, p, &a, 2, V_FLOAT))
      return (Val){V_NONE};
    return prim_route(b, n, p, &a);
  case IR_OP_GROUPED_LINEAR:
    if (want(b, n, p, &a, 2, V_INT) || positive(b, n, p, &a, 2) || want(b, n, p, &a, 3, V_INT) ||
        positive(b, n, p, &a, 3))
      return (Val){V_NONE};
    return prim_grouped(b, n, p, &a);
  case IR_OP_PATCH_EMBED:
    if (want(b, n, p, &a, 1, V_INT) || positive(b, n, p, &a, 1) || want(b, n, p, &a, 2, V_INT) ||
        positive(b, n, p, &a, 2) || want(b, n, p, &a, 3, V_INT) || want(b, n, p, &a, 4, V_INT))
      return (Val){V_NONE};
    return prim_patch_embed(b, n, &a);
  case IR_OP_CLASS_TOKEN:
    return prim_class_token(b, n, &a);
  case IR_OP_FIRST_TOKEN:
    return prim_first_token(b, n, &a);
  default:
    GV_ICE("primitive without a rule");
  }
}

/* ---- the last pass: layer boundaries, kinds, types, facts ---- */

static int in_layer(const IrLayer *ly, int node) { return node >= ly->first_node && node < ly->first_node + ly->nnodes; }

/* A layer's input: the first float value it reads from outside (other values of earlier
 * layers it reads cross blocks: lower_fwd.c). */
static void layer_io(Builder *b, IrLayer *ly)
{
  const IrModel *m = b->m;
  ly->in_value = -1;
  for (int k = 0; k < ly->nnodes && ly->in_value < 0; k++) {
    const IrNode *n = &m->nodes[ly->first_node + k];
    for (int i = 0; i < n->nin; i++) {
      int v = n->in[i];
      if (!m->values[v].is_index && !in_layer(ly, m->values[v].producer)) {
        ly->in_value = v;
        break;
      }
    }
  }
  if (ly->in_value < 0)
    ly->in_value = m->tokens_value;
  ly->out_value = ly->nnodes ? m->nodes[ly->first_node + ly->nnodes - 1].out : -1;
}

static IrLayerKind kind_of(const IrModel *m, const IrLayer *ly)
{
  int norms = 0;
  for (int k = 0; k < ly->nnodes; k++) {
    IrOp op = m->nodes[ly->first_node + k].op;
    if (op == IR_OP_EMBEDDING || op == IR_OP_PATCH_EMBED)
      return IR_LAYER_EMBED;
    if (op == IR_OP_CROSS_ENTROPY)
      return IR_LAYER_HEAD;
    norms += op == IR_OP_LAYERNORM || op == IR_OP_RMSNORM;
  }
  if (ly->kind == IR_LAYER_BLOCK)
    return IR_LAYER_BLOCK;
  return norms == ly->nnodes && norms ? IR_LAYER_NORM : IR_LAYER_OTHER;
}

/* Two layers have one type when their ops, attributes and parameter shapes agree. */
static int same_structure(const IrModel *m, const IrLayer *x, const IrLayer *y)
{
  if (x->nnodes != y->nnodes || x->kind != y->kind)
    return 0;
  for (int k = 0; k < x->nnodes; k++) {
    const IrNode *a = &m->nodes[x->first_node + k], *c = &m->nodes[y->first_node + k];
    if (a->op != c->op || a->nparam != c->nparam || memcmp(a->iattr, c->iattr, sizeof a->iattr) ||
        memcmp(a->fattr, c->fattr, sizeof a->fattr) || a->tp != c->tp)
      return 0;
    for (int j = 0; j < a->nparam; j++)
      if (memcmp(&m->params[a->param[j]].shape, &m->params[c->param[j]].shape, sizeof(IrShape)))
        return 0;
  }
  return 1;
}

static double hyper(const IrModel *m, const char *name)
{
  for (int i = 0; i < m->nhyper; i++)
    if (!strcmp(m->hyper[i].name, name))
      return m->hyper[i].value;
  return 0;
}

void sema_finish(Builder *b);
void sema_finish(Builder *b)
{
  IrModel *m = b->m;
  if (m->loss_value < 0) {
    diag_error(b->cx, m->at, "model '%s' has no 'cross_entropy' loss, so it cannot be trained", m->name);
    return;
  }
  int types = 0;
  for (int i = 0; i < m->nlayers; i++) {
    IrLayer *ly = &m->layers[i];
    layer_io(b, ly);
    ly->kind = kind_of(m, ly);
    ly->type_id = -1;
    for (int j = 0; j < i && ly->type_id < 0; j++)
      if (same_structure(m, &m->layers[j], ly))
        ly->type_id = m->layers[j].type_id;
    if (ly->type_id < 0)
      ly->type_id = types++;
    m->nblocks += ly->kind == IR_LAYER_BLOCK;
  }
  for (int i = 0; i < m->nnodes; i++) {
    const IrNode *n = &m->nodes[i];
    if (n->op == IR_OP_EMBEDDING && !m->vocab) {
      m->vocab = m->params[n->param[0]].shape.d[0];
      m->hidden = m->params[n->param[0]].shape.d[1];
    }
    if (n->op == IR_OP_PATCH_EMBED && !m->hidden)
      m->hidden = m->params[n->param[0]].shape.d[0];
    if (n->op == IR_OP_ATTENTION && !m->heads) {
      m->heads = n->iattr[0];
      m->kv_heads = n->iattr[1];
    }
    if (n->op == IR_OP_POS_EMBEDDING && !m->max_seq)
      m->max_seq = m->params[n->param[0]].shape.d[0];
  }
  if (!m->vocab) { /* no token embedding: the loss's classes (a classifier's labels) are the vocabulary */
    const IrShape *ls = &m->values[m->nodes[m->values[m->loss_value].producer].in[0]].shape;
    m->vocab = ls->d[ls->rank - 1];
  }
  m->saved = ARENA_ARRAY(b->cx->perm, unsigned char, m->nvalues ? m->nvalues : 1);
  ir_mark_saved(m, m->saved);
  m->ffn = (int64_t)hyper(m, "ffn");
  if (!m->max_seq)
    m->max_seq = (int64_t)hyper(m, "max_seq");
}
