#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - --timeline FILE.svg: the tiny GPT on 4 ranks (pp 2 x dp 2,
# 1F1B, 2 micro-batches) and on one rank writes one step's measured timeline that parses
# (xmllint) and renders (rsvg-convert), with a row per rank, every micro-batch's forward and
# backward, the step timed after warm-up; timing changes no loss.
. "$(dirname "$0")/../e2e_lib.sh"
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
args="--init_from $fx --batch_from $fx --iters 3 --global_train_batch_size 4"
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 --num_gpus_per_node 4 --pp_deg 2 \
  --chunks 2 -o pp2 2>/dev/null || bad "compile"
"$mpiexec" -n 4 ./pp2 $args 2>&1 | losses > plain.txt
"$mpiexec" -n 4 ./pp2 $args --timeline pp2.svg > pp2.log 2>&1 && ok || bad "run with --timeline: $(tail -3 pp2.log)"
losses < pp2.log > timed.txt
close plain.txt timed.txt 4 && ok || { bad "losses changed"; paste plain.txt timed.txt; }
grep -q "wrote the timeline of step 1 to pp2.svg" pp2.log && ok || bad "rank 0 says where the timeline is"
for s in "measured step 1" "rank 0 (stage 0)" "rank 1 (stage 0)" "rank 2 (stage 1)" "rank 3 (stage 1)" "2 micro-batches of 1"; do
  grep -q "$s" pp2.svg && ok || bad "timeline lacks '$s'"
done
# every rank's 2 forwards and 2 backwards drawn (plus one legend swatch each)
[ "$(grep -c 'fill="#56B4E9"' pp2.svg)" = 9 ] && [ "$(grep -c 'fill="#0072B2"' pp2.svg)" = 9 ] && ok || bad "boxes per micro-batch"
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 -o single 2>/dev/null
GV_COMM=self ./single $args --iters 1 --timeline one.svg > one.log 2>&1 && grep -q "measured step 0" one.svg \
  && grep -q "rank 0 (stage 0)" one.svg && ok || bad "one rank, one step: $(tail -2 one.log)"
GV_COMM=self ./single $args --iters 1 --timeline no/such/dir.svg 2>&1 | grep -q "cannot write" && ok || bad "unwritable path"
for f in pp2.svg one.svg; do
  xmllint --noout "$f" && ok || bad "$f is not XML"
  rsvg-convert "$f" -o "${f%.svg}.png" && ok || bad "$f does not render"
done
finish
