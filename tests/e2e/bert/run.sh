#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - a tiny post-norm BERT (the size tiny_bert of the Hugging Face
# test models, on its reference batch) trains alike with recomputation, where the layer's
# last node is a LayerNorm whose output is kept and not recomputed (its saved statistics
# must be kept with it), alone and beside tp, sequence parallelism, pipelines and ZeRO: the
# losses equal the single rank's to 1e-5 relative.
. "$(dirname "$0")/../e2e_lib.sh"
gvm="$src/tests/e2e/hf/tiny_hf.gvm"; fx="$src/tests/reference/hf/bert/ref.bin"
mx_seq=16
args="--batch_from $fx --iters 6 --warmup 2 --lr 1e-3 --min_lr 1e-4 --global_train_batch_size 2"
mx_single "$gvm" tiny_bert
mx_run ckpt 1 --micro-batch 1 --checkpoint all
mx_run tp2_sp_ckpt 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --sequence_parallel 1 \
  --checkpoint all
mx_run pp2_ckpt 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2 --checkpoint all
mx_run dp2_zero3_ckpt 2 --micro-batch 1 --num_gpus_per_node 2 --default_dp_type zero3 --checkpoint 1,0
finish
