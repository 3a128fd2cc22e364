#!/usr/bin/env bash
# run_commit.sh GVC SRC MPIEXEC WORK - a checkpoint of a 2-rank run is committed only when
# both ranks' files are written: rank 1's save failing (its temporary file's path a folder)
# stops the run with rank 1's reason, leaves DIR/latest at the previous step and no file
# of the failed step, and the run resumes from the previous step. A folder whose rank files
# hold different steps (a save interrupted, files mixed) is refused on every rank with the
# steps named, never trained on, never a hang. A rank killed (SIGKILL) while the job saves
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
# saves every step; rank 1 cannot write its part of step 3
mkdir -p ck/step00000003/rank00001.gvck.tmp
out=$(run --save ck --save_interval 1); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q "rank 1 could not write its part of the checkpoint of step 3 (Is a directory)" \
  && grep -q "^step 2$" ck/latest && [ -f ck/step00000002/rank00000.gvck ] && [ -f ck/step00000002/rank00001.gvck ] \
  && [ ! -e ck/step00000003/rank00000.gvck ] && [ -z "$(find ck -type f -name '*.tmp')" ] && [ ! -e ck/step00000001 ] \
  && ok || bad "failed save on rank 1: rc $rc: $out; $(ls -R ck)"
out=$(run --load ck); rc=$?
losses <<< "$out" > resumed.txt
[ $rc -eq 0 ] && echo "$out" | grep -q "resuming at step 2" && tail -5 straight.txt | cmp -s - resumed.txt && ok \
  || bad "resume after the failed save: rc $rc: $out"
# rank files of different steps, without an index (older layout) and with one
run --iters 2 --save a > /dev/null && run --iters 3 --save b > /dev/null || bad "saves a and b"
mkdir -p mixed && cp a/step00000002/rank00000.gvck b/step00000003/rank00001.gvck mixed/
out=$(run --load mixed); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q "mixed: the rank files hold different steps (rank 0: step 2, rank 1: step 3)" \
  && ! echo "$out" | grep -q "step [0-9]/6 |" && ok || bad "mixed steps: rc $rc: $out"
cp -r b indexed && cp a/step00000002/rank00001.gvck indexed/step00000003/
out=$(run --load indexed); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q "the rank files hold different steps (rank 0: step 3, rank 1: step 2; the index names step 3)" \
  && ok || bad "a rank file of another step: rc $rc: $out"
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
[ -n "$step" ] && [ $rc -eq 0 ] && echo "$out" | grep -q "loaded checkpoint kill/step0*$step: resuming at step $step" && ok \
  || bad "after a kill: latest step '$step', rc $rc: $out; $(ls -R kill)"
finish
