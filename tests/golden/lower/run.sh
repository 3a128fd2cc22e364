#!/usr/bin/env bash
# run.sh GVC SRC [--update] - golden dumps of the lowering for the tiny models: the schedule
# IR (--dump schedule) and the memory plan (--dump memory), with and without
# checkpointing. A change to the lowering shows up as a reviewed diff of these files;
# --update rewrites them.
set -u
gvc=$1; src=$2; update=${3:-}; dir=$(cd "$(dirname "$0")" && pwd); pass=0; fail=0
for model in tiny_gpt tiny_llama; do
  for ck in none all; do
    for what in schedule memory; do
      golden="$dir/$model.ckpt-$ck.$what"
      out=$("$gvc" compile "$src/examples/tiny.gvm" --model "$model" --seq 32 --micro-batch 2 --checkpoint "$ck" --dump "$what")
      if [ "$update" = "--update" ]; then printf '%s\n' "$out" > "$golden"; pass=$((pass + 1)); continue; fi
      if diff -u "$golden" <(printf '%s\n' "$out") > /tmp/gv_golden_diff.$$ 2>&1; then pass=$((pass + 1));
      else fail=$((fail + 1)); echo "FAIL $model ckpt=$ck $what:"; head -20 /tmp/gv_golden_diff.$$; fi
    done
  done
done
rm -f /tmp/gv_golden_diff.$$
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
