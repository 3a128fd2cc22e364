#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - collectives staged through host buffers (what GV_COMM=mpi
# does on device memory, so several ranks can share one GPU): forced on CPU memory with
# GV_COMM_STAGE=1, every collective kind (all-reduce, reduce-scatter, all-gather,
# all-to-all, broadcast, send/recv) gives the same losses as without staging, bit for
# bit; and a program asked for --device cuda without a GPU stops with a clear message.
. "$(dirname "$0")/../e2e_lib.sh"
fx="$src/tests/reference/fixtures/tiny_llama.bin"
args="--init_from $fx --batch_from $fx --iters 4"
export OMP_NUM_THREADS=1 GV_COMM=mpi
case_() { # NAME GLOBAL-BATCH COMPILE-OPTIONS... (4 ranks)
  local name=$1 gb=$2; shift 2
  "$gvc" compile "$src/examples/tiny.gvm" --model tiny_llama --seq 32 --num_gpus_per_node 4 "$@" -o "$name" \
    2>compile.log || { bad "compile $name: $(cat compile.log)"; return; }
  "$mpiexec" -n 4 "./$name" $args --global_train_batch_size "$gb" 2>&1 | losses > "$name.plain"
  GV_COMM_STAGE=1 "$mpiexec" -n 4 "./$name" $args --global_train_batch_size "$gb" 2>&1 | losses > "$name.staged"
  [ -s "$name.plain" ] && cmp -s "$name.plain" "$name.staged" && ok \
    || { bad "$name: staged losses differ"; paste "$name.plain" "$name.staged"; }
}
case_ pp2_tp2_sp_zero2 2 --pp_deg 2 --global_tp_deg 2 --sequence_parallel 1 --default_dp_type zero2 --chunks 2
case_ ulysses2_dp2_zero3 2 --global_tp_deg 2 --use_ulysses 1 --default_dp_type zero3
case_ tp2_vtp2_dp2 2 --global_tp_deg 2 --vocab_tp 2
case_ ltp_2_1_dp2_no_async 8 --tp_sizes_enc 2,1 --micro-batch 2 --chunks 2 --no_async_grad_reduce
GV_LOG=debug GV_COMM_STAGE=1 "$mpiexec" -n 4 ./tp2_vtp2_dp2 $args --global_train_batch_size 2 2>&1 \
  | grep -q "mpi collectives on cpu memory: staged through host buffers" && ok || bad "GV_COMM_STAGE=1 did not stage"
if ! nvidia-smi >/dev/null 2>&1; then
  out2=$("$gvc" compile "$src/examples/tiny.gvm" --model tiny_llama --seq 32 --num_gpus_per_node 2 -o dp2 2>&1 \
         && "$mpiexec" -n 2 ./dp2 $args --device cuda 2>&1); rc2=$?
  [ $rc2 -ne 0 ] && echo "$out2" | grep -q "the cuda backend needs a GPU\|not compiled-in backend 'cuda'" && ok \
    || bad "cuda without a GPU: rc $rc2: $out2"
fi
finish
