#!/usr/bin/env bash
# cli.sh GVC SRC - the driver's user surface: help on every command, exit codes, JSON.
set -u
gvc=$1; src=$2; pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
"$gvc" --help | grep -q "usage: gvc" && ok || bad "gvc --help"
for c in check info compile run plan data; do "$gvc" $c --help | grep -q "usage: gvc $c" && ok || bad "gvc $c --help"; done
"$gvc" nosuchcmd 2>/dev/null; [ $? -eq 1 ] && ok || bad "unknown command exit code"
"$gvc" check "$src"/models/*.gvm "$src"/stdlib/*.gvm "$src"/examples/*.gvm 2>/dev/null && ok || bad "model zoo checks"
"$gvc" check "$src"/tests/golden/diag/03_unknown_name.gvm 2>/dev/null; [ $? -eq 1 ] && ok || bad "bad file exit code"
"$gvc" check /no/such/file.gvm 2>&1 | grep -q "cannot read '/no/such/file.gvm'" && ok || bad "missing file message"
"$gvc" info "$src"/models/gpt2.gvm --model gpt3 2>&1 | grep -q "no model or size named 'gpt3'" && ok || bad "unknown model"
json=$("$gvc" info "$src"/models/llama.gvm --model llama2_7b --json --seq 4096 --micro-batch 2 --precision fp32)
echo "$json" | grep -q '^  "params": 6738415616,' && ok || bad "json params"
[ "$(echo "$json" | grep -c '"kind": "block"')" -eq 32 ] && ok || bad "json layers"
"$gvc" info "$src"/models/gpt2.gvm --model gpt2 | grep -q "^total" && ok || bad "table totals"
"$gvc" compile "$src"/models/gpt2.gvm --model gpt2 --num_gpus_per_node 8 --global_tp_deg 8 --seq 128 -o /dev/null 2>&1 \
  | grep -q "12 heads (12 kv heads) are not divisible by tp=8" && ok || bad "impossible tp says why"
"$gvc" compile "$src"/models/gpt2.gvm --model gpt2 --num_gpus_per_node 6 --pp_deg 4 --seq 128 -o /dev/null 2>&1 \
  | grep -q "not divisible by --pp_deg 4" && ok || bad "impossible pp says why"
"$gvc" plan "$src"/examples/tiny.gvm --model tiny_llama --seq 32 --num_gpus_per_node 8 --pp_deg 2 --global_tp_deg 2 \
  2>/dev/null | grep -q "^layers.1 .* 1    2    2 ddp" && ok || bad "gvc plan table"
plan=$("$gvc" plan "$src"/tests/unit/frontend/data/strategy.gvm --model tiny_gpt --seq 32 2>&1)
echo "$plan" | grep -q "4 ranks = pp 1 x tp 2 (+SP) x dp 2 (ddp, GPipe" && echo "$plan" | grep -q "^layers.1 .* yes" \
  && ok || bad "strategy block: $plan"
"$gvc" plan "$src"/tests/unit/frontend/data/strategy.gvm --model tiny_gpt --seq 32 --global_tp_deg 1 2>&1 \
  | grep -q "pp 1 x tp 1 x dp 4" && ok || bad "command line overrides the strategy block"
plan=$("$gvc" plan "$src"/tests/unit/frontend/data/strategy_per_layer.gvm --model tiny_gpt --seq 32 2>&1)
echo "$plan" | grep -q "^layers.0 .* 2    2 ddp" && echo "$plan" | grep -q "^layers.1 .* 1    4 ddp" \
  && ok || bad "per-layer tp in a strategy block: $plan"
"$gvc" plan "$src"/tests/unit/frontend/data/strategy_per_layer.gvm --model tiny_gpt --seq 32 --micro-batch 1 2>&1 \
  | grep -q "layers.1: tp=1 runs on 1/2 of its group's micro-batch of 1 samples" && ok || bad "per-layer tp batch check"
"$gvc" plan "$src"/examples/tiny.gvm --model tiny_gpt --seq 32 --num_gpus_per_node 2 --zero3_layers layers.1 2>&1 \
  | grep -q "^layers.1 .* zero3" && ok || bad "--zero3_layers"
"$gvc" plan "$src"/examples/tiny.gvm --model tiny_gpt --seq 32 --num_gpus_per_node 4 --pp_deg 2 --default_dp_type zero2 \
  --no_async_grad_reduce 2>&1 | grep -q "no_async_grad_reduce with ZeRO-2 works without pipeline" && ok \
  || bad "no_async + zero2 + pp refusal"
# bf16 mixed precision: half the parameter and gradient bytes, 1.5x the optimizer's (fp32 master)
p32=$("$gvc" plan "$src"/examples/tiny.gvm --model tiny_gpt --seq 32 2>&1 | grep "stage 0 plan")
p16=$("$gvc" plan "$src"/examples/tiny.gvm --model tiny_gpt --seq 32 --mixed_precision bf16 2>&1)
field() { echo "$1" | grep "stage 0 plan" | sed "s/.*$2 \([0-9]*\).*/\1/"; }
echo "$p16" | grep -q "ddp), bf16 mixed precision" && [ $(( $(field "$p32" params) / 2 )) -ge "$(field "$p16" params)" ] \
  && [ "$(field "$p16" optimizer)" -gt "$(field "$p32" optimizer)" ] && ok || bad "bf16 plan: $p16"
"$gvc" compile "$src"/examples/tiny.gvm --model tiny_gpt --mixed_precision fp16 -o /dev/null 2>&1 \
  | grep -q "fp32 or bf16 (fp16 needs loss scaling" && ok || bad "fp16 refused with the reason"
"$gvc" plan "$src"/tests/unit/frontend/data/bad_strategy.gvm --model tiny_gpt --seq 32 2>&1 \
  | grep -q "bad_strategy.gvm:3:12: error: unknown strategy setting 'pp_degree'" && ok || bad "unknown strategy setting"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
