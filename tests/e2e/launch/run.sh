#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - what a Galvatron launch script meets in a training binary:
# dashed and underscored option names are one option (--mixed-precision, --use-flash-attn,
# --global-train-batch-size); a switch takes =0|=1 and nothing else; a strategy or shape
# flag (--pp_deg, --sequence-parallel, --chunks=8) is refused as a compile-time option with
# the gvc compile line that takes it; a 2-rank binary started as one process says to use
# mpirun; vocabulary padding.
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
# vocabulary padding (--make-vocab-size-divisible-by N, Megatron's): 257 tokens padded to 384
# on one rank give the unpadded program's losses exactly (the padded logits are masked) and
# its greedy ids; --vocab_tp 2, refused for 257 tokens, works padded to 258, within the
# strategy bound; its checkpoint keeps 257 rows, loads into the unpadded program and
# exports to Hugging Face with vocab_size 257
v=$src/tests/e2e/launch/v257.gvm
"$gvc" compile "$v" --model v257 --seq 16 --micro-batch 2 -o v1 2>>compile.log || bad "v257"
out=$("$gvc" compile "$v" --model v257 --seq 16 --micro-batch 2 --make-vocab-size-divisible-by 128 -o vp 2>&1)
echo "$out" | grep -q "vocabulary 257 padded to 384 (a multiple of 128 x tp 1); the loss masks the padding" && ok \
  || bad "padding message: $out"
out=$("$gvc" compile "$v" --model v257 --seq 16 --micro-batch 2 --num_gpus_per_node 2 --global_tp_deg 2 --vocab_tp 2 \
      -o no 2>&1) && bad "vocab_tp 2 of 257 accepted" || ok
"$gvc" compile "$v" --model v257 --seq 16 --micro-batch 2 --num_gpus_per_node 2 --global_tp_deg 2 --vocab_tp 2 \
  --make_vocab_size_divisible_by 1 -o vt 2>>compile.log || bad "vocab_tp 2 padded: $(tail -2 compile.log)"
train() { "$@" --data synthetic --iters 4 --global_train_batch_size 4 2>&1; }
train ./v1 --save ck1 | losses > l1
train ./vp | losses > lp
[ -s l1 ] && cmp -s l1 lp && ok || bad "padded losses $(cat lp | xargs) vs $(cat l1 | xargs)"
a=$(./v1 --data synthetic --iters 0 --sample 10 --sample_format ids --prompt 3,250 2>&1 | grep "^sample_ids")
b=$(./vp --data synthetic --iters 0 --sample 10 --sample_format ids --prompt 3,250 2>&1 | grep "^sample_ids")
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "padded greedy ids '$b' vs '$a'"
GV_COMM=mpi train timeout 60 "$mpiexec" -n 2 ./vt --save ckt </dev/null | losses > lt
close l1 lt 5 && ok || bad "vocab_tp 2 padded losses $(cat lt | xargs) vs $(cat l1 | xargs)"
head -c 8192 ckt/iter_0000004/model.safetensors | grep -aq '"embedding.weight":{"shape":\[257,32\]' && ok \
  || bad "checkpoint shape: $(head -c 300 ckt/iter_0000004/model.safetensors)"
resume() { "$1" --data synthetic --iters 6 --global_train_batch_size 4 --load "$2" 2>&1 | losses > "$3"; }
resume ./v1 ckt lr
resume ./vp ck1 lr2
close lr lr2 3 && ok || bad "padded checkpoint into the unpadded program: $(cat lr | xargs) / $(cat lr2 | xargs)"
"$gvc" convert "$v" --model v257 --load ckt --to-hf hf >/dev/null 2>&1 && grep -q '"vocab_size":.257' hf/config.json \
  && ok || bad "export of the padded checkpoint: $(cat hf/config.json)"
finish
