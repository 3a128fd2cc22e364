#!/usr/bin/env bash
# gpt2_train.sh - GPT-2 124M training throughput on one GPU (--device cuda); not a ctest
# test. Compiles models/gpt2.gvm --model gpt2 at --seq 1024 with a micro-batch of 16, makes
# a byte-level dataset with `gvc data` from the repository's own text, trains --steps
# steps and prints median ms/step, tokens/s and MFU, where
#   MFU = tokens/s x (6 N + 6 L C T) / peak
# (N parameters, L blocks, C hidden, T sequence; 6 L C T is the attention matmuls, 12 L C T
# halved by the causal mask), against the dense bf16 peak (--peak-tflops, 989 = H100 SXM).
# --mixed_precision bf16 (the default) compiles the program with bf16 parameters,
# activations and gradients (fp32 master weights); fp32 stores everything in fp32, its
# linears then follow --matmul_precision, and MFU is also printed against the fp32 peak of
# --peak-fp32-tflops (default 494.7 = H100 SXM dense TF32; pass 67 for the CUDA-core fp32
# peak). Exits 0 with a message when there is no GPU.
#
#   tests/bench/cuda/gpt2_train.sh [--build DIR] [--steps N] [--micro-batch B] [--seq T]
#                                  [--peak-tflops F] [--peak-fp32-tflops F] [--work DIR]
#                                  [--gvm FILE --model NAME] [--device cuda|cpu]
#                                  [--matmul_precision highest|high|medium]
#                                  [--mixed_precision bf16|fp32]
# (--gvm/--model/--device default to models/gpt2.gvm, gpt2, cuda; others for a dry run)
set -euo pipefail
src=$(cd "$(dirname "$0")/../../.." && pwd)
build=$src/build; steps=30; mb=16; seq=1024; peak=989; peak32=494.7; work=${TMPDIR:-/tmp}/gv_bench_gpt2
gvm=$src/models/gpt2.gvm; model=gpt2; device=cuda; precision=highest; mixed=bf16
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(realpath "$2"); shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --micro-batch) mb=$2; shift 2 ;;
    --seq) seq=$2; shift 2 ;;
    --peak-tflops) peak=$2; shift 2 ;;
    --peak-fp32-tflops) peak32=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --gvm) gvm=$(realpath "$2"); shift 2 ;;
    --model) model=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --matmul_precision) precision=$2; shift 2 ;;
    --mixed_precision) mixed=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpt2_train.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
gvc=$build/gvc
[ -x "$gvc" ] || { echo "gpt2_train.sh: no $gvc (build first, or pass --build DIR)" >&2; exit 2; }
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpt2_train.sh: no GPU here (nvidia-smi finds none): nothing to measure"; exit 0
fi
mkdir -p "$work" && cd "$work"
skip=3; [ "$steps" -gt $((skip + 1)) ] || skip=0   # warm-up steps left out of the median

echo "== compiling $model (seq $seq, micro-batch $mb, $mixed)"
"$gvc" compile "$gvm" --model "$model" --seq "$seq" --micro-batch "$mb" --mixed_precision "$mixed" -o gpt2_train
"$gvc" info "$gvm" --model "$model" --seq "$seq" --json > info.json
num() { grep -m1 "\"$1\":" info.json | sed 's/.*: *\([0-9]*\).*/\1/'; }
N=$(num params); C=$(num hidden); L=$(num blocks)

if [ ! -s corpus.bin ]; then
  echo "== dataset (byte tokens of the repository's text)"
  find "$src/docs" "$src/runtime" "$src/compiler" "$src/models" -type f \( -name '*.md' -o -name '*.c' -o -name '*.h' \
    -o -name '*.gvm' \) | sort > files.txt   # one document per file
  xargs "$gvc" data -o corpus < files.txt > data.log
fi

echo "== training $steps steps on --device $device"
set +e
GV_COMM=${GV_COMM:-self} ./gpt2_train --device "$device" --data corpus --iters "$steps" --global_train_batch_size "$mb" \
  --matmul_precision "$precision" --eval_interval 0 --log_interval 1 --lr 6e-4 --warmup 2 > train.log 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
  if grep -q "needs a GPU" train.log; then echo "gpt2_train.sh: $(grep -m1 -o 'needs a GPU.*' train.log)"; exit 0; fi
  echo "gpt2_train.sh: training failed (rc $rc):"; tail -20 train.log; exit 1
fi

grep -o "step [0-9]*/[0-9]* | loss [^|]*|[^|]*|[^|]*| [0-9.]* ms/step" train.log | awk -F'|' -v skip="$skip" \
  '{split($1, s, "[ /]"); if (s[2] >= skip) {split($5, m, " "); print m[1]}}' | sort -n > ms.txt
n=$(wc -l < ms.txt)
[ "$n" -gt 0 ] || { echo "gpt2_train.sh: no step timings in train.log"; tail -5 train.log; exit 1; }
med=$(awk '{a[NR] = $1} END {print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}' ms.txt)
awk -v ms="$med" -v B="$mb" -v T="$seq" -v N="$N" -v L="$L" -v C="$C" -v peak="$peak" -v peak32="$peak32" \
    -v n="$n" -v model="$model" -v dev="$device" -v prec="$precision" -v mixed="$mixed" -v loss="$(grep -o 'final loss [0-9.e+-]*' train.log | awk '{print $3}')" 'BEGIN {
  tps = B * T / (ms / 1e3); fpt = 6 * N + 6 * L * C * T; tf = tps * fpt / 1e12;
  printf "\n%s (N = %d, L = %d, C = %d), seq %d, micro-batch %d, %s storage, --matmul_precision %s, --device %s\n",
         model, N, L, C, T, B, mixed, prec, dev;
  printf "| %-26s | %14s |\n", "metric", "value";
  printf "|%s|%s|\n", "----------------------------", "----------------";
  printf "| %-26s | %14.1f |\n", "median ms/step (" n " steps)", ms;
  printf "| %-26s | %14.0f |\n", "tokens/s", tps;
  printf "| %-26s | %14.1f |\n", "model TFLOP/s", tf;
  printf "| %-26s | %13.2f%% |\n", "MFU vs bf16 " peak " TF", 100 * tf / peak;
  printf "| %-26s | %13.2f%% |\n", "MFU vs fp32 " peak32 " TF", 100 * tf / peak32;
  printf "| %-26s | %14s |\n", "final loss", loss;
}'
