#!/usr/bin/env bash
# run_commit.sh GVC SRC MPIEXEC WORK - a checkpoint of a 2-rank run is committed only when
# every rank's part is written: a failing save (its temporary file's path a folder) stops
# the run on both ranks with the reason, leaves DIR/latest at the previous step and no
# index of the failed step, and the run resumes from the previous step. Files of different
# checkpoints mixed in one folder are refused on every rank (the index's step, the
# tensors' CRC-32s), never trained on, never a hang. A rank killed (SIGKILL) while the job saves
# every step leaves a checkpoint both ranks resume from.
source "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
export GV_COMM=mpi
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 --num_gpus_per_node 2 -o dp2 \
  2>compile.log || { echo "compile failed: $(cat compile.log)"; exit 1; }
args="--init_from $fx --batch_from $fx --global_train_batch_size 4 --lr_decay_iters 6 --iters 6"
run() { timeout 60 "$mpiexec" -n 2 ./dp2 $args "$@" 2>&1; }
run > straight.log; losses < straight.log > straight.txt
# saves every step; rank 0 cannot create the files of step 3: rank 1 must not hang, and
# nothing of step 3 is kept
mkdir -p ck/iter_0000003/model.safetensors.tmp
out=$(run --save ck --save_interval 1); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q "rank 0 could not write its part of the checkpoint of step 3 (Is a directory)" \
  && grep -q "^step 2$" ck/latest && [ -f ck/iter_0000002/model.safetensors ] && [ -f ck/iter_0000002/index.json ] \
  && [ ! -e ck/iter_0000003/index.json ] && [ -z "$(find ck -type f -name '*.tmp')" ] && [ -f ck/iter_0000001/index.json ] \
  && ok || bad "failed save on rank 0: rc $rc: $out; $(ls -R ck)"
out=$(run --load ck); rc=$?
losses <<< "$out" > resumed.txt
[ $rc -eq 0 ] && echo "$out" | grep -q "resuming at step 2" && tail -5 straight.txt | cmp -s - resumed.txt && ok \
  || bad "resume after the failed save: rc $rc: $out"
# files of different checkpoints mixed: an index of another step, a model file of another
# step (its CRC-32s differ): refused on every rank, never trained on, never a hang
run --iters 2 --save a > /dev/null && run --iters 3 --save b > /dev/null || bad "saves a and b"
cp -r a mixed && cp b/iter_0000003/index.json mixed/iter_0000002/
out=$(run --load mixed); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q "mixed/iter_0000002/index.json: field 'step' is not 2" \
  && ! echo "$out" | grep -q "step [0-9]/6 |" && ok || bad "mixed index: rc $rc: $out"
cp -r a mixed2 && cp b/iter_0000003/model.safetensors mixed2/iter_0000002/
out=$(run --load mixed2); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q "mixed2/iter_0000002/model.safetensors: tensor '[a-z0-9_.]*' is damaged" \
  && ! echo "$out" | grep -q "step [0-9]/6 |" && ok || bad "mixed model file: rc $rc: $out"
# a rank killed while the job saves every step: DIR/latest names a step both ranks hold,
# and --load resumes from it (whenever the kill fell)
timeout 60 "$mpiexec" -n 2 ./dp2 $args --iters 100000 --save kill --save_interval 1 --quiet > kill.log 2>&1 &
mp=$!
for i in $(seq 200); do [ -f kill/latest ] && break; sleep 0.05; done
sleep 0.3
victim=$(pgrep -P "$(pgrep -P $mp | head -1)" | tail -1)   # a rank: a child of mpirun, itself timeout's child
[ -n "$victim" ] && kill -9 "$victim" || kill "$mp"
wait $mp
step=$(awk '$1 == "step" {print $2}' kill/latest)
out=$(run --load kill --iters 1); rc=$?
[ -n "$step" ] && [ $rc -eq 0 ] && echo "$out" | grep -q "loaded checkpoint kill/iter_0*$step: resuming at step $step" && ok \
  || bad "after a kill: latest step '$step', rc $rc: $out; $(ls -R kill)"
finish
