/* ir_ops.h - the single table of primitive ops. One X-macro row per op gives the enum
 * (IR_OP_<NAME>), its .gvm spelling and its arity (inputs, parameters). The costs and
 * backward rules of each op are switch arms in ir.c / autodiff.c keyed by this enum.
 *
 *   X(NAME,          spelling,        n_in, n_param)  */
#define IR_OPS(X)                                              \
  X(INPUT,          "input",          0, 0) /* tokens/labels */ \
  X(LINEAR,         "linear",         1, 2) /* weight [out,in], optional bias [out] */ \
  X(EMBEDDING,      "embedding",      1, 1) /* weight [vocab, d] */ \
  X(LAYERNORM,      "layernorm",      1, 2) /* weight, bias [d] */ \
  X(RMSNORM,        "rmsnorm",        1, 1) /* weight [d]; fattr[0]: eps, [1]: weight offset (Gemma: 1 + w) */ \
  X(GELU,           "gelu",           1, 0) /* iattr[0]: 1 = tanh form, 0 = exact erf */ \
  X(SILU,           "silu",           1, 0) \
  X(RELU,           "relu",           1, 0) \
  X(MUL,            "mul",            2, 0) \
  X(ADD,            "add",            2, 0) \
  X(ROPE,           "rope",           1, 0) /* iattr[0]: head dim, [1]: rotated dims (0: all); fattr[0]: base */ \
  X(ATTENTION,      "attention",      3, 0) /* iattr[0]: heads, [1]: kv heads, [2]: causal, [3]: keys masked where src_tokens is 0; fattr[0]: scale (0: 1/sqrt(D)); in[3]: bias [T,T,H] when nin 4 */ \
  X(DROPOUT,        "dropout",        1, 0) /* fattr[0]: p */ \
  X(CROSS_ENTROPY,  "cross_entropy",  2, 0) /* logits [B,T,V], labels [B,T] -> scalar mean */ \
  X(POS_EMBEDDING,  "pos_embedding",  1, 1) /* learned positions: weight [max_seq, d] */ \
  X(SCALE,          "scale",          1, 0) /* y = fattr[0] * x + fattr[1] (x * 2.0, x + 1.0) */ \
  X(SOFTMAX,        "softmax",        1, 0) /* over the last dimension */ \
  X(SLICE,          "slice",          1, 0) /* last dim: iattr[0] first column, [1] count */ \
  X(CONCAT,         "concat",         2, 0) /* on the last dimension */ \
  /* mixture of experts (gvrt.h's routing contract); iattr[0]: experts E where the op routes */ \
  X(TOPK,           "topk",           1, 0) /* x [..., N] -> index [..., k]; iattr[1]: k */ \
  X(TAKE,           "take",           2, 0) /* x [..., N], index [..., k] -> [..., k] */ \
  X(MOE_PERMUTE,    "moe_permute",    2, 0) /* x [B,T,C], index [B,T,k] -> routed rows [B,T,k,C] */ \
  X(GROUPED_LINEAR, "grouped_linear", 2, 1) /* routed [B,T,k,in], index -> [B,T,k,out]; weight [E,out,in] */ \
  X(MOE_UNPERMUTE,  "moe_unpermute",  3, 0) /* routed [B,T,k,C], index, gates [B,T,k] -> [B,T,C] */ \
  X(MOE_AUX_LOSS,   "moe_aux_loss",   2, 0) /* probs [B,T,E], index -> probs; fattr[0]: coefficient */ \
  X(REL_BIAS,       "relative_position_bias", 1, 1) /* T5: [T,T,H] from weight [buckets,H]; in[0] gives T; iattr[0]: heads, [1]: buckets, [2]: max distance, [3]: bidirectional */ \
  /* images (ViT) */ \
  X(PATCH_EMBED,    "patch_embedding", 1, 2) /* pixels [B,C,H,W] -> [B,N,hidden]; weight [hidden,C,p,p], bias [hidden]; iattr[0]: patch p */ \
  X(CLASS_TOKEN,    "class_token",    1, 1) /* [B,N,C] -> [B,T,C] (T = N + 1): weight [1,1,C] in front */ \
  X(FIRST_TOKEN,    "first_token",    1, 0) /* [B,T,C] -> [B,C]: each sample's row 0 (the class token's output) */
