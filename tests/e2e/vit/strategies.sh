#!/usr/bin/env bash
# strategies.sh GVC SRC MPIEXEC WORK - the tiny ViT of models/vit.gvm (sequences of 16
# patches and the class token) on the digits trains alike under data parallelism (ZeRO-2,
# ZeRO-3, recomputation), tensor parallelism (heads and MLP split), sequence parallelism and
# Ulysses (token rows split: a micro-batch of 2 gives 34 rows), pipelines (1F1B, GPipe with
# recomputation), pp x tp and per-layer tp degrees: the losses equal the single rank's to 1e-5 relative. Sequence
# parallelism on 17 rows is refused by name.
. "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
"$gvc" data --images "$src/tests/data/digits/digits.csv.gz" --shape 1,8,8 --pixel-max 16 -o digits.gvimg --quiet \
  || bad "gvc data"
args="--data digits.gvimg --iters 6 --warmup 2 --lr 3e-3 --min_lr 1e-4 --global_train_batch_size 4"
mx_seq=17
mx_single "$src/models/vit.gvm" vit_tiny
mx_run dp2 2 --micro-batch 1 --num_gpus_per_node 2
mx_run dp2_zero2_ckpt 2 --micro-batch 1 --num_gpus_per_node 2 --default_dp_type zero2 --checkpoint all
mx_run dp2_zero3 2 --micro-batch 2 --num_gpus_per_node 2 --default_dp_type zero3
mx_run tp2 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2
mx_run tp2_sp_ckpt 2 --micro-batch 2 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --sequence_parallel 1 \
  --checkpoint all
mx_run ulysses2 2 --micro-batch 2 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --use_ulysses 1
mx_run pp2_1f1b 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2
mx_run pp2_gpipe_ckpt 2 --micro-batch 1 --chunks 4 --num_gpus_per_node 2 --pp_deg 2 --pipeline_type gpipe --checkpoint all
mx_run pp2_tp2 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 2 --global_tp_deg 2
# per-layer tp degrees (a Galvatron config): block 0 on 2 data-parallel ranks, block 1 tp 2 and recomputed
echo '{"pp_deg": 1, "tp_sizes_enc": "1,2", "tp_consecutive_flags": "1,1", "dp_types_enc": "0,0", "use_sp": "0,0",
  "checkpoint": "0,1", "global_bsz": 4, "chunks": 1, "pp_division": "2", "pipeline_type": "pipedream_flush",
  "default_dp_type": "ddp", "vtp": 1, "vsp": 0, "embed_sdp": 0}' >per_layer.json
mx_run per_layer_tp 2 --num_gpus_per_node 2 --galvatron_config_path per_layer.json
out=$("$gvc" compile "$src/models/vit.gvm" --model vit_tiny --seq 17 --micro-batch 1 --num_gpus_per_node 2 \
  --global_tp_deg 2 --sequence_parallel 1 -o x 2>&1) && bad "sp on 17 rows: accepted" || {
  echo "$out" | grep -q "17 token rows (micro-batch 1 x seq 17) are not divisible by tp=2" && ok \
    || bad "sp on 17 rows: '$out'"; }
finish
