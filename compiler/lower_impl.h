/* lower_impl.h - the lowering's internal state and helpers, shared by its files: lower.c
 * (shapes, buffers, placement), lower_layout.c (tensor-parallel split, row conversions),
 * lower_fwd.c and lower_bwd.c (the primitives' rules, layer by layer), lower_fuse.c
 * (emitting and fusing calls) and lower_program.c (stages, parameters, the program's
 * description and the memory plan). */
#ifndef GV_LOWER_IMPL_H
#define GV_LOWER_IMPL_H

#include "entries.h"
#include "gvrt_comm.h"
#include "gvrt_program.h"
#include "lower.h"

enum { ACC_DX = GV_ACC_DX, ACC_DW = GV_ACC_DW }; /* the runtime's accumulate flags */
enum { FN_DESCRIBE, FN_FWD, FN_BWD, FN_ZERO };

typedef struct L {
  Arena *a;
  const IrModel *m;
  const ParPlan *o;  /* the resolved strategy */
  Plan *plan;
  SchedProgram *prog;
  SchedFunc *cur;
  int cur_fn;
  int *val;          /* value -> buffer (the current placement) */
  int *grad;         /* value -> gradient buffer or -1 */
  unsigned char *ginit, *needed;
  unsigned char *split;  /* value -> its last dim is split over the tp group (local = global / tp) */
  unsigned char *tp_node; /* node -> runs tensor-parallel (an annotated op of a block, tp > 1) */
  int *ep_mlp;            /* node -> under ep, the down linear of the SwiGLU expert MLP it is part of (gate,
                           * up, silu, product and down: one dispatch, emitted at the down), or -1 */
  int *ep_gate, *ep_up;   /* down node -> its MLP's gate and up grouped linears */
  int *swiglu;            /* node -> a silu read only by a mul, fused with it into one swiglu call (f32): the
                           * silu's entry is the mul node, the mul's the silu node; else -1 */
  /* Megatron sequence parallelism: values whose token rows are split over the tp group */
  unsigned char *rsplit;
  int *sp_gathered;       /* value -> its rows gathered for a @col linear (in the current pass) */
  int *sp_in_full, *sp_in_slice; /* block layer -> its full input and the slice made of it */
  int *sp_gather_from;    /* non-block layer -> the row-split buffer its input was gathered from */
  unsigned char *sp_partial; /* parameter -> its gradient is a partial sum over the tp group */
  unsigned char *ul_out, *ul_in; /* Ulysses: node's output goes rows -> heads / input heads -> rows */
  int *ul_keep;            /* Ulysses: node -> the rows-layout input kept for a row linear's backward */
  /* Per-layer tp: each value's tp degree (its layer's) and row factor f (it holds 1/f of the
   * micro-batch's samples: a block of degree t < tp runs on tp/t of them); the layer's input
   * before its conversion and the buffer it was converted from, per layer */
  int *vdeg, *rowf;
  int *conv_from, *conv_from_f;
  /* Per layer: its input as converted at its entry (buf -1: not converted); outside the
   * layer's own forward and backward the input keeps its producer's layout (lower_in_layout),
   * so that other layers reading the same value see that */
  struct LowerIn { int buf, rsplit, rowf; } *in_after;
  /* Per layer: the values crossing blocks it reads in its own rows (a Ulysses block reading a
   * whole value: this rank's token rows sliced at entry, kept; the gradient all-gathered back) */
  struct LowerXs { int n, *v, *whole, *rows, *had_grad; } *xs;
  int *aux0, *aux1;  /* node -> statistics buffers (mean/rstd, lse); aux0 of an offset RMSNorm: its weight */
  /* Values that cross blocks: read by a layer other than their producer, not as its input
   * (an encoder's output read by every decoder block); kept per slot at their producer */
  unsigned char *cross;
  int *pbuf, *gbuf, *mbuf;
  int stage;
  int es;            /* bytes of a float value: 4, or 2 under bf16 mixed precision (statistics stay f32) */
  int io_tokens, io_labels, io_loss, io_src; /* io_src: -1 when the model reads no src_tokens */
  int io_pixels;     /* an image model's input [B, C, S, S] (values of the program's float type), -1 if none */
  int *aux_loss, naux_loss; /* the load-balancing terms (f32 [1] buffers) this stage's forward adds to its loss */
  /* ZeRO-3 (sharded block parameters): per layer, its shards and range; shared buffers */
  struct LowerZ3 { int pshard, gshard, mshard; int64_t range; } *z3;
  int z3_gather, z3_grad;
  /* The decode step (one token at the runtime's position, lower_program.c): every buffer
   * transient, position-dependent ops read the position, attentions use KV cache 0, 1, ... */
  int decode, decode_caches;
  const char *err;   /* the first error (lower_fail), and the node it is about or -1 */
  int err_node;
} L;

/* Records MSG as the lowering's error (the first one wins), about node ni or -1. */
void lower_fail(L *l, int ni, const char *msg);


/* The tp degree of layer li (its row of the plan), the row factor of its values (base
 * degree / its degree), the ranks its gradients reduce and its ZeRO state shards over (dp
 * x cp), and the group argument of its tp collectives (0: the program's one tp group; else
 * the degree of the layer's group). */
static inline int lower_layer_tp(const L *l, int li) { return l->o->layer[li].tp; }
static inline int lower_layer_rowf(const L *l, int li) { return l->o->tp_per_layer ? l->o->tp / lower_layer_tp(l, li) : 1; }
static inline int lower_layer_dp(const L *l, int li) { return par_grad_ranks(l->o, &l->o->layer[li]); }
static inline int64_t lower_tp_group(const L *l, int li) { return l->o->tp_per_layer ? lower_layer_tp(l, li) : 0; }
/* Block li runs Ulysses (its degree is a sequence degree), and its token rows are split over
 * the tp group (Ulysses, or Megatron sequence parallelism); 0 for other layers. */
static inline int lower_layer_ulysses(const L *l, int li) { return l->o->layer[li].sp == PAR_SP_ULYSSES; }
static inline int lower_layer_rows_split(const L *l, int li) { return l->o->layer[li].sp != PAR_SP_NONE; }
/* The vocabulary layers run on token rows of the tp group (vsp, where parplan_resolve kept it). */
static inline int lower_vsp(const L *l)
{
  for (int i = 0; i < l->m->nlayers; i++)
    if (l->o->layer[i].sp == PAR_SP_VOCAB)
      return 1;
  return 0;
}

/* ZeRO-2 as one flat shard of the gradient arena, or per parameter (each over its own
 * layer's dp group): with per-layer tp degrees, beside ZeRO-3 blocks, or with expert
 * parallelism (expert weights shard over the expert-data-parallel group). */
static inline int lower_zero2_flat(const L *l)
{
  return l->o->dp_type == DP_ZERO2 && !l->o->tp_per_layer && !l->o->any_zero3 && par_ep(l->o) == 1;
}
static inline int lower_zero2_per_param(const L *l)
{
  return l->o->dp_type == DP_ZERO2 && (l->o->tp_per_layer || l->o->any_zero3 || par_ep(l->o) > 1);
}
/* Expert parallelism: node n's parameter j is an expert weight spread over the ep group (its
 * grouped linears dispatch their rows with all-to-all). */
static inline int lower_expert_param(const L *l, const IrNode *n, int j)
{
  return par_ep(l->o) > 1 && n->op == IR_OP_GROUPED_LINEAR && j == 0;
}

/* Optimizer state of n parameter elements this rank updates (gvrt_program.h's contract). */
static inline int64_t lower_state_bytes(const L *l, int64_t n) { return gv_prog_state_bytes(n, l->o->bf16); }

int64_t lower_numel(const L *l, int v);
int64_t lower_rows(const L *l, int v);            /* numel / last dim */
/* The sequence length of value v's samples: the source's S for a value computed from
 * src_tokens (an encoder's), else T (the program's seq: the local one under cp). */
int64_t lower_len(const L *l, int v);
const char *lower_vname(L *l, int layer, int v, const char *what); /* a buffer's name */
/* Which values are split by tensor parallelism (propagated from @col to @row); 0 or an error. */
int lower_tp_split(L *l, int first_layer, int last_layer);
int64_t lower_last_dim(const L *l, int v);
int lower_new_buf(L *l, const char *name, PlanClass cls, int64_t bytes);
SchedArg lower_buf_arg(L *l, int buf);          /* a buffer argument, patched after planning */
SchedArg lower_key_mask(L *l, int ni);          /* attention ni's key padding ids (io.src), or null */
int lower_reads_src(const IrModel *m);          /* the model reads src_tokens (io.src) */
void lower_emit(L *l, Entry fn, SchedArg *args, int n, const char *comment);
/* EMIT(l, ENT_x, comment, args after ctx...): one call of entry ENT_x (lower_fuse.c). */
#define EMIT(l, fn, comment, ...) do { SchedArg a_[] = {sa_ctx(), __VA_ARGS__}; \
    lower_emit((l), (fn), a_, (int)(sizeof a_ / sizeof a_[0]), (comment)); } while (0)
/* Buffer arguments: buffer id, value v's current buffer, node n's parameter k and its
 * gradient (NULL where the node has fewer parameters). */
static inline SchedArg B(L *l, int buf) { return lower_buf_arg(l, buf); }
static inline SchedArg V(L *l, int v) { return B(l, l->val[v]); }
static inline SchedArg P(L *l, const IrNode *n, int k) { return k < n->nparam ? B(l, l->pbuf[n->param[k]]) : sa_null(); }
static inline SchedArg G(L *l, const IrNode *n, int k) { return k < n->nparam ? B(l, l->gbuf[n->param[k]]) : sa_null(); }
/* "linear layers.0.attn.q.weight": the op and the parameter it reads, for dumps and C. */
const char *lower_node_comment(L *l, const IrNode *n);
/* Which token rows of the micro-batch a dropout's value holds (its mask is keyed by global
 * element index): 0 all, 1 the slice of the tp group (sequence parallel, Ulysses), f >= 2
 * the slice of a per-layer-tp block of row factor f. */
static inline int64_t lower_dropout_rows(const L *l, int v) { return l->rsplit[v] ? 1 : l->rowf[v] > 1 ? l->rowf[v] : 0; }
/* Values x and y have the same local layout (size, tp split, row split and factor). */
static inline int lower_same_layout(const L *l, int x, int y)
{
  return l->split[x] == l->split[y] && l->rsplit[x] == l->rsplit[y] && l->vdeg[x] == l->vdeg[y] &&
         l->rowf[x] == l->rowf[y] && lower_numel(l, x) == lower_numel(l, y);
}
/* Node ni is a dropout at p = 0 whose output has its input's layout: an identity, lowered
 * to no call (forward: the output is the input's buffer where that buffer lives long enough;
 * backward: the input's gradient is the output's, lower_bwd.c). */
static inline int lower_dropout_is_copy(const L *l, int ni)
{
  const IrNode *n = &l->m->nodes[ni];
  return n->op == IR_OP_DROPOUT && n->fattr[0] == 0.0 && n->nin > 0 && lower_same_layout(l, n->in[0], n->out);
}
int lower_layer_of_value(const L *l, int v);
void lower_mark_needed(L *l);
/* ZeRO-3: gather layer li's parameter shards into the buffer its kernels read. */
void lower_z3_gather(L *l, int li);
/* Per-layer tp: value v's rows from row factor `from` to `to` (src -> dst), and a layer's
 * input converted to its own row factor at its entry. */
void lower_rows_convert(L *l, int v, int dst, int src, int from, int to, const char *what);
void lower_rows_enter(L *l, int li);
void lower_forward_layer(L *l, int li, int recompute);
/* A pipeline stage without the head: its loss (io.loss) is the sum of its MoE layers'
 * load-balancing terms, which the runtime adds to the step's loss (nothing without them). */
void lower_aux_stage_loss(L *l);
/* Layer li's input in the layout of the layer's entry conversion (on) or its producer's (off). */
void lower_in_layout(L *l, int li, int on);
/* Values crossing blocks that Ulysses block li reads whole: does it slice their rows (as the
 * analysis of the block sees them), the slices made at its forward's entry, their layout
 * switched on and off, and their gradients all-gathered back after its backward. */
int lower_cross_rows_split(const L *l, int li, int v);
void lower_cross_enter(L *l, int li);
void lower_cross_layout(L *l, int li, int on);
void lower_cross_grads(L *l, int li);
/* Per value: 1 where it crosses blocks (see L.cross). */
unsigned char *lower_cross_values(Arena *a, const IrModel *m);
/* An RMSNorm with a weight offset (Gemma's 1 + w): its forward and backward read offset + w,
 * made by lower_norm_weight into a new transient buffer (the forward's at the layer's start,
 * in aux0, so that a residual add right before the norm still fuses with it). */
static inline int lower_norm_offset(const IrNode *n) { return n->op == IR_OP_RMSNORM && n->fattr[1] != 0.0; }
int lower_norm_weight(L *l, int ni, int layer);
/* Context parallelism: attention as ring attention over the cp group (lower_model lowers with
 * the local sequence, seq / cp). */
static inline int lower_cp(const L *l) { return l->o->cp > 1; }
/* Columns src_col .. src_col + n - 1 of value sv (buffer src) into columns dst_col.. of value
 * dv's layout (buffer dst), = or += by flags. */
void lower_copy_cols(L *l, SchedArg dst, int dv, int64_t dst_col, SchedArg src, int sv, int64_t src_col, int64_t n,
                     int flags, const char *c);
void lower_backward_layer(L *l, int li);
/* Expert parallelism: the planned scratch of grouped linear node ni (lower_fwd.c). */
int lower_ep_scratch(L *l, int ni, int layer);
/* Expert parallelism: finds the SwiGLU expert MLPs (l->ep_mlp); the planned scratch of the
 * one whose down linear is node ni; whether node ni emits nothing, its MLP's down linear
 * emitting the whole MLP (lower_fwd.c). */
void lower_find_ep_mlps(L *l);
int lower_ep_mlp_scratch(L *l, int ni, int layer);
static inline int lower_in_ep_mlp(const L *l, int ni) { return l->ep_mlp[ni] >= 0 && l->ep_mlp[ni] != ni; }
/* mul(silu(gate), up) as one swiglu call (forward and backward, at the mul) where the silu's
 * output has no other reader and its input only the silu (l->swiglu; after lower_find_ep_mlps);
 * whether node ni is such a silu, which emits nothing; the mul's up operand. */
void lower_find_swiglus(L *l);
static inline int lower_swiglu_silu(const L *l, int ni) { return l->swiglu[ni] >= 0 && l->m->nodes[ni].op == IR_OP_SILU; }
static inline int lower_swiglu_up(const L *l, int mul)
{
  const IrNode *h = &l->m->nodes[mul];
  return h->in[0] == l->m->nodes[l->swiglu[mul]].out ? h->in[1] : h->in[0];
}

#endif
