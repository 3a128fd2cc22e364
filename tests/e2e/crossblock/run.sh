#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - a tiny encoder-decoder whose decoder blocks read the
# encoder's output (a value crossing blocks) trains alike under data, tensor (+ sequence)
# and vocabulary parallelism, ZeRO-2/3, recomputation, and pipelines of 2 and 4 stages
# (1F1B and GPipe) that send the encoder's output with the decoder's activation: the
# losses equal the single rank's to 1e-5 relative. A strategy the lowering cannot run so is
# refused at the reading op.
. "$(dirname "$0")/../e2e_lib.sh"
gvm="$src/tests/e2e/crossblock/tiny_encdec.gvm"; fx="$src/tests/reference/fixtures/tiny_gpt.bin"
args="--batch_from $fx --iters 6 --warmup 2 --min_lr 1e-4 --global_train_batch_size 2"
mx_single "$gvm" tiny_encdec
mx_run dp2_ckpt 2 --micro-batch 1 --num_gpus_per_node 2 --checkpoint all
mx_run tp2 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --vocab_tp 2
mx_run tp2_sp 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --sequence_parallel 1
mx_run zero3 2 --micro-batch 1 --num_gpus_per_node 2 --default_dp_type zero3
mx_run pp2_1f1b 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2
mx_run pp2_gpipe_ckpt 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2 --pipeline_type gpipe --checkpoint all
mx_run pp4 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 4
mx_run pp2_tp2_sp_ckpt 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 2 --global_tp_deg 2 \
  --sequence_parallel 1 --checkpoint all
mx_run pp2_dp2_zero2 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 2 --default_dp_type zero2
# a value carried through stages that do not read it (tiny_skip: the last of 4 blocks reads
# the embedding's output)
"$gvc" compile "$gvm" --model tiny_skip --seq 32 --micro-batch 1 -o skip1 2>compile.log || bad "compile skip1"
GV_COMM=self ./skip1 $args 2>&1 | losses > skip1.txt
"$gvc" compile "$gvm" --model tiny_skip --seq 32 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 4 \
  -o skip4 2>compile.log || bad "compile skip4"
"$mpiexec" -n 4 ./skip4 $args 2>&1 | losses > skip4.txt
close skip1.txt skip4.txt 7 && ok || { bad "tiny_skip pp4: losses differ from one rank"; paste skip1.txt skip4.txt; }
# the stage boundary carries both values, packed (the memory plan shows them)
"$gvc" compile "$gvm" --model tiny_encdec --seq 32 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2 \
  --dump memory -o /dev/null > plan.txt 2>&1
grep -q "stage.in (packed)" plan.txt && grep -q "stage.out (packed)" plan.txt && ok || bad "no packed boundary in the plan"
finish
