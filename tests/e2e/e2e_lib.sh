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
# The strategy matrix of a model (uses $args, with --iters 6): mx_single GVM MODEL compiles
# and runs it on one rank at --seq $mx_seq (default 32; an encoder-decoder's source at --src_seq $mx_src when set;
# losses in single.txt); mx_run NAME WORLD COMPILE-OPTIONS...
# compiles a strategy, runs it under mpirun and compares its 7 losses with one rank's.
mx_compile() { "$gvc" compile "$mx_gvm" --model "$mx_model" --seq "${mx_seq:-32}" ${mx_src:+--src_seq "$mx_src"} "$@" \
                 2>compile.log || bad "compile $*: $(cat compile.log)"; }
mx_single() {
  mx_gvm=$1; mx_model=$2
  mx_compile --micro-batch 1 -o single
  GV_COMM=self ./single $args 2>&1 | losses > single.txt
  [ "$(wc -l < single.txt)" -eq 7 ] && ok || bad "single rank: no losses"
}
mx_run() {
  local name=$1 world=$2; shift 2
  mx_compile "$@" -o "$name"
  "$mpiexec" -n "$world" "./$name" $args 2>&1 | losses > "$name.txt"
  close single.txt "$name.txt" 7 && ok || { bad "$name: losses differ from one rank"; paste single.txt "$name.txt"; }
}
