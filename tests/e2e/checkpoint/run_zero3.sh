#!/usr/bin/env bash
# run_zero3.sh GVC SRC MPIEXEC WORK - checkpoints of ZeRO-3 programs under mpirun: for dp2
# with every block sharded and for pp2 x dp2 with one block sharded (--zero3_layers), 10
# steps straight and 5 steps + --save, then a fresh --load + 5 steps, give the same last 5
# losses (printed %.9g of the fp32 loss) and bit-identical final parameters (--dump_params
# files compared byte for byte); a ZeRO-3 layer is saved as its three shard records only;
# ZeRO-2 dp2 resumes too; and mismatched loads (another data-parallel degree, a program
# without ZeRO-3, a ddp checkpoint into a ZeRO-3 program, a header of another strategy)
# stop with a message naming the file and record and a non-zero exit, never a crash.
set -u
gvc=$(realpath "$1"); src=$(realpath "$2"); mpiexec=$3; work=$4; pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
mkdir -p "$work" && cd "$work" && rm -rf ./*
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
export GV_COMM=mpi OMP_NUM_THREADS=1
comp() { # NAME RANKS OPTIONS...
  local name=$1 n=$2; shift 2
  "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 --num_gpus_per_node "$n" "$@" \
    -o "$name" 2>compile.log || { echo "compile $name failed: $(cat compile.log)"; exit 1; }
}
comp z3 2 --default_dp_type zero3                          # dp2, both blocks (layers 1, 2) sharded
comp pz 4 --pp_deg 2 --chunks 2 --zero3_layers 1           # pp2 x dp2, block layers.0 (layer 1) sharded
comp z2 2 --default_dp_type zero2
comp ddp2 2
comp pp2z3 2 --pp_deg 2 --default_dp_type zero3            # dp1: shards twice as large
comp ltpz3 2 --tp_sizes_enc 2,1 --default_dp_type zero3    # per-layer tp: layer 2 sharded over dp 2, layer 1 dp 1
comp ltpz2 2 --tp_sizes_enc 2,1 --default_dp_type zero2    # per-layer tp: ZeRO-2 per parameter (moment chunks)
comp z3z2 4 --zero3_layers 2 --default_dp_type zero2 --pp_deg 2 --chunks 2  # ZeRO-3 block, ZeRO-2 rest
losses() { grep -o "step [0-9]*/10 | loss [0-9.]*"; }
resume() { # NAME RANKS GLOBAL-BATCH: straight vs saved + loaded
  local name=$1 n=$2 args="--init_from $fx --batch_from $fx --global_train_batch_size $3 --lr_decay_iters 10 --warmup 3"
  "$mpiexec" -n "$n" "./$name" $args --iters 10 --dump_params "$name.straight" 2>&1 | losses | tail -5 > "$name.straight.txt"
  "$mpiexec" -n "$n" "./$name" $args --iters 5 --save "ck_$name" > "$name.save.log" 2>&1 \
    && [ -f "ck_$name/step00000005/rank00000.gvck" ] && [ -z "$(find ck_$name -name '*.tmp')" ] && ok || bad "$name: save: $(tail -3 $name.save.log)"
  "$mpiexec" -n "$n" "./$name" $args --iters 10 --load "ck_$name" --dump_params "$name.resumed" 2>&1 | losses > "$name.resumed.txt"
  [ "$(wc -l < $name.resumed.txt)" = 5 ] && cmp -s "$name.straight.txt" "$name.resumed.txt" && ok \
    || { bad "$name: resumed losses differ"; paste "$name.straight.txt" "$name.resumed.txt"; }
  local same=1
  for ((i = 0; i < n; i++)); do cmp -s "$name.straight.rank$i" "$name.resumed.rank$i" || same=0; done
  [ $same = 1 ] && ok || bad "$name: final parameters differ after the resume"
}
resume z3 2 4
resume pz 4 8
resume z2 2 4
resume ltpz3 2 2
resume ltpz2 2 2
resume z3z2 4 8
records() { strings -n 5 "$1" | grep -E "^(param|adam_m|adam_v|zero|zero3)/"; }
# a ZeRO-3 layer's records: its shard of parameters, m and v; none by parameter name
r0=$(records ck_z3/step00000005/rank00001.gvck)
[ "$(echo "$r0" | grep -c "^zero3/[12]/\(param_shard\|adam_m\|adam_v\)$")" = 6 ] && ! echo "$r0" | grep -q "layers\." \
  && ok || bad "z3 records: $r0"
r0=$(records ck_pz/step00000005/rank00000.gvck); r2=$(records ck_pz/step00000005/rank00002.gvck)
[ "$(echo "$r0" | grep -c "^zero3/1/")" = 3 ] && ! echo "$r0" | grep -q "layers\.0\." \
  && echo "$r2" | grep -q "^adam_v/layers.1.mlp.down.weight$" && ! echo "$r2" | grep -q "^zero3/" \
  && ok || bad "pz records: stage 0: $r0 stage 1: $r2"
refused() { # WHAT RANKS PROGRAM CHECKPOINT PATTERN (the first rank to fail aborts the others: either's message)
  local out rc
  out=$("$mpiexec" -n "$2" "./$3" --init_from "$fx" --batch_from "$fx" --global_train_batch_size 4 --iters 10 \
        --load "$4" 2>&1); rc=$?
  [ $rc -ne 0 ] && echo "$out" | grep -q "$5" && ! echo "$out" | grep -qi "segmentation\|signal\|core dumped" && ok \
    || bad "$1: rc $rc: $out"
}
refused "another dp degree" 2 pp2z3 ck_z3 \
  "ck_z3/step00000005/rank0000[01].gvck: record zero3/[12]/param_shard has [0-9]* floats, this program's shard has [0-9]* floats (saved with data-parallel degree 2, this program has 1)"
refused "a program without ZeRO-3" 2 ddp2 ck_z3 \
  "ck_z3/step00000005/rank0000[01].gvck: record zero3/1/param_shard: layer 1 was sharded by ZeRO-3 in the saved run, this program does not shard it"
"$mpiexec" -n 2 ./ddp2 --init_from "$fx" --batch_from "$fx" --global_train_batch_size 4 --iters 5 --save ck_ddp2_src >/dev/null 2>&1
refused "a ddp checkpoint" 2 z3 ck_ddp2_src "record zero3/1/param_shard is missing (layer 1 was not sharded by ZeRO-3"
# the same record sizes, but the header says another strategy (dp 4): refused by the header check
rm -rf ck_hdr && cp -r ck_z3 ck_hdr
for f in ck_hdr/step*/*.gvck; do printf '\x04\x00\x00\x00' | dd of="$f" bs=1 seek=32 conv=notrunc status=none; done
refused "another strategy in the header" 2 z3 ck_hdr "ck_hdr/step00000005/rank0000[01].gvck: saved by a run of pp 1 x tp 1 x dp 4, this one is pp 1 x tp 1 x dp 2"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
