#!/usr/bin/env bash
# run.sh GVC SRC - WORK: compile examples/tiny.gvm by both routes and run each program for a
# few steps with evaluation, a skipped non-finite step and sampling, so the sanitizers see
# the whole training path of a compiled program (no MPI: one rank).
. "$(dirname "$0")/../e2e_lib.sh"
for via in c llvm; do
  if [ "$via" = llvm ] && ! "$gvc" compile --help 2>&1 | grep -q "via.*llvm"; then continue; fi
  "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --via $via -o tiny_$via > c_$via.out 2>&1 \
    && ok || { bad "compile --via $via"; cat c_$via.out; continue; }
  ./tiny_$via --data synthetic --iters 4 --eval_interval 2 --eval_iters 1 --sample 6 --temperature 0.8 --top_k 5 \
    > r_$via.out 2>&1 && grep -q "^sample> " r_$via.out && ok || { bad "run tiny_$via"; tail -20 r_$via.out; }
  # a NaN learning rate skipped step by step: the kernels see NaN (no undefined behaviour)
  ./tiny_$via --data synthetic --iters 2 --lr 1e38 --skip_nonfinite_steps > n_$via.out 2>&1 \
    && ok || { bad "non-finite steps skipped, tiny_$via"; tail -20 n_$via.out; }
done
finish
