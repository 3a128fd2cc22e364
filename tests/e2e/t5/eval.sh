#!/usr/bin/env bash
# eval.sh GVC SRC MPIEXEC WORK - the tiny T5's evaluation on source/target pairs (a pair
# dataset takes --split as token data does, docs/data.md §4): --eval_only on the validation
# split gives the loss that training's step 0 computes on the same samples (--split 1 and
# --split 0,1 read the same seeded order), and its perplexity; the order follows --seed; an
# empty split asked for is refused before training with the token data's words; the
# evaluations under data parallelism, a pipeline and tensor parallelism equal one rank's
# (1e-5 relative), --eval_only and every 2 steps of a training.
. "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
"$gvc" data "$src/tests/data/pairs/reverse.jsonl" -o rev --src-key src --tgt-key tgt --src-seq 16 --tgt-seq 8 \
  --quiet || bad "gvc data: the pair dataset"
mx_gvm=$src/models/t5.gvm mx_model=t5_tiny
mx_compile --micro-batch 1 -o single
export GV_COMM=self
# The VALUE after NAME in the lines of a log (one a line).
field() { grep -o "$1 [0-9.]*" | awk '{print $NF}'; }

./single --data rev --split 1 --iters 1 --global_train_batch_size 4 --seed 7 >train.log 2>&1
./single --data rev --split 0,1 --eval_only --eval_iters 1 --global_train_batch_size 4 --seed 7 >eval.log 2>&1
l0=$(grep "step 0/1" train.log | field loss); le=$(field "validation loss" <eval.log)
[ -n "$l0" ] && [ "$l0" = "$le" ] && grep -q "validation loss [0-9.]* | perplexity [0-9.]* | 1 batches of 4 samples" \
  eval.log && ok || bad "eval_only $le, training's step 0 $l0: $(tail -1 eval.log)"

./single --data rev --iters 0 --dump_params w.params >w.log 2>&1 || bad "weights: $(tail -1 w.log)"
for s in 1 2; do ./single --data rev --init_from w.params --eval_only --eval_iters 1 --global_train_batch_size 4 \
  --seed $s 2>&1 | field "validation loss" >s$s.txt; done
[ -s s1.txt ] && ! cmp -s s1.txt s2.txt && ok || bad "--seed 1 and 2 evaluate the same pairs: $(cat s1.txt s2.txt)"

out=$(./single --data rev --split 1 --iters 2 --eval_interval 1 --global_train_batch_size 2 2>&1) && bad "empty split: accepted" \
  || { echo "$out" | grep -qF 'the validation split (--split 1): rev: split 1 of "1" (pairs 300..300) has 0 pairs' && ok \
  || bad "empty split: '$out'"; }
unset GV_COMM

args="--data rev --iters 4 --eval_interval 2 --eval_iters 2 --global_train_batch_size 4"
only="--data rev --split 80,20 --init_from w.params --eval_only --eval_iters 2 --global_train_batch_size 4"
evals() { sed -n 's/.*val_loss \([0-9.]*\) | val_ppl.*/\1/p; s/.*validation loss \([0-9.]*\) | perplexity.*/\1/p'; }
{ GV_COMM=self ./single $only; GV_COMM=self ./single $args; } 2>&1 | evals >single.txt
[ "$(wc -l <single.txt)" -eq 3 ] && ok || bad "single rank: $(cat single.txt)"
ev_run() { # NAME WORLD COMPILE-OPTIONS...
  local name=$1 world=$2; shift 2
  mx_compile "$@" -o "$name"
  { "$mpiexec" -n "$world" "./$name" $only; "$mpiexec" -n "$world" "./$name" $args; } 2>&1 | evals >"$name.txt"
  close single.txt "$name.txt" 3 && ok || { bad "$name: evaluations differ from one rank"; paste single.txt "$name.txt"; }
}
ev_run dp2 2 --micro-batch 1 --num_gpus_per_node 2
ev_run pp2 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --pp_deg 2
ev_run tp2 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2
finish
