#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - gvc compile --time_ops: the program prints where a step's time
# goes, op by op (every entry point the step calls, with calls per step, ms per step and its
# share, and the time outside the ops), through both emitters, on one rank and on 2 ranks
# (pp 2); the marks change no loss, bit for bit.
. "$(dirname "$0")/../e2e_lib.sh"
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
args="--init_from $fx --batch_from $fx --iters 4 --global_train_batch_size 4"
for via in llvm c; do
  "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 --via $via -o plain_$via 2>/dev/null \
    && "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 --via $via --time_ops \
       -o timed_$via 2>/dev/null && ok || bad "compile ($via)"
  GV_COMM=self ./plain_$via $args 2>&1 | losses > plain_$via.txt
  GV_COMM=self ./timed_$via $args > timed_$via.log 2>&1 && ok || bad "timed run ($via): $(tail -3 timed_$via.log)"
  losses < timed_$via.log > timed_$via.txt
  [ -s plain_$via.txt ] && cmp -s plain_$via.txt timed_$via.txt && ok || { bad "losses changed ($via)"; paste plain_$via.txt timed_$via.txt; }
  grep -q "time per op over 3 steps after the first" timed_$via.log && ok || bad "no table ($via)"
  for op in linear_fwd linear_bwd attention_fwd attention_bwd xent_fwd add_layernorm_fwd "(outside the ops)" "step "; do
    grep -q "gvrt:   $op" timed_$via.log && ok || bad "table lacks $op ($via)"
  done
  # tiny_gpt's attention q, k, v, o and the MLP's down (its up is fused with the GELU) x 2 blocks,
  # + the tied head: 11 linear_fwd calls a micro-batch, 2 micro-batches a step
  grep -q "gvrt:   linear_fwd  *22.0 " timed_$via.log && ok || bad "linear_fwd calls per step ($via): $(grep linear_fwd timed_$via.log)"
  ! grep -q "time per op" plain_$via.txt && ! GV_COMM=self ./plain_$via $args 2>&1 | grep -q "time per op" && ok \
    || bad "a program without --time_ops prints a table"
done
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 --num_gpus_per_node 2 --pp_deg 2 \
  --chunks 2 --time_ops -o pp2 2>/dev/null || bad "compile pp2"
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 --num_gpus_per_node 2 --pp_deg 2 \
  --chunks 2 -o pp2_plain 2>/dev/null || bad "compile pp2 plain"
"$mpiexec" -n 2 ./pp2 $args > pp2.log 2>&1 && ok || bad "pp2 run: $(tail -3 pp2.log)"
"$mpiexec" -n 2 ./pp2_plain $args 2>&1 | losses > pp2_plain.txt
losses < pp2.log > pp2_timed.txt
cmp -s pp2_plain.txt pp2_timed.txt && ok || bad "pp2 losses changed"
grep -q "rank 0/2.*gvrt:   embedding_fwd" pp2.log && grep -q "rank 1/2.*gvrt:   xent_fwd" pp2.log && ok \
  || bad "each stage's table: $(grep 'gvrt:   ' pp2.log | head -4)"
finish
