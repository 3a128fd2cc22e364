#!/usr/bin/env bash
# bench_compile.sh GVC SRC [RUNS] - wall time of `gvc compile` for whole training programs
# (front end, lowering, memory plan, emission; no training): median of RUNS runs per row.
# Goal: llama2_7b's full program in under 2 s on this 2-core machine.
set -u
gvc=$1; src=$2; runs=${3:-5}; tmp=$(mktemp -d)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-12s %-6s %-6s %12s %12s\n' model seq emit "median (s)" "calls"
for row in "llama2_7b llama 4096 obj" "llama2_7b llama 4096 c" "llama2_70b llama 4096 obj" "gpt2_xl gpt2 1024 obj"; do
  set -- $row
  t=$(for i in $(seq "$runs"); do
        s=$(date +%s%N); "$gvc" compile "$src/models/$2.gvm" --model "$1" --seq "$3" --emit "$4" -o "$tmp/p" 2>/dev/null
        e=$(date +%s%N); echo $(( (e - s) / 1000000 )); done | median)
  calls=$("$gvc" compile "$src/models/$2.gvm" --model "$1" --seq "$3" --dump schedule | grep -c '^  gv_')
  printf '%-12s %-6s %-6s %12s %12d\n' "$1" "$3" "$4" "$(awk "BEGIN {printf \"%.3f\", $t / 1000}")" "$calls"
done
rm -rf "$tmp"
