#!/usr/bin/env bash
# run.sh GVC SRC WORK - checkpoints: 10 steps straight give the same losses as 5 steps,
# --save, then --load and 5 more; a truncated or foreign checkpoint is refused with the
# file named, and nothing is left half-written. Also the training binary's precision options.
set -u
gvc=$(realpath "$1"); src=$(realpath "$2"); work=$3; pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
mkdir -p "$work" && cd "$work" && rm -rf ck straight.txt resumed.txt
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 -o tg 2>/dev/null || { echo "compile failed"; exit 1; }
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
args="--init_from $fx --batch_from $fx --global_train_batch_size 2 --lr_decay_iters 10 --warmup 3"
export GV_COMM=self OMP_NUM_THREADS=1
./tg $args --iters 10 2>&1 | grep -o "step [0-9]*/10 | loss [0-9.]*" | tail -5 > straight.txt
./tg $args --iters 5 --save ck >/dev/null 2>&1 && [ -f ck/rank00000.gvck ] && [ ! -e ck/rank00000.gvck.tmp ] && ok || bad "save"
./tg $args --iters 10 --load ck 2>&1 | grep -o "step [0-9]*/10 | loss [0-9.]*" > resumed.txt
[ -s resumed.txt ] && cmp -s straight.txt resumed.txt && ok || { bad "resumed losses differ"; diff straight.txt resumed.txt; }
head -c 1000 ck/rank00000.gvck > ck2.gvck && mkdir -p bad && mv ck2.gvck bad/rank00000.gvck
out=$(./tg $args --iters 10 --load bad 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "bad/rank00000.gvck: truncated" && ok || bad "truncated checkpoint: rc $rc: $out"
# precision options: the cpu backend computes fp32 whatever --matmul_precision asks (same
# losses, and it says so); unknown values and bf16 storage are refused with the reason
./tg $args --iters 10 --matmul_precision medium > medium.log 2>&1
grep -o "step [0-9]*/10 | loss [0-9.]*" medium.log | tail -5 | cmp -s - straight.txt \
  && grep -q "the cpu backend computes in fp32" medium.log && ok || bad "--matmul_precision medium on cpu: $(tail -3 medium.log)"
out=$(./tg $args --iters 1 --matmul_precision fast 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "'fast' is not highest, high or medium" && ok || bad "bad --matmul_precision: $out"
# an fp32 program refuses --mixed_precision bf16: its plan was made for fp32
out=$(./tg $args --iters 1 --mixed_precision bf16 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "this program was compiled for fp32" && ok || bad "--mixed_precision bf16: $out"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
