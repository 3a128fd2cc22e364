#!/usr/bin/env bash
# run.sh GVC DIR - golden diagnostics: each DIR/*.gvm whose first line is
# "# expect: LINE:COL: error: MESSAGE" must make `gvc check` exit 1 and print that
# diagnostic first (after the file name), followed by the source line and a caret line.
set -u
gvc=$1; dir=$2; pass=0; fail=0
for f in "$dir"/*.gvm; do
  expect=$(head -1 "$f" | sed -n 's/^# expect: //p')
  [ -n "$expect" ] || continue
  out=$("$gvc" check "$f" 2>&1 >/dev/null); rc=$?
  first=$(printf '%s\n' "$out" | head -1)
  line2=$(printf '%s\n' "$out" | sed -n 2p)
  line3=$(printf '%s\n' "$out" | sed -n 3p)
  why=""
  [ $rc -eq 1 ] || why="exit code $rc, expected 1"
  case "$first" in *":$expect"*) ;; *) why="${why:+$why; }first line: $first";; esac
  case "$line2" in *" | "*) ;; *) why="${why:+$why; }no source line";; esac
  case "$line3" in *"^"*) ;; *) why="${why:+$why; }no caret line";; esac
  if [ -z "$why" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $(basename "$f"): $why"; echo "  expected: $expect"; fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -ge 20 ]
