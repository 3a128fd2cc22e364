# e2e_lib.sh - what the e2e shell tests share (sourced): their arguments
# (GVC SRC MPIEXEC WORK), pass/fail counting, loss extraction and comparison.
set -u
gvc=$(realpath "$1"); src=$(realpath "$2"); mpiexec=$3; work=$4; pass=0; fail=0
mkdir -p "$work" && cd "$work" || exit 1
export OMP_NUM_THREADS=1
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# The loss values of a training log, one per line.
losses() { grep -o "loss [0-9.]*" | awk '{print $2}'; }
# close A B N: files A and B hold N losses each, equal to 1e-5 relative (fp32 reassociation).
close() { paste -d' ' "$1" "$2" | awk -v n="$3" '{d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) bad++}
                                               END {exit bad > 0 || NR != n}'; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
