#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - the tiny T5 of models/t5.gvm (unscaled attention, relative
# position biases made by the first block of each stack and read by the others, the
# encoder's output read by every decoder block's cross-attention) trains alike under tensor
# parallelism (heads of the self- and cross-attentions split, each rank reading its heads of
# the biases), sequence parallelism, Ulysses (each decoder block slicing its token rows of
# the encoder's output), vocabulary tp, ZeRO-3, recomputation and pipelines
# with the encoder and decoder in different stages: the losses equal the single rank's to
# 1e-5 relative. Then on source/target pairs (the encoder reading src_tokens, its pads
# masked): a pair dataset built by gvc data from tests/data/pairs/reverse.jsonl trains on one
# rank (the loss falls) and dp2, ZeRO-3, tp2 with recomputation, Ulysses and pp2 reproduce
# its losses; context parallelism is refused at compile time, named.
. "$(dirname "$0")/../e2e_lib.sh"
gvm="$src/models/t5.gvm"; fx="$src/tests/reference/fixtures/tiny_gpt.bin"
args="--batch_from $fx --iters 6 --warmup 2 --min_lr 1e-4 --global_train_batch_size 2"
mx_single "$gvm" t5_tiny
mx_run tp2_vtp 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --vocab_tp 2
mx_run tp2_sp_ckpt 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --sequence_parallel 1 \
  --checkpoint all
mx_run ulysses2_ckpt 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --use_ulysses 1 --checkpoint all
mx_run dp2_zero3 2 --micro-batch 1 --num_gpus_per_node 2 --default_dp_type zero3
# 4 blocks: the encoder on stage 0, the decoder on stage 1 (both biases and the encoder's output sent)
mx_run pp2_1f1b 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2
mx_run pp4_gpipe_ckpt 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 4 --pipeline_type gpipe --checkpoint all
mx_run pp2_tp2_sp 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 2 --global_tp_deg 2 --sequence_parallel 1

# source/target pairs: sources of 16 bytes, targets of 8, padded to the program's --seq 32
mkdir -p pairs && cd pairs || exit 1
"$gvc" data "$src/tests/data/pairs/reverse.jsonl" -o rev --src-key src --tgt-key tgt --src-seq 16 --tgt-seq 8 \
  --quiet && ok || bad "gvc data: the pair dataset"
args="--data rev --iters 6 --warmup 2 --min_lr 1e-4 --global_train_batch_size 2"
mx_single "$gvm" t5_tiny
awk 'NR == 1 {a = $1} END {exit !($1 < a)}' single.txt && ok || bad "pairs: the loss does not fall: $(tr '\n' ' ' <single.txt)"
mx_run dp2 2 --micro-batch 1 --num_gpus_per_node 2
mx_run dp2_zero3 2 --micro-batch 1 --num_gpus_per_node 2 --default_dp_type zero3
mx_run tp2_sp_ckpt 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --sequence_parallel 1 \
  --checkpoint all
mx_run ulysses2 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --use_ulysses 1
mx_run pp2_1f1b 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2
out=$("$gvc" compile "$gvm" --model t5_tiny --seq 32 --micro-batch 1 --num_gpus_per_node 2 --global_cp_deg 2 -o cp2 2>&1) \
  && bad "cp2: accepted" || { echo "$out" | grep -q "context parallelism" && ok \
  || bad "cp2: '$out'"; }
# the training binary's refusals: pairs longer than the program's --seq, generation
"$gvc" compile "$gvm" --model t5_tiny --seq 12 --micro-batch 1 -o short 2>compile.log || bad "compile short: $(cat compile.log)"
out=$(GV_COMM=self ./short --data rev --iters 1 --global_train_batch_size 1 2>&1) && bad "--seq 12: accepted" \
  || { echo "$out" | grep -q "sources of 16 and targets of 8 tokens do not fit the program's --seq 12" && ok \
  || bad "--seq 12: '$out'"; }
out=$(GV_COMM=self ./single --data rev --iters 1 --global_train_batch_size 1 --sample 4 2>&1) && bad "--sample: accepted" \
  || { echo "$out" | grep -q "generation by an encoder-decoder" && ok || bad "--sample: '$out'"; }
finish
