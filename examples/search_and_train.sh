#!/usr/bin/env bash
# search_and_train.sh [BUILD] - profile-free strategy search with the analytic cost model
# for 4 CPU ranks, then compile the Galvatron config it wrote and train with mpirun -n 4 on
# the fortunes corpus (scripts/make-corpus). Shows the whole user flow of gvc:
#   gvc search -> galvatron_config_*.json -> gvc compile -> mpirun.
set -euo pipefail
B=${1:-build}
cd "$(dirname "$0")/.."
GVC="$B/gvc"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
scripts/make-corpus "$B" >/dev/null
OUT="$B/search"
mkdir -p "$OUT"
echo "-- gvc search: fortune_gpt on 1 node x 4 CPU ranks (analytic, --device cpu), 2 GB each, seq 128, global batch 16"
"$GVC" search examples/demo.gvm --model fortune_gpt --num_nodes 1 --num_gpus_per_node 4 --memory_constraint 2 \
  --seq_length 128 --min_bsz 16 --max_bsz 16 --pytorch_context_mem 0 --default_dp_type zero2 \
  --device cpu --fine_grained_mode 0 --quiet -o "$OUT/galvatron_config_fortune_gpt_4ranks.json" --svg "$OUT/plan.svg"
echo "-- the picture of the searched plan (layers by stage, memory, pipeline timeline): $OUT/plan.svg"
echo "-- gvc compile with the searched strategy"
"$GVC" compile examples/demo.gvm --model fortune_gpt --seq 128 --num_gpus_per_node 4 \
  --galvatron_config_path "$OUT/galvatron_config_fortune_gpt_4ranks.json" -o "$OUT/fortune_gpt_searched"
echo "-- mpirun -n 4: 30 steps"
OMP_NUM_THREADS=1 mpirun -n 4 "$OUT/fortune_gpt_searched" --data "$B/data/fortunes" --iters 30 --log_interval 10 \
  --lr 3e-3 --warmup 5
