#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - the tiny Mixtral of tests/reference/hf/mixtral (2 layers of 4
# experts, top-2, load-balancing coefficient 0.02), imported with gvc convert, trained 6 steps
# on the fixture's batch: twice on one rank (the same losses bit for bit: routing and every
# sum run in a fixed order), and under data parallelism, ZeRO-2 and ZeRO-3, recomputation,
# tensor parallelism (router and experts replicated in the tp group) and pipeline
# parallelism (the load-balancing terms of the first stage's layer counted in the loss):
# each reproduces the single-rank losses to 1e-5 relative (fp32 reassociation) of the run
# with the same micro-batches (the load-balancing loss is a statistic of each micro-batch's
# tokens, as in Megatron: one sample per micro-batch is another loss than two). The same for
# a fine-grained size (8 experts, top-3, plain gates, a shared expert) from a random init.
# Expert parallelism (experts spread over ep ranks of the dp group, rows sent with
# all-to-all, expert gradients reduced over the ranks holding the same experts): ep 2 alone,
# with ZeRO-2 and checkpointing, with tp 2, with pp 2, from a Galvatron config's ep_sizes_enc
# (ZeRO-2, checkpointing on layer 1), ep 2 x dp 2 (ddp, ZeRO-2, ZeRO-3 with checkpointing: the
# blocks' other weights sharded, the experts whole), ep 4 (world 4) and ep 2 with ZeRO-2 reduced
# after every micro-batch (no_async_grad_reduce) on a global batch of 4 (its own single-rank
# reference); checkpoints saved under ep 2 and under ep 2 x dp 2 with ZeRO-2 (expert weights'
# optimizer state sharded over their 2 expert-data-parallel ranks) resume on one rank, and
# one saved on one rank resumes under ep 2 with ZeRO-2, on the curve. Tensor parallelism inside
# each expert (tp_of_ep 2 = tp 2: gate/up split by ffn outputs, down by ffn inputs, its partial
# sums all-reduced over tp): with ep 1 (world 2), with ep 2 (world 4) and with dp 2, ZeRO-3 and
# checkpointing (world 4, a global batch of 4); its checkpoint resumed
# on one rank, under tp 2 with whole experts, and one rank's under it; its index.json records
# tp_of_ep 2. Under ep the SwiGLU expert MLP dispatches its rows once
# (gv_ep_mlp_fwd/bwd): the same losses bit for bit as one dispatch per expert linear.
. "$(dirname "$0")/../e2e_lib.sh"
gvm="$src/tests/e2e/hf/tiny_hf.gvm"; fx="$src/tests/reference/hf/mixtral"
"$gvc" convert "$gvm" --model tiny_mixtral --from-hf "$fx" -o mixtral.safetensors >convert.log 2>&1 \
  || bad "import: $(tail -2 convert.log)"
args="--init_from mixtral.safetensors --batch_from $fx/ref.bin --iters 6 --warmup 2 --lr 1e-2 --global_train_batch_size 2"
c() { "$gvc" compile "$gvm" --model "$model" --seq 16 "$@" 2>compile.log || bad "compile $*: $(cat compile.log)"; }
run() { # NAME REFERENCE WORLD COMPILE-OPTIONS...
  local name=$1 ref=$2 world=$3; shift 3
  c "$@" -o "$name"
  "$mpiexec" -n "$world" "./$name" $args 2>&1 | losses > "$name.txt"
  close $ref.txt "$name.txt" 7 && ok || { bad "$model $name: losses differ from one rank"; paste $ref.txt "$name.txt"; }
}
resume() { # SAVER LOADER SAVER-WORLD LOADER-WORLD [REFERENCE]: 3 steps saved by one, the rest resumed by the other
  local name=$1_to_$2 ref=${5:-single_mb1}
  rm -rf "$name.ck"
  "$mpiexec" -n "$3" "./$1" $args --save "$name.ck" --save_interval 3 --exit_interval 3 >"$name.log" 2>&1 \
    || { bad "$model $name: save: $(tail -2 "$name.log")"; return; }
  "$mpiexec" -n "$4" "./$2" $args --load "$name.ck" 2>&1 | tee "$name.load.log" | grep -o "step [3-6]/6 | loss [0-9.]*" | awk '{print $NF}' \
    > "$name.txt"
  tail -n +4 "$ref.txt" | head -3 > "$name.ref"
  close "$name.ref" "$name.txt" 3 && ok || { bad "$model $name: the resumed losses leave the curve"; paste "$name.ref" "$name.txt"; }
}
# Galvatron's per-layer key for the degree (uniform): ep 2 on both blocks
echo '{"pp_deg": 1, "tp_sizes_enc": "1,1", "tp_consecutive_flags": "1,1", "dp_types_enc": "0,0", "use_sp": "0,0",
  "checkpoint": "0,1", "ep_sizes_enc": "2,2", "global_bsz": 2, "chunks": 1, "pp_division": "2",
  "pipeline_type": "pipedream_flush", "default_dp_type": "zero2", "vtp": 1, "vsp": 0, "embed_sdp": 0}' > ep2.json
for model in tiny_mixtral tiny_fine_moe; do
  [ $model = tiny_fine_moe ] && args=${args/--init_from mixtral.safetensors/--seed 7}
  c --micro-batch 2 -o single
  GV_COMM=self ./single $args 2>&1 | losses > single.txt
  GV_COMM=self ./single $args 2>&1 | losses > again.txt
  [ -s single.txt ] && cmp -s single.txt again.txt && ok || bad "$model: two runs differ"
  [ "$(head -1 single.txt)" != "$(tail -1 single.txt)" ] && ok || bad "$model: the loss does not move"
  c --micro-batch 1 --chunks 2 -o single_mb1  # the reference of the strategies of one sample per micro-batch
  GV_COMM=self ./single_mb1 $args 2>&1 | losses > single_mb1.txt
  run tp2 single 2 --micro-batch 2 --num_gpus_per_node 2 --global_tp_deg 2
  run dp2 single_mb1 2 --micro-batch 1 --num_gpus_per_node 2
  run dp2_zero2 single_mb1 2 --micro-batch 1 --num_gpus_per_node 2 --default_dp_type zero2
  run dp2_zero3_ckpt single_mb1 2 --micro-batch 1 --num_gpus_per_node 2 --default_dp_type zero3 --checkpoint all
  run pp2 single_mb1 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2
  run pp2_dp2_ckpt single_mb1 4 --micro-batch 1 --num_gpus_per_node 4 --pp_deg 2 --checkpoint all
  run ep2 single_mb1 2 --micro-batch 1 --num_gpus_per_node 2 --global_ep_deg 2
  c --micro-batch 1 --num_gpus_per_node 2 --global_ep_deg 2 --ep_dispatch_per_linear 1 -o ep2_per_linear
  "$mpiexec" -n 2 ./ep2_per_linear $args 2>&1 | losses > ep2_per_linear.txt
  [ -s ep2.txt ] && cmp -s ep2.txt ep2_per_linear.txt && ok || bad "$model: one dispatch per expert MLP differs from one per linear"
  run ep2_zero2_ckpt single_mb1 2 --micro-batch 1 --num_gpus_per_node 2 --global_ep_deg 2 --default_dp_type zero2 \
    --checkpoint all
  run tp2_ep2 single_mb1 4 --micro-batch 1 --num_gpus_per_node 4 --global_tp_deg 2 --global_ep_deg 2
  run pp2_ep2 single_mb1 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 2 --global_ep_deg 2
  run tp2_etp2 single 2 --micro-batch 2 --num_gpus_per_node 2 --global_tp_deg 2 --global_tp_of_ep_deg 2
  run tp2_ep2_etp2 single_mb1 4 --micro-batch 1 --num_gpus_per_node 4 --global_tp_deg 2 --global_ep_deg 2 \
    --global_tp_of_ep_deg 2
  resume tp2_etp2 single 2 1 single # experts split by ffn over tp (described [experts, ffn x hidden]) -> one rank
  resume single tp2_etp2 1 2 single
  resume tp2_etp2 tp2 2 2 single # -> tp 2 with whole experts (tp_of_ep 1)
  grep -q '"tp_of_ep":\s*2' tp2_etp2_to_single.ck/iter_0000003/index.json \
    && grep -q "saved by world 2 pp 1 tp 2 dp 1 tp_of_ep 2 zero" tp2_etp2_to_tp2.load.log && ok \
    || bad "$model: the strategy record of a tp_of_ep 2 checkpoint: $(grep -A9 strategy tp2_etp2_to_single.ck/iter_*/index.json)"
  run ep2_config single_mb1 2 --num_gpus_per_node 2 --galvatron_config_path ep2.json
  resume ep2 single_mb1 2 1 # ep 2 -> one rank
  resume single_mb1 ep2_zero2_ckpt 1 2
  args4=${args/--global_train_batch_size 2/--global_train_batch_size 4}
  c --micro-batch 1 --chunks 4 -o single_b4
  GV_COMM=self ./single_b4 $args4 2>&1 | losses > single_b4.txt
  args=$args4 run ep2_dp2 single_b4 4 --micro-batch 1 --num_gpus_per_node 4 --global_ep_deg 2
  args=$args4 run ep2_dp2_zero2 single_b4 4 --micro-batch 1 --num_gpus_per_node 4 --global_ep_deg 2 \
    --default_dp_type zero2
  args=$args4 run ep2_dp2_zero3_ckpt single_b4 4 --micro-batch 1 --num_gpus_per_node 4 --global_ep_deg 2 \
    --default_dp_type zero3 --checkpoint all
  args=$args4 run tp2_dp2_etp2_zero3_ckpt single_b4 4 --micro-batch 1 --num_gpus_per_node 4 --global_tp_deg 2 \
    --global_tp_of_ep_deg 2 --default_dp_type zero3 --checkpoint all
  args=$args4 resume ep2_dp2_zero2 single_b4 4 1 single_b4 # expert state sharded over 2 ranks -> one rank
  args=$args4 run ep2_noasync_zero2 single_b4 2 --micro-batch 1 --num_gpus_per_node 2 --global_ep_deg 2 \
    --no_async_grad_reduce 1 --default_dp_type zero2
  args=$args4 run ep4_zero2 single_b4 4 --micro-batch 1 --num_gpus_per_node 4 --global_ep_deg 4 --default_dp_type zero2
done
finish
