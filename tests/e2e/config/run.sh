#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - a Galvatron strategy file drives `gvc compile`: the tiny
# GPT under tiny_pp2_tp2_zero2.json (pp 2 x tp 2 x dp 2, ZeRO-2, checkpoint on layer 0)
# on 8 ranks gives the single-rank losses, and so does tiny_tp2_dp2_zero3_layer1.json (ZeRO-3 on
# one block, ddp on the other) on 4 and per_layer_tp.json (tp 2 then 1) on 2; what cannot run yet
# is refused, naming the key. Context parallelism runs from cp_sizes_enc and --global_cp_deg.
. "$(dirname "$0")/../e2e_lib.sh"
fx="$src/tests/reference/fixtures/tiny_gpt.bin"; dir="$src/tests/e2e/config"
args="--init_from $fx --batch_from $fx --iters 10 --warmup 3 --min_lr 1e-4"
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 -o single 2>/dev/null
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 --num_gpus_per_node 8 \
  --galvatron_config_path "$dir/tiny_pp2_tp2_zero2.json" -o par 2>/dev/null || bad "compile from the config"
GV_COMM=self ./single $args --global_train_batch_size 2 2>&1 | losses > single.txt
"$mpiexec" -n 8 ./par $args 2>&1 | losses > par.txt
close single.txt par.txt 11 && ok || { bad "losses differ"; paste single.txt par.txt; }
# case NAME RANKS JSON: compile from a config (its --dump strategy in NAME.plan), train, and
# compare with the single-rank losses
case_() {
  local name=$1 n=$2 json=$3
  "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --num_gpus_per_node "$n" \
    --galvatron_config_path "$json" --dump strategy -o "$name" > "$name.plan" 2>&1 \
    || { bad "compile $name: $(cat "$name.plan")"; return; }
  "$mpiexec" -n "$n" "./$name" $args 2>&1 | losses > "$name.txt"
  close single.txt "$name.txt" 11 && ok || { bad "$name: losses differ"; paste single.txt "$name.txt"; }
}
# refused NAME RANKS JSON DP-TYPE PATTERN: the config with default_dp_type DP-TYPE is refused
refused() {
  sed "s/\"default_dp_type\": \"ddp\"/\"default_dp_type\": \"$4\"/" "$3" > "$1.json"
  local out
  out=$("$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --num_gpus_per_node "$2" \
    --galvatron_config_path "$1.json" -o x 2>&1)
  echo "$out" | grep -q "$5" && ok || bad "$1 refusal: $out"
}
# per-layer data-parallel types: ZeRO-3 on layer 1 only (dp_types_enc "0,1"), ddp on the rest, 4 ranks
case_ mixed 4 "$dir/tiny_tp2_dp2_zero3_layer1.json"
grep -q "^layers.0 .* ddp " mixed.plan && grep -q "^layers.1 .* zero3 " mixed.plan && ok || bad "mixed plan: $(cat mixed.plan)"
# ... and with default_dp_type zero2: ZeRO-2 (per parameter) on the layers not marked
sed 's/"default_dp_type": "ddp"/"default_dp_type": "zero2"/' "$dir/tiny_tp2_dp2_zero3_layer1.json" > z2mix.json
case_ z2mix 4 z2mix.json
grep -q "^layers.0 .* zero2 " z2mix.plan && grep -q "^layers.1 .* zero3 " z2mix.plan && grep -q "^head .* zero2 " z2mix.plan \
  && ok || bad "zero2 + zero3 plan: $(cat z2mix.plan)"
# per-layer tp (tp_sizes_enc "2,1") on 2 ranks: layer 1 runs on half the samples of each rank
case_ ltp 2 "$dir/per_layer_tp.json"
grep -q "^layers.0 .* 2 *1 ddp" ltp.plan && grep -q "^layers.1 .* 1 *2 ddp" ltp.plan && ok || bad "per-layer plan: $(cat ltp.plan)"
# ... and with ZeRO-2 (each parameter reduce-scattered over its own layer's dp group)
sed 's/"default_dp_type": "ddp"/"default_dp_type": "zero2"/' "$dir/per_layer_tp.json" > ltp_z2.json
case_ ltpz2 2 ltp_z2.json
grep -q "^layers.1 .* 1 *2 zero2" ltpz2.plan && ok || bad "per-layer tp + zero2 plan: $(cat ltpz2.plan)"
# Ulysses on layer 1 only (use_sp "0,1"), Megatron tp 2 on layer 0, 2 ranks
case_ ul 2 "$dir/tiny_tp2_ulysses_layer1.json"
grep -q "^layers.1 .* split (ulysses)" ul.plan && grep -q "^layers.0 .* all" ul.plan && ok || bad "use_sp plan: $(cat ul.plan)"
# vocabulary tp above the blocks' (vtp 2, blocks tp 1): the embedding and head split over
# 2 ranks, each block on half the samples; from a config and from --vocab_tp
case_ vtp 2 "$dir/tiny_vtp2_tp1.json"
grep -q "^layers.0 .* 1    2 ddp" vtp.plan && grep -q "split by vocabulary" vtp.plan && ok || bad "vtp plan: $(cat vtp.plan)"
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 --num_gpus_per_node 2 --vocab_tp 2 \
  -o vtpcli > vtpcli.log 2>&1 || bad "--vocab_tp 2: $(cat vtpcli.log)"
"$mpiexec" -n 2 ./vtpcli $args 2>&1 | losses > vtpcli.txt
close single.txt vtpcli.txt 11 && ok || { bad "--vocab_tp 2 over tp 1: losses differ"; paste single.txt vtpcli.txt; }
# context parallelism from Galvatron's cp_sizes_enc ("2,2": cp 2 x dp 2, ZeRO-2, 4 ranks) and
# from --global_cp_deg 2 (2 ranks): each rank holds a zigzag half of every sequence
case_ cp 4 "$dir/tiny_cp2_dp2_zero2.json"
grep -q "context parallelism: cp 2" cp.plan && ok || bad "cp plan: $(cat cp.plan)"
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 --num_gpus_per_node 2 --global_cp_deg 2 \
  -o cpcli > cpcli.log 2>&1 || bad "--global_cp_deg 2: $(cat cpcli.log)"
"$mpiexec" -n 2 ./cpcli $args --global_train_batch_size 2 2>&1 | losses > cpcli.txt
close single.txt cpcli.txt 11 && ok || { bad "--global_cp_deg 2: losses differ"; paste single.txt cpcli.txt; }
out=$("$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --num_gpus_per_node 4 --global_tp_deg 4 \
  --vocab_tp 2 -o x 2>&1)
echo "$out" | grep -q "vocab_tp 2 must be 1, the blocks' tp degree 4, or a multiple of it" && ok || bad "vtp < tp refusal: $out"
# Galvatron's published per-layer plan for gpt-2.7b on 8 GPUs (tp 2 / 1 per block, ZeRO-3,
# pp 2) compiles: blocks 9-15 on tp 1 (dp 4), the others on tp 2 (dp 2)
pub="$src/tests/data/galvatron/v2.4.0/gpt_hf/configs/galvatron_config_gpt-2.7b_1nodes_8gpus_per_node_40GB_bf16_example.json"
if [ -f "$pub" ]; then
  plan=$("$gvc" plan "$src/tests/e2e/config/gpt_2_7b.gvm" --model gpt_2_7b --seq 2048 --num_gpus_per_node 8 \
         --galvatron_config_path "$pub" 2>&1)
  echo "$plan" | grep -q "^layers.9 .* 0    1    4 zero3" && echo "$plan" | grep -q "^layers.16 .* 1    2    2 zero3" \
    && ok || bad "published per-layer plan: $plan"
else
  echo "note: $pub not found; the published-plan check is skipped"
fi
# gvc search (analytic, 4 ranks) writes a config that compiles and trains like one rank
"$gvc" search "$src/examples/tiny.gvm" --model tiny_gpt --num_nodes 1 --num_gpus_per_node 4 --memory_constraint 1 \
  --seq_length 32 --settle_bsz 4 --pytorch_context_mem 0 --fine_grained_mode 0 \
  --quiet -o searched.json >/dev/null 2>&1 && [ -s searched.json ] && ok || bad "gvc search"
if "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --num_gpus_per_node 4 \
     --galvatron_config_path searched.json -o searched 2>compile.log; then
  ok
  GV_COMM=self ./single $args --global_train_batch_size 4 2>&1 | losses > single4.txt
  "$mpiexec" -n 4 ./searched $args 2>&1 | losses > searched.txt
  close single4.txt searched.txt 11 && ok || { bad "searched plan's losses differ"; paste single4.txt searched.txt; }
else
  grep -q "not supported yet" compile.log && echo "note: the searched plan needs a feature not supported yet: $(cat compile.log)" \
    || bad "compile of the searched plan: $(cat compile.log)"
fi
finish
