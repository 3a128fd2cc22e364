#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - the tiny T5 of models/t5.gvm (unscaled attention, relative
# position biases made by the first block of each stack and read by the others, the
# encoder's output read by every decoder block's cross-attention) trains alike under tensor
# parallelism (heads of the self- and cross-attentions split, each rank reading its heads of
# the biases), sequence parallelism, Ulysses (each decoder block slicing its token rows of
# the encoder's output), vocabulary tp, ZeRO-3, recomputation and pipelines
# with the encoder and decoder in different stages: the losses equal the single rank's to
# 1e-5 relative.
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
finish
