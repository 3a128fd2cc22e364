#!/usr/bin/env bash
# run.sh GVC SRC - - WORK - `gvc profile computation` and `gvc profile memory` on t5_tiny
# (models/t5.gvm): every layer type the search sees (the encoder's and decoder's first
# blocks, which make the relative position biases, and the rest of each stack) gets
# Galvatron's multi-type keys as in its shipped T5 files (layertype_k per type, the "other"
# parts and raw entries keyed by the tuple of sequence lengths); gvc search and gvc cost read
# them and price each type with its own keys; a profile of one type for this model, too few
# layers per stack and modes that take one type are refused naming the types.
. "$(dirname "$0")/../e2e_lib.sh"
rm -rf p bad
V=$src/tests/data/galvatron/v2.4.0; HW=$V/hardware_configs
M="$src/models/t5.gvm --model t5_tiny --mixed_precision fp32 --quiet"
P="--seq_length 32 --profile_batch_size 2 --layernum_min 2 --layernum_max 3 --warmup 1 --repeats 2"
c=p/computation_profiling_fp32_t5_tiny_all.json; m=p/memory_profiling_fp32_t5_tiny_all.json

# gvc compile --num_layers A,B: the counts of the model's two repeat loops
[ "$("$gvc" compile "$src/models/t5.gvm" --model t5_tiny --num_layers 3,2 --dump strategy | grep -c '^encoder\.[0-9]')" = 3 ] \
  && ok || bad "--num_layers 3,2: 3 encoder blocks"
"$gvc" compile "$src/models/t5.gvm" --model t5_tiny --num_layers 3,2,1 --dump strategy 2>&1 \
  | grep -q "has 2 top-level repeat loops (stacks of blocks), and 3 layer counts were given" && ok || bad "--num_layers 3,2,1"

"$gvc" profile computation $M $P -o p > cout.txt 2> err.txt || { bad "profile computation"; cat err.txt; }
"$gvc" profile memory $M $P --max_tp_deg 2 --context_ranks 1 -o p > mout.txt 2> err.txt || { bad "profile memory"; cat err.txt; }
# the keys of Galvatron's T5 files: a program per stack, the per-type times, other by the tuple
for k in 'layernum\[1,1,1,1\]_bsz2_seq\[32,32,32,32\]' 'layernum\[1,2,1,1\]_bsz2_seq\[32,32,32,32\]' \
         'layernum\[1,1,1,2\]_bsz2_seq\[32,32,32,32\]' layertype_0_bsz2_seq32 layertype_1_bsz2_seq32 layertype_2_bsz2_seq32 \
         layertype_3_bsz2_seq32 'layertype_other_bsz2_seq\[32,32,32,32\]' bwd_fwd_ratio_layertype_3 bwd_layertype_2_bsz2_seq32; do
  grep -q "\"$k\": [0-9]" "$c" && ok || bad "computation key $k"
done
# every key shape of Galvatron's T5-3B files (digits as N, lists as [L]; its raw N_N_N memory entries aside) is in ours
shapes() { grep -o '^    "[^"]*":' "$1" | tr -d ' ":' | sed 's/[0-9][0-9]*/N/g; s/\[N\(,N\)*\]/[L]/g' | grep -v '^N_N_N' | sort -u; }
for f in computation memory; do
  g=$(ls "$V"/T5/configs/${f}_profiling_bf16_t5-3B.json)
  miss=$(comm -23 <(shapes "$g") <(shapes p/${f}_profiling_fp32_t5_tiny_all.json) | tr '\n' ' ')
  [ -z "$miss" ] && ok || bad "$f key shapes of Galvatron's T5 file missing: $miss"
done
grep -q "^layer types: 0: encoder.0, 1: encoder.1, 2: decoder.0, 3: decoder.1" cout.txt && ok || bad "computation table"
for k in layertype_0 layertype_1 layertype_2 layertype_3 layertype_3_sp; do
  grep -q "^    \"$k\": {\"32\": {\"parameter_size\": [0-9]" "$m" && ok || bad "memory key $k"
done
for k in other_memory_pp_off other_memory_pp_on_first_sp other_memory_pp_on_last; do
  grep -q "^    \"$k\": {\"\[32,32,32,32\]\": {\"model_states\"" "$m" && ok || bad "memory key $k"
done
# a decoder layer (self- and cross-attention) holds more parameters than an encoder layer
ps() { sed -n "s/^    \"layertype_$1\": {\"32\": {\"parameter_size\": \([0-9.e-]*\),.*/\1/p" "$m"; }
awk -v e="$(ps 1)" -v d="$(ps 3)" 'BEGIN {exit !(d > 1.4 * e && e > 0)}' && ok || bad "parameter sizes $(ps 1) $(ps 3)"

# the search and the cost on the files, each type priced by its own keys
S="$src/models/t5.gvm --model t5_tiny --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 2 --seq_length 32
   --mixed_precision fp32 --settle_bsz 8 --allreduce_bandwidth_config_path $HW/allreduce_bandwidth_1nodes_8gpus_per_node.json
   --p2p_bandwidth_config_path $HW/p2p_bandwidth_1nodes_8gpus_per_node.json --overlap_coe_path $HW/overlap_coefficient.json
   --sp_time_path $HW/sp_time_1nodes_8gpus_per_node.json --memory_profiling_path $m"
"$gvc" search $S --time_profiling_path "$c" -o plan.json > s.out 2>&1 && grep -q "cost model: galvatron (profiled)" s.out \
  && grep -q "^layer types: 0: 1 layers.*; 3: 1 layers" s.out && ok || { bad "search on the profiles"; cat s.out; }
t=$(sed -n 's/^iteration time \([0-9.]*\) s.*/\1/p' s.out)
"$gvc" cost $S --time_profiling_path "$c" --strategy plan.json | grep -q "iteration time $t s" && ok || bad "cost of the searched plan"
sed 's/"layertype_3_bsz2_seq32": [0-9.e-]*/"layertype_3_bsz2_seq32": 1000/' "$c" > slow3.json
t3=$("$gvc" cost $S --time_profiling_path slow3.json --strategy plan.json | sed -n 's/^iteration time \([0-9.]*\) s.*/\1/p')
awk -v a="$t" -v b="$t3" 'BEGIN {exit !(b > a + 0.5)}' && ok || bad "type 3's own time read ($t -> $t3 s)"

# a profile of one layer type for this model: an error naming its types
grep -v '"layertype_[123]' "$m" > one.json
"$gvc" search $S --time_profiling_path "$c" --memory_profiling_path one.json 2>&1 \
  | grep -q "the model has 4 layer types (0: encoder.0 (1 layer), 1: encoder.1 (1 layer), 2: decoder.0 (1 layer), 3: decoder.1 (1 layer)) and the profile gives 1" \
  && ok || bad "one-type profile for four types"
# refused before anything runs, nothing written
"$gvc" profile computation $M --seq_length 32 -o bad 2>&1 | grep -q "with 1 layer per stack its layer types (2) are not the model's 4 (0: encoder.0" \
  && [ ! -e bad ] && ok || bad "--layernum_min 1 on T5"
"$gvc" profile computation $M $P --profile_mode sequence --profile_seq_length_list 16,32,64 -o bad 2>&1 \
  | grep -q "has 4 layer types: --profile_mode sequence profiles one layer type" && [ ! -e bad ] && ok || bad "sequence mode"
finish
