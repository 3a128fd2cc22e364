#!/usr/bin/env bash
# run.sh GVC SRC WORK - golden messages of refused values (cases.txt): each case must exit
# non-zero, print nothing on stdout, write no output file, and print the expected line
# first on stderr. The same doors with accepted values succeed (the controls below).
set -u
gvc=$1; src=$2; work=$3; dir=$(cd "$(dirname "$0")" && pwd); pass=0; fail=0
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
cp "$dir"/*.gvm .
tiny="$src/examples/tiny.gvm"
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# controls: the base config, a strategy block and the training binary with accepted values
"$gvc" compile "$tiny" --model tiny_gpt --seq 32 --num_gpus_per_node 2 --galvatron_config_path "$dir/base.json" \
  --emit c -o ctl.c 2>/dev/null && [ -s ctl.c ] && ok || bad "control: base.json compiles"
"$gvc" compile "$tiny" --model tiny_gpt --seq 32 -o tiny 2>/dev/null && [ -x tiny ] && ok || bad "control: tiny binary"
GV_COMM=self ./tiny --batch_from "$src/tests/reference/fixtures/tiny_gpt.bin" --iters 1 --global_train_batch_size 2 --lr 0 --adam_beta1 0 --clip_grad 0 --eval_iters 1 \
  >/dev/null 2>&1 && ok || bad "control: accepted training options"
printf '%s\n' 'import "gpt2"' 'size tiny_gpt = gpt2_family(vocab = 256, hidden = 64, layers = 2, heads = 4, positions = 64)' \
  'strategy tiny_gpt { global_tp_consec = 0; pp_division = "1,1"; pp_deg = 2; num_gpus_per_node = 2 }' > good.gvm
"$gvc" check good.gvm 2>/dev/null && "$gvc" compile good.gvm --model tiny_gpt --seq 32 --emit c -o good.c 2>/dev/null \
  && ok || bad "control: a good strategy block"
# the command line's spellings: dashed or underscored names, 0|1 switches also bare, the
# global batch at compile time (the micro-batch follows from it)
"$gvc" compile "$tiny" --model tiny_gpt --seq 32 --num_gpus_per_node 2 --global_tp_deg 2 --sequence_parallel 1 \
  --global_checkpoint 1 --mixed_precision bf16 --emit c -o under.c 2>/dev/null
"$gvc" compile "$tiny" --model tiny_gpt --seq 32 --num-gpus-per-node 2 --global-tp-deg 2 --sequence-parallel \
  --global-checkpoint --mixed-precision=bf16 --emit c -o dashed.c 2>/dev/null
[ -s under.c ] && cmp -s under.c dashed.c && ok || bad "control: dashed names and bare switches give the same program"
"$gvc" compile "$tiny" --model tiny_gpt --seq 32 --num_gpus_per_node 2 --chunks 2 --global_train_batch_size 8 \
  --dump strategy 2>/dev/null | grep -q "2 micro-batches of 2 per step" && ok \
  || bad "control: --global_train_batch_size 8 over chunks 2 x dp 2 gives micro-batches of 2"

# run KIND ARGS: the command of a case (stdout to out.txt, stderr to err.txt)
run() {
  local kind=$1 args=$2 sed extra=""
  case $kind in
    compile) "$gvc" compile "$tiny" --model tiny_gpt -o out $args ;;
    json) sed=${args%% with *}; [ "$sed" != "$args" ] && extra=${args#* with }
          sed "$sed" "$dir/base.json" > c.json
          "$gvc" compile "$tiny" --model tiny_gpt --seq 32 -o out $extra --galvatron_config_path c.json ;;
    check) "$gvc" check $args ;;
    gvm) "$gvc" compile $args --model tiny_gpt --seq 32 -o out ;;
    train) GV_COMM=self ./tiny $args ;;
  esac > out.txt 2> err.txt
}
while IFS= read -r line; do
  case $line in ''|'#'*) continue;; esac
  kind=${line%% *}; rest=${line#* }; args=${rest%% => *}; expect=${rest#* => }
  for k in $kind $([ "$kind" = gvm ] && echo check); do
    rm -f out
    run "$k" "$args"; rc=$?
    first=$(head -1 err.txt); why=""
    [ $rc -ne 0 ] || why="exit code 0"
    [ "$first" = "$expect" ] || why="${why:+$why; }first line: $first"
    [ ! -s out.txt ] || why="${why:+$why; }stdout: $(head -1 out.txt)"
    [ ! -e out ] || why="${why:+$why; }wrote out"
    if [ -z "$why" ]; then ok; else bad "$k $args: $why"; echo "  expected: $expect"; fi
  done
done < "$dir/cases.txt"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -ge 40 ]
