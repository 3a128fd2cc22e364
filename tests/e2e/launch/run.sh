#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - what a Galvatron launch script meets in a training binary:
# dashed and underscored option names are one option (--mixed-precision, --use-flash-attn,
# --global-train-batch-size); a switch takes =0|=1 and nothing else; a strategy or shape
# flag (--pp_deg, --sequence-parallel, --chunks=8) is refused as a compile-time option with
# the gvc compile line that takes it; a 2-rank binary started as one process says to use
# mpirun.
source "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
export GV_COMM=self
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 16 --micro-batch 2 -o tg 2>compile.log \
  && "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 16 --micro-batch 2 --num_gpus_per_node 2 \
       --pp_deg 2 -o pp2 2>>compile.log || { echo "compile failed: $(cat compile.log)"; exit 1; }
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
# one option, either spelling: the same loss
a=$(./tg --init_from "$fx" --data synthetic --iters 2 --global_train_batch_size 2 --mixed_precision fp32 \
      --lr_warmup_iters 1 2>&1 | losses)
b=$(./tg --init-from "$fx" --data synthetic --iters 2 --global-train-batch-size 2 --mixed-precision fp32 \
      --lr-warmup-iters 1 --use-flash-attn 2>&1 | losses)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "dashed spellings: '$a' vs '$b'"
./tg --data synthetic --iters 1 --global_train_batch_size 2 --quiet=1 --use_flash_attn=0 >/dev/null 2>&1 && ok \
  || bad "--quiet=1 refused"
out=$(./tg --data synthetic --iters 1 --quiet=2 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "error: --quiet is a switch: give it alone, or as --quiet=0 or --quiet=1" && ok \
  || bad "--quiet=2: $out"
# strategy flags: compile-time, with the line that takes them
refused() { # FLAG... then the expected compile line's tail
  local want=$1; shift
  out=$(./tg --data synthetic --iters 1 "$@" 2>&1); rc=$?
  [ $rc -ne 0 ] && echo "$out" | grep -q -- "is a compile-time option: .* pass it to gvc compile, e.g. gvc compile FILE.gvm --model tiny_gpt $want -o BIN" \
    && ! echo "$out" | grep -q "step 0/" && ok || bad "$*: $out"
}
refused "--pp_deg 2" --pp_deg 2
refused "--global_tp_deg 4" --global-tp-deg 4
refused "--sequence_parallel 1" --sequence-parallel
refused "--chunks 8" --chunks=8
refused "--make_vocab_size_divisible_by 128" --make-vocab-size-divisible-by 128
refused "--global_checkpoint 1" --global_checkpoint 1
out=$(./tg --pp_deg 2 2>&1)
echo "$out" | grep -q "^./tg: error: --pp_deg is a compile-time option: the strategy and the model's shape are fixed" \
  && ok || bad "message: $out"
# a 2-rank program started as one process
out=$(./pp2 --data synthetic --iters 1 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "this program runs on 2 ranks but was started as one process: launch it with mpirun -n 2 ./pp2" \
  && ! echo "$out" | grep -q "recompile" && ok || bad "pp2 without mpirun: $out"
finish
