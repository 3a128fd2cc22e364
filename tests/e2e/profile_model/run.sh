#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - `gvc profile computation` (static, batch and sequence modes)
# and `gvc profile memory` on the tiny GPT with small ranges: the files carry every key
# shape Galvatron's readers take (compared with the shipped llama2-7b profiles), gvc's
# readers take them (gvc search in each time mode), the summary tables and the progress
# line appear; bad input names the argument and leaves no file; then the flow: hardware
# profile of 2 ranks, search on the four profiles, compile the plan, run it on 2 ranks, the
# prediction beside the run (gvc cost --measured), and the analytic model calibrated by the files.
. "$(dirname "$0")/../e2e_lib.sh"
rm -rf p pb ps bad hw plan.json
L=$src/tests/data/galvatron/llama2-7b
M="$src/examples/tiny.gvm --model tiny_gpt --mixed_precision fp32 --quiet"
# key shapes (digits as N) of a file's keys; Galvatron's raw entries (N_N_N..., layernum[..]_rank) are ignored by its search
shapes() { grep -o '"[^"]*":' "$1" | tr -d '":' | sed 's/[0-9][0-9]*/N/g' | grep -v '^N_N_N\|_rankN_' | sort -u; }
top() { grep -o '^    "[^"]*":' "$1" | tr -d ' ":' | sed 's/[0-9][0-9]*/N/g' | sort -u; }
covers() { [ -z "$(comm -23 <(shapes "$1") <(shapes "$2"))" ]; }

"$gvc" profile computation --help | grep -q "usage: gvc profile computation" && ok || bad "computation --help"
"$gvc" profile memory --help | grep -q "usage: gvc profile memory" && ok || bad "memory --help"

# gvc compile --num_layers: the layer count the profiles compile (and a model without `layers` refused)
[ "$("$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --num_layers 3 --dump strategy | grep -c '^layers\.[0-9]')" = 3 ] \
  && ok || bad "--num_layers 3"
sed 's/layers = 12,/depth = 12,/; s/repeat i in layers/repeat i in depth/' "$src/models/gpt2.gvm" > nolayers.gvm
"$gvc" compile nolayers.gvm --model gpt2 --num_layers 2 --dump strategy 2>&1 | grep -q "model 'gpt2_family' has no 'layers' parameter" \
  && ok || bad "--num_layers without a layers parameter"

# computation, static: one point; Galvatron's keys, gvc's measured backward, the table, the progress line
"$gvc" profile computation $M --seq_length 32 --profile_batch_size 2 -o p > out.txt 2> err.txt || { bad "computation static"; cat err.txt; }
c=p/computation_profiling_fp32_tiny_gpt_all.json
[ -f "$c" ] && [ -f "${c%.json}.txt" ] && ok || bad "computation files"
for k in 'layernum\[1\]_bsz2_seq32' 'layernum\[2\]_bsz2_seq32' layertype_0_bsz2_seq32 layertype_other_bsz2_seq32 \
         bwd_fwd_ratio_layertype_0 bwd_layertype_0_bsz2_seq32 optimizer_ms_layertype_0 optimizer_ms_layertype_other; do
  grep -q "\"$k\": [0-9]" "$c" && ok || bad "computation key $k"
done
[ "$(top "$L/computation_profiling_bf16_llama2-7b_all.json" | comm -23 - <(top "$c"))" = "" ] && ok || bad "computation key shapes"
grep -q "^  bsz    seq" out.txt && cmp -s <(grep -v "^written:" out.txt) "${c%.json}.txt" && ok || bad "computation table"
"$gvc" profile computation ${M% --quiet} --seq_length 32 --profile_batch_size 2 -o p2 2> err2.txt > /dev/null
tr '\r' '\n' < err2.txt | grep -q "ETA" && ok || bad "progress line"
"$gvc" profile computation $M --seq_length 32 --profile_batch_size 2 --concurrent 2 -o p3 > /dev/null 2>&1 \
  && grep -q '"concurrent": 2' p3/computation_profiling_fp32_tiny_gpt_all.json && [ -z "$(ls -A p3 | grep -v 'json$\|txt$')" ] \
  && ok || bad "--concurrent 2 (two copies side by side, temporary files removed)"

# --tp_ranks 2: the program split over 2 ranks (tp, tp + sp, Ulysses), its ratios under "gvc"
"$gvc" profile computation $M --seq_length 32 --profile_batch_size 2 --tp_ranks 2 --mpiexec "$mpiexec" -o pt > tout.txt 2> err.txt \
  || { bad "--tp_ranks 2"; cat err.txt; }
for v in tp tp_sp ulysses; do
  grep -q "\"${v}2_fwd_ratio_layertype_0\": [0-9]" pt/computation_profiling_fp32_tiny_gpt_all.json && grep -q "^$v *over 2 ranks" tout.txt \
    && ok || bad "--tp_ranks 2: $v"
done

# batch mode: 8 batch sizes, read by gvc's batch fit; sequence mode: 3 lengths at bsz 1
"$gvc" profile computation $M --profile_mode batch --seq_length 32 --profile_min_batch_size 1 --profile_max_batch_size 8 -o pb \
  > /dev/null 2> err.txt && ok || { bad "computation batch"; cat err.txt; }
[ "$(grep -c '"layertype_0_bsz[0-9]*_seq32"' pb/computation_profiling_fp32_tiny_gpt_all.json)" = 8 ] && ok || bad "batch mode keys"
"$gvc" profile computation $M --profile_mode sequence --profile_seq_length_list 16,32,64 -o ps > /dev/null 2> err.txt \
  && ok || { bad "computation sequence"; cat err.txt; }
for s in 16 32 64; do grep -q "\"layertype_0_bsz1_seq$s\"" ps/computation_profiling_fp32_tiny_gpt_all.json && ok || bad "sequence key $s"; done

# memory: Galvatron's derived entries with and without _sp, tp dicts, checkpoint, context measured
"$gvc" profile memory $M --seq_length 32 --profile_batch_size 2 --max_tp_deg 4 --context_ranks 2 --mpiexec "$mpiexec" -o p > mout.txt 2> err.txt || { bad "memory"; cat err.txt; }
m=p/memory_profiling_fp32_tiny_gpt_all.json
[ -f "$m" ] && [ -f "${m%.json}.txt" ] && ok || bad "memory files"
covers "$L/memory_profiling_bf16_llama2-7b_all.json" "$m" && ok || bad "memory key shapes: $(comm -23 <(shapes "$L/memory_profiling_bf16_llama2-7b_all.json") <(shapes "$m") | tr '\n' ' ')"
for k in layertype_0 layertype_0_sp other_memory_pp_off other_memory_pp_on_first_sp other_memory_pp_on_last; do
  grep -q "^    \"$k\": {\"32\": " "$m" && ok || bad "memory key $k"
done
grep -q '"tp_activation_per_bsz_dict": {"1": [0-9.e-]*, "2": [0-9.e-]*, "4": [0-9.e-]*, "checkpoint"' "$m" && ok || bad "tp dict 1, 2, 4"
awk -F'"context_mem_mb": ' 'NF > 1 {split($2, a, ","); exit !(a[1] + 0 > 0)}' "$m" && ok || bad "context_mem_mb measured"
grep -q '"context_param_mb": [0-9.]*, "context_per_param_mb": [0-9]' "$m" && ok || bad "context per MB of reduced parameters"
cmp -s <(grep -v "^written:" mout.txt) "${m%.json}.txt" && ok || bad "memory table"
grep -q "^outside the plan (measured, peak resident set): .* 2 ranks, the largest" mout.txt && ok || bad "context measured on 2 ranks"

# bad input: the argument named, nothing written
no_files() { [ ! -e "$1" ] || [ -z "$(ls -A "$1")" ]; }
expect() { # expect MESSAGE ARGS...: profile computation (memory with WHAT=memory) fails with MESSAGE and leaves no bad/ output
  local msg=$1; shift
  if "$gvc" profile "${WHAT:-computation}" $M "$@" -o bad > /dev/null 2> err.txt; then bad "accepted: $*";
  elif ! grep -q -- "$msg" err.txt; then bad "message for $*: $(cat err.txt)";
  elif ! no_files bad; then bad "left files for $*: $(ls -A bad)"; else ok; fi
}
expect "--profile_min_batch_size 8 > --profile_max_batch_size 4: the profile range is empty" \
  --profile_mode batch --profile_min_batch_size 8 --profile_max_batch_size 4
expect "--profile_max_batch_size 16 - --profile_min_batch_size 1 = 15 is not a multiple of --profile_batch_size_step 2" \
  --profile_mode batch --profile_min_batch_size 1 --profile_max_batch_size 16 --profile_batch_size_step 2
expect "batch mode needs at least 8" --profile_mode batch --profile_min_batch_size 1 --profile_max_batch_size 4
expect "--profile_seq_length_list" --profile_mode sequence --profile_seq_length_list 16,,32
expect "--layernum_max 1: must be above --layernum_min 1" --layernum_max 1
expect "--tp_ranks 3: expected 0 or a power of two in" --tp_ranks 3
expect "--profile_batch_size: the program of tiny_gpt" --seq_length 64 --profile_batch_size 1000000
expect "--seq_length 100 exceeds tiny_gpt's 64 positions" --seq_length 100
WHAT=memory expect "--profile_batch_size: the program of tiny_gpt with 2 layers at batch 1000000" --seq_length 64 --profile_batch_size 1000000
WHAT=memory expect "--profile_min_seq_length 64 > --profile_max_seq_length 32: the profile range is empty" \
  --profile_mode sequence --profile_min_seq_length 64 --profile_max_seq_length 32

# the flow: hardware of 2 CPU ranks, search on the four profiles, compile the plan, run it
"$mpiexec" -n 2 "$gvc" profile hardware --num_nodes 1 --num_gpus_per_node 2 --start_mb 1 --end_mb 2 --sp_max_mb 128 --warmup 0 \
  --repeats 3 --overlap_ms 20 --quiet -o p > /dev/null 2> err.txt && ok || { bad "profile hardware"; cat err.txt; }
S="$src/examples/tiny.gvm --model tiny_gpt --num_nodes 1 --num_gpus_per_node 2 --memory_constraint 4 --seq_length 32
   --mixed_precision fp32 --settle_bsz 8 --quiet --time_profiling_path p --memory_profiling_path p
   --allreduce_bandwidth_config_path p --p2p_bandwidth_config_path p --overlap_coe_path p --sp_time_path p"
"$gvc" search $S -o plan.json > search.out 2>&1 && grep -q "cost model: galvatron (profiled)" search.out && ok || { bad "search on the profiles"; cat search.out; }
"$gvc" search $S --time_profiling_path pb --time_profile_mode batch -o plan_b.json > /dev/null 2>&1 && ok || bad "search, batch time mode"
"$gvc" search $S --time_profiling_path ps --time_profile_mode sequence -o plan_s.json > /dev/null 2>&1 && ok || bad "search, sequence time mode"
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --num_gpus_per_node 2 --galvatron_config_path plan.json \
  --mixed_precision fp32 -o tiny_plan > /dev/null 2>&1 && ok || bad "compile the plan"
"$mpiexec" -n 2 ./tiny_plan --data synthetic --iters 3 --step_json steps.json > run.out 2>&1 && grep -q '"peak_rss_mb"' steps.json \
  && ok || { bad "run the plan on 2 ranks"; tail -5 run.out; }
"$gvc" cost $S --strategy plan.json --measured steps.json | grep -q "^predicted / measured: step time [0-9.]* / [0-9.]* s" \
  && ok || bad "gvc cost --measured"
# the analytic model calibrated by the profiles instead of its presets
A="$src/examples/tiny.gvm --model tiny_gpt --num_nodes 1 --num_gpus_per_node 2 --memory_constraint 4 --seq_length 32
   --mixed_precision fp32 --settle_bsz 8 --quiet --cost-model analytic --device cpu"
"$gvc" search $A --hardware_profile p --time_profiling_path p --memory_profiling_path p 2>&1 \
  | grep -q "cost model: analytic, calibrated by the profiles (time, memory, hardware)" && ok || bad "analytic, calibrated"
"$gvc" search $A 2>&1 | grep -q "cost model: analytic (from the IR" && ok || bad "analytic, presets"
finish
