#!/usr/bin/env bash
# run.sh GVC SRC WORK - checkpoints: 10 steps straight give the same losses as 5 steps,
# --save, then --load and 5 more; a truncated or foreign checkpoint is refused with the
# file named, and nothing is left half-written. Nothing lost, nothing silently wrong: a
# flipped byte is found by its tensor's CRC-32; a non-finite loss stops the run before it
# saves (or --skip_nonfinite_steps skips the step); an unwritable --save folder is refused
# at start-up; a failed save keeps the previous checkpoint; another --seed or global batch
# is refused unless --override_checkpoint_args; token ids outside the vocabulary are found
# when the data is opened; --iters 0 --save saves the initial state without gradient memory.
# Also the training binary's precision options.
set -u
gvc=$(realpath "$1"); src=$(realpath "$2"); work=$3; pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
mkdir -p "$work" && cd "$work" && rm -rf ck ck0 ckr empty old_etp straight.txt resumed.txt
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 -o tg 2>/dev/null || { echo "compile failed"; exit 1; }
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
args="--init_from $fx --batch_from $fx --global_train_batch_size 2 --lr_decay_iters 10 --warmup 3"
export GV_COMM=self OMP_NUM_THREADS=1
./tg $args --iters 10 2>&1 | grep -o "step [0-9]*/10 | loss [0-9.]*" | tail -5 > straight.txt
./tg $args --iters 5 --save ck >/dev/null 2>&1 && grep -q "^step 5$" ck/latest && [ -f ck/iter_0000005/model.safetensors ] \
  && [ -f ck/iter_0000005/optimizer.safetensors ] && grep -q '"consumed_samples":\s*10' ck/iter_0000005/index.json \
  && [ -z "$(find ck -name '*.tmp')" ] && ok || bad "save: $(ls -R ck)"
./tg $args --iters 10 --load ck 2>&1 | grep -o "step [0-9]*/10 | loss [0-9.]*" > resumed.txt
[ -s resumed.txt ] && cmp -s straight.txt resumed.txt && ok || { bad "resumed losses differ"; diff straight.txt resumed.txt; }
# without --init_from: --load skips the random init (the log says so) and still resumes bit for
# bit; a folder with no checkpoint is refused (the init is not skipped on a guess)
rargs="--batch_from $fx --global_train_batch_size 2 --lr_decay_iters 10 --warmup 3 --seed 7"
rm -rf ckr && ./tg $rargs --iters 10 2>&1 | grep -o "step [0-9]*/10 | loss [0-9.]*" | tail -5 > straight_r.txt
./tg $rargs --iters 5 --save ckr >/dev/null 2>&1
outr=$(./tg $rargs --iters 10 --load ckr 2>&1)
echo "$outr" | grep -q "random init skipped: the checkpoint in ckr sets every parameter" \
  && echo "$outr" | grep -o "step [0-9]*/10 | loss [0-9.]*" | cmp -s straight_r.txt - && ok \
  || bad "--load without --init_from: init not skipped or losses differ: $outr"
mkdir -p empty && out=$(./tg $rargs --iters 10 --load empty 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "empty: no checkpoint here" && ! echo "$out" | grep -q "random init skipped" && ok \
  || bad "--load of an empty folder: rc $rc: $out"
# the writer's strategy record: tp_of_ep written; a checkpoint from before it was recorded
# loads (1 then); a record of the wrong type is refused naming the file and the field
grep -q '"tp_of_ep":\s*1' ckr/iter_0000005/index.json && echo "$outr" | grep -q "saved by world 1 pp 1 tp 1 dp 1 tp_of_ep 1 zero 0)" \
  && ok || bad "strategy record: $(grep -A8 strategy ckr/iter_0000005/index.json)"
rm -rf old_etp && cp -r ckr old_etp && sed -i '/"tp_of_ep"/d' old_etp/iter_0000005/index.json
out=$(./tg $rargs --iters 10 --load old_etp 2>&1)
echo "$out" | grep -q "saved by world 1 pp 1 tp 1 dp 1 zero 0)" && echo "$out" | grep -o "step [0-9]*/10 | loss [0-9.]*" \
  | cmp -s straight_r.txt - && ok || bad "a checkpoint without strategy.tp_of_ep: $out"
sed -i 's/"tp":\s*1,/"tp": "1",/' old_etp/iter_0000005/index.json
out=$(./tg $rargs --iters 10 --load old_etp 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "old_etp/iter_0000005/index.json: field 'strategy.tp' is not a valid degree" && ok \
  || bad "a bad strategy record: rc $rc: $out"
# --iters 0: no gradient arena; --save writes the initial state as step 0, and training from it
# gives the losses of a fresh run
out=$(./tg $args --iters 0 --save ck0 2>&1)
echo "$out" | grep -q "grads 0, optimizer" && echo "$out" | grep -q "saved checkpoint ck0/iter_0000000 (step 0" \
  && ./tg $args --iters 10 --load ck0 2>&1 | grep -o "step [0-9]*/10 | loss [0-9.]*" | tail -5 > from0.txt \
  && cmp -s straight.txt from0.txt && ok || bad "--iters 0 --save: $out"
rm -rf bad && cp -r ck bad && truncate -s 5000 bad/iter_0000005/model.safetensors
out=$(./tg $args --iters 10 --load bad 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "bad/iter_0000005/model.safetensors: tensor '[a-z0-9_.]*': field 'data_offsets' .* runs past the end of the data" \
  && ok || bad "truncated checkpoint: rc $rc: $out"
# a flipped byte in the tensor data: the tensor's CRC-32 (index.json) names file and tensor
rm -rf flip && cp -r ck flip && f=flip/iter_0000005/optimizer.safetensors
printf '\x5a' | dd of=$f bs=1 seek=$(($(stat -c %s $f) / 2)) conv=notrunc status=none
out=$(./tg $args --iters 10 --load flip 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "flip/iter_0000005/optimizer.safetensors: tensor '[a-z0-9_./]*' is damaged: its CRC-32" && ok \
  || bad "flipped byte: rc $rc: $out"
# ... also in a weight, whose CRC-32 comes from the bytes read for the weights (no second read)
./tg $args --iters 5 --load ck 2>&1 | grep -q "resuming at step 5 (.*CRC-32s of \([0-9]*\) of \1 tensors from the bytes read" \
  && ok || bad "a single-rank load does not take every CRC-32 from the bytes read"
rm -rf flipw && cp -r ck flipw && f=flipw/iter_0000005/model.safetensors
printf '\x5a' | dd of=$f bs=1 seek=$(($(stat -c %s $f) - 3)) conv=notrunc status=none
out=$(./tg $args --iters 10 --load flipw 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "flipw/iter_0000005/model.safetensors: tensor '[a-z0-9_.]*' is damaged: its CRC-32" \
  && ! echo "$out" | grep -q "step [0-9]*/10 |" && ok || bad "flipped byte in a weight: rc $rc: $out"
# a checkpoint of the older per-rank format is refused with the reason (never misread)
rm -rf old && mkdir -p old/step00000005 && printf 'gvc-checkpoint 1\nstep 5\nworld 1\nfolder step00000005\n' > old/latest
out=$(./tg $args --iters 10 --load old 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "old/latest: a checkpoint of the older format 1" && ok || bad "format 1: rc $rc: $out"
out=$(./tg $args --iters 10 --save old 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "old/latest: a checkpoint of the older format 1" && ! echo "$out" | grep -q "step 0/" \
  && ok || bad "--save into a format-1 folder: rc $rc: $out"
# --exit_interval: saves and stops at the first multiple; --keep_last 2 keeps two folders
rm -rf ex && ./tg $args --iters 10 --save ex --save_interval 1 --keep_last 2 --exit_interval 4 > ex.log 2>&1
[ "$(ls -d ex/iter_*)" = "$(printf 'ex/iter_0000003\nex/iter_0000004')" ] && grep -q "^step 4$" ex/latest \
  && grep -q "exiting after step 4 (--exit_interval 4)" ex.log && ! grep -q "step 4/10" ex.log && ok \
  || bad "--exit_interval / --keep_last: $(ls ex) $(tail -2 ex.log)"
./tg $args --iters 10 --load ex 2>&1 | grep -o "step [0-9]*/10 | loss [0-9.]*" | tail -5 | cmp -s - straight.txt && ok \
  || bad "resume after --exit_interval"
# a non-finite loss stops the run before its optimizer step and before it saves: the
# checkpoint it loaded stays as it was; --skip_nonfinite_steps skips such steps instead
rm -rf nan && cp -r ck nan && sum0=$(cat nan/latest nan/iter*/* | md5sum)
out=$(./tg $args --iters 10 --lr 1e30 --clip_grad 0 --load nan --save nan 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "step [0-9]*: loss .*: not finite; stopped before its optimizer step" \
  && [ "$(cat nan/latest nan/iter*/* | md5sum)" = "$sum0" ] && ok || bad "non-finite loss: rc $rc: $out; $(ls -R nan)"
out=$(./tg $args --iters 10 --lr 1e30 --clip_grad 0 --skip_nonfinite_steps 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "not finite; step skipped" && ok || bad "--skip_nonfinite_steps: rc $rc: $out"
# an unwritable --save folder is refused at start-up, with the OS's reason
touch afile
out=$(./tg $args --iters 10 --save afile/ck 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "afile/ck: the checkpoint folder is not writable by rank 0 (Not a directory)" \
  && ! echo "$out" | grep -q "step 0/" && ok || bad "unwritable --save: rc $rc: $out"
# a save that fails (its temporary file's path is a folder) leaves the previous checkpoint
rm -rf keep && cp -r ck keep && mkdir -p keep/iter_0000010/model.safetensors.tmp
out=$(./tg $args --iters 10 --load keep --save keep 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "rank 0 could not write its part of the checkpoint of step 10 (Is a directory)" \
  && grep -q "^step 5$" keep/latest && cmp -s keep/iter_0000005/model.safetensors ck/iter_0000005/model.safetensors \
  && [ -z "$(find keep -type f -name '*.tmp')" ] && ok || bad "failed save: rc $rc: $out; $(ls -R keep)"
./tg $args --iters 10 --load keep 2>&1 | grep -o "step [0-9]*/10 | loss [0-9.]*" | cmp -s - straight.txt && ok \
  || bad "resume after a failed save"
# another seed or global batch: refused with what differs, unless overridden
out=$(./tg $args --iters 10 --load ck --seed 7 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "saved by a run with --seed 1234, this run has --seed 7" && ok || bad "--seed: $out"
out=$(./tg ${args/batch_size 2/batch_size 4} --iters 10 --load ck 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "saved by a run with --global_train_batch_size 2, this run has 4" && ok \
  || bad "global batch: $out"
out=$(./tg $args --iters 6 --load ck --seed 7 --override_checkpoint_args 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "resuming anyway (--override_checkpoint_args)" && ok || bad "override: $out"
# token ids outside the model's vocabulary (256 bytes + the end-of-document id): found when
# the data is opened, with the file named
printf 'one fortune\n%%\nanother fortune, a little longer than the first\n%%\n' > fort.txt
for i in 1 2 3 4 5 6; do cat fort.txt; done > fort6.txt
"$gvc" data fort6.txt -o eod --append-eod >/dev/null 2>&1 || bad "gvc data"
out=$(./tg --data eod --iters 2 --global_train_batch_size 2 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "eod.bin: token id 256 (sequence [0-9]*) is outside the model's vocabulary of 256 ids" \
  && ! echo "$out" | grep -q "step 0/" && ok || bad "token ids outside the vocabulary: rc $rc: $out"
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
