#!/usr/bin/env bash
# run_zero3.sh GVC SRC MPIEXEC WORK - checkpoints of ZeRO-3 programs under mpirun: for dp2
# with every block sharded and for pp2 x dp2 with one block sharded (--zero3_layers), 10
# steps straight and 5 steps + --save, then a fresh --load + 5 steps, give the same last 5
# losses (printed %.9g of the fp32 loss) and bit-identical final parameters (--dump_params
# files compared byte for byte); ZeRO-2 (flat and per parameter) and per-layer tp resume
# too. (Loads under another strategy: run_reshard.sh.)
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
comp ltpz3 2 --tp_sizes_enc 2,1 --default_dp_type zero3    # per-layer tp: layer 2 sharded over dp 2, layer 1 dp 1
comp ltpz2 2 --tp_sizes_enc 2,1 --default_dp_type zero2    # per-layer tp: ZeRO-2 per parameter (moment chunks)
comp z3z2 4 --zero3_layers 2 --default_dp_type zero2 --pp_deg 2 --chunks 2  # ZeRO-3 block, ZeRO-2 rest
losses() { grep -o "step [0-9]*/10 | loss [0-9.]*"; }
flip_in() { # FILE TENSOR: inverts the byte in the middle of that tensor's data
  local f=$1 hl o at b
  hl=$(head -c 8 "$f" | od -An -tu8 | tr -d ' ')
  o=$(head -c $((8 + hl)) "$f" | tail -c "$hl" | grep -o "\"$2\":{[^}]*}" | grep -o '"data_offsets":\[[0-9]*,[0-9]*' \
      | grep -o '[0-9]*,[0-9]*')
  at=$((8 + hl + (${o%,*} + ${o#*,}) / 2)); b=$(od -An -tu1 -j "$at" -N 1 "$f" | tr -d ' ')
  printf "\\x$(printf %02x $((255 - b)))" | dd of="$f" bs=1 seek="$at" conv=notrunc status=none
}
resume() { # NAME RANKS GLOBAL-BATCH [INIT]: straight vs saved + loaded (INIT: --init_from the fixture)
  local name=$1 n=$2 init=${4:-"--init_from $fx"}
  local args="$init --batch_from $fx --global_train_batch_size $3 --lr_decay_iters 10 --warmup 3"
  "$mpiexec" -n "$n" "./$name" $args --iters 10 --dump_params "$name.straight" 2>&1 | losses | tail -5 > "$name.straight.txt"
  "$mpiexec" -n "$n" "./$name" $args --iters 5 --save "ck_$name" > "$name.save.log" 2>&1 \
    && [ -f "ck_$name/iter_0000005/model.safetensors" ] && [ -z "$(find ck_$name -name '*.tmp')" ] && ok || bad "$name: save: $(tail -3 $name.save.log)"
  "$mpiexec" -n "$n" "./$name" $args --iters 10 --load "ck_$name" --dump_params "$name.resumed" 2>&1 \
    | tee "$name.load.log" | losses > "$name.resumed.txt"
  [ -z "${4:-}" ] || grep -q "random init skipped" "$name.load.log" && ok || bad "$name: --load ran the random init"
  [ "$(wc -l < $name.resumed.txt)" = 5 ] && cmp -s "$name.straight.txt" "$name.resumed.txt" && ok \
    || { bad "$name: resumed losses differ"; paste "$name.straight.txt" "$name.resumed.txt"; }
  local same=1
  for ((i = 0; i < n; i++)); do cmp -s "$name.straight.rank$i" "$name.resumed.rank$i" || same=0; done
  [ $same = 1 ] && ok || bad "$name: final parameters differ after the resume"
}
resume z3 2 4
# the load reads each byte once where it can: ZeRO-3's shards tile every tensor (the CRC-32s
# combined across the ranks), and a flipped byte in one shard is still found
z3args="--init_from $fx --batch_from $fx --global_train_batch_size 4 --lr_decay_iters 10 --warmup 3"
"$mpiexec" -n 2 ./z3 $z3args --iters 5 --load ck_z3 2>&1 | grep -q "CRC-32s of \([0-9]*\) of \1 tensors from the bytes read" \
  && ok || bad "z3: not every CRC-32 from the bytes read"
rm -rf flip_z3 && cp -r ck_z3 flip_z3 && flip_in flip_z3/iter_0000005/model.safetensors layers.1.mlp.up.weight
out=$("$mpiexec" -n 2 ./z3 $z3args --iters 10 --load flip_z3 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "flip_z3/iter_0000005/model.safetensors: tensor 'layers.1.mlp.up.weight' is damaged: its CRC-32" \
  && ! echo "$out" | grep -q "step [0-9]*/10 |" && ok || bad "z3: flipped byte: rc $rc: $out"
resume pz 4 8 "--seed 3" # random init, skipped by --load: the same losses and final parameters
resume z2 2 4
resume ltpz3 2 2
# tp's column blocks do not tile a tensor in the file: those tensors are read again; a flipped
# byte is found in every tensor of a tp layer, whichever way it is verified
ltargs="--init_from $fx --batch_from $fx --global_train_batch_size 2 --lr_decay_iters 10 --warmup 3"
"$mpiexec" -n 2 ./ltpz3 $ltargs --iters 5 --load ck_ltpz3 2>&1 | grep -q "CRC-32s of [0-9]* of [0-9]* tensors from the bytes read" \
  && ok || bad "ltpz3: no CRC-32 count in the load's log"
for t in q.weight o.weight q.bias o.bias; do
  rm -rf flip_tp && cp -r ck_ltpz3 flip_tp && flip_in flip_tp/iter_0000005/model.safetensors "layers.0.attn.$t"
  out=$("$mpiexec" -n 2 ./ltpz3 $ltargs --iters 10 --load flip_tp 2>&1); rc=$?
  [ $rc -ne 0 ] && echo "$out" | grep -q "flip_tp/iter_0000005/model.safetensors: tensor 'layers.0.attn.$t' is damaged" \
    && ! echo "$out" | grep -q "step [0-9]*/10 |" && ok || bad "ltpz3: flipped byte in layers.0.attn.$t: rc $rc: $out"
done
resume ltpz2 2 2
resume z3z2 4 8
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
