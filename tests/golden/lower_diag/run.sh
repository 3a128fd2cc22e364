#!/usr/bin/env bash
# run.sh GVC SRC WORK [--update] - golden lowering and strategy diagnostics: each NN_*.gvm here
# (size s, first line "# args: OPTIONS") must make `gvc compile NN_*.gvm --model s --seq 8
# OPTIONS` exit 1, write nothing, and print exactly NN_*.expect on stderr: the error at the
# op it is about (file:line:col, the source line, a caret), its notes (the model's call of a
# stdlib layer, the size, the strategy block that set the options). Paths under SRC are
# printed relative to it (stdlib/nn.gvm). --update rewrites the .expect files.
set -u
gvc=$1; src=$2; work=$3; update=${4:-}; dir=$(cd "$(dirname "$0")" && pwd); pass=0; fail=0
rm -rf "$work" && mkdir -p "$work" || exit 1
cd "$dir" || exit 1
for f in [0-9]*.gvm; do
  args=$(head -1 "$f" | sed -n 's/^# args: *//p')
  expect="${f%.gvm}.expect"
  # shellcheck disable=SC2086 # the options are words
  "$gvc" compile "$f" --model s --seq 8 --emit c -o "$work/out.c" $args > "$work/out.txt" 2> "$work/err.raw"; rc=$?
  sed "s|$src/||g" "$work/err.raw" > "$work/err.txt"
  if [ "$update" = "--update" ]; then cp "$work/err.txt" "$expect"; pass=$((pass + 1)); continue; fi
  why=""
  [ $rc -eq 1 ] || why="exit code $rc, expected 1"
  [ ! -e "$work/out.c" ] || why="${why:+$why; }wrote the output"
  [ ! -s "$work/out.txt" ] || why="${why:+$why; }stdout: $(head -1 "$work/out.txt")"
  diff -u "$expect" "$work/err.txt" > "$work/diff.txt" 2>&1 || why="${why:+$why; }stderr differs:
$(head -30 "$work/diff.txt")"
  if [ -z "$why" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $f: $why"; fi
  rm -f "$work/out.c"
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -ge 28 ]
