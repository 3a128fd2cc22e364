#!/usr/bin/env bash
# run.sh [BUILD] - the context-parallelism benchmark on CPU ranks (on demand; prints a table).
# 1. A LLaMA-shaped model (cp.gvm) on a 4096-token sequence, trained on synthetic tokens with
#    cp = 1 (one rank), 2 and 4 (mpirun, one thread per rank): each rank's planned memory
#    (the plan's arenas) and the step time (median of the timed steps, --step_json).
# 2. Ring attention alone (bench_ring): how much of its transfer the compute hides.
# GV_BENCH_SEQ and GV_BENCH_ITERS change the sequence and the steps (the first is not timed).
# On a machine with fewer cores than ranks the ranks share cores: the step time then shows
# the oversubscription, not the split; the memory column does not depend on it.
set -u
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../../.." && pwd)
B=$(realpath "${1:-$root/build}"); gvc=$B/gvc; seq=${GV_BENCH_SEQ:-4096}; iters=${GV_BENCH_ITERS:-4}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader
echo "== context parallelism: cp_llama (hidden 128, 2 layers, 4 heads), seq $seq, micro-batch 1, $(getconf _NPROCESSORS_ONLN) cores"
printf "%-4s %-6s %14s %14s %12s %12s\n" cp ranks "MiB per rank" "vs cp=1" "step ms" "tokens/s"
for cp in 1 2 4; do
  if ! "$gvc" compile "$here/cp.gvm" --model cp_llama --seq "$seq" --num_gpus_per_node "$cp" --global_cp_deg "$cp" \
       -o "$tmp/cp$cp" > "$tmp/compile$cp.txt" 2>&1; then
    echo "cp $cp: compile failed: $(tail -1 "$tmp/compile$cp.txt")"; continue
  fi
  launch=(); [ "$cp" -gt 1 ] && launch=(mpirun -n "$cp")
  if ! "${launch[@]}" "$tmp/cp$cp" --data synthetic --iters "$iters" --log_interval 100 --step_json "$tmp/s$cp.json" \
       > "$tmp/run$cp.txt" 2>&1; then
    echo "cp $cp: run failed: $(tail -1 "$tmp/run$cp.txt")"; continue
  fi
  python3 - "$tmp/s$cp.json" "$cp" "$seq" "$tmp/base" <<'PY'
import json, os, statistics, sys
d = json.load(open(sys.argv[1]))
cp, seq, base_file = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
steps = d["step_ms"][1:] or d["step_ms"]
mib, ms = max(r["arena_mb"] for r in d["ranks"]), statistics.median(steps)
if not os.path.exists(base_file):
    open(base_file, "w").write(str(mib))
base = float(open(base_file).read())
print("%-4d %-6d %14.1f %13.2fx %12.0f %12.0f" % (cp, cp, mib, mib / base, ms, seq * 1000.0 / ms))
PY
done
echo
echo "== ring attention alone (T $seq, 8 heads of 64): transfer hidden behind compute"
for cp in 2 4; do
  mpirun -n "$cp" "$B/tests/bench/cp/bench_ring" "$seq" 8 64 "$iters"
done
