#!/usr/bin/env bash
# profile_and_train.sh [BUILD] - the profiled flow on 2 CPU ranks, as Galvatron's: measure
# the hardware (gvc profile hardware under mpirun), the model (gvc profile computation and
# memory: its layers compiled and timed on the runtime, its memory plan), search with those
# files, compile the plan, train it with mpirun -n 2 and compare the cost model's predicted
# step time and memory with the run's (gvc cost --measured).
set -euo pipefail
B=${1:-build}
cd "$(dirname "$0")/.."
GVC="$B/gvc"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
OUT="$B/profiled"
P="$OUT/profiles"
rm -rf "$OUT" && mkdir -p "$P"
M="examples/demo.gvm --model fortune_gpt --mixed_precision fp32"
echo "-- gvc profile hardware: 2 CPU ranks, small sizes"
mpirun -n 2 "$GVC" profile hardware --num_nodes 1 --num_gpus_per_node 2 --start_mb 1 --end_mb 4 --sp_max_mb 128 \
  --warmup 1 --repeats 3 --overlap_ms 50 --quiet -o "$P" | sed -n '/^bus bandwidth/,/^overlap/p'
echo "-- gvc profile computation: 1 and 2 layers at batch 4, seq 128, timed on the runtime (2 copies side by side, as 2 ranks)"
"$GVC" profile computation $M --seq_length 128 --profile_batch_size 4 --repeats 5 --concurrent 2 --quiet -o "$P" | grep -A2 "^  bsz"
echo "-- gvc profile memory: the memory plan per tp degree and pipeline position, and what a run uses outside it"
"$GVC" profile memory $M --seq_length 128 --profile_batch_size 4 --max_tp_deg 2 --context_ranks 2 --quiet -o "$P" | grep "^per layer\|^outside"
S="$M --num_nodes 1 --num_gpus_per_node 2 --memory_constraint 2 --seq_length 128 --settle_bsz 16 --quiet
   --time_profiling_path $P --memory_profiling_path $P --allreduce_bandwidth_config_path $P --p2p_bandwidth_config_path $P
   --overlap_coe_path $P --sp_time_path $P"
echo "-- gvc search with those files"
"$GVC" search $S -o "$OUT/plan.json" | grep -v "^search:"
echo "-- gvc compile the plan, mpirun -n 2: 8 steps"
"$GVC" compile examples/demo.gvm --model fortune_gpt --seq 128 --num_gpus_per_node 2 --galvatron_config_path "$OUT/plan.json" \
  -o "$OUT/fortune_gpt_profiled" 2>/dev/null
mpirun -n 2 "$OUT/fortune_gpt_profiled" --data synthetic --iters 8 --quiet --step_json "$OUT/steps.json" 2>&1 | grep "done"
"$GVC" cost $S --strategy "$OUT/plan.json" --measured "$OUT/steps.json" | grep "^predicted"
