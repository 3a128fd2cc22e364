#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - a 2-rank program asked for --device cuda under GV_COMM=mpi
# (host buffers) stops before touching a GPU, naming GV_COMM=nccl; the same program on
# --device cpu trains.
set -u
gvc=$(realpath "$1"); src=$(realpath "$2"); mpiexec=$3; work=$4; pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
mkdir -p "$work" && cd "$work"
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --num_gpus_per_node 2 -o dp2 2>/dev/null \
  || { echo "compile failed"; exit 1; }
out=$(GV_COMM=mpi "$mpiexec" -n 2 ./dp2 --init_from "$fx" --batch_from "$fx" --iters 1 --device cuda 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "with 2 ranks needs device collectives: run with GV_COMM=nccl" && ok \
  || bad "cuda under mpi: rc $rc: $out"
out=$(GV_COMM=mpi "$mpiexec" -n 2 ./dp2 --init_from "$fx" --batch_from "$fx" --iters 2 --device cpu 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "step 1/2 | loss" && ok || bad "cpu under mpi: rc $rc: $out"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
