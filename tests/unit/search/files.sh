#!/usr/bin/env bash
# files.sh GVC SRC DATA - how gvc search and gvc cost take Galvatron's profile files:
# directories in place of files (Galvatron's file names built from precision, model and
# world), and the checks on what is read, each naming the file and the key: negative
# sp_time, non-positive memory values and layer times, an empty or short p2p file; and
# the no-plan messages (context reserve under a tiny budget; no task at all); gvc profile's
# own keys (measured backward ratios, context memory) read and used.
set -u
gvc=$1; src=$2; data=$3; pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
L=$data/llama2-7b; H=$data/hardware
TF=$L/computation_profiling_bf16_llama2-7b_all.json MF=$L/memory_profiling_bf16_llama2-7b_all.json
AF=$H/allreduce_bandwidth_1nodes_8gpus_per_node.json PF=$H/p2p_bandwidth_1nodes_8gpus_per_node.json
OF=$H/overlap_coefficient.json SF=$H/sp_time_1nodes_8gpus_per_node.json
M="$src/models/llama.gvm --model llama2_7b --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 36 --seq_length 2048 --quiet"
files() { echo "--time_profiling_path ${1:-$TF} --memory_profiling_path ${2:-$MF} --allreduce_bandwidth_config_path ${3:-$AF}
                --p2p_bandwidth_config_path ${4:-$PF} --overlap_coe_path ${5:-$OF} --sp_time_path ${6:-$SF}"; }
# expect MESSAGE ARGS...: exit 1 and MESSAGE on stderr
expect() { local want=$1; shift; "$gvc" "$@" > /dev/null 2> "$tmp/err"; local rc=$?
  [ $rc -eq 1 ] && grep -qF -- "$want" "$tmp/err" && ok || { bad "want '$want' and exit 1, got $rc: $(cat "$tmp/err")"; }; }

# directories, as Galvatron's --*_path options take them (this crashed with exit 139 before)
"$gvc" search $M $(files $L $L $H $H $H $H) -o "$tmp/dir.json" | grep -q "iteration time 3.871011 s" && ok || bad "search with directories"
"$gvc" cost $M $(files $L $L $H $H $H $H) --strategy "$tmp/dir.json" | grep -q "iteration time 3.871011 s" && ok || bad "cost with directories"
mkdir "$tmp/prof" && cp "$TF" "$tmp/prof/computation_profiling_bf16_my-llama_all.json" && cp "$MF" "$tmp/prof/memory_profiling_bf16_my-llama_all.json"
"$gvc" search $M $(files "$tmp/prof" "$tmp/prof") --model_size my-llama | grep -q "iteration time 3.871011 s" && ok || bad "--model_size names the files"
expect "gvc: error: --time_profiling_path $tmp/prof: no computation_profiling_bf16_llama2_7b_all.json in this directory (nor computation_profiling_bf16_llama2-7b_all.json" search $M $(files "$tmp/prof")
expect "gvc: error: --sp_time_path $L: no sp_time_1nodes_8gpus_per_node.json in this directory" search $M $(files "" "" "" "" "" $L)
expect "gvc: error: --p2p_bandwidth_config_path $H: no p2p_bandwidth_1nodes_2gpus_per_node.json" search ${M/--num_gpus_per_node 8/--num_gpus_per_node 2} $(files "" "" "$AF" "$H")

# sp_time: a negative latency gave a wrong "best" plan with exit 0
sed 's/"allreduce_size_8_64MB_time": 0.65/"allreduce_size_8_64MB_time": -0.65/' "$SF" > "$tmp/sp.json"
expect "gvc: error: $tmp/sp.json: key 'allreduce_size_8_64MB_time': expected a positive latency in ms" search $M $(files "" "" "" "" "" "$tmp/sp.json")
# memory: zero and negative sizes
sed 's/"parameter_size": 778.2236328125/"parameter_size": 0/' "$MF" > "$tmp/m1.json"
expect "gvc: error: $tmp/m1.json: key 'layertype_0_sp.2048.parameter_size': expected a positive size in MB" search $M $(files "" "$tmp/m1.json")
sed 's/"4": 136.885498046875/"4": -136.885498046875/' "$MF" > "$tmp/m2.json"
expect "gvc: error: $tmp/m2.json: key 'layertype_0_sp.2048.tp_activation_per_bsz_dict.4': expected a positive size in MB" search $M $(files "" "$tmp/m2.json")
sed 's/"8": 771.869140625/"8": 0/' "$MF" > "$tmp/m3.json"
expect "gvc: error: $tmp/m3.json: key 'other_memory_pp_off_sp.2048.model_states.8': expected a positive size in MB" search $M $(files "" "$tmp/m3.json")
# computation: a layer time of zero or below
sed 's/"layertype_0_bsz1_seq2048": 4.396252679824831/"layertype_0_bsz1_seq2048": 0/' "$TF" > "$tmp/t1.json"
expect "gvc: error: $tmp/t1.json: key 'layertype_0_bsz1_seq2048': expected a positive forward time in ms" search $M $(files "$tmp/t1.json")
sed 's/"layertype_other_bsz1_seq2048": \([0-9.]*\)/"layertype_other_bsz1_seq2048": -\1/' "$TF" > "$tmp/t2.json"
expect "gvc: error: $tmp/t2.json: key 'layertype_other_bsz1_seq2048': expected a forward time >= 0 ms" search $M $(files "$tmp/t2.json")
# p2p: an empty file dropped every pipeline strategy without a word
echo '{}' > "$tmp/p2p.json"
expect "gvc: error: $tmp/p2p.json: key 'pp_size_{p}': missing" search $M $(files "" "" "" "$tmp/p2p.json")
echo '{"pp_size_2": 163.671, "pp_size_4": 138.581}' > "$tmp/p2p4.json"
expect "gvc: error: $tmp/p2p4.json: key 'pp_size_8': missing (needed for pipeline degree 8" search $M $(files "" "" "" "$tmp/p2p4.json")
"$gvc" search $M $(files "" "" "" "$tmp/p2p4.json") --max_pp_deg 4 > /dev/null && ok || bad "--max_pp_deg 4 needs no pp_size_8"
expect "gvc: error: $tmp: is a directory, expected a JSON file" cost $M --strategy "$tmp" $(files)

# no plan: say why
expect "reserves 1024 MB for the framework's context (--pytorch_context_mem" search "$src/examples/tiny.gvm" --model tiny_llama --memory_constraint 1 --quiet
expect "gvc: error: nothing to search: --settle_chunk 3 divides no global batch (128); memory was not the limit" search $M $(files) --settle_bsz 128 --settle_chunk 3
"$gvc" search $M $(files) --settle_bsz 128 --settle_chunk 3 2>&1 | grep -q "GB per GPU" && bad "no task blamed on memory" || ok

# gvc profile's own keys: the measured backward replaces Galvatron's 2, the measured context its 1024 MB
gvc_keys() { sed '$d' "$1"; echo ", \"gvc\": {$2}}"; }
gvc_keys "$TF" '"bwd_fwd_ratio_layertype_0": 1.0, "bwd_fwd_ratio_layertype_other": 1.0' > "$tmp/t1.json"
"$gvc" cost $M $(files "$tmp/t1.json") --strategy "$tmp/dir.json" > "$tmp/c1" 2>&1
grep -q "iteration time" "$tmp/c1" && ! grep -q "iteration time 3.871011 s" "$tmp/c1" && ok || bad "measured backward ratio: $(cat "$tmp/c1")"
gvc_keys "$TF" '"bwd_fwd_ratio_layertype_0": -1' > "$tmp/t2.json"
expect "gvc: error: $tmp/t2.json: key 'gvc.bwd_fwd_ratio_layertype_0': expected a positive number" search $M $(files "$tmp/t2.json")
gvc_keys "$MF" '"context_mem_mb": 24.0' > "$tmp/m9.json"
"$gvc" cost $M $(files "" "$tmp/m9.json") --strategy "$tmp/dir.json" > "$tmp/c2" 2>&1
"$gvc" cost $M $(files) --strategy "$tmp/dir.json" > "$tmp/c3" 2>&1
a=$(grep "memory per stage" "$tmp/c2" | awk '{print $NF}'); b=$(grep "memory per stage" "$tmp/c3" | awk '{print $NF}')
[ -n "$a" ] && [ "$((b - a))" -eq 1000 ] && ok || bad "measured context memory: $a vs $b MB"
"$gvc" cost $M $(files "" "$tmp/m9.json") --pytorch_context_mem 1024 --strategy "$tmp/dir.json" | grep -qF "$(grep "memory per stage" "$tmp/c3")" \
  && ok || bad "--pytorch_context_mem given wins over the profile's"
# a noisy batch profile whose line crosses 0: warned, and no layer time below 0
sed 's/"layertype_0_bsz12_seq2048": [0-9.]*/"layertype_0_bsz12_seq2048": 60.0/' "$TF" > "$tmp/t3.json"
"$gvc" search $M $(files "$tmp/t3.json") --time_profile_mode batch > "$tmp/s3" 2> "$tmp/e3" && grep -q "iteration time" "$tmp/s3" \
  && grep -q "key 'layertype_0_bsz\*_seq2048': the batch fit .* reaches 0 at" "$tmp/e3" && ok || bad "negative batch intercept: $(cat "$tmp/e3")"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
