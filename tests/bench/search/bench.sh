#!/usr/bin/env bash
# bench.sh [GVC] [THREADS] - wall time of `gvc search` (not a ctest test; no timing is
# asserted anywhere). Cases and goals from the search issue:
#   llama2-7b  1x8   36 GB, Galvatron profiles (bf16, seq 2048, gbsz 64)   goal 0.5 s
#   llama2-70b 8x8   80 GB, analytic model (seq 4096, gbsz 64)             goal 2 s
#   llama2-70b 128x8 80 GB, analytic model (seq 4096, gbsz 512..2048)      goal 10 s
# Each case runs 3 times; the best search_time_s (from the "gvc" object) is printed,
# plus the 7b case with Galvatron's dense DP table for comparison.
set -eu
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../../.." && pwd)
gvc=${1:-$root/build/gvc}; threads=${2:-2}
data=$root/tests/data/galvatron; L=$data/llama2-7b; H=$data/hardware
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
P="--time_profiling_path $L/computation_profiling_bf16_llama2-7b_all.json --memory_profiling_path $L/memory_profiling_bf16_llama2-7b_all.json
   --allreduce_bandwidth_config_path $H/allreduce_bandwidth_1nodes_8gpus_per_node.json --p2p_bandwidth_config_path $H/p2p_bandwidth_1nodes_8gpus_per_node.json
   --overlap_coe_path $H/overlap_coefficient.json --sp_time_path $H/sp_time_1nodes_8gpus_per_node.json"
run() { # name goal args...
  local name=$1 goal=$2 best=; shift 2
  for i in 1 2 3; do
    "$gvc" search "$@" --threads "$threads" --quiet -o "$tmp/o.json" > "$tmp/o.txt"
    t=$(sed -n 's/.*"search_time_s": \([0-9.]*\).*/\1/p' "$tmp/o.json")
    best=$(awk -v a="${best:-1e9}" -v b="$t" 'BEGIN{print (b < a) ? b : a}')
  done
  printf "%-34s %8.3f s  (goal %s s)  %s\n" "$name" "$best" "$goal" "$(grep 'samples/s' "$tmp/o.txt" | head -1)"
}
echo "gvc search benchmark, $threads threads, $(nproc) CPUs"
run "llama2-7b 1x8 36GB (profiled)" 0.5 "$root/models/llama.gvm" --model llama2_7b --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 36 --seq_length 2048 $P
run "llama2-7b 1x8 36GB dense DP" - "$root/models/llama.gvm" --model llama2_7b --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 36 --seq_length 2048 $P --dense_dp
run "llama2-70b 8x8 80GB (analytic)" 2 "$root/models/llama.gvm" --model llama2_70b --num_nodes 8 --num_gpus_per_node 8 --memory_constraint 80 --seq_length 4096
run "llama2-70b 128x8 80GB (analytic)" 10 "$root/models/llama.gvm" --model llama2_70b --num_nodes 128 --num_gpus_per_node 8 --memory_constraint 80 --seq_length 4096 --min_bsz 512 --max_bsz 2048 --bsz_scale 512
