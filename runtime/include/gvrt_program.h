/* gvrt_program.h - the contract between a generated training program and libgvrt.
 *
 * The compiler emits functions of one signature,
 *     void f(void *ctx, char *const *bases, int64_t slot);
 * ctx is the run (struct gv_run *), bases[k] the base of memory-plan arena k (enum
 * gv_mem_kind), slot the micro-batch buffer set. The entry function gvp_describe()
 * declares the program to the runtime with the gv_prog_* calls (plan sizes, parameters,
 * stage functions); the runtime then owns main-level work (arguments, arenas, data, the
 * schedule calling the stage functions, optimizer, logging, checkpoints) and the stage
 * functions call the gv_gen_* kernels below. Every argument of these calls is a plain
 * pointer, integer or float, so the C and LLVM emitters call them identically.
 * Buffers are raw pointers into the plan's arenas; shapes are constants of the plan. */
#ifndef GVRT_PROGRAM_H
#define GVRT_PROGRAM_H

#include <stdint.h>

#include "gvrt.h"

typedef void (*gv_prog_fn)(void *ctx, char *const *bases, int64_t slot);

/* ---- describe: what the program is ----
 * One binary serves every rank: calls carry the pipeline stage they describe, and a rank
 * keeps what concerns its own stage (stage = world rank / (world / pp)). */

/* Global facts: world size, pipeline degree, the micro-batch, sequence length, vocabulary. */
GV_API void gv_prog_model(void *ctx, const char *name, int64_t world, int64_t pp, int64_t micro_batch,
                          int64_t seq, int64_t vocab);
/* Pipeline schedule (1: 1F1B / pipedream_flush, 0: GPipe) and the micro-batches per step
 * and data-parallel rank the activation slots were planned for. */
GV_API void gv_prog_pipeline(void *ctx, int64_t one_f_one_b, int64_t chunks);
/* The default of --global_train_batch_size (a strategy's global_bsz). */
GV_API void gv_prog_batch(void *ctx, int64_t global_batch);
/* Size of arena kind (enum gv_mem_kind) of a stage, in bytes, as planned. */
GV_API void gv_prog_arena(void *ctx, int64_t stage, int64_t kind, int64_t bytes);
/* Init kinds of parameters. */
enum { GV_INIT_NORMAL = 0, GV_INIT_ZEROS = 1, GV_INIT_ONES = 2 };
/* A parameter of a stage: global name and shape (rows x cols; 1-D: rows = 1), the dim
 * tensor parallelism splits (-1 none, 0 rows, 1 columns: this rank holds block tp_rank of
 * it; -2: replicated, but its gradient is a partial sum over the tp group, as for norms under
 * sequence parallelism), its offsets in the params, grads and optimizer arenas (m at moff, v at moff + shard
 * bytes; -1 under ZeRO), whether it decays, its init. A weight tied across stages (GPT-2's
 * embedding and head) is declared on each. */
GV_API void gv_prog_param(void *ctx, const char *name, int64_t stage, int64_t rows, int64_t cols,
                          int64_t split_dim, int64_t zero3_layer, int64_t poff, int64_t goff, int64_t moff,
                          int64_t decay, int64_t init, double std);
/* A ZeRO-3 layer of a stage: its parameters (declared with zero3_layer = layer and poff =
 * goff = their byte offset in the layer's range) persist only as this rank's 1/dp shard
 * of the range: at pshard_off in the params arena, its gradient shard at gshard_off, its
 * AdamW m and v at mshard_off (v after m). range: the layer's padded bytes. */
GV_API void gv_prog_zero3_layer(void *ctx, int64_t stage, int64_t layer, int64_t pshard_off, int64_t gshard_off,
                                int64_t mshard_off, int64_t range);
/* Parameter `name` of `stage` is finished by the backward of top-level layer `layer` (its
 * gradient may be reduced from then on). tp > 0 (per-layer tp): its layer's degree, which
 * divides the program's: its tp block, its gradient's data-parallel group and its count in
 * the gradient norm follow that degree; 0: the program's degree. Declared after the parameter. */
GV_API void gv_prog_param_layer(void *ctx, const char *name, int64_t stage, int64_t layer, int64_t tp);
/* no_async_grad_reduce for a stage: per_micro_batch = 1 reduces the replicated gradients
 * after every micro-batch's backward into the accumulator at acc_off of the grads arena
 * (laid out like the gradients); 0 (the default, no call): overlapped with the last
 * micro-batch's backward. */
GV_API void gv_prog_grad_reduce(void *ctx, int64_t stage, int64_t per_micro_batch, int64_t acc_off);
/* Mixed precision (no call: "fp32"): "bf16" stores parameters, activations and gradients in
 * bf16 (every float buffer of the plan, and every float operand of the gv_gen_* calls below,
 * unless named f32: norm statistics, log-sum-exp, the loss), and keeps fp32 master weights
 * after each parameter's AdamW m and v (at moff + 2 x 4 x its elements). */
GV_API void gv_prog_precision(void *ctx, const char *dtype);
/* Megatron tensor parallelism of the blocks: degree and whether a tp group is adjacent ranks
 * (with per-layer tp: the largest degree, the base layout of the embedding and head). */
GV_API void gv_prog_tp(void *ctx, int64_t tp, int64_t consecutive);
/* Micro-batch I/O of a stage (ACTS offsets): tokens i32 [B,T], labels i32 [B,T], loss f32
 * [1]; the slot stride and the number of slots (micro-batches in flight). */
GV_API void gv_prog_io(void *ctx, int64_t stage, int64_t tokens_off, int64_t labels_off, int64_t loss_off,
                       int64_t slot_stride, int64_t slots);
/* Pipeline boundary of a stage (ACTS offsets, -1 where none): the received activation
 * (per slot) and the gradient sent back for it; the sent activation (per slot) and the
 * gradient received for it; element counts of the input and output activations. */
GV_API void gv_prog_boundary(void *ctx, int64_t stage, int64_t in_act, int64_t in_grad, int64_t out_act,
                             int64_t out_grad, int64_t in_elems, int64_t out_elems);
/* ZeRO level of a stage's data-parallel replicas (2: gradients reduce-scattered and the
 * optimizer state sharded; each rank owns shard_bytes of the flat gradient arena, its
 * AdamW m and v at the end of the optimizer arena), or no call for plain data parallel. */
GV_API void gv_prog_zero(void *ctx, int64_t stage, int64_t level, int64_t shard_bytes);
/* The functions of a stage: forward and backward of one micro-batch slot, and zeroing of
 * the stage's gradients before a step. */
GV_API void gv_prog_stage(void *ctx, int64_t stage, void *fwd, void *bwd, void *zero_grads);
/* The largest attention of the program: the workspace arena is sized for it by the backend
 * at start-up (its scratch depends on the backend and, on CPUs, on the thread count). */
GV_API void gv_prog_attention(void *ctx, int64_t B, int64_t T, int64_t S, int64_t H, int64_t KV, int64_t D);
/* Logits of the stage holding the head (per slot, f32 [B, T, V]): for sampling text. */
GV_API void gv_prog_logits(void *ctx, int64_t stage, int64_t logits_off);

/* ---- kernels called by stage functions (shapes: see gvrt.h's backend table) ---- */

GV_API void gv_gen_linear_fwd(void *ctx, void *y, void *x, void *w, void *b, int64_t M, int64_t K, int64_t N);
/* A linear followed by the tanh GELU of its output (the compiler fuses the pair): pre
 * [M, N] = x w^T + b (kept for backward), y = gelu_tanh(pre). Backward: dpre [M, K] =
 * (dy w) * gelu_tanh'(pre) (overwritten; the fused input gradient of a linear that feeds on
 * the GELU's output, and the GELU's backward), dw and db with flags' GV_ACC_DW. */
GV_API void gv_gen_linear_gelu_fwd(void *ctx, void *y, void *pre, void *x, void *w, void *b, int64_t M, int64_t K,
                                   int64_t N);
GV_API void gv_gen_linear_dgelu_bwd(void *ctx, void *dpre, void *dw, void *db, void *dy, void *x, void *w, void *pre,
                                    int64_t M, int64_t K, int64_t N, int64_t flags);
/* Row-parallel linear: partial products summed over tensor-parallel group `group` (0: the
 * blocks' tp group); the bias is added once. */
GV_API void gv_gen_linear_fwd_row(void *ctx, int64_t group, void *y, void *x, void *w, void *b, int64_t M, int64_t K,
                                  int64_t N);
/* ZeRO-3 layer `layer`: all-gather n floats of every data-parallel rank's shard into out
 * (dp x n), over the layer's own dp group. */
GV_API void gv_gen_zero3_gather(void *ctx, int64_t layer, void *out, void *shard, int64_t n);
/* ZeRO-3: sum full (dp x n floats) over the layer's data-parallel group and add this rank's
 * n-float block to its gradient shard (full is overwritten). */
GV_API void gv_gen_zero3_reduce_scatter(void *ctx, int64_t layer, void *shard, void *full, int64_t n);
/* A row-parallel linear's partial products (bias added on tp rank 0 only), no communication. */
GV_API void gv_gen_linear_fwd_partial(void *ctx, void *y, void *x, void *w, void *b, int64_t M, int64_t K, int64_t N);
/* Sequence parallelism over the blocks' tp group, on token rows (row-major [rows, C]):
 * slice: out = this rank's n floats of in (block tp_rank); gather: out = every rank's n
 * floats (tp x n); reduce_scatter: out (+)= this rank's n floats of the sum of in (tp x n
 * floats; in is overwritten). "Floats" in these comments are elements of the program's float
 * dtype (f32, or bf16 under gv_prog_precision). */
GV_API void gv_gen_sp_slice(void *ctx, void *out, void *in, int64_t n);
GV_API void gv_gen_sp_gather(void *ctx, void *out, void *in, int64_t n);
GV_API void gv_gen_sp_reduce_scatter(void *ctx, void *out, void *in, int64_t n, int64_t accumulate);
/* Ulysses over the blocks' group of `tp` ranks, R token rows per rank, width N (all heads):
 * rows_to_heads: in [R, N] (my rows) -> out [tp*R, N/tp] (all rows, my heads);
 * heads_to_rows: in [tp*R, N/tp] -> out [R, N]. scratch: R*N floats. */
GV_API void gv_gen_ul_rows_to_heads(void *ctx, void *out, void *in, void *scratch, int64_t R, int64_t N);
GV_API void gv_gen_ul_heads_to_rows(void *ctx, void *out, void *in, void *scratch, int64_t R, int64_t N);
/* Vocabulary parallelism over the tp group (this rank holds table rows [r*Vs, (r+1)*Vs)):
 * embedding_fwd: y [M, C] = the summed rows of ids (zero for ids of other ranks, then an
 * all-reduce); embedding_bwd: dtable += dy rows of my ids; xent_fwd: the loss of logits
 * split by vocabulary ([M, Vs] here) with the global log-sum-exp (lse [M]) and target
 * logit (scratch [M]), scaled like gv_gen_xent_fwd; xent_bwd: dlogits = scale (softmax -
 * onehot) on my columns. Host loops: the CPU backend's memory. */
GV_API void gv_gen_vocab_embedding_fwd(void *ctx, void *y, void *ids, void *table, int64_t M, int64_t Vs, int64_t C);
GV_API void gv_gen_vocab_embedding_bwd(void *ctx, void *dtable, void *dy, void *ids, int64_t M, int64_t Vs, int64_t C);
GV_API void gv_gen_vocab_xent_fwd(void *ctx, void *loss, void *lse, void *scratch, void *logits, void *targets, int64_t M,
                                  int64_t Vs);
GV_API void gv_gen_vocab_xent_bwd(void *ctx, void *dlogits, void *logits, void *lse, void *targets, int64_t M, int64_t Vs);
/* Per-layer tp, between a layer of degree `large` and one of degree `small` (small divides
 * large; a layer of degree t holds the rows of base/t of its group's samples):
 * rows_gather: out = the n floats of each of the large/small ranks sharing this rank's
 * large-degree group and small-degree index, in rank order; rows_slice: out = this rank's
 * n floats of in (large/small blocks of n). */
GV_API void gv_gen_rows_gather(void *ctx, int64_t small, int64_t large, void *out, void *in, int64_t n);
GV_API void gv_gen_rows_slice(void *ctx, int64_t small, int64_t large, void *out, void *in, int64_t n);
/* Gradient reduction hooks (runtime/program/grad_reduce.c): layer `layer`'s backward is done
 * (its parameters' gradients are final after the last micro-batch); and a micro-batch's
 * whole backward is done. */
GV_API void gv_gen_grads_ready(void *ctx, int64_t stage, int64_t layer);
GV_API void gv_gen_backward_done(void *ctx, int64_t stage);
/* Sum a float buffer over tensor-parallel group `group` (the backward of a column split). */
GV_API void gv_gen_all_reduce(void *ctx, int64_t group, void *x, int64_t n);
GV_API void gv_gen_linear_bwd(void *ctx, void *dx, void *dw, void *db, void *dy, void *x, void *w,
                              int64_t M, int64_t K, int64_t N, int64_t flags);
/* ids NULL: learned positions (row % T). accumulate: y += table rows. */
GV_API void gv_gen_embedding_fwd(void *ctx, void *y, void *ids, void *table, int64_t M, int64_t T,
                                 int64_t V, int64_t C, int64_t accumulate);
GV_API void gv_gen_embedding_bwd(void *ctx, void *dtable, void *dy, void *ids, int64_t M, int64_t T,
                                 int64_t V, int64_t C, int64_t flags);
GV_API void gv_gen_layernorm_fwd(void *ctx, void *y, void *mean, void *rstd, void *x, void *w, void *b,
                                 int64_t M, int64_t C, float eps);
GV_API void gv_gen_layernorm_bwd(void *ctx, void *dx, void *dw, void *db, void *dy, void *x, void *w,
                                 void *mean, void *rstd, int64_t M, int64_t C, int64_t flags);
/* A residual add h = a + b (n = M x C elements) and the norm of h into y, fused by the
 * compiler when the norm follows the add. */
GV_API void gv_gen_add_layernorm_fwd(void *ctx, void *h, void *y, void *mean, void *rstd, void *a, void *b, void *w,
                                     void *bias, int64_t M, int64_t C, float eps);
GV_API void gv_gen_add_rmsnorm_fwd(void *ctx, void *h, void *y, void *rstd, void *a, void *b, void *w, int64_t M,
                                   int64_t C, float eps);
GV_API void gv_gen_rmsnorm_fwd(void *ctx, void *y, void *rstd, void *x, void *w, int64_t M, int64_t C,
                               float eps);
GV_API void gv_gen_rmsnorm_bwd(void *ctx, void *dx, void *dw, void *dy, void *x, void *w, void *rstd,
                               int64_t M, int64_t C, int64_t flags);
GV_API void gv_gen_gelu_fwd(void *ctx, void *y, void *x, int64_t n, int64_t tanh_form);
GV_API void gv_gen_gelu_bwd(void *ctx, void *dx, void *dy, void *x, int64_t n, int64_t tanh_form,
                            int64_t flags);
GV_API void gv_gen_silu_fwd(void *ctx, void *y, void *x, int64_t n);
GV_API void gv_gen_silu_bwd(void *ctx, void *dx, void *dy, void *x, int64_t n, int64_t flags);
GV_API void gv_gen_mul_fwd(void *ctx, void *y, void *a, void *b, int64_t n);
/* da or db may be NULL (no gradient wanted). */
GV_API void gv_gen_mul_bwd(void *ctx, void *da, void *db, void *dy, void *a, void *b, int64_t n,
                           int64_t flags);
GV_API void gv_gen_add_fwd(void *ctx, void *y, void *a, void *b, int64_t n);
/* dst = src (accumulate 0) or dst += src (accumulate 1): gradient fan-in. */
GV_API void gv_gen_grad(void *ctx, void *dst, void *src, int64_t n, int64_t accumulate);
GV_API void gv_gen_rope_fwd(void *ctx, void *y, void *x, int64_t B, int64_t T, int64_t H, int64_t D,
                            float base);
GV_API void gv_gen_rope_bwd(void *ctx, void *dx, void *dy, int64_t B, int64_t T, int64_t H, int64_t D,
                            float base, int64_t flags);
GV_API void gv_gen_attention_fwd(void *ctx, void *o, void *lse, void *q, void *k, void *v, int64_t B,
                                 int64_t T, int64_t H, int64_t KV, int64_t D, int64_t causal);
GV_API void gv_gen_attention_bwd(void *ctx, void *dq, void *dk, void *dv, void *dout, void *q, void *k,
                                 void *v, void *o, void *lse, int64_t B, int64_t T, int64_t H,
                                 int64_t KV, int64_t D, int64_t causal, int64_t flags);
/* Dropout of a [rows, cols] value whose global form is [global batch x seq, cols_global]:
 * the mask of each element is keyed by (seed, step, site) and its global (row, column), so
 * every strategy drops the same elements as one rank. site: a constant per dropout op;
 * row_split: which rows this rank holds (0: its micro-batch's, 1: this tp rank's slice of
 * them, f >= 2: the slice of a per-layer-tp block of row factor f); a value split by columns
 * (cols < cols_global) holds tp-rank block of them in group `group` (0: the blocks'). No
 * dropout while evaluating or sampling. */
GV_API void gv_gen_dropout_fwd(void *ctx, void *y, void *x, int64_t rows, int64_t cols, int64_t cols_global, float p,
                               int64_t site, int64_t row_split, int64_t group);
GV_API void gv_gen_dropout_bwd(void *ctx, void *dx, void *dy, int64_t rows, int64_t cols, int64_t cols_global, float p,
                               int64_t site, int64_t row_split, int64_t group, int64_t flags);
/* Loss of the micro-batch, scaled by the run's 1 / (tokens in the global batch). */
GV_API void gv_gen_xent_fwd(void *ctx, void *loss, void *lse, void *logits, void *targets, int64_t M,
                            int64_t V);
GV_API void gv_gen_xent_bwd(void *ctx, void *dlogits, void *logits, void *lse, void *targets, int64_t M,
                            int64_t V);
/* n elements of the program's float dtype (f32, or bf16 under mixed precision) set to value. */
GV_API void gv_gen_fill(void *ctx, void *x, int64_t n, float value);
/* bytes (a multiple of 4) of any buffer set to zero bits (i32 token types). */
GV_API void gv_gen_zero(void *ctx, void *x, int64_t bytes);

/* ---- the runtime's main: parse arguments, run the program described by describe ---- */

GV_API int gv_main(int argc, char **argv, gv_prog_fn describe);

#endif
