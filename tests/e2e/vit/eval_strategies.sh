#!/usr/bin/env bash
# eval_strategies.sh GVC SRC MPIEXEC WORK - the tiny ViT's evaluations on the digits'
# validation split under data parallelism, a pipeline, tensor parallelism with the classifier
# split by vocabulary, and pp x tp equal one rank's: the losses to 1e-5 relative, the
# accuracies exactly (every rank reads each split in one seeded order). Twice: --eval_only
# on weights trained on one rank (150 steps: an accuracy far from chance), and the
# evaluations every 2 steps of a 4-step training.
. "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
"$gvc" data --images "$src/tests/data/digits/digits.csv.gz" --shape 1,8,8 --pixel-max 16 -o digits.gvimg --quiet \
  || bad "gvc data"
args="--data digits.gvimg --iters 4 --eval_interval 2 --eval_iters 2 --global_train_batch_size 8 --lr 3e-3"
only="--data digits.gvimg --split 90,10,0 --eval_only --eval_iters 2 --global_train_batch_size 32 --init_from w.params"
# The evaluations of a log: "loss accuracy", one a line.
evals() { sed -n 's/.*val_loss \([0-9.]*\) | val_acc \([0-9.]*\).*/\1 \2/p; s/.*validation loss \([0-9.]*\) | accuracy \([0-9.]*\).*/\1 \2/p'; }
mx_gvm=$src/models/vit.gvm mx_model=vit_tiny mx_seq=17
mx_compile --micro-batch 2 -o single
export GV_COMM=self
./single --data digits.gvimg --split 90,10,0 --iters 150 --warmup 5 --lr 3e-3 --lr_decay_style constant \
  --global_train_batch_size 32 --dump_params w.params >trained.log 2>&1 || bad "training: $(tail -2 trained.log)"
{ ./single $only; ./single $args; } 2>&1 | evals >single.txt
unset GV_COMM
awk 'NR == 1 {exit !($2 > 0.3)}' single.txt && [ "$(wc -l <single.txt)" -eq 3 ] && ok \
  || bad "single rank: $(cat single.txt) (the trained weights' accuracy above 0.3, then 2 evaluations)"
ev_run() { # NAME WORLD COMPILE-OPTIONS...
  local name=$1 world=$2; shift 2
  mx_compile "$@" -o "$name"
  { "$mpiexec" -n "$world" "./$name" $only; "$mpiexec" -n "$world" "./$name" $args; } 2>&1 | evals >"$name.txt"
  paste -d' ' single.txt "$name.txt" | awk '{d = $1 - $3; if (d < 0) d = -d; if (d > 1e-5 * $1 || $2 != $4) bad++}
    END {exit bad > 0 || NR != 3}' && ok || { bad "$name: evaluations differ from one rank"; paste single.txt "$name.txt"; }
}
ev_run dp2 2 --micro-batch 2 --num_gpus_per_node 2
ev_run pp2 2 --micro-batch 1 --chunks 4 --num_gpus_per_node 2 --pp_deg 2
ev_run tp2_vtp 2 --micro-batch 2 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --vocab_tp 2
ev_run pp2_tp2 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 2 --global_tp_deg 2
finish
