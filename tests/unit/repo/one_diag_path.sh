#!/usr/bin/env bash
# one_diag_path.sh SRC - every compiler error and note goes through compiler/diag.c (diag.h):
# fails when another file of compiler/ prints "gvc: error" or "gvc: note" itself, so the
# diagnostics keep one format (file:line:col with the source line where there is a location).
set -u
src=$1
cd "$src/compiler" || exit 1
# (comments may name the format: lines that start a comment or continue one are skipped)
if hits=$(grep -n -E '"gvc: (error|note)' -- *.c *.h | grep -v -E '^diag\.[ch]:' | grep -v -E '^[^:]+:[0-9]+:\s*(/\*|\*)'); then
  echo "error: compiler errors printed outside diag.c (use diag_error/diag_note with a Loc, or diag_plain/diag_plain_note):"
  echo "$hits"
  exit 1
fi
n=$(grep -c -E 'diag_(error|plain|note|plain_note)\(' -- *.c | awk -F: '{s += $2} END {print s}')
[ "$n" -ge 100 ] || { echo "error: only $n diag_* calls in compiler/: is the pattern still right?"; exit 1; }
echo "1 passed, 0 failed ($n diagnostics through diag.c)"
