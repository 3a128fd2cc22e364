#!/usr/bin/env bash
# plans_compile.sh GVC SRC DATA - every plan the search returns lowers: gvc plan --search over
# world sizes 1..64, budgets, zoo models and odd shapes (heads, kv heads, vocabularies, layer
# counts, sequence lengths, one-sample micro-batches), with the analytic model and with
# Galvatron's LLaMA-2 7B profiles; plans with vocabulary sequence parallelism among them. A setting may find no plan ("no valid configuration");
# it may not find one the lowering refuses.
set -u
gvc=$1; src=$2; data=$3; pass=0; fail=0; none=0; vsp=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/odd.gvm" <<'GVM'
import "gpt2"
import "llama"
size odd5 = gpt2_family(vocab = 250, hidden = 80, layers = 3, heads = 5, positions = 64)
size odd_gqa = llama(vocab = 256, hidden = 96, layers = 5, heads = 6, kv_heads = 3, ffn = 160, max_seq = 64)
size odd12 = llama(vocab = 251, hidden = 96, layers = 7, heads = 12, kv_heads = 4, ffn = 136, max_seq = 64)
size odd2 = gpt2_family(vocab = 257, hidden = 64, layers = 2, heads = 2, positions = 64)
GVM
try() { # what FILE MODEL SEQ ARGS...
  local what=$1 file=$2 model=$3 seq=$4; shift 4
  local out
  out=$("$gvc" plan "$file" --model "$model" --seq "$seq" --search "$@" 2>&1)
  if [ $? -eq 0 ]; then ok; echo "$out" | grep -q "split (vsp)" && vsp=$((vsp + 1))
  elif echo "$out" | grep -q "no valid configuration"; then none=$((none + 1))
  else bad "$what: $(echo "$out" | grep -m1 'error')"
  fi
}
for m in "$src/examples/tiny.gvm tiny_gpt" "$src/examples/tiny.gvm tiny_llama" "$tmp/odd.gvm odd5" "$tmp/odd.gvm odd_gqa"; do
  set -- $m
  for nodes_gpus in "1 1" "1 2" "1 4" "1 8" "2 8" "8 8"; do
    read -r nodes gpus <<< "$nodes_gpus"
    for gb in 1.2 2 8; do
      for space in "--search_space full" "--search_space 3d" "--search_space dp+tp" "--disable_dp 1" \
                   "--disable_dp 1 --disable_pp 1"; do
        try "$2 ${nodes}x$gpus ${gb}GB $space" "$1" "$2" 32 --num_nodes "$nodes" --num_gpus_per_node "$gpus" \
          --memory_constraint "$gb" $space --pytorch_context_mem 1024
      done
    done
  done
done
# odd sequence lengths and one-sample micro-batches (Ulysses and vsp split token rows), a
# prime vocabulary, 12 heads over 4 kv heads, fewer layers than ranks
for m in "odd12" "odd2" "odd_gqa"; do
  for seq in 31 34; do
    for nodes_gpus in "1 2" "1 8" "2 8"; do
      read -r nodes gpus <<< "$nodes_gpus"
      for b in "--settle_bsz 8 --settle_chunk 8" "--settle_bsz 4 --settle_chunk 2"; do
        for space in "--search_space full" "--disable_dp 1" "--disable_dp 1 --disable_pp 1"; do
          try "$m seq $seq ${nodes}x$gpus $b $space" "$tmp/odd.gvm" "$m" "$seq" --num_nodes "$nodes" \
            --num_gpus_per_node "$gpus" --memory_constraint 4 $b $space --pytorch_context_mem 1024
        done
      done
    done
  done
done
# Galvatron's profiles: its own optimum for 1x8 at 36 GB has vocabulary Ulysses (vsp) and
# ZeRO-3 layers; 24 GB mixes Megatron and Ulysses layers
L=$data/llama2-7b; H=$data/hardware
P="--time_profiling_path $L/computation_profiling_bf16_llama2-7b_all.json --memory_profiling_path $L/memory_profiling_bf16_llama2-7b_all.json
   --allreduce_bandwidth_config_path $H/allreduce_bandwidth_1nodes_8gpus_per_node.json --p2p_bandwidth_config_path $H/p2p_bandwidth_1nodes_8gpus_per_node.json
   --overlap_coe_path $H/overlap_coefficient.json --sp_time_path $H/sp_time_1nodes_8gpus_per_node.json"
# (its 36 GB optimum: vocabulary sequence parallelism, lowered as such)
out=$("$gvc" plan "$src/models/llama.gvm" --model llama2_7b --seq 2048 --search --num_nodes 1 --num_gpus_per_node 8 \
  --memory_constraint 36 --mixed_precision bf16 $P 2>&1)
echo "$out" | grep -q "^head .* split (vsp)" && ok || bad "llama2_7b 1x8 36GB: no vsp in the optimum: $out"
for gb in 24 36 80; do
  try "llama2_7b 1x8 ${gb}GB profiled" "$src/models/llama.gvm" llama2_7b 2048 --num_nodes 1 --num_gpus_per_node 8 \
    --memory_constraint $gb --mixed_precision bf16 $P
done
try "llama2_7b 1x8 36GB batch mode" "$src/models/llama.gvm" llama2_7b 2048 --num_nodes 1 --num_gpus_per_node 8 \
  --memory_constraint 36 --mixed_precision bf16 --time_profile_mode batch --settle_bsz 16 $P
# without --seq: compile's default length (llama2_7b: its 4096 positions capped at 1024) is
# the one the search prices and the one the program gets; under Megatron SP (the search's
# default) its plans keep one tp degree (the lowering runs per-layer degrees without SP only).
# The first one used to return tp 4 blocks under vocabulary tp 8 with SP, which the lowering refused.
noseq() { # what EXPECTED_SEQ ARGS...
  local what=$1 want=$2; shift 2
  local out
  out=$("$gvc" plan "$src/models/llama.gvm" --model llama2_7b --search "$@" 2>&1)
  if [ $? -ne 0 ]; then
    echo "$out" | grep -q "no valid configuration" && none=$((none + 1)) || bad "$what: $(echo "$out" | grep -m1 'error')"
    return
  fi
  echo "$out" | grep -q "^gvc: searched at seq $want:" && echo "$out" | grep -q "^strategy of llama2_7b .*, seq $want$" \
    && ok || bad "$what: searched and compiled lengths differ from $want: $(echo "$out" | grep -m1 'searched')"
  # a stage planned above the budget gets a note naming it, and only then
  local gb over notes
  gb=$(echo "$*" | sed -n 's/.*--memory_constraint \([0-9.]*\).*/\1/p')
  over=$(echo "$out" | awk -v mb="$gb" '/^stage [0-9]+ plan: / { gsub(",", ""); s = ($5 + $7 + $9 + $11) / 1048576
    if (s > mb * 1024) n++ } END { print n + 0 }')
  notes=$(echo "$out" | grep -c "^gvc: note: stage [0-9]* plans [0-9]* MB, above the --memory_constraint of $gb GB")
  [ "$over" = "$notes" ] && ok || bad "$what: $over stages planned above $gb GB, $notes notes: $out"
}
for gpus in "1 8" "1 4" "2 8"; do
  read -r nodes g <<< "$gpus"
  for gb in 20 36 80; do
    for sp in 1 0; do
      noseq "llama2_7b ${nodes}x$g ${gb}GB sp $sp" 1024 --num_nodes "$nodes" --num_gpus_per_node "$g" \
        --memory_constraint "$gb" --sequence_parallel "$sp"
      noseq "llama2_7b ${nodes}x$g ${gb}GB sp $sp seq 4096" 4096 --num_nodes "$nodes" --num_gpus_per_node "$g" \
        --memory_constraint "$gb" --sequence_parallel "$sp" --seq 4096
    done
  done
done
"$gvc" compile "$src/models/llama.gvm" --model llama2_7b --search --num_nodes 1 --num_gpus_per_node 8 \
  --memory_constraint 36 -o "$tmp/llama2_7b" > "$tmp/compile.log" 2>&1 && [ -s "$tmp/llama2_7b" ] && ok \
  || bad "gvc compile llama2_7b --search 1x8 36GB without --seq: $(grep -m1 error "$tmp/compile.log")"
rm -f "$tmp/llama2_7b"
[ $pass -ge 200 ] && ok || bad "only $pass settings found a plan ($none found none)"
echo "settings with no plan within the budget: $none"
[ $vsp -ge 1 ] && ok || bad "no searched plan used vocabulary sequence parallelism"
echo "plans with vocabulary sequence parallelism (vsp): $vsp"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
