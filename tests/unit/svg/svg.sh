#!/usr/bin/env bash
# svg.sh GVC SRC TEST_PLAN_SVG WORKDIR - pictures of plans: every SVG written parses as XML
# (xmllint) and renders to PNG (rsvg-convert); gvc plan's picture of a small plan matches
# the golden SVG; gvc search --topk draws each plan with its stages' layer ranges and the
# predicted time it prints; a plan over budget is drawn with its stages marked; bad paths
# are errors. GV_UPDATE_GOLDEN=1 rewrites the golden file.
set -u
gvc=$1; src=$2; unit=$3; work=$4; pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
for t in xmllint rsvg-convert; do
  command -v $t >/dev/null || { echo "FAIL: $t not found (scripts/setup installs libxml2-utils and librsvg2-bin)"; exit 1; }
done
rm -rf "$work" && mkdir -p "$work"
golden=$src/tests/unit/svg/golden/tiny_gpt_pp2.svg

"$unit" "$work" && ok || bad "test_plan_svg"

# gvc plan: a small plan (2 stages x tp 2 (+SP) x dp 2, ZeRO-2, 1F1B, one checkpointed block)
PLAN="$src/examples/tiny.gvm --model tiny_gpt --seq 64 --micro-batch 2 --num_gpus_per_node 8 --pp_deg 2 --chunks 4
      --global_tp_deg 2 --sequence_parallel 1 --default_dp_type zero2 --checkpoint layers.0 --device cpu"
"$gvc" plan $PLAN --memory_constraint 0.002 --svg "$work/plan.svg" > "$work/plan.out" 2>&1 && ok || bad "gvc plan --svg runs"
grep -q "gvc: wrote $work/plan.svg" "$work/plan.out" && ok || bad "gvc plan says where the picture is"
if [ "${GV_UPDATE_GOLDEN:-0}" = 1 ]; then cp "$work/plan.svg" "$golden"; fi
diff -u "$golden" "$work/plan.svg" > "$work/plan.diff" && ok || { bad "golden SVG differs:"; head -40 "$work/plan.diff"; }
for s in "stage 0: layer 0" "stage 1: layer 1" "predicted step 0.00" "layers.0" "final_norm" "sp 2 Megatron" "ZeRO-2  ckpt" "budget 2.0 MB"; do
  grep -q "$s" "$work/plan.svg" && ok || bad "plan picture lacks '$s'"
done
grep -q "OVER BUDGET" "$work/plan.svg" && bad "plan within budget marked over" || ok
# the same plan over a tiny budget: still drawn, both stages marked, exit 0
"$gvc" plan $PLAN --memory_constraint 0.0001 --svg "$work/over.svg" >/dev/null 2>&1 && ok || bad "over-budget plan drawn"
[ "$(grep -c "OVER BUDGET" "$work/over.svg")" = 2 ] && grep -q "2 of 2 stages over the budget" "$work/over.svg" \
  && ok || bad "over-budget stages marked"

# gvc search --topk 3 with Galvatron's profiles: every plan drawn, ranges and times as printed
D=$src/tests/data/galvatron; L=$D/llama2-7b; H=$D/hardware
P="--time_profiling_path $L/computation_profiling_bf16_llama2-7b_all.json --memory_profiling_path $L/memory_profiling_bf16_llama2-7b_all.json
   --allreduce_bandwidth_config_path $H/allreduce_bandwidth_1nodes_8gpus_per_node.json --p2p_bandwidth_config_path $H/p2p_bandwidth_1nodes_8gpus_per_node.json
   --overlap_coe_path $H/overlap_coefficient.json --sp_time_path $H/sp_time_1nodes_8gpus_per_node.json"
"$gvc" search $src/models/llama.gvm --model llama2_7b --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 36 --seq_length 2048 \
  $P --quiet --topk 3 --svg "$work/search.svg" > "$work/search.out" 2>&1 && ok || bad "gvc search --svg runs"
t1=$(sed -n 's/^iteration time \([0-9.]*\) s.*/\1/p' "$work/search.out")
grep -q "#1 llama2_7b: predicted step $t1 s" "$work/search.svg" && ok || bad "search picture's title lacks the time $t1"
[ "$(grep -c '>#[123] llama2_7b: predicted step' "$work/search.svg")" = 3 ] && ok || bad "three plans drawn"
grep -q "stage 0: layers 0-15" "$work/search.svg" && grep -q "stage 1: layers 16-31" "$work/search.svg" && ok || bad "stage ranges"
grep -q ">embedding<" "$work/search.svg" && grep -q ">head<" "$work/search.svg" && ok || bad "vocabulary layers drawn"
# gvc cost --svg: the searched config drawn the same way
"$gvc" search $src/models/llama.gvm --model llama2_7b --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 36 --seq_length 2048 \
  $P --quiet -o "$work/best.json" >/dev/null 2>&1
"$gvc" cost $src/models/llama.gvm --model llama2_7b --num_nodes 1 --num_gpus_per_node 8 --memory_constraint 20 --seq_length 2048 \
  $P --strategy "$work/best.json" --svg "$work/cost.svg" >/dev/null 2>&1 && ok || bad "gvc cost --svg runs"
grep -q "llama2_7b: predicted step $t1 s" "$work/cost.svg" && grep -q "OVER BUDGET" "$work/cost.svg" && ok || bad "cost picture"

# errors: an unwritable path names the file, exit 1
"$gvc" plan $PLAN --svg "$work/no/such/dir/p.svg" > "$work/err.out" 2>&1; [ $? = 1 ] && ok || bad "unwritable path exit code"
grep -q "gvc: error: $work/no/such/dir/p.svg: cannot write the picture" "$work/err.out" && ok || bad "unwritable path message"

# every picture parses and renders
for f in "$work"/*.svg; do
  xmllint --noout "$f" && ok || bad "$f is not XML"
  rsvg-convert "$f" -o "${f%.svg}.png" && [ "$(head -c 4 "${f%.svg}.png" | tail -c 3)" = PNG ] && ok || bad "$f does not render"
done
echo "svg: $pass passed, $fail failed"
[ $fail = 0 ]
