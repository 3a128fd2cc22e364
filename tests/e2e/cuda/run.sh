#!/usr/bin/env bash
# run.sh GVC SRC WORK - the tiny GPT from the reference fixture (--init_from/--batch_from),
# 10 steps on --device cpu and on --device cuda: every logged loss agrees to 1e-4
# relative (fp32 on both, different summation orders). On cuda also: --dump writes the
# same records (same file size), --save then --load resumes with the straight run's
# losses, --sample decodes text, and single-rank ZeRO-2 / ZeRO-3 programs (groups of one)
# match their cpu runs. Exits 77 (skipped) when no GPU can be used.
set -u
gvc=$(realpath "$1"); src=$(realpath "$2"); work=$3; pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
mkdir -p "$work" && cd "$work" && rm -rf ck ./*.txt ./*.bin ./*.log
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 -o tg 2>compile.log \
  || { echo "compile failed: $(cat compile.log)"; exit 1; }
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
args="--init_from $fx --batch_from $fx --global_train_batch_size 2 --iters 10 --warmup 3 --lr_decay_iters 10"
export GV_COMM=self
losses() { grep -o "step [0-9]*/10 | loss [0-9.e+-]*" "$1" | awk '{print $2, $5}'; }
# close A B TOL: same steps, |a - b| <= TOL * |a| on every line
close() { paste -d' ' "$1" "$2" | awk -v tol="$3" '{d = $2 - $4; if (d < 0) d = -d; a = $2 < 0 ? -$2 : $2;
  if ($1 != $3 || d > tol * a) bad++} END {exit bad > 0 || NR == 0}'; }

./tg $args --device cuda --log_interval 1 --dump cuda.bin > cuda.log 2>&1; rc=$?
if [ $rc -ne 0 ]; then
  if grep -q "the cuda backend needs a GPU" cuda.log; then
    echo "skipping: $(grep -m1 -o 'needs a GPU.*' cuda.log || tail -1 cuda.log)"
    exit 77
  fi
  echo "FAIL: --device cuda exited $rc:"; tail -20 cuda.log; exit 1
fi
./tg $args --device cpu --log_interval 1 --dump cpu.bin > cpu.log 2>&1 || bad "--device cpu: $(tail -5 cpu.log)"
losses cpu.log > cpu.txt; losses cuda.log > cuda.txt
[ "$(wc -l < cpu.txt)" -eq 10 ] && [ "$(wc -l < cuda.txt)" -eq 10 ] && ok || bad "10 losses each: $(wc -l < cpu.txt) / $(wc -l < cuda.txt)"
close cpu.txt cuda.txt 1e-4 && ok || { bad "cpu and cuda losses differ by more than 1e-4 relative"; paste cpu.txt cuda.txt; }
[ -s cuda.bin ] && [ "$(stat -c %s cuda.bin)" -eq "$(stat -c %s cpu.bin)" ] && ok || bad "--dump on cuda: not the records of cpu"
# checkpoint on the device: 5 steps, --save, --load, 5 more = the straight run
./tg $args --device cuda --log_interval 1 --iters 5 --save ck > save.log 2>&1 && [ -f ck/iter_0000005/model.safetensors ] && ok \
  || bad "--save on cuda: $(tail -5 save.log)"
./tg $args --device cuda --log_interval 1 --load ck > load.log 2>&1 || bad "--load on cuda: $(tail -5 load.log)"
losses load.log > resumed.txt; tail -5 cuda.txt > straight.txt
[ "$(wc -l < resumed.txt)" -eq 5 ] && close straight.txt resumed.txt 1e-5 && ok \
  || { bad "resumed cuda losses differ"; paste straight.txt resumed.txt; }
# ZeRO-2 and ZeRO-3 programs on one rank: groups of one copy through the kernel backend
for z in zero2 zero3; do
  "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 --default_dp_type $z -o tg_$z \
    2>>compile.log || { bad "compile $z"; continue; }
  ./tg_$z $args --device cpu --log_interval 1 > ${z}_cpu.log 2>&1; losses ${z}_cpu.log > ${z}_cpu.txt
  ./tg_$z $args --device cuda --log_interval 1 > ${z}_cuda.log 2>&1; losses ${z}_cuda.log > ${z}_cuda.txt
  [ "$(wc -l < ${z}_cuda.txt)" -eq 10 ] && close ${z}_cpu.txt ${z}_cuda.txt 1e-4 && ok \
    || { bad "$z: cpu and cuda losses differ"; paste ${z}_cpu.txt ${z}_cuda.txt; tail -3 ${z}_cuda.log; }
done
# greedy sampling reads logits back from the device
./tg $args --device cuda --iters 2 --sample 8 > sample.log 2>&1 && grep -q "^sample> " sample.log && ok \
  || bad "--sample on cuda: $(tail -5 sample.log)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
