/* gvrt_entries.h - the one table of libgvrt entry points a generated program calls: the
 * gv_prog_* calls of the describe function and the gv_gen_* kernels of the stage functions.
 * Each row X(name, args) gives the entry's name (without the gv_ prefix) and its arguments
 * after the leading `void *ctx`, each as GV_A(KIND, name):
 *     PTR  void *         a buffer of the memory plan (or NULL where the entry allows it)
 *     FN   void *         a function of the generated program (gv_prog_fn)
 *     I64  int64_t        an integer constant
 *     F32  float          a float constant
 *     F64  double         a double constant
 *     STR  const char *   a string constant
 * gvrt_program.h declares every row from it, so the runtime's definitions are checked
 * against it by the C compiler; the compiler builds its calls, the C emitter's prototypes
 * (the generated C includes gvrt_program.h) and the LLVM emitter's declarations from the same
 * rows, and refers to arguments by these names. A new entry point is one row here and its
 * definition in the runtime. */
#ifndef GVRT_ENTRIES_H
#define GVRT_ENTRIES_H

#define GV_ENTRIES(X) \
/* ---- describe: what the program is ---- \
 * One binary serves every rank: calls carry the pipeline stage they describe, and a rank \
 * keeps what concerns its own stage (stage = world rank / (world / pp)). */ \
/* Global facts: world size, pipeline degree, the micro-batch, sequence length, vocabulary. */ \
  X(prog_model, GV_A(STR, name) GV_A(I64, world) GV_A(I64, pp) GV_A(I64, micro_batch) \
    GV_A(I64, seq) GV_A(I64, vocab)) \
/* Pipeline schedule (1: 1F1B / pipedream_flush, 0: GPipe) and the micro-batches per step \
 * and data-parallel rank the activation slots were planned for. */ \
  X(prog_pipeline, GV_A(I64, one_f_one_b) GV_A(I64, chunks)) \
/* Vocabulary padding (gvc compile --make-vocab-size-divisible-by): the model's true \
 * vocabulary, below prog_model's (padded) one, which is the logits' row length: the loss \
 * masks the padded logits, sampling and the data check use the true vocabulary. */ \
  X(prog_vocab, GV_A(I64, vocab)) \
/* Parameter `name` of `stage` has the padded vocabulary as its rows: only the first `rows` \
 * are the model's (saved in checkpoints, read from them and from --init_from); declared \
 * after the parameter. */ \
  X(prog_vocab_param, GV_A(STR, name) GV_A(I64, stage) GV_A(I64, rows)) \
/* The default of --global_train_batch_size (a strategy's global_bsz). */ \
  X(prog_batch, GV_A(I64, global_batch)) \
/* Size of arena kind (enum gv_mem_kind) of a stage, in bytes, as planned. */ \
  X(prog_arena, GV_A(I64, stage) GV_A(I64, kind) GV_A(I64, bytes)) \
/* A parameter of a stage: global name and shape (rows x cols; 1-D: rows = 1), the dim \
 * tensor parallelism splits (-1 none, 0 rows, 1 columns: this rank holds block tp_rank of \
 * it; -2: replicated, but its gradient is a partial sum over the tp group, as for norms under \
 * sequence parallelism), its offsets in the params, grads and optimizer arenas (m at moff, v at moff + shard \
 * bytes; -1 under ZeRO), whether it decays, its init. A weight tied across stages (GPT-2's \
 * embedding and head) is declared on each. */ \
  X(prog_param, GV_A(STR, name) GV_A(I64, stage) GV_A(I64, rows) GV_A(I64, cols) \
    GV_A(I64, split_dim) GV_A(I64, zero3_layer) GV_A(I64, poff) GV_A(I64, goff) GV_A(I64, moff) \
    GV_A(I64, decay) GV_A(I64, init) GV_A(F64, std)) \
/* A ZeRO-3 layer of a stage: its parameters (declared with zero3_layer = layer and poff = \
 * goff = their byte offset in the layer's range) persist only as this rank's 1/dp shard \
 * of the range: at pshard_off in the params arena, its gradient shard at gshard_off, its \
 * AdamW m and v at mshard_off (v after m). range: the layer's padded bytes. */ \
  X(prog_zero3_layer, GV_A(I64, stage) GV_A(I64, layer) GV_A(I64, pshard_off) \
    GV_A(I64, gshard_off) GV_A(I64, mshard_off) GV_A(I64, range)) \
/* Parameter `name` of `stage` is finished by the backward of top-level layer `layer` (its \
 * gradient may be reduced from then on). tp > 0 (per-layer tp): its layer's degree, which \
 * divides the program's: its tp block, its gradient's data-parallel group and its count in \
 * the gradient norm follow that degree; 0: the program's degree. Declared after the parameter. */ \
  X(prog_param_layer, GV_A(STR, name) GV_A(I64, stage) GV_A(I64, layer) GV_A(I64, tp)) \
/* no_async_grad_reduce for a stage: per_micro_batch = 1 reduces the replicated gradients \
 * after every micro-batch's backward into the accumulator at acc_off of the grads arena \
 * (laid out like the gradients); 0 (the default, no call): overlapped with the last \
 * micro-batch's backward. */ \
  X(prog_grad_reduce, GV_A(I64, stage) GV_A(I64, per_micro_batch) GV_A(I64, acc_off)) \
/* Mixed precision (no call: "fp32"): "bf16" stores parameters, activations and gradients in \
 * bf16 (every float buffer of the plan, and every float operand of the gv_gen_* calls below, \
 * unless named f32: norm statistics, log-sum-exp, the loss), and keeps fp32 master weights \
 * after each parameter's AdamW m and v (at moff + 2 x 4 x its elements). */ \
  X(prog_precision, GV_A(STR, dtype)) \
/* Megatron tensor parallelism of the blocks: degree and whether a tp group is adjacent ranks \
 * (with per-layer tp: the largest degree, the base layout of the embedding and head). */ \
  X(prog_tp, GV_A(I64, tp) GV_A(I64, consecutive)) \
/* Context parallelism (Galvatron's global_cp_deg, cp_mode zigzag): every layer runs on this \
 * rank's zigzag rows of each sample (chunks r and 2cp-1-r of 2cp; prog_model's seq is the \
 * whole sequence, the program's shapes use seq / cp). The cp group is made of ranks with the \
 * same stage, tp index and data index: a stage's dp-group rank q is cp index q % cp and data \
 * index q / cp, so gradients reduce over dp x cp and cp ranks read the same samples. */ \
  X(prog_cp, GV_A(I64, cp)) \
/* Expert parallelism (Galvatron's global_ep_deg): a stage's dp-group rank q is expert-parallel \
 * index q % ep of the ep group of ranks q / ep (same stage and tp index); the ranks of one \
 * expert-parallel index form the expert-data-parallel group, over which expert parameters' \
 * gradients reduce (and their ZeRO-2 state shards). */ \
  X(prog_ep, GV_A(I64, ep)) \
/* Tensor parallelism inside experts (Galvatron's global_tp_of_ep_deg, > 1 only): the expert \
 * parameters are split over the tp group too (their shards say how); recorded in checkpoints. */ \
  X(prog_tp_of_ep, GV_A(I64, tp_of_ep)) \
/* Parameter `name` of `stage` is a mixture-of-experts weight [E, ...] spread over the ep \
 * group by its leading dim: this rank holds rows [ep_rank, ep_rank + 1) x rows / ep of it \
 * (experts E/ep); its gradient reduces over the expert-data-parallel group. Declared after \
 * the parameter. */ \
  X(prog_param_expert, GV_A(STR, name) GV_A(I64, stage)) \
/* Micro-batch I/O of a stage (ACTS offsets): tokens i32 [B,T], labels i32 [B,T], loss f32 \
 * [1] (-1: none, a stage before the last without MoE load-balancing terms; the step's loss \
 * sums every stage's); the slot stride and the number of slots (micro-batches in flight). */ \
/* An image model: this stage's slots hold images [micro_batch, channels, side, side] of the \
 * program's float type at pixels_off (the slot stride prog_io's), and labels one a sample. */ \
  X(prog_images, GV_A(I64, stage) GV_A(I64, pixels_off) GV_A(I64, channels) GV_A(I64, side)) \
  X(prog_io, GV_A(I64, stage) GV_A(I64, tokens_off) GV_A(I64, labels_off) GV_A(I64, loss_off) \
    GV_A(I64, slot_stride) GV_A(I64, slots)) \
/* The source token ids of a stage of an encoder-decoder (ACTS offset, i32 [B, src_seq] per \
 * slot, padded with 0): only in programs whose model reads src_tokens. */ \
  X(prog_src, GV_A(I64, stage) GV_A(I64, src_off) GV_A(I64, src_seq)) \
/* Pipeline boundary of a stage (ACTS offsets, -1 where none): the received activation \
 * (per slot) and the gradient sent back for it; the sent activation (per slot) and the \
 * gradient received for it; element counts of the input and output activations. */ \
  X(prog_boundary, GV_A(I64, stage) GV_A(I64, in_act) GV_A(I64, in_grad) GV_A(I64, out_act) \
    GV_A(I64, out_grad) GV_A(I64, in_elems) GV_A(I64, out_elems)) \
/* ZeRO level of a stage's data-parallel replicas (2: gradients reduce-scattered and the \
 * optimizer state sharded; each rank owns shard_bytes of the flat gradient arena, its \
 * AdamW m and v at the end of the optimizer arena), or no call for plain data parallel. */ \
  X(prog_zero, GV_A(I64, stage) GV_A(I64, level) GV_A(I64, shard_bytes)) \
/* The functions of a stage: forward and backward of one micro-batch slot, and zeroing of \
 * the stage's gradients before a step. */ \
  X(prog_stage, GV_A(I64, stage) GV_A(FN, fwd) GV_A(FN, bwd) GV_A(FN, zero_grads)) \
/* The largest attention of the program: the workspace arena is sized for it by the backend \
 * at start-up (its scratch depends on the backend and, on CPUs, on the thread count). */ \
  X(prog_attention, GV_A(I64, B) GV_A(I64, T) GV_A(I64, S) GV_A(I64, H) GV_A(I64, KV) \
    GV_A(I64, D)) \
/* Logits of the stage holding the head (per slot, f32 [B, T, V]): for sampling text. */ \
  X(prog_logits, GV_A(I64, stage) GV_A(I64, logits_off)) \
/* ... which hold only this rank's `rows` token rows of the tp group (vocabulary sequence \
 * parallelism): rank j of the group holds rows j x rows ..; declared after prog_logits. */ \
  X(prog_logits_rows, GV_A(I64, stage) GV_A(I64, rows)) \
/* ... or only `cols` columns of each row, split by vocabulary over the vtp ranks of the tp \
 * group (rank j holds columns j x cols ..); declared after prog_logits. */ \
  X(prog_logits_cols, GV_A(I64, stage) GV_A(I64, cols) GV_A(I64, vtp)) \
/* The decode step of a one-stage program without tensor parallelism or ZeRO-3 whose \
 * attentions are causal (generation with a KV cache; runtime/program/decode.c): fn runs the \
 * forward of one token at the runtime's decode position, reading the params and workspace \
 * arenas and its own activations arena (acts_bytes; bases[GV_MEM_ACTS] while it runs): the \
 * token i32 at tokens_off, the logits row f32 [V] left at logits_off. caches: the \
 * attentions (KV caches, keyed 0..caches-1 by gen_decode_attention); positions: the rows of \
 * the learned position table (the longest context), or 0 (rope or no positions: any). */ \
  X(prog_decode, GV_A(I64, stage) GV_A(FN, fn) GV_A(I64, tokens_off) GV_A(I64, logits_off) \
    GV_A(I64, acts_bytes) GV_A(I64, caches) GV_A(I64, positions)) \
/* ---- kernels called by stage functions (shapes: see gvrt.h's backend table) ---- */ \
  X(gen_linear_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(PTR, w) GV_A(PTR, b) GV_A(I64, M) \
    GV_A(I64, K) GV_A(I64, N)) \
/* A linear followed by the tanh GELU of its output (the compiler fuses the pair): pre \
 * [M, N] = x w^T + b (kept for backward), y = gelu_tanh(pre). Backward: dpre [M, K] = \
 * (dy w) * gelu_tanh'(pre) (overwritten; the fused input gradient of a linear that feeds on \
 * the GELU's output, and the GELU's backward), dw and db with flags' GV_ACC_DW. */ \
  X(gen_linear_gelu_fwd, GV_A(PTR, y) GV_A(PTR, pre) GV_A(PTR, x) GV_A(PTR, w) GV_A(PTR, b) \
    GV_A(I64, M) GV_A(I64, K) GV_A(I64, N)) \
  X(gen_linear_dgelu_bwd, GV_A(PTR, dpre) GV_A(PTR, dw) GV_A(PTR, db) GV_A(PTR, dy) GV_A(PTR, x) \
    GV_A(PTR, w) GV_A(PTR, pre) GV_A(I64, M) GV_A(I64, K) GV_A(I64, N) GV_A(I64, flags)) \
/* Row-parallel linear: partial products summed over tensor-parallel group `group` (0: the \
 * blocks' tp group); the bias is added once. */ \
  X(gen_linear_fwd_row, GV_A(I64, group) GV_A(PTR, y) GV_A(PTR, x) GV_A(PTR, w) GV_A(PTR, b) \
    GV_A(I64, M) GV_A(I64, K) GV_A(I64, N)) \
/* ZeRO-3 layer `layer`: all-gather n floats of every data-parallel rank's shard into out \
 * (dp x n), over the layer's own dp group. */ \
  X(gen_zero3_gather, GV_A(I64, layer) GV_A(PTR, out) GV_A(PTR, shard) GV_A(I64, n)) \
/* ZeRO-3: sum full (dp x n floats) over the layer's data-parallel group and add this rank's \
 * n-float block to its gradient shard (full is overwritten). */ \
  X(gen_zero3_reduce_scatter, GV_A(I64, layer) GV_A(PTR, shard) GV_A(PTR, full) GV_A(I64, n)) \
/* A row-parallel linear's partial products (bias added on tp rank 0 only), no communication. */ \
  X(gen_linear_fwd_partial, GV_A(PTR, y) GV_A(PTR, x) GV_A(PTR, w) GV_A(PTR, b) GV_A(I64, M) \
    GV_A(I64, K) GV_A(I64, N)) \
/* Sequence parallelism over the blocks' tp group, on token rows (row-major [rows, C]): \
 * slice: out = this rank's n floats of in (block tp_rank); gather: out = every rank's n \
 * floats (tp x n); reduce_scatter: out (+)= this rank's n floats of the sum of in (tp x n \
 * floats; in is overwritten). "Floats" in these comments are elements of the program's float \
 * dtype (f32, or bf16 under gv_prog_precision). */ \
  X(gen_sp_slice, GV_A(PTR, out) GV_A(PTR, in) GV_A(I64, n)) \
  X(gen_sp_gather, GV_A(PTR, out) GV_A(PTR, in) GV_A(I64, n)) \
  X(gen_sp_reduce_scatter, GV_A(PTR, out) GV_A(PTR, in) GV_A(I64, n) GV_A(I64, accumulate)) \
/* Sequence parallelism of the vocabulary layers (vsp), on this rank's M token rows of the tp \
 * group (rows tp_rank x M .. of the micro-batch's samples of T tokens): pos_embedding_fwd: y \
 * (+)= their learned positions' rows of table [V, C]; pos_embedding_bwd: dtable (+)= dy by \
 * position; loss_sum: the f32 loss (each rank's is its rows' share) summed over the group. */ \
  X(gen_sp_pos_embedding_fwd, GV_A(PTR, y) GV_A(PTR, table) GV_A(I64, M) GV_A(I64, T) GV_A(I64, V) \
    GV_A(I64, C) GV_A(I64, accumulate)) \
  X(gen_sp_pos_embedding_bwd, GV_A(PTR, dtable) GV_A(PTR, dy) GV_A(I64, M) GV_A(I64, T) GV_A(I64, V) \
    GV_A(I64, C) GV_A(I64, flags)) \
  X(gen_sp_loss_sum, GV_A(PTR, loss)) \
/* Ulysses over the blocks' group of `tp` ranks, R token rows per rank, width N (all heads): \
 * rows_to_heads: in [R, N] (my rows) -> out [tp*R, N/tp] (all rows, my heads); \
 * heads_to_rows: in [tp*R, N/tp] -> out [R, N]. scratch: R*N floats. */ \
  X(gen_ul_rows_to_heads, GV_A(PTR, out) GV_A(PTR, in) GV_A(PTR, scratch) GV_A(I64, R) \
    GV_A(I64, N)) \
  X(gen_ul_heads_to_rows, GV_A(PTR, out) GV_A(PTR, in) GV_A(PTR, scratch) GV_A(I64, R) \
    GV_A(I64, N)) \
/* Vocabulary parallelism over the tp group (this rank holds table rows [r*Vs, (r+1)*Vs)): \
 * embedding_fwd: y [M, C] = the summed rows of ids (zero for ids of other ranks, then an \
 * all-reduce); embedding_bwd: dtable += dy rows of my ids; xent_fwd: the loss of logits \
 * split by vocabulary ([M, Vs] here) with the global log-sum-exp (lse [M]) and target \
 * logit (scratch [M]), scaled like gv_gen_xent_fwd; xent_bwd: dlogits = scale (softmax - \
 * onehot) on my columns. Host loops: the CPU backend's memory. */ \
  X(gen_vocab_embedding_fwd, GV_A(PTR, y) GV_A(PTR, ids) GV_A(PTR, table) GV_A(I64, M) \
    GV_A(I64, Vs) GV_A(I64, C)) \
  X(gen_vocab_embedding_bwd, GV_A(PTR, dtable) GV_A(PTR, dy) GV_A(PTR, ids) GV_A(I64, M) \
    GV_A(I64, Vs) GV_A(I64, C)) \
  X(gen_vocab_xent_fwd, GV_A(PTR, loss) GV_A(PTR, lse) GV_A(PTR, scratch) GV_A(PTR, logits) \
    GV_A(PTR, targets) GV_A(I64, M) GV_A(I64, Vs)) \
  X(gen_vocab_xent_bwd, GV_A(PTR, dlogits) GV_A(PTR, logits) GV_A(PTR, lse) GV_A(PTR, targets) \
    GV_A(I64, M) GV_A(I64, Vs)) \
/* Per-layer tp, between a layer of degree `large` and one of degree `small` (small divides \
 * large; a layer of degree t holds the rows of base/t of its group's samples): \
 * rows_gather: out = the n floats of each of the large/small ranks sharing this rank's \
 * large-degree group and small-degree index, in rank order; rows_slice: out = this rank's \
 * n floats of in (large/small blocks of n). */ \
  X(gen_rows_gather, GV_A(I64, small) GV_A(I64, large) GV_A(PTR, out) GV_A(PTR, in) GV_A(I64, n)) \
  X(gen_rows_slice, GV_A(I64, small) GV_A(I64, large) GV_A(PTR, out) GV_A(PTR, in) GV_A(I64, n)) \
/* Gradient reduction hooks (runtime/program/grad_reduce.c): layer `layer`'s backward is done \
 * (its parameters' gradients are final after the last micro-batch); and a micro-batch's \
 * whole backward is done. */ \
  X(gen_grads_ready, GV_A(I64, stage) GV_A(I64, layer)) \
  X(gen_backward_done, GV_A(I64, stage)) \
/* Sum a float buffer over tensor-parallel group `group` (the backward of a column split). */ \
  X(gen_all_reduce, GV_A(I64, group) GV_A(PTR, x) GV_A(I64, n)) \
  X(gen_linear_bwd, GV_A(PTR, dx) GV_A(PTR, dw) GV_A(PTR, db) GV_A(PTR, dy) GV_A(PTR, x) \
    GV_A(PTR, w) GV_A(I64, M) GV_A(I64, K) GV_A(I64, N) GV_A(I64, flags)) \
/* ids NULL: learned positions (row % T). accumulate: y += table rows. */ \
  X(gen_embedding_fwd, GV_A(PTR, y) GV_A(PTR, ids) GV_A(PTR, table) GV_A(I64, M) GV_A(I64, T) \
    GV_A(I64, V) GV_A(I64, C) GV_A(I64, accumulate)) \
  X(gen_embedding_bwd, GV_A(PTR, dtable) GV_A(PTR, dy) GV_A(PTR, ids) GV_A(I64, M) GV_A(I64, T) \
    GV_A(I64, V) GV_A(I64, C) GV_A(I64, flags)) \
  X(gen_layernorm_fwd, GV_A(PTR, y) GV_A(PTR, mean) GV_A(PTR, rstd) GV_A(PTR, x) GV_A(PTR, w) \
    GV_A(PTR, b) GV_A(I64, M) GV_A(I64, C) GV_A(F32, eps)) \
  X(gen_layernorm_bwd, GV_A(PTR, dx) GV_A(PTR, dw) GV_A(PTR, db) GV_A(PTR, dy) GV_A(PTR, x) \
    GV_A(PTR, w) GV_A(PTR, mean) GV_A(PTR, rstd) GV_A(I64, M) GV_A(I64, C) GV_A(I64, flags)) \
/* A residual add h = a + b (n = M x C elements) and the norm of h into y, fused by the \
 * compiler when the norm follows the add. */ \
  X(gen_add_layernorm_fwd, GV_A(PTR, h) GV_A(PTR, y) GV_A(PTR, mean) GV_A(PTR, rstd) \
    GV_A(PTR, a) GV_A(PTR, b) GV_A(PTR, w) GV_A(PTR, bias) GV_A(I64, M) GV_A(I64, C) \
    GV_A(F32, eps)) \
  X(gen_add_rmsnorm_fwd, GV_A(PTR, h) GV_A(PTR, y) GV_A(PTR, rstd) GV_A(PTR, a) GV_A(PTR, b) \
    GV_A(PTR, w) GV_A(I64, M) GV_A(I64, C) GV_A(F32, eps)) \
  X(gen_rmsnorm_fwd, GV_A(PTR, y) GV_A(PTR, rstd) GV_A(PTR, x) GV_A(PTR, w) GV_A(I64, M) \
    GV_A(I64, C) GV_A(F32, eps)) \
  X(gen_rmsnorm_bwd, GV_A(PTR, dx) GV_A(PTR, dw) GV_A(PTR, dy) GV_A(PTR, x) GV_A(PTR, w) \
    GV_A(PTR, rstd) GV_A(I64, M) GV_A(I64, C) GV_A(I64, flags)) \
  X(gen_gelu_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(I64, n) GV_A(I64, tanh_form)) \
  X(gen_gelu_bwd, GV_A(PTR, dx) GV_A(PTR, dy) GV_A(PTR, x) GV_A(I64, n) GV_A(I64, tanh_form) \
    GV_A(I64, flags)) \
  X(gen_silu_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(I64, n)) \
  X(gen_silu_bwd, GV_A(PTR, dx) GV_A(PTR, dy) GV_A(PTR, x) GV_A(I64, n) GV_A(I64, flags)) \
  X(gen_relu_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(I64, n)) \
  X(gen_relu_bwd, GV_A(PTR, dx) GV_A(PTR, dy) GV_A(PTR, x) GV_A(I64, n) GV_A(I64, flags)) \
  X(gen_mul_fwd, GV_A(PTR, y) GV_A(PTR, a) GV_A(PTR, b) GV_A(I64, n)) \
/* y = silu(gate) * up: mul(silu(gate), up) in one pass, bit for bit; its backward's dgate or \
 * dup may be NULL. */ \
  X(gen_swiglu_fwd, GV_A(PTR, y) GV_A(PTR, gate) GV_A(PTR, up) GV_A(I64, n)) \
  X(gen_swiglu_bwd, GV_A(PTR, dgate) GV_A(PTR, dup) GV_A(PTR, dy) GV_A(PTR, gate) GV_A(PTR, up) \
    GV_A(I64, n) GV_A(I64, flags)) \
/* da or db may be NULL (no gradient wanted). */ \
  X(gen_mul_bwd, GV_A(PTR, da) GV_A(PTR, db) GV_A(PTR, dy) GV_A(PTR, a) GV_A(PTR, b) \
    GV_A(I64, n) GV_A(I64, flags)) \
  X(gen_add_fwd, GV_A(PTR, y) GV_A(PTR, a) GV_A(PTR, b) GV_A(I64, n)) \
/* dst = src (accumulate 0) or dst += src (accumulate 1): gradient fan-in. */ \
  X(gen_grad, GV_A(PTR, dst) GV_A(PTR, src) GV_A(I64, n) GV_A(I64, accumulate)) \
/* y (+)= alpha x + beta over n elements (flags: GV_ACC_DX accumulates). */ \
  X(gen_affine, GV_A(PTR, y) GV_A(PTR, x) GV_A(I64, n) GV_A(F32, alpha) GV_A(F32, beta) GV_A(I64, flags)) \
/* softmax over the last dimension of [M, N]; its backward from the output y. */ \
  X(gen_softmax_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(I64, M) GV_A(I64, N)) \
  X(gen_softmax_bwd, GV_A(PTR, dx) GV_A(PTR, dy) GV_A(PTR, y) GV_A(I64, M) GV_A(I64, N) GV_A(I64, flags)) \
/* dst [M, dst_n] columns dst_col.. (+)= src [M, src_n] columns src_col.., n of them (slice, \
 * concat on the last dimension); flags: GV_ACC_DX accumulates. */ \
  X(gen_copy_cols, GV_A(PTR, dst) GV_A(PTR, src) GV_A(I64, M) GV_A(I64, dst_n) GV_A(I64, dst_col) \
    GV_A(I64, src_n) GV_A(I64, src_col) GV_A(I64, n) GV_A(I64, flags)) \
/* Mixture of experts (gvrt.h's routing contract): M token rows, k choices of E experts, \
 * idx i32 [M, k]; routed rows [M k, C]. topk: idx = the k largest of x [M, N]; take: y [M, k] \
 * = x's columns idx; grouped: routed x [M k, K] through w [E, N, K]; moe_aux: the \
 * load-balancing loss of probs [M, E] into loss (f32 [1]; coeff E / M^2 times the run's \
 * tokens-per-global-batch scale times M, so micro-batches average), backward adds its \
 * gradient into dprobs; loss_add: dst f32 [1] += src f32 [1] (the aux terms into the loss). */ \
  X(gen_topk, GV_A(PTR, idx) GV_A(PTR, x) GV_A(I64, M) GV_A(I64, N) GV_A(I64, k)) \
  X(gen_take_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(PTR, idx) GV_A(I64, M) GV_A(I64, N) GV_A(I64, k)) \
  X(gen_take_bwd, GV_A(PTR, dx) GV_A(PTR, dy) GV_A(PTR, idx) GV_A(I64, M) GV_A(I64, N) GV_A(I64, k) \
    GV_A(I64, flags)) \
  X(gen_moe_permute_fwd, GV_A(PTR, xp) GV_A(PTR, x) GV_A(PTR, idx) GV_A(I64, M) GV_A(I64, C) GV_A(I64, k) \
    GV_A(I64, E)) \
  X(gen_moe_permute_bwd, GV_A(PTR, dx) GV_A(PTR, dxp) GV_A(PTR, idx) GV_A(I64, M) GV_A(I64, C) GV_A(I64, k) \
    GV_A(I64, E) GV_A(I64, flags)) \
  X(gen_moe_grouped_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(PTR, w) GV_A(PTR, idx) GV_A(I64, M) GV_A(I64, k) \
    GV_A(I64, E) GV_A(I64, N) GV_A(I64, K)) \
  X(gen_moe_grouped_bwd, GV_A(PTR, dx) GV_A(PTR, dw) GV_A(PTR, dy) GV_A(PTR, x) GV_A(PTR, w) GV_A(PTR, idx) \
    GV_A(I64, M) GV_A(I64, k) GV_A(I64, E) GV_A(I64, N) GV_A(I64, K) GV_A(I64, flags)) \
  X(gen_moe_unpermute_fwd, GV_A(PTR, y) GV_A(PTR, yp) GV_A(PTR, gates) GV_A(PTR, idx) GV_A(I64, M) \
    GV_A(I64, C) GV_A(I64, k) GV_A(I64, E)) \
  X(gen_moe_unpermute_bwd, GV_A(PTR, dyp) GV_A(PTR, dgates) GV_A(PTR, dy) GV_A(PTR, yp) GV_A(PTR, gates) \
    GV_A(PTR, idx) GV_A(I64, M) GV_A(I64, C) GV_A(I64, k) GV_A(I64, E) GV_A(I64, flags)) \
  X(gen_moe_aux_fwd, GV_A(PTR, loss) GV_A(PTR, probs) GV_A(PTR, idx) GV_A(I64, M) GV_A(I64, E) GV_A(I64, k) \
    GV_A(F32, coeff)) \
  X(gen_moe_aux_bwd, GV_A(PTR, dprobs) GV_A(PTR, idx) GV_A(I64, M) GV_A(I64, E) GV_A(I64, k) GV_A(F32, coeff) \
    GV_A(I64, flags)) \
  X(gen_loss_add, GV_A(PTR, dst) GV_A(PTR, src)) \
/* rope on the first rot dims of each head of D (rot = D: all of them). */ \
  X(gen_rope_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(I64, B) GV_A(I64, T) GV_A(I64, H) GV_A(I64, D) \
    GV_A(I64, rot) GV_A(F32, base)) \
  X(gen_rope_bwd, GV_A(PTR, dx) GV_A(PTR, dy) GV_A(I64, B) GV_A(I64, T) GV_A(I64, H) \
    GV_A(I64, D) GV_A(I64, rot) GV_A(F32, base) GV_A(I64, flags)) \
/* T5's relative position bias: y [T, T, H] = table [buckets, H] at the bucket of key - query \
 * (bidirectional or causal; log-spaced past buckets / 2 (or / 4) up to max_distance); ids: \
 * [T, T] i32 scratch for the buckets. Backward adds dy into the table's gradient. */ \
  X(gen_rel_bias_fwd, GV_A(PTR, y) GV_A(PTR, ids) GV_A(PTR, table) GV_A(I64, T) GV_A(I64, H) \
    GV_A(I64, buckets) GV_A(I64, max_distance) GV_A(I64, bidirectional)) \
  X(gen_rel_bias_bwd, GV_A(PTR, dtable) GV_A(PTR, dy) GV_A(PTR, ids) GV_A(I64, T) GV_A(I64, H) \
    GV_A(I64, buckets) GV_A(I64, max_distance) GV_A(I64, bidirectional)) \
/* ViT's patch embedding: y [B, N, hidden] = the patch rows of pixels [B, C, S, S] (cut into \
 * p x p squares, N = (S/p)^2; rows [B, N, C p p] scratch) times w [hidden, C, p, p] + b; the \
 * backward cuts the rows again and gives dw, db (the pixels have no gradient). */ \
  X(gen_patch_embed_fwd, GV_A(PTR, y) GV_A(PTR, rows) GV_A(PTR, pixels) GV_A(PTR, w) GV_A(PTR, b) \
    GV_A(I64, B) GV_A(I64, C) GV_A(I64, S) GV_A(I64, p) GV_A(I64, hidden)) \
  X(gen_patch_embed_bwd, GV_A(PTR, dw) GV_A(PTR, db) GV_A(PTR, dy) GV_A(PTR, rows) GV_A(PTR, pixels) GV_A(PTR, w) \
    GV_A(I64, B) GV_A(I64, C) GV_A(I64, S) GV_A(I64, p) GV_A(I64, hidden) GV_A(I64, flags)) \
/* The class token: y [B, N + 1, C] = cls [C] in front of x [B, N, C]; backward dx (+)= \
 * dy's last N rows, dcls (+)= the sum of dy's first rows (scratch [B, C]). */ \
  X(gen_class_token_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(PTR, cls) GV_A(I64, B) GV_A(I64, N) GV_A(I64, C)) \
  X(gen_class_token_bwd, GV_A(PTR, dx) GV_A(PTR, dcls) GV_A(PTR, dy) GV_A(PTR, scratch) GV_A(I64, B) \
    GV_A(I64, N) GV_A(I64, C) GV_A(I64, flags)) \
/* y [B, C] = x [B, T, C]'s first rows; backward dx (+)= dy in the first rows (0 elsewhere). */ \
  X(gen_first_token_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(I64, B) GV_A(I64, T) GV_A(I64, C)) \
  X(gen_first_token_bwd, GV_A(PTR, dx) GV_A(PTR, dy) GV_A(I64, B) GV_A(I64, T) GV_A(I64, C) GV_A(I64, flags)) \
/* attention: scale 0 is 1/sqrt(D); bias (may be null) holds Hb heads, [T, T, Hb]: this call's \
 * H heads are this rank's tp slice of them when Hb > H; dbias (may be null) the same; \
 * key_ids (may be null): i32 [B, T], a key whose id is 0 (the pad) is masked. */ \
  X(gen_attention_fwd, GV_A(PTR, o) GV_A(PTR, lse) GV_A(PTR, q) GV_A(PTR, k) GV_A(PTR, v) \
    GV_A(I64, B) GV_A(I64, T) GV_A(I64, H) GV_A(I64, KV) GV_A(I64, D) GV_A(I64, causal) \
    GV_A(F32, scale) GV_A(PTR, bias) GV_A(I64, Hb) GV_A(PTR, key_ids)) \
/* ... with T queries and S keys (an encoder-decoder's cross-attention): q, o [B, T, H, D], \
 * k, v [B, S, KV, D], lse [B, H, T], bias [T, S, Hb], key_ids [B, S]. */ \
  X(gen_cross_attention_fwd, GV_A(PTR, o) GV_A(PTR, lse) GV_A(PTR, q) GV_A(PTR, k) GV_A(PTR, v) \
    GV_A(I64, B) GV_A(I64, T) GV_A(I64, S) GV_A(I64, H) GV_A(I64, KV) GV_A(I64, D) GV_A(I64, causal) \
    GV_A(F32, scale) GV_A(PTR, bias) GV_A(I64, Hb) GV_A(PTR, key_ids)) \
  X(gen_cross_attention_bwd, GV_A(PTR, dq) GV_A(PTR, dk) GV_A(PTR, dv) GV_A(PTR, dout) GV_A(PTR, q) \
    GV_A(PTR, k) GV_A(PTR, v) GV_A(PTR, o) GV_A(PTR, lse) GV_A(I64, B) GV_A(I64, T) GV_A(I64, S) GV_A(I64, H) \
    GV_A(I64, KV) GV_A(I64, D) GV_A(I64, causal) GV_A(I64, flags) GV_A(F32, scale) GV_A(PTR, bias) \
    GV_A(PTR, dbias) GV_A(I64, Hb) GV_A(PTR, key_ids)) \
/* Ring attention over the cp group (gvrt_comm.h: gv_ring_attention_fwd/bwd; causal, T the \
 * local rows), scratch: gv_ring_attention_scratch_bytes(B, T, H, KV, D, 0 or 1) bytes. */ \
  X(gen_ring_attention_fwd, GV_A(PTR, o) GV_A(PTR, lse) GV_A(PTR, q) GV_A(PTR, k) GV_A(PTR, v) \
    GV_A(PTR, scratch) GV_A(I64, B) GV_A(I64, T) GV_A(I64, H) GV_A(I64, KV) GV_A(I64, D)) \
  X(gen_ring_attention_bwd, GV_A(PTR, dq) GV_A(PTR, dk) GV_A(PTR, dv) GV_A(PTR, dout) GV_A(PTR, q) \
    GV_A(PTR, k) GV_A(PTR, v) GV_A(PTR, o) GV_A(PTR, lse) GV_A(PTR, scratch) GV_A(I64, B) GV_A(I64, T) \
    GV_A(I64, H) GV_A(I64, KV) GV_A(I64, D) GV_A(I64, flags)) \
/* A grouped linear whose experts are spread over the ep group (gvrt_comm.h: \
 * gv_ep_grouped_fwd/bwd): routed rows x [M k, K], y [M k, N], this rank's experts w [E/ep, N, \
 * K], global ids idx; scratch: gv_ep_grouped_scratch_bytes(M k, K, N, ep, es) bytes. */ \
  X(gen_ep_grouped_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(PTR, w) GV_A(PTR, idx) GV_A(PTR, scratch) GV_A(I64, M) \
    GV_A(I64, k) GV_A(I64, E) GV_A(I64, N) GV_A(I64, K)) \
  X(gen_ep_grouped_bwd, GV_A(PTR, dx) GV_A(PTR, dw) GV_A(PTR, dy) GV_A(PTR, x) GV_A(PTR, w) GV_A(PTR, idx) \
    GV_A(PTR, scratch) GV_A(I64, M) GV_A(I64, k) GV_A(I64, E) GV_A(I64, N) GV_A(I64, K) GV_A(I64, flags)) \
/* A SwiGLU expert MLP over the ep group, one dispatch and one combine (gvrt_comm.h: \
 * gv_ep_mlp_fwd/bwd): routed rows x [M k, D], y [M k, N], this rank's experts wg, wu [E/ep, \
 * F, D], wd [E/ep, N, F]; scratch: gv_ep_mlp_scratch_bytes(M k, D, max(F, N), ep, es). */ \
  X(gen_ep_mlp_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(PTR, wg) GV_A(PTR, wu) GV_A(PTR, wd) GV_A(PTR, idx) \
    GV_A(PTR, scratch) GV_A(I64, M) GV_A(I64, k) GV_A(I64, E) GV_A(I64, D) GV_A(I64, F) GV_A(I64, N)) \
  X(gen_ep_mlp_bwd, GV_A(PTR, dx) GV_A(PTR, dwg) GV_A(PTR, dwu) GV_A(PTR, dwd) GV_A(PTR, dy) GV_A(PTR, x) \
    GV_A(PTR, wg) GV_A(PTR, wu) GV_A(PTR, wd) GV_A(PTR, idx) GV_A(PTR, scratch) GV_A(I64, M) GV_A(I64, k) \
    GV_A(I64, E) GV_A(I64, D) GV_A(I64, F) GV_A(I64, N) GV_A(I64, flags)) \
  X(gen_attention_bwd, GV_A(PTR, dq) GV_A(PTR, dk) GV_A(PTR, dv) GV_A(PTR, dout) GV_A(PTR, q) \
    GV_A(PTR, k) GV_A(PTR, v) GV_A(PTR, o) GV_A(PTR, lse) GV_A(I64, B) GV_A(I64, T) GV_A(I64, H) \
    GV_A(I64, KV) GV_A(I64, D) GV_A(I64, causal) GV_A(I64, flags) GV_A(F32, scale) GV_A(PTR, bias) \
    GV_A(PTR, dbias) GV_A(I64, Hb) GV_A(PTR, key_ids)) \
/* The decode step's position-dependent ops, one token [1, C] at the runtime's decode \
 * position p: the learned position row p (y = row, or y += row with accumulate); rope at \
 * position p; attention of the token's q [H, D] over the keys and values of positions 0..p: \
 * k, v [KV, D] are appended to KV cache `cache` first (lse: f32 [H] scratch). */ \
  X(gen_decode_pos_embedding, GV_A(PTR, y) GV_A(PTR, table) GV_A(I64, V) GV_A(I64, C) \
    GV_A(I64, accumulate)) \
  X(gen_decode_rope, GV_A(PTR, y) GV_A(PTR, x) GV_A(I64, H) GV_A(I64, D) GV_A(I64, rot) \
    GV_A(F32, base)) \
  X(gen_decode_attention, GV_A(PTR, o) GV_A(PTR, lse) GV_A(PTR, q) GV_A(PTR, k) GV_A(PTR, v) \
    GV_A(I64, cache) GV_A(I64, H) GV_A(I64, KV) GV_A(I64, D)) \
/* Dropout of a [rows, cols] value whose global form is [global batch x seq, cols_global]: \
 * the mask of each element is keyed by (seed, step, site) and its global (row, column), so \
 * every strategy drops the same elements as one rank. site: a constant per dropout op; \
 * row_split: which rows this rank holds (0: its micro-batch's, 1: this tp rank's slice of \
 * them, f >= 2: the slice of a per-layer-tp block of row factor f); a value split by columns \
 * (cols < cols_global) holds tp-rank block of them in group `group` (0: the blocks'). No \
 * dropout while evaluating or sampling. */ \
  X(gen_dropout_fwd, GV_A(PTR, y) GV_A(PTR, x) GV_A(I64, rows) GV_A(I64, cols) \
    GV_A(I64, cols_global) GV_A(F32, p) GV_A(I64, site) GV_A(I64, row_split) GV_A(I64, group)) \
  X(gen_dropout_bwd, GV_A(PTR, dx) GV_A(PTR, dy) GV_A(I64, rows) GV_A(I64, cols) \
    GV_A(I64, cols_global) GV_A(F32, p) GV_A(I64, site) GV_A(I64, row_split) GV_A(I64, group) \
    GV_A(I64, flags)) \
/* Loss of the micro-batch, scaled by the run's 1 / (tokens in the global batch). */ \
  X(gen_xent_fwd, GV_A(PTR, loss) GV_A(PTR, lse) GV_A(PTR, logits) GV_A(PTR, targets) \
    GV_A(I64, M) GV_A(I64, V)) \
  X(gen_xent_bwd, GV_A(PTR, dlogits) GV_A(PTR, logits) GV_A(PTR, lse) GV_A(PTR, targets) \
    GV_A(I64, M) GV_A(I64, V)) \
/* n elements of the program's float dtype (f32, or bf16 under mixed precision) set to value. */ \
  X(gen_fill, GV_A(PTR, x) GV_A(I64, n) GV_A(F32, value)) \
/* --time_ops: the calls after this mark, up to the next, are charged to op `name` ("": the end \
 * of a stage function); see runtime/program/optime.c. */ \
  X(gen_op_mark, GV_A(STR, name)) \
/* bytes (a multiple of 4) of any buffer set to zero bits (i32 token types). */ \
  X(gen_zero, GV_A(PTR, x) GV_A(I64, bytes))

#endif
