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
# its losses; context parallelism is refused at compile time, named. The same pairs at their
# own lengths (--src_seq 16 --seq 8): dp2, ZeRO-3, tp2 with SP, Ulysses and pp2 reproduce the
# one-rank losses, which equal those of both padded to --seq 32 (pads are masked keys and
# ignored labels); sources not divisible by the sequence-parallel group are refused. The
# trained model generates (--sample: a source of the pairs' kind in, the decoder's greedy ids
# out) alike on one rank, under vocabulary tp2 and pp2; a source longer than S is refused.
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
# the source and the target at their own lengths (--src_seq 16 --seq 8: no padding to one
# length; the cross-attentions 8 x 16, the encoder's [B, 16, C] output sent between stages):
# one rank, then dp2, ZeRO-2, ZeRO-3, tp2 with Megatron SP, Ulysses, vocabulary tp, pp2 and
# pp4 with recomputation reproduce its losses
mx_seq=8 mx_src=16
mv single.txt single_padded.txt
mx_single "$gvm" t5_tiny
close single_padded.txt single.txt 7 && ok || { bad "S16/T8: losses differ from both padded to 32"; paste single_padded.txt single.txt; }
"$gvc" compile "$gvm" --model t5_tiny --seq 8 --src_seq 16 --micro-batch 1 --dump schedule | grep -q "gv_gen_cross_attention_fwd(.*, 1, 8, 16, 4, 4, 16," \
  && ok || bad "S16/T8: no 8 x 16 cross-attention in the schedule"
mx_run st_dp2 2 --micro-batch 1 --num_gpus_per_node 2
mx_run st_dp2_zero2 2 --micro-batch 1 --num_gpus_per_node 2 --default_dp_type zero2
mx_run st_dp2_zero3 2 --micro-batch 1 --num_gpus_per_node 2 --default_dp_type zero3
mx_run st_tp2_sp_ckpt 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --sequence_parallel 1 \
  --checkpoint all
mx_run st_ulysses2 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --use_ulysses 1
mx_run st_pp2_1f1b 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2
mx_run st_pp4_gpipe_ckpt 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 4 --pipeline_type gpipe --checkpoint all
mx_run st_tp2_vtp 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --vocab_tp 2
# Megatron's spellings of the two lengths give the same program
"$gvc" compile "$gvm" --model t5_tiny --encoder-seq-length 16 --decoder-seq-length 8 --micro-batch 1 --emit c -o meg.c \
  && "$gvc" compile "$gvm" --model t5_tiny --src_seq 16 --seq 8 --micro-batch 1 --emit c -o ours.c && cmp -s meg.c ours.c \
  && ok || bad "--encoder-seq-length/--decoder-seq-length differ from --src_seq/--seq"
# gvc info at the two lengths: the encoder's FLOPs at S = 16 (more than at 8)
fl() { "$gvc" info "$gvm" --model t5_tiny --seq 8 "$@" --json | sed -n 's/^  "flops_fwd": \(.*\),$/\1/p'; }
"$gvc" info "$gvm" --model t5_tiny --seq 8 --src_seq 16 | grep -q "seq 8, source 16" \
  && awk -v a="$(fl --src_seq 16)" -v b="$(fl)" 'BEGIN {exit !(a > b && b > 0)}' && ok || bad "gvc info --src_seq 16"
unset mx_seq mx_src
# refused at compile time, named: a source whose rows do not split over the sequence-parallel
# group, and a source length for a model without a source
refused_compile() { # WHAT PATTERN ARGS...
  local what=$1 pat=$2; shift 2
  out=$("$gvc" compile "$@" -o refused 2>&1) && { bad "$what: accepted"; return; }
  echo "$out" | grep -q -- "$pat" && ok || bad "$what: '$out' does not say '$pat'"
}
refused_compile "S15 under sp" "15 source rows (micro-batch 1 x src_seq 15) are not divisible by tp=2" "$gvm" \
  --model t5_tiny --seq 8 --src_seq 15 --micro-batch 1 --num_gpus_per_node 2 --global_tp_deg 2 --sequence_parallel 1
refused_compile "S15 under Ulysses" "15 source rows (micro-batch 1 x src_seq 15) are not divisible by tp=2" "$gvm" \
  --model t5_tiny --seq 8 --src_seq 15 --micro-batch 1 --num_gpus_per_node 2 --global_tp_deg 2 --use_ulysses 1
refused_compile "--src_seq for a GPT" "reads no src_tokens" "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --src_seq 16

# the training binary's refusals: pairs longer than the program's lengths, a source longer than S
"$gvc" compile "$gvm" --model t5_tiny --seq 12 --micro-batch 1 -o short 2>compile.log || bad "compile short: $(cat compile.log)"
out=$(GV_COMM=self ./short --data rev --iters 1 --global_train_batch_size 1 2>&1) && bad "--seq 12: accepted" \
  || { echo "$out" | grep -q "rev: sources of 16 tokens do not fit the program's source length 12 (compile with --src_seq at least 16)" \
  && ok || bad "--seq 12: '$out'"; }
"$gvc" compile "$gvm" --model t5_tiny --src_seq 16 --seq 6 --micro-batch 1 -o short_t 2>compile.log || bad "compile short_t: $(cat compile.log)"
out=$(GV_COMM=self ./short_t --data rev --iters 1 --global_train_batch_size 1 2>&1) && bad "--seq 6: accepted" \
  || { echo "$out" | grep -q "rev: targets of 8 tokens do not fit the program's --seq 6" && ok || bad "--seq 6: '$out'"; }
out=$(GV_COMM=self ./single --data rev --iters 1 --global_train_batch_size 1 --sample 4 --prompt "rev: abcdefghijkl" \
      2>&1) && bad "--sample, a source of 17: accepted" || { echo "$out" | grep -q \
      "has 17 tokens, more than the program's source length S = 16" && ! echo "$out" | grep -q "iter " && ok \
      || bad "--sample, a source of 17: '$out'"; }

# generation (the prompt the source, a whole forward per token): the S16/T8 model trained on
# the pairs and saved; loaded by one rank, vocabulary tp2 and pp2 (the encoder on stage 0)
# it continues the source "rev: abcd" with the same 8 greedy ids
GV_COMM=self ./single $args --save ck >gen.log 2>&1 || bad "save: $(tail -2 gen.log)"
t5gen() { "$@" --data rev --global_train_batch_size 2 --load ck --iters 6 --sample 8 --sample_format ids \
  --prompt "rev: abcd" 2>&1 </dev/null | grep "^sample_ids>"; }
one=$(GV_COMM=self t5gen ./single)
[ "$(echo "$one" | cut -d'|' -f1)" = "sample_ids> 114 101 118 58 32 97 98 99 100 " ] \
  && [ "$(echo "$one" | cut -d'|' -f2 | wc -w)" = 8 ] && ok || bad "one rank's generation: '$one'"
for name in st_tp2_vtp st_pp2_1f1b; do
  got=$(t5gen "$mpiexec" -n 2 ./$name)
  [ -n "$one" ] && [ "$got" = "$one" ] && ok || bad "$name: generated '$got', one rank '$one'"
done
finish
