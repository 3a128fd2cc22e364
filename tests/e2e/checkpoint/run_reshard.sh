#!/usr/bin/env bash
# run_reshard.sh GVC SRC MPIEXEC WORK [slow] - checkpoints move between strategies: a run
# saved under one strategy and resumed under another follows the uninterrupted single-rank
# curve within 1e-5 relative (fp32; the strategy matrix's bound), through tp, pp, ZeRO-2,
# ZeRO-3, vocabulary tp, Megatron-SP, Ulysses, per-layer tp, activation checkpointing and
# world sizes 4 -> 2 -> 1; between bf16 and fp32 within 2e-2 (bf16 rounding); resuming
# under the same strategy stays bit-identical (losses and --dump_params). Each rank reads
# only its slices. With "slow": every ordered pair of a larger set of strategies.
source "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
export GV_COMM=mpi
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
args="--init_from $fx --batch_from $fx --global_train_batch_size 4 --lr_decay_iters 12 --warmup 3"
declare -A ranks
comp() { # NAME RANKS OPTIONS...: tiny_gpt, micro-batch 1 (4 micro-batches per step over dp)
  local name=$1 n=$2; shift 2
  ranks[$name]=$n
  "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 --num_gpus_per_node "$n" "$@" \
    -o "$name" 2>compile.log || { echo "compile $name failed: $(cat compile.log)"; exit 1; }
}
run() { # NAME OPTIONS...
  local name=$1; shift
  timeout 120 "$mpiexec" -n "${ranks[$name]}" "./$name" $args "$@" 2>&1
}
steplosses() { grep -o "step [0-9]*/12 | loss [0-9.]*" | awk '{print $NF}'; }
# near A B N TOL: N losses each, equal within TOL relative
near() { paste -d' ' "$1" "$2" | awk -v n="$3" -v tol="$4" '{d = $1 - $2; if (d < 0) d = -d; if (d > tol * $1) bad++}
                                                          END {exit bad > 0 || NR != n}'; }
comp one 1
comp one_bf16 1 --mixed_precision bf16
comp pp2_tp2 4 --pp_deg 2 --global_tp_deg 2 --chunks 2
comp dp2_zero3 2 --default_dp_type zero3
comp tp2_vtp2 2 --global_tp_deg 2 --vocab_tp 2
comp dp2_zero2 2 --default_dp_type zero2
comp pp2_dp2_zero2_ckpt 4 --pp_deg 2 --default_dp_type zero2 --chunks 2 --checkpoint all
comp dp4_zero3 4 --default_dp_type zero3
comp tp2_dp2_zero2_bf16 4 --global_tp_deg 2 --default_dp_type zero2 --mixed_precision bf16
comp dp2_zero3_bf16 2 --default_dp_type zero3 --mixed_precision bf16
run one --iters 12 | steplosses > ref.txt
run one_bf16 --iters 12 | steplosses > ref_bf16.txt
[ "$(wc -l < ref.txt)" = 12 ] || { echo "reference run failed"; exit 1; }

# pair FROM TO SAVE_STEP TOL [LOAD_DIR]: FROM trains to SAVE_STEP and saves; TO loads it and
# trains to step 12; its losses against the reference (bf16 pairs: against the fp32 one)
pair() {
  local from=$1 to=$2 at=$3 tol=$4 ck=ck_$1 log
  [ -d "$ck" ] && grep -q "^step $at$" "$ck/latest" || { rm -rf "$ck"; run "$from" --iters "$at" --save "$ck" > "$ck.log"; }
  log=$(run "$to" --iters 12 --load "$ck")
  echo "$log" | steplosses > "got_$from.$to.txt"
  tail -n $((12 - at)) ref.txt > "want_$from.$to.txt"
  echo "$log" | grep -q "loaded checkpoint $ck/iter_000000$at: resuming at step $at" \
    && near "want_$from.$to.txt" "got_$from.$to.txt" $((12 - at)) "$tol" && ok \
    || { bad "$from -> $to: $(tail -2 "$ck.log") $(echo "$log" | tail -3)"; paste "want_$from.$to.txt" "got_$from.$to.txt"; }
}

if [ "${5:-}" = slow ]; then
  set=(one pp2_tp2 dp2_zero3 tp2_vtp2 dp2_zero2 pp2_dp2_zero2_ckpt dp4_zero3)
  comp ulysses2 2 --global_tp_deg 2 --use_ulysses 1
  comp tp2_sp 2 --global_tp_deg 2 --sequence_parallel 1
  comp ltp_zero3 2 --tp_sizes_enc 2,1 --default_dp_type zero3 --micro-batch 2 # (tp 1 blocks split the micro-batch)
  set+=(ulysses2 tp2_sp ltp_zero3)
  for a in "${set[@]}"; do for b in "${set[@]}"; do [ "$a" != "$b" ] && pair "$a" "$b" 4 1e-5; done; done
  finish
  exit
fi

# world 4 -> 2 -> 1 through pp x tp, ZeRO-3 and one rank: the chain's last losses
rm -rf chain && run pp2_tp2 --iters 4 --save chain > /dev/null
run dp2_zero3 --iters 8 --load chain --save chain > chain2.log
run one --iters 12 --load chain | steplosses > chain.txt
grep -q "resuming at step 4" chain2.log && tail -4 ref.txt > chain_want.txt && near chain_want.txt chain.txt 4 1e-5 \
  && [ -f chain/iter_0000004/index.json ] && [ -f chain/iter_0000008/index.json ] && ok \
  || { bad "world 4 -> 2 -> 1: $(tail -3 chain2.log)"; paste chain_want.txt chain.txt; }
pair tp2_vtp2 dp2_zero2 4 1e-5          # vocabulary tp -> ZeRO-2
pair dp2_zero2 pp2_dp2_zero2_ckpt 6 1e-5 # ZeRO-2 chunks -> pp x ZeRO-2 with checkpointing
pair dp4_zero3 tp2_vtp2 5 1e-5          # ZeRO-3 over 4 -> tp with vocabulary tp
pair one dp4_zero3 3 1e-5               # one rank -> ZeRO-3 over 4
pair dp2_zero3_bf16 one 4 2e-2          # bf16 (masters) -> fp32
pair one tp2_dp2_zero2_bf16 4 2e-2      # fp32 -> bf16 (the fp32 values become the masters)

# the same strategy: bit for bit (losses and final parameters), fp32 and bf16
same() { # NAME AT
  local name=$1 at=$2 n
  run "$name" --iters 12 --dump_params "$name.straight" | steplosses | tail -n $((12 - at)) > "$name.straight.txt"
  rm -rf "sk_$name" && run "$name" --iters "$at" --save "sk_$name" > /dev/null
  run "$name" --iters 12 --load "sk_$name" --dump_params "$name.resumed" | steplosses > "$name.resumed.txt"
  local same=1
  for ((n = 0; n < ${ranks[$name]}; n++)); do
    f=$name.straight; [ "${ranks[$name]}" -gt 1 ] && f=$name.straight.rank$n
    cmp -s "$f" "${f/straight/resumed}" || same=0
  done
  [ -s "$name.resumed.txt" ] && cmp -s "$name.straight.txt" "$name.resumed.txt" && [ $same = 1 ] && ok \
    || { bad "$name: the resume is not bit-identical"; paste "$name.straight.txt" "$name.resumed.txt"; }
}
same dp2_zero3 5
same tp2_dp2_zero2_bf16 5
same pp2_tp2 5

# what a checkpoint holds: global names and shapes, one tensor per parameter
hdr=$(head -c 4000 ck_tp2_vtp2/iter_0000004/model.safetensors | strings)
echo "$hdr" | grep -q '"embedding.weight":{"shape":\[256,64\],"data_offsets"' && ok || bad "global shapes: $hdr"

# another model's checkpoint (tiny_llama loading tiny_gpt's) is refused with file and tensor named
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_llama --seq 32 --micro-batch 1 -o llama 2>/dev/null || bad "compile llama"
out=$(timeout 60 "$mpiexec" -n 1 ./llama --init_from "$src/tests/reference/fixtures/tiny_llama.bin" --iters 6 \
      --batch_from "$src/tests/reference/fixtures/tiny_llama.bin" --global_train_batch_size 4 --load ck_one 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "ck_one/iter_0000004/model.safetensors: tensor '[a-z0-9_.]*' is not a parameter of this program" \
  && ok || bad "another model's checkpoint: rc $rc: $out"
finish
