#!/usr/bin/env bash
# cp.sh GVC SRC WORK - the search with context parallelism as a dimension. LLaMA-2-7B, 32768
# tokens, 8 GPUs of 32 GB, tp at most 2 and no Ulysses (tp across a slow link): without cp
# (--disable_cp 1, the default) no plan fits; with --disable_cp 0 a plan with cp fits, its
# report says so, the strategy file carries Galvatron's cp_sizes_enc, and gvc compile takes
# it (ring attention in the program); --max_cp_deg 1 takes cp out again.
set -u
gvc=$1; src=$2; work=$3; pass=0; fail=0
rm -rf "$work" && mkdir -p "$work" || exit 1
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
L=$src/tests/data/galvatron/llama2-7b; H=$src/tests/data/galvatron/hardware
search() {
  "$gvc" search "$src/models/llama.gvm" --model llama2_7b --cost-model analytic --num_nodes 1 --num_gpus_per_node 8 \
    --seq_length 32768 --memory_profiling_path "$L/memory_profiling_bf16_llama2-7b_all.json" --memory_profile_mode sequence \
    --allreduce_bandwidth_config_path "$H/allreduce_bandwidth_1nodes_8gpus_per_node.json" \
    --p2p_bandwidth_config_path "$H/p2p_bandwidth_1nodes_8gpus_per_node.json" \
    --overlap_coe_path "$H/overlap_coefficient.json" --sp_time_path "$H/sp_time_1nodes_8gpus_per_node.json" \
    --mixed_precision bf16 --memory_constraint 32 --max_tp_deg 2 --disable_sp 1 --quiet "$@"
}
search --disable_cp 1 -o "$work/nocp.json" > "$work/nocp.txt" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "no valid configuration found under 32 GB" "$work/nocp.txt" && ok || bad "without cp: rc $rc, $(tail -1 "$work/nocp.txt")"
search --disable_cp 0 --max_cp_deg 1 -o "$work/cp1.json" > "$work/cp1.txt" 2>&1
[ $? -ne 0 ] && ok || bad "--max_cp_deg 1 still searched cp"
if search --disable_cp 0 -o "$work/cp.json" > "$work/cp.txt" 2>&1; then ok; else bad "with cp: $(tail -1 "$work/cp.txt")"; fi
grep -q "^context parallelism: cp [248] (zigzag ring attention" "$work/cp.txt" && ok || bad "the report does not say cp: $(cat "$work/cp.txt")"
grep -q -- "-cp[248]$" "$work/cp.txt" && ok || bad "the layers' strategies carry no -cpN"
grep -Eq '"cp_sizes_enc": "[248](,[248])*"' "$work/cp.json" && ok || bad "no cp_sizes_enc in the strategy file"
# gvc compile runs it (at the model's 4096 positions: the strategy is per layer, not per length)
if "$gvc" compile "$src/models/llama.gvm" --model llama2_7b --galvatron_config_path "$work/cp.json" --seq 4096 --emit c \
     -o "$work/p.c" > "$work/compile.txt" 2>&1 && grep -q "gv_gen_ring_attention_fwd" "$work/p.c" &&
   grep -q "x cp [248] (zigzag ring attention)" "$work/compile.txt"; then ok; else bad "compile: $(tail -2 "$work/compile.txt")"; fi
# a cp_sizes_enc that differs between layers is refused, naming the key
sed 's/"cp_sizes_enc": "\([248]\),/"cp_sizes_enc": "1,/' "$work/cp.json" > "$work/mixed.json"
"$gvc" compile "$src/models/llama.gvm" --model llama2_7b --galvatron_config_path "$work/mixed.json" --seq 4096 --emit c \
  -o "$work/m.c" > "$work/mixed.txt" 2>&1
grep -q "key 'cp_sizes_enc': layer 1 has cp=" "$work/mixed.txt" && ok || bad "mixed cp_sizes_enc: $(cat "$work/mixed.txt")"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
