#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - training with dropout (p = 0.1) is strategy-independent: the
# masks are keyed by (seed, step, site, global row, global column), so data, tensor,
# sequence (vsp included: the embedding dropout on token rows), pipeline and per-layer tensor
# parallelism, and recomputation, reproduce the
# single-rank losses (to 1e-5 relative, fp32 reassociation), which differ from the losses
# without dropout (so the masks are really applied); with two micro-batches per rank, so
# does reducing the gradients after every micro-batch (--no_async_grad_reduce).
. "$(dirname "$0")/../e2e_lib.sh"
gvm="$src/tests/e2e/dropout/tiny_dropout.gvm"; fx="$src/tests/reference/fixtures/tiny_gpt.bin"
args="--init_from $fx --batch_from $fx --iters 6 --warmup 2 --min_lr 1e-4 --global_train_batch_size 2"
c() { "$gvc" compile "$gvm" --model tiny_gpt_dropout --seq 32 "$@" 2>compile.log || bad "compile $*: $(cat compile.log)"; }
c --micro-batch 1 -o single
GV_COMM=self ./single $args 2>&1 | losses > single.txt
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 -o nodrop 2>/dev/null
GV_COMM=self ./nodrop $args 2>&1 | losses > nodrop.txt
[ "$(sed -n 2p single.txt)" != "$(sed -n 2p nodrop.txt)" ] && [ -s single.txt ] && ok || bad "dropout changed nothing"
run() { # NAME WORLD COMPILE-OPTIONS...
  local name=$1 world=$2; shift 2
  c "$@" -o "$name"
  "$mpiexec" -n "$world" "./$name" $args 2>&1 | losses > "$name.txt"
  close single.txt "$name.txt" 7 && ok || { bad "$name: losses differ from one rank"; paste single.txt "$name.txt"; }
}
run dp2 2 --micro-batch 1 --num_gpus_per_node 2
run dp2_ckpt 2 --micro-batch 1 --num_gpus_per_node 2 --checkpoint all
run tp2 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2
run tp2_vsp2 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --vocab_tp 2 --vocab_sp 1
run tp2_sp 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --sequence_parallel 1
run pp2_1f1b 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2
run ltp_2_1 2 --micro-batch 2 --num_gpus_per_node 2 --tp_sizes_enc 2,1
# two micro-batches per rank on 2 data-parallel ranks (a global batch of 4): gradients
# reduced overlapped with the last micro-batch's backward, or after every micro-batch
args=${args/--global_train_batch_size 2/--global_train_batch_size 4}
GV_COMM=self ./single $args 2>&1 | losses > single.txt
run dp2_2micro 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2
run dp2_2micro_no_async 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --no_async_grad_reduce
run pp2_dp2_no_async_ckpt 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 2 --no_async_grad_reduce --checkpoint all
run dp2_zero2_no_async 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --default_dp_type zero2 --no_async_grad_reduce
run ltp_2_1_zero2_no_async 2 --micro-batch 2 --chunks 2 --num_gpus_per_node 2 --tp_sizes_enc 2,1 \
  --default_dp_type zero2 --no_async_grad_reduce
run pp2_zero3_zero2_rest_no_async 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 2 \
  --default_dp_type zero2 --zero3_layers 2 --no_async_grad_reduce
finish
