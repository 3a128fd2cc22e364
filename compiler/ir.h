/* ir.h - the model IR. A model is a list of top-level layers (embedding, each block,
 * final norm, head/loss): the units the search assigns strategies to. Each layer is an
 * op graph over the primitives of ir_ops.h. Shapes are constant except the batch (B)
 * and sequence (T) dimensions, which stay symbolic (IR_DIM_B, IR_DIM_T) so one IR
 * serves every micro-batch size and sequence length, and an encoder-decoder's source
 * length (S, IR_DIM_S: src_tokens and everything computed from it; S = T where a model
 * has no source or none is given). Parameters carry stable
 * hierarchical names ("layers.3.attn.q.weight") and global shapes; a rank's shard is
 * a slice of one. Everything lives in the compilation's perm arena. */
#ifndef GV_IR_H
#define GV_IR_H

#include <stddef.h>
#include <stdint.h>

#include "ir_ops.h"
#include "loc.h"

typedef enum IrOp {
#define X(name, spelling, nin, nparam) IR_OP_##name,
  IR_OPS(X)
#undef X
  IR_OP_COUNT
} IrOp;

enum { IR_MAX_RANK = 4, IR_MAX_IN = 4, IR_MAX_PARAM = 2, IR_MAX_ATTR = 4 };
#define IR_DIM_B (-1) /* symbolic micro-batch dimension */
#define IR_DIM_T (-2) /* symbolic sequence dimension */
#define IR_DIM_S (-3) /* symbolic source-sequence dimension (an encoder's src_tokens) */

/* Tensor-parallel intent written on an op (@col, @row, @vocab). */
typedef enum IrTp { IR_TP_NONE, IR_TP_COL, IR_TP_ROW, IR_TP_VOCAB } IrTp;

typedef struct IrShape { int rank; int64_t d[IR_MAX_RANK]; } IrShape;

typedef struct IrValue {
  IrShape shape;
  int is_index;          /* integer token ids / labels rather than floats */
  int producer;          /* node index, -1 for a model input */
} IrValue;

typedef struct IrParam {
  const char *name;      /* stable, hierarchical: "layers.3.attn.q.weight" */
  IrShape shape;         /* global shape, all dims constant */
  IrTp tp;               /* how the owning op splits it under tensor parallelism */
  int tp_dim;            /* the dim split by tp, -1 when replicated */
  int layer;             /* owning top-level layer */
  int is_bias_or_norm;   /* excluded from weight decay when asked */
} IrParam;

typedef struct IrNode {
  IrOp op;
  Loc at;                /* source location of the op in the .gvm file */
  Loc call_at;           /* the call in its model's body that made it (a layer call, or the op itself) */
  int nin, in[IR_MAX_IN];          /* value ids */
  int out;                         /* value id */
  int nparam, param[IR_MAX_PARAM]; /* parameter ids (weight, then bias) */
  IrTp tp;
  int64_t iattr[IR_MAX_ATTR];      /* op-specific, see ir_ops.h */
  double fattr[2];
} IrNode;

typedef enum IrLayerKind {
  IR_LAYER_EMBED, IR_LAYER_BLOCK, IR_LAYER_NORM, IR_LAYER_HEAD, IR_LAYER_OTHER
} IrLayerKind;

typedef struct IrLayer {
  const char *name;      /* "embedding", "layers.3", "final_norm", "head" */
  IrLayerKind kind;
  int type_id;           /* layers of identical structure share a type (Galvatron's layertype) */
  int first_node, nnodes;
  int first_param, nparams;
  int in_value, out_value; /* boundary activations (-1 where none) */
} IrLayer;

typedef struct IrHyper { const char *name; double value; int is_int; } IrHyper;

typedef struct IrModel {
  const char *name;      /* size name: "llama2_7b" */
  Loc at;                /* where the size (or model) is defined */
  const char *family;    /* model family: "llama" */
  const char *size_file, *family_file; /* the .gvm files defining the size and the model */
  IrLayer *layers; int nlayers;
  IrNode *nodes;   int nnodes;
  IrValue *values; int nvalues;
  IrParam *params; int nparams;
  int tokens_value, labels_value, loss_value;
  int segments_value;    /* token-type ids [B, T] (zeros: one segment), -1 when unused */
  int pixels_value;      /* images [B, C, H, W] (float; shape set by the patch_embedding reading it), -1 when unused */
  int src_value;         /* an encoder's source ids [B, S] (src_tokens: padded with 0 to S), -1 when unused */
  IrHyper *hyper;  int nhyper;   /* the evaluated hyper-parameters of the size */
  /* Convenience facts for the search and runtime (0 when the model has none). */
  int64_t hidden, vocab, heads, kv_heads, ffn, nblocks, max_seq;
  int nstacks;           /* top-level repeat loops of the model body (stacks of blocks; T5: encoder, decoder) */
  unsigned char *saved;  /* per value: kept for backward (ir_value_saved; filled on first use) */
} IrModel;

/* Analytic costs of a layer for one micro-batch. FLOPs count a multiply-add as 2. */
typedef struct IrCost {
  double flops_fwd;      /* forward */
  double flops_bwd;      /* backward (input and weight gradients) */
  int64_t params;        /* parameter elements */
  double act_bytes;      /* activations saved for backward without checkpointing */
  double boundary_bytes; /* the layer's output activation (what a checkpoint keeps) */
} IrCost;

const char *ir_op_name(IrOp op);
/* Does the backward of some op read value v (so a non-checkpointed layer keeps it)?
 * linear: its input; norms, gelu, silu, relu: their input; mul: both operands; attention:
 * q, k, v and its output; softmax: its output; cross-entropy: the logits; embedding: the ids. */
int ir_value_saved(const IrModel *m, int v);
void ir_mark_saved(const IrModel *m, unsigned char *saved);   /* saved[v] = 1 where kept */
/* FLOPs of one node (multiply-add = 2; matmuls only: linear and attention). */
/* src_seq: the source length S (<= 0: S = seq). */
double ir_node_flops(const IrModel *m, const IrNode *n, int64_t micro_batch, int64_t seq, int64_t src_seq);
int64_t ir_dim(int64_t d, int64_t micro_batch, int64_t seq, int64_t src_seq);   /* resolve B/T/S */
/* The symbolic length dimension (IR_DIM_T or IR_DIM_S) of a value's shape, IR_DIM_T if none. */
int64_t ir_len_dim(const IrShape *s);
IrCost ir_layer_cost(const IrModel *m, int layer, int64_t micro_batch, int64_t seq, int64_t src_seq, int dtype_bytes);
IrCost ir_model_cost(const IrModel *m, int64_t micro_batch, int64_t seq, int64_t src_seq, int dtype_bytes);
int64_t ir_model_params(const IrModel *m);
const IrLayer *ir_find_layer(const IrModel *m, const char *name);

#endif
