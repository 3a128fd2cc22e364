#!/usr/bin/env bash
# run.sh GVC SRC - - WORK - `gvc profile computation` and `gvc profile memory` on t5_tiny
# (models/t5.gvm): every layer type the search sees (the encoder's and decoder's first
# blocks, which make the relative position biases, and the rest of each stack) gets
# Galvatron's multi-type keys as in its shipped T5 files (layertype_k per type, the "other"
# parts and raw entries keyed by the tuple of sequence lengths); gvc search and gvc cost read
# them and price each type with its own keys; a profile of one type for this model, too few
# layers per stack and modes that take one type are refused naming the types.
. "$(dirname "$0")/../e2e_lib.sh"
rm -rf p bad st s16
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

# an encoder-decoder's two lengths: the encoder's types at the source's S = 32, the decoder's at T = 16
# (Galvatron's --seq_length S,T, or --src_seq S); the keys by each type's length and the tuple
Q="--profile_batch_size 2 --layernum_min 2 --layernum_max 3 --warmup 1 --repeats 2"
c2=st/computation_profiling_fp32_t5_tiny_all.json; m2=st/memory_profiling_fp32_t5_tiny_all.json
"$gvc" profile computation $M $Q --seq_length 32,16 -o st > c2out.txt 2> err.txt || { bad "profile computation at 32,16"; cat err.txt; }
"$gvc" profile memory $M $Q --src_seq 32 --seq_length 16 --max_tp_deg 2 --context_ranks 0 -o st > /dev/null 2> err.txt \
  || { bad "profile memory at --src_seq 32 --seq_length 16"; cat err.txt; }
for k in 'layernum\[1,1,1,1\]_bsz2_seq\[32,32,16,16\]' 'layernum\[1,1,1,2\]_bsz2_seq\[32,32,16,16\]' layertype_0_bsz2_seq32 \
         layertype_1_bsz2_seq32 layertype_2_bsz2_seq16 layertype_3_bsz2_seq16 'layertype_other_bsz2_seq\[32,32,16,16\]' \
         bwd_layertype_1_bsz2_seq32 bwd_layertype_3_bsz2_seq16 src_seq; do
  grep -q "\"$k\": [0-9]" "$c2" && ok || bad "computation key $k at 32,16"
done
! grep -q 'layertype_[23]_bsz2_seq32\|layertype_[01]_bsz2_seq16' "$c2" && ok || bad "a type keyed by the other length"
grep -q "source length 32 (the encoder's layer types)" c2out.txt && ok || bad "computation table at 32,16"
for k in layertype_0 layertype_1 layertype_0_sp; do
  grep -q "^    \"$k\": {\"32\": {\"parameter_size\"" "$m2" && ok || bad "memory key $k.32"
done
for k in layertype_2 layertype_3 layertype_3_sp; do
  grep -q "^    \"$k\": {\"16\": {\"parameter_size\"" "$m2" && ok || bad "memory key $k.16"
done
for k in other_memory_pp_off other_memory_pp_on_first other_memory_pp_on_last other_memory_pp_off_sp other_memory_pp_on_last_sp; do
  grep -q "^    \"$k\": {\"\[32,32,16,16\]\": {\"model_states\"" "$m2" && ok || bad "memory key $k.[32,32,16,16]"
done
# the decoder's cross-attention reads the 32 source rows: more activation than with a source of 16
"$gvc" profile memory $M $Q --seq_length 16 --max_tp_deg 2 --context_ranks 0 -o s16 > /dev/null 2>&1
act() { sed -n 's/^    "layertype_3": {"16": {.*"tp_activation_per_bsz_dict": {"1": \([0-9.e-]*\),.*/\1/p' "$1"; }
awk -v a="$(act "$m2")" -v b="$(act s16/memory_profiling_fp32_t5_tiny_all.json)" 'BEGIN {exit !(a > b && b > 0)}' \
  && ok || bad "decoder activation at source 32 ($(act "$m2")) above source 16"
# the search at the profile's lengths finds a plan (either spelling); at other lengths the missing key is named
S2="${S/--seq_length 32/} --memory_profiling_path $m2 --time_profiling_path $c2"
"$gvc" search $S2 --seq_length 32,16 -o plan2.json > s2.out 2>&1 && grep -q "^iteration time [0-9.]* s" s2.out \
  && grep -q "^layer types: 0: 1 layers, hidden 64, seq 32; 1: 1 layers, hidden 64, seq 32; 2: 1 layers, hidden 64, seq 16; 3: 1 layers, hidden 64, seq 16" s2.out \
  && ok || { bad "search at 32,16 on the 32,16 profile"; cat s2.out; }
t2=$(sed -n 's/^iteration time \([0-9.]*\) s.*/\1/p' s2.out)
"$gvc" search $S2 --src_seq 32 --seq_length 16 2>&1 | grep -q "^iteration time $t2 s" && ok || bad "search --src_seq 32 --seq_length 16"
"$gvc" cost $S2 --src_seq 32 --seq_length 16 --strategy plan2.json 2>&1 | grep -q "^iteration time $t2 s" && ok || bad "cost at 32,16"
"$gvc" search $S2 --seq_length 32 2>&1 | grep -q "memory_profiling_fp32_t5_tiny_all.json: key 'layertype_2_sp.32': missing" \
  && ok || bad "search at 32 on the 32,16 profile names the missing key"
"$gvc" search $S2 --seq_length 16,32 2>&1 | grep -q "key 'layertype_0_sp.16': missing" && ok || bad "search at 16,32 names the missing key"
"$gvc" search $S --time_profiling_path "$c" --seq_length 32,16 2>&1 | grep -q "memory_profiling_fp32_t5_tiny_all.json: key 'layertype_2_sp.16': missing" \
  && ok || bad "search at 32,16 on the one-length profile names the missing key"
# two lengths for a model without a source, and three lengths: refused before anything runs
"$gvc" profile memory "$src/examples/tiny.gvm" --model tiny_gpt --seq_length 32,16 -o bad 2>&1 \
  | grep -q "seq_length 32,16: model 'tiny_gpt' reads no src_tokens" && [ ! -e bad ] && ok || bad "--seq_length S,T on a GPT"
"$gvc" profile computation $M --src_seq 32 --seq_length 16,8 -o bad 2>&1 | grep -q "give the source length once" && [ ! -e bad ] \
  && ok || bad "--src_seq with --seq_length S,T"
"$gvc" profile computation $M --seq_length 32,16,8 -o bad 2>&1 | grep -q "expected one length, or an encoder-decoder's two" \
  && [ ! -e bad ] && ok || bad "three lengths"

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
