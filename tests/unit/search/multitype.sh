#!/usr/bin/env bash
# multitype.sh GVC SRC DATA - gvc search / gvc cost on models with several layer types:
# Galvatron's shipped T5-3B (encoder, decoder) and Swin-huge (four stages) profiles, their
# shipped configs, a .gvm model with two block structures (analytic), and the errors for a
# profile whose layer types differ from the model's.
set -u
gvc=$1; src=$2; data=$3; pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
V=$data/v2.4.0; HW=$V/hardware_configs
H="--allreduce_bandwidth_config_path $HW/allreduce_bandwidth_1nodes_8gpus_per_node.json
   --p2p_bandwidth_config_path $HW/p2p_bandwidth_1nodes_8gpus_per_node.json --overlap_coe_path $HW/overlap_coefficient.json
   --sp_time_path $HW/sp_time_1nodes_8gpus_per_node.json --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 34"
T5="--num_layers 24,24 --hidden_size 1024 --seq_length 512 --time_profiling_path $V/T5/configs/computation_profiling_bf16_t5-3B.json
    --memory_profiling_path $V/T5/configs/memory_profiling_bf16_t5-3B.json"
SW="--num_layers 2,2,42,2 --hidden_size 320,640,1280,2560 --seq_length 3136,784,196,49
    --time_profiling_path $V/swin/configs/computation_profiling_bf16_swin-huge.json
    --memory_profiling_path $V/swin/configs/memory_profiling_bf16_swin-huge.json"
ref() { python3 -c "import json,sys; print('%.6f' % [c for c in json.load(open('$data/golden/golden_costs_multitype.json'))['cases'] if c['model']=='$1'][0]['time_s'])"; }

# the shipped configs: gvc cost prints the reference time (Galvatron's formulas, tests/reference)
"$gvc" cost $H $T5 --strategy "$V/T5/configs/galvatron_config_t5-3B_1nodes_8gpus_per_node_34GB_bf16_[tpconsec_off].json" > "$tmp/t5.cost" \
  && grep -q "iteration time $(ref t5-3B) s" "$tmp/t5.cost" && ok || bad "cost of the shipped T5 config: $(grep iteration "$tmp/t5.cost")"
grep -q "layer types: 0: 24 layers, hidden 1024, seq 512; 1: 24 layers" "$tmp/t5.cost" && grep -q "24-28 .*type 1" "$tmp/t5.cost" \
  && ok || bad "the table shows the layer types"
"$gvc" cost $H $SW --strategy "$V/swin/configs/galvatron_config_swin-huge_1nodes_8gpus_per_node_34GB_bf16_[tpconsec_off].json" > "$tmp/sw.cost" \
  && grep -q "iteration time $(ref swin-huge) s" "$tmp/sw.cost" && ok || bad "cost of the shipped Swin config: $(grep iteration "$tmp/sw.cost")"

# HEAD's spelling of the tuple key (512_512) reads the same; the sequence memory mode takes one type
sed 's/"\[512,512\]"/"512_512"/g' "$V/T5/configs/memory_profiling_bf16_t5-3B.json" > "$tmp/mem.json"
"$gvc" cost $H $T5 --memory_profiling_path "$tmp/mem.json" --strategy "$V/T5/configs/galvatron_config_t5-3B_1nodes_8gpus_per_node_34GB_bf16_[tpconsec_off].json" \
  | grep -q "iteration time $(ref t5-3B) s" && ok || bad "tuple key spelled 512_512"
"$gvc" search $H $T5 --memory_profile_mode sequence 2>&1 | grep -q "the sequence memory mode takes one layer type" && ok || bad "sequence memory mode, two types"

# search on both profiles: a config over every layer of every type, which gvc cost prices the same
for m in T5 SW; do
  eval "opts=\$$m"
  "$gvc" search $H $opts --quiet -o "$tmp/$m.json" > "$tmp/$m.out" && ok || bad "search on the $m profile"
  n=$(grep -o '"tp_sizes_enc": "[^"]*"' "$tmp/$m.json" | tr ',' '\n' | wc -l)
  [ "$n" -eq 48 ] && ok || bad "$m config has $n layers, expected 48"
  t=$(sed -n 's/^iteration time \([0-9.]*\) s.*/\1/p' "$tmp/$m.out")
  "$gvc" cost $H $opts --strategy "$tmp/$m.json" | grep -q "iteration time $t s" && ok || bad "cost of the searched $m config"
done

# a profile of two types for a model of one, and the reverse: errors naming the layer types
"$gvc" search $H --num_layers 48 --hidden_size 1024 --seq_length 512 --time_profiling_path $V/T5/configs/computation_profiling_bf16_t5-3B.json \
  --memory_profiling_path $V/T5/configs/memory_profiling_bf16_t5-3B.json 2>&1 | grep -q "gives 2 layer types but the model has one" \
  && ok || bad "one-type model, two-type profile"
L=$data/llama2-7b
"$gvc" search "$src/tests/unit/search/two_types.gvm" --model two_types_8 $H --time_profiling_path $L/computation_profiling_bf16_llama2-7b_all.json \
  --memory_profiling_path $L/memory_profiling_bf16_llama2-7b_all.json --seq_length 2048 2>"$tmp/err" >/dev/null
grep -q "the model has 2 layer types (0: wide.0 (4 layers), 1: narrow.0 (4 layers)) and the profile gives 1" "$tmp/err" \
  && ok || bad "two-type model, one-type profile: $(cat "$tmp/err")"
"$gvc" search $H $T5 --num_layers 24,20,4 2>&1 | grep -q "the model has 3 layer types" && ok || bad "three types, two profiled"
"$gvc" search $H $T5 --seq_length 512,512,512 2>&1 | grep -q "3 entries for 2 layer types" && ok || bad "list length checked"

# an encoder-decoder's two lengths, --seq_length S,T = 512,128: the memory profile's entries
# at the encoder's 512 and the decoder's 128 (layertype_1_sp.128, the "other" parts at the
# tuple [512,128]) are read, here from a copy of the shipped profile re-keyed; the shipped
# one has none, and the error names the missing key
python3 - "$V/T5/configs/memory_profiling_bf16_t5-3B.json" "$tmp" <<'PY'
import json, sys
m = json.loads(open(sys.argv[1]).read().replace("[512,512]", "[512,128]"))
m["layertype_1_sp"] = {"128": m["layertype_1_sp"]["512"]}
json.dump(m, open(sys.argv[2] + "/mem_512_128.json", "w"))
del m["other_memory_pp_off_sp"]["[512,128]"]
json.dump(m, open(sys.argv[2] + "/mem_no_other.json", "w"))
PY
"$gvc" search $H $T5 --seq_length 512,128 --memory_profiling_path "$tmp/mem_512_128.json" --quiet 2>&1 \
  | grep -q "layer types: 0: 24 layers, hidden 1024, seq 512; 1: 24 layers, hidden 1024, seq 128" && ok || bad "T5 at [512,128]"
"$gvc" search $H $T5 --seq_length 512,128 --quiet 2>&1 | grep -q "memory_profiling_bf16_t5-3B.json: key 'layertype_1_sp.128': missing" \
  && ok || bad "T5 at [512,128] on a profile of [512,512] only"
"$gvc" search $H $T5 --seq_length 512,128 --memory_profiling_path "$tmp/mem_no_other.json" --quiet 2>&1 \
  | grep -q "key 'other_memory_pp_off_sp.\[512,128\]': missing" && ok || bad "T5 without the [512,128] other memory"
# --src_seq S with --seq_length T is --seq_length S,T (an encoder-decoder's source length, as gvc compile's)
out=$("$gvc" search $H $T5 --src_seq 512 --seq_length 128 --memory_profiling_path "$tmp/mem_512_128.json" --quiet 2>&1)
echo "$out" | grep -q "layer types: 0: 24 layers, hidden 1024, seq 512; 1: 24 layers, hidden 1024, seq 128" && ok || bad "T5 at --src_seq 512 --seq_length 128"
# the header names both lengths, not the encoder's alone
echo "$out" | grep -q "^world 8, pp [0-9]*, global batch [0-9]*, chunks [0-9]*, seq 512,128, " && ok || bad "T5 header: $out"
"$gvc" search $H $T5 --src_seq 512 --seq_length 128 --quiet 2>&1 | grep -q "key 'layertype_1_sp.128': missing" \
  && ok || bad "--src_seq 512 on a profile of [512,512] only"
"$gvc" search $H $T5 --src_seq 512 --seq_length 512,128 2>&1 | grep -q "give the source length once" && ok || bad "--src_seq with S,T"
"$gvc" search $H --num_layers 48 --hidden_size 1024 --src_seq 512 --seq_length 128 --time_profiling_path $V/T5/configs/computation_profiling_bf16_t5-3B.json \
  --memory_profiling_path $V/T5/configs/memory_profiling_bf16_t5-3B.json 2>&1 | grep -q "src_seq 512: the model has one layer type" \
  && ok || bad "--src_seq for a model of one layer type"
# a GPT has no source: --src_seq is an error saying why, in the search and the cost
for cmd in search "cost --strategy $tmp/T5.json"; do
  "$gvc" $cmd "$src/models/gpt2.gvm" --model gpt2 --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 34 --src_seq 512 --seq_length 128 2>&1 \
    | grep -q "src_seq 512: model 'gpt2' reads no src_tokens: only an encoder-decoder has a source length" && ok || bad "gvc ${cmd%% *} --src_seq on a GPT"
done
# models/t5.gvm (four layer types: each stack's first block, with its position bias, apart):
# the two lengths go to the encoder's types and the decoder's; the analytic costs are lower
# at a shorter target
t5() { "$gvc" search "$src/models/t5.gvm" --model t5_3b --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 34 --quiet "$@"; }
t5 --seq_length 512,128 > "$tmp/t5_128.out" && t5 --seq_length 512,512 > "$tmp/t5_512.out" \
  && grep -q "seq 512; 1: 23 layers, hidden 1024, seq 512; 2: 1 layers, hidden 1024, seq 128; 3: 23 layers, hidden 1024, seq 128" \
     "$tmp/t5_128.out" && [ "$(sed -n 's/^iteration time \([0-9.]*\) s.*/\1/p' "$tmp/t5_128.out" | awk '{print ($1 > 0)}')" = 1 ] \
  && awk -v a="$(sed -n 's/^iteration time \([0-9.]*\) s.*/\1/p' "$tmp/t5_128.out")" \
         -v b="$(sed -n 's/^iteration time \([0-9.]*\) s.*/\1/p' "$tmp/t5_512.out")" 'BEGIN {exit !(a < b)}' \
  && ok || bad "models/t5.gvm at --seq_length 512,128: $(grep "layer types\|iteration" "$tmp/t5_128.out")"
t5 --src_seq 512 --seq_length 128 | grep -v "^search: " | cmp -s - <(grep -v "^search: " "$tmp/t5_128.out") && ok || bad "models/t5.gvm: --src_seq 512 --seq_length 128 is --seq_length 512,128"

# the analytic model: each block structure its own costs
"$gvc" search "$src/tests/unit/search/two_types.gvm" --model two_types_8 --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 40 \
  --quiet -o "$tmp/an.json" > "$tmp/an.out" && grep -q "layer types: 0: 4 layers, hidden 4096, seq 2048; 1: 4 layers" "$tmp/an.out" \
  && ok || bad "analytic search on two block structures"
# gvc profile measures every layer type stack by stack (tests/e2e/profile_multitype); what takes one type says so
for w in computation memory; do
  "$gvc" profile $w "$src/tests/unit/search/two_types.gvm" --model two_types_8 --profile_mode sequence -o "$tmp/prof" 2>&1 \
    | grep -q "model 'two_types_8' has 2 layer types: --profile_mode sequence profiles one layer type" && ok || bad "gvc profile $w, sequence mode, two types"
done
echo "multitype: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
