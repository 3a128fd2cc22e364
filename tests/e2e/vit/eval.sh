#!/usr/bin/env bash
# eval.sh GVC SRC - WORK - the tiny ViT's evaluation on the digits (docs/data.md: a .gvimg
# dataset takes --split as token data does): --eval_only on the random weights, then 200
# steps evaluated every 100 print the validation loss and accuracy, the accuracy rising
# from chance (about 0.1) by more than 0.3 and the loss falling; --eval_only --load of the
# last checkpoint repeats the last evaluation; validation and test splits are both
# evaluated where --split weighs them; the validation split's shuffle follows --seed (the
# same weights give other losses under another seed); an empty split asked for is refused
# before training with the token data's words.
. "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
export GV_COMM=self
gvm=$src/models/vit.gvm; fx=$src/tests/reference/fixtures/vit_tiny.bin
"$gvc" data --images "$src/tests/data/digits/digits.csv.gz" --shape 1,8,8 --pixel-max 16 -o digits.gvimg --quiet \
  || bad "gvc data"
"$gvc" compile "$gvm" --model vit_tiny --seq 17 --micro-batch 4 -o vit >compile.log 2>&1 || bad "compile: $(cat compile.log)"
# The VALUE after NAME in the lines of a log (one a line).
field() { grep -o "$1 [0-9.]*" | awk '{print $NF}'; }
args="--data digits.gvimg --split 90,10,0 --global_train_batch_size 32 --eval_iters 4"

./vit $args --eval_only >before.log 2>&1
acc0=$(field accuracy <before.log); loss0=$(field "validation loss" <before.log | tail -1)
[ -n "$acc0" ] && grep -q "eval_only (weights of step 0) | validation loss [0-9.]* | accuracy [0-9.]* | 4 batches of 32 samples" \
  before.log && ok || bad "eval_only: $(tail -2 before.log)"
./vit $args --iters 200 --warmup 5 --lr 3e-3 --lr_decay_style constant --eval_interval 100 --log_interval 100 \
  --save ck >train.log 2>&1
accs=$(field val_acc <train.log | tr '\n' ' '); vls=$(field val_loss <train.log | tr '\n' ' ')
[ "$(field val_acc <train.log | wc -l)" -eq 2 ] && grep -q "eval after step 99 | val_loss [0-9.]* | val_acc" train.log \
  && ok || bad "no evaluations after steps 99 and 199: $(grep eval train.log)"
last=$(field val_acc <train.log | tail -1); lastl=$(field val_loss <train.log | tail -1)
awk -v a="$acc0" -v b="$last" -v l0="$loss0" -v l="$lastl" 'BEGIN {exit !(b > a + 0.3 && l < l0)}' && ok \
  || bad "accuracy $acc0 -> $accs, loss $loss0 -> $vls: not learned"
./vit $args --eval_only --load ck >load.log 2>&1
[ "$(field "validation loss" <load.log)" = "$lastl" ] && [ "$(field accuracy <load.log)" = "$last" ] && ok \
  || bad "eval_only --load: $(grep eval_only load.log) after $(grep 'after step 199' train.log)"
./vit --data digits.gvimg --split 80,10,10 --global_train_batch_size 32 --eval_iters 2 --eval_only >both.log 2>&1
grep -q "| validation loss .* | accuracy" both.log && grep -q "| test loss .* | accuracy" both.log && ok \
  || bad "validation and test: $(grep eval both.log)"

# the shuffle follows --seed (the same weights: the fixture's)
for s in 1 2; do ./vit --init_from "$fx" $args --eval_iters 1 --seed $s --eval_only 2>&1 | field "validation loss" >s$s.txt; done
[ -s s1.txt ] && ! cmp -s s1.txt s2.txt && ok || bad "--seed 1 and 2 evaluate the same samples: $(cat s1.txt s2.txt)"

refused() { # WHAT PATTERN COMMAND...
  local what=$1 pat=$2; shift 2
  out=$("$@" 2>&1) && { bad "$what: accepted"; return; }
  echo "$out" | grep -qF -- "$pat" && ok || bad "$what: '$out' does not say '$pat'"
}
refused "an empty validation split" \
  'the validation split (--split 1): digits.gvimg: split 1 of "1" (images 1797..1797) has 0 images' \
  ./vit --data digits.gvimg --split 1 --iters 2 --eval_interval 1 --global_train_batch_size 4
refused "eval_only without validation and test" "--split 1,0,0 gives the validation and test splits no weight" \
  ./vit --data digits.gvimg --split 1,0,0 --eval_only --global_train_batch_size 4
finish
