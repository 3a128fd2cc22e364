#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - text generation and evaluation of a training binary:
# --temperature 0 is greedy and equals --top_k 1 at any temperature; a seeded draw
# (--temperature, --top_k, --top_p) repeats with the same --seed; --sample_format ids
# prints the prompt's and the new ids; --eos_id stops at an end id; --tokenizer encodes and decodes a BPE model's text; the
# KV cache gives the ids of a whole forward per token; N tokens even past the sequence length
# (with the cache where the positions allow, and says so); bad sampling options and a text format for a non-byte vocabulary are refused before
# training; --eval_only prints loss and perplexity of the validation and test splits of a
# checkpoint, and an empty split is an error naming it; every rank logs its peak resident
# set beside the plan. Under mpirun: a pp2, a ZeRO-3 and a vocabulary-tp program sample the greedy ids
# of one rank.
source "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
export GV_COMM=self
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 -o tg 2>compile.log \
  && "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 --num_gpus_per_node 2 \
       --pp_deg 2 --chunks 2 -o pp2 2>>compile.log \
  && "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 --num_gpus_per_node 2 \
       --default_dp_type zero3 -o z3 2>>compile.log \
  && "$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 2 --num_gpus_per_node 2 \
       --global_tp_deg 2 --vocab_tp 2 -o vtp 2>>compile.log || { echo "compile failed: $(cat compile.log)"; exit 1; }
for i in $(seq 40); do printf 'fortune number %d: the quick brown fox jumps over the lazy dog\n%%\n' $i; done > fort.txt
"$gvc" data fort.txt -o fort >/dev/null 2>&1 || { echo "gvc data failed"; exit 1; }
./tg --data fort --iters 20 --global_train_batch_size 4 --split 80,10,10 --save ck --quiet >train.log 2>&1 \
  || { echo "training failed: $(tail -3 train.log)"; exit 1; }
gen() { ./tg --data fort --global_train_batch_size 4 --split 80,10,10 --load ck --iters 20 "$@" 2>&1; }
ids() { grep "^sample_ids>" | sed 's/^sample_ids> //'; }
g0=$(gen --sample 12 --sample_format ids | ids)
g1=$(gen --sample 12 --sample_format ids --temperature 1.5 --top_k 1 | ids)
[ -n "$g0" ] && [ "$g0" = "$g1" ] && ok || bad "greedy '$g0' vs --top_k 1 '$g1'"
# vocabulary tp: each rank holds half of every logits row; the rows gathered, the same ids
out=$(GV_COMM=mpi timeout 60 "$mpiexec" -n 2 ./vtp --data fort --global_train_batch_size 4 --split 80,10,10 --load ck \
      --iters 20 --sample 12 --sample_format ids 2>&1 </dev/null)
[ "$(echo "$out" | grep -c "^sample_ids>")" = 1 ] && [ "$(echo "$out" | ids)" = "$g0" ] \
  && ok || bad "vocabulary tp greedy ids ('$g0' on one rank): $out"
# the prompt's ids, then 12 new ones
[ "$(echo "$g0" | cut -d'|' -f1 | xargs)" = "84 104 101 32" ] && [ "$(echo "$g0" | cut -d'|' -f2 | wc -w)" = 12 ] && ok \
  || bad "ids format: '$g0'"
# --eos_id: the new ids up to the first end id (the third greedy id), with the KV cache and without
x=$(echo "$g0" | cut -d'|' -f2 | cut -d' ' -f4)
want=$(echo "$g0" | cut -d'|' -f2 | xargs -n1 | sed "/^$x\$/q" | xargs)
for o in "" --no_kv_cache; do
  e=$(gen --sample 12 --sample_format ids --eos_id "$x" $o | ids | cut -d'|' -f2 | xargs)
  [ -n "$x" ] && [ "$e" = "$want" ] && ok || bad "--eos_id $x $o: '$e', want '$want' (of '$g0')"
done
s1=$(gen --sample 30 --sample_format ids --temperature 1 --top_k 20 --top_p 0.9 --seed 5 | ids)
s2=$(gen --sample 30 --sample_format ids --temperature 1 --top_k 20 --top_p 0.9 --seed 5 | ids)
s3=$(gen --sample 30 --sample_format ids --temperature 1 --seed 6 | ids)
[ -n "$s1" ] && [ "$s1" = "$s2" ] && [ "$s1" != "$g0" ] && ok || bad "seeded draws: '$s1' / '$s2'"
[ -n "$s3" ] && [ "$s3" != "$s1" ] && ok || bad "another seed: $s3"
# text: greedy text is the greedy ids as bytes
t=$(gen --sample 12 | grep "^sample> " | sed 's/^sample> //')
want=$(for i in $(echo "$g0" | tr -d '|'); do printf "\\$(printf %03o $i)"; done)
[ "$t" = "$want" ] && ok || bad "text '$t' vs ids as bytes '$want'"
# past the sequence length (32) of tiny_gpt (64 learned positions): 60 new tokens after a
# 4-token prompt go on with the KV cache; 70 do not fit the positions, so the window is
# cropped to the last 32 tokens (whole forwards), said so
out=$(gen --sample 60 --sample_format ids --prompt 84,104,101,32); rc=$?
[ $rc -eq 0 ] && [ "$(echo "$out" | ids | cut -d'|' -f2 | wc -w)" = 60 ] && echo "$out" | grep -q "(KV cache)" \
  && echo "$out" | grep -q "sampling past this program's sequence length 32 with the KV cache: positions up to 63" \
  && ok || bad "past seq: $out"
out=$(gen --sample 70 --sample_format ids --prompt 84,104,101,32); rc=$?
[ $rc -eq 0 ] && [ "$(echo "$out" | ids | cut -d'|' -f2 | wc -w)" = 70 ] \
  && echo "$out" | grep -q "no KV cache: the model's 64 learned positions hold fewer than the 74 tokens" \
  && echo "$out" | grep -q "sampling 42 tokens past this program's sequence length 32" && ok || bad "past positions: $out"
# the KV cache (decode step) gives the greedy ids of a whole forward per token (--no_kv_cache),
# for learned positions (tiny_gpt) and rope (tiny_llama); rope goes on past the sequence length
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_llama --seq 32 --micro-batch 2 -o tl 2>>compile.log || bad "tiny_llama"
for m in tg tl; do
  f=$src/tests/reference/fixtures/$([ $m = tg ] && echo tiny_gpt || echo tiny_llama).bin
  kv=$(./$m --init_from "$f" --data fort --iters 0 --sample 28 --sample_format ids --prompt 84,104,101,32 2>&1)
  w=$(./$m --init_from "$f" --data fort --iters 0 --sample 28 --sample_format ids --prompt 84,104,101,32 --no_kv_cache 2>&1)
  [ -n "$(echo "$kv" | ids)" ] && [ "$(echo "$kv" | ids)" = "$(echo "$w" | ids)" ] && echo "$kv" | grep -q "(KV cache)" \
    && echo "$w" | grep -q "(a whole forward per token)" && ok || bad "$m: KV cache '$kv' vs window '$w'"
done
# the LLVM route's decode step gives the C route's ids
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_llama --seq 32 --micro-batch 2 --via llvm -o tll 2>>compile.log \
  || bad "tiny_llama --via llvm"
a=$(./tl --init_from "$src/tests/reference/fixtures/tiny_llama.bin" --data fort --iters 0 --sample 20 --sample_format ids 2>&1 | ids)
b=$(./tll --init_from "$src/tests/reference/fixtures/tiny_llama.bin" --data fort --iters 0 --sample 20 --sample_format ids 2>&1 | ids)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "decode step via C '$a', via LLVM '$b'"
out=$(./tl --init_from "$src/tests/reference/fixtures/tiny_llama.bin" --data fort --iters 0 --sample 40 --sample_format ids 2>&1)
[ "$(echo "$out" | ids | cut -d'|' -f2 | wc -w)" = 40 ] && echo "$out" | grep -q "rope positions continue" && ok \
  || bad "rope past the sequence length: $out"
# bad options, refused before any training step
for o in "--temperature -1" "--top_p 0" "--top_p 1.5" "--top_k -2" "--sample_format html"; do
  out=$(./tg --data fort --iters 5 --global_train_batch_size 4 --sample 5 --sample_format ids $o 2>&1); rc=$?
  [ $rc -ne 0 ] && ! echo "$out" | grep -q "step 0/" && ok || bad "$o accepted: $out"
done
# a BPE model: --tokenizer encodes the prompt as gvc data does and decodes the text;
# without it, text is refused before training
tokj="$src/tests/unit/data/fixtures/bpe/tokenizer.json"
"$gvc" compile "$src/tests/e2e/generate/bpe.gvm" --model bpe_gpt --seq 32 --micro-batch 2 -o bg 2>>compile.log \
  && "$gvc" data fort.txt -o fbpe --tokenizer "$tokj" --append-eod >/dev/null 2>&1 && printf 'fortune number' > p.txt \
  && "$gvc" data p.txt -o pbpe --tokenizer "$tokj" >/dev/null 2>&1 || bad "BPE model and data"
want=$("$gvc" data --inspect pbpe --docs 1 | awk '$1 == "0" {print $4, $5, $6, $7, $8, $9, $10, $11}')
bg() { ./bg --data fbpe --iters 10 --global_train_batch_size 4 --quiet --sample 8 --prompt "fortune number" "$@" 2>&1; }
got=$(bg --tokenizer "$tokj" --sample_format ids | ids | cut -d'|' -f1 | cut -d' ' -f1-8)
[ -n "$want" ] && [ "$got" = "$want" ] && ok || bad "BPE prompt ids '$got', gvc data's '$want'"
bg --tokenizer "$tokj" | grep -q "^sample> fortune number" && ok || bad "BPE text: $(bg --tokenizer "$tokj")"
out=$(bg); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "vocabulary has 384 ids, not the byte tokenizer's 256 (+1): give --tokenizer" \
  && ! echo "$out" | grep -q "done:" && ok || bad "BPE model without --tokenizer: $out"
# eval-only: the checkpoint's loss and perplexity on the validation and test splits
out=$(gen --eval_only --eval_iters 2); rc=$?
v=$(echo "$out" | grep -o "validation loss [0-9.]* | perplexity [0-9.]*")
[ $rc -eq 0 ] && [ -n "$v" ] && echo "$out" | grep -q "eval_only (weights of step 20) | test loss [0-9.]* | perplexity" \
  && ! echo "$out" | grep -q "step [0-9]*/" \
  && echo "$v" | awk '{l = $3; p = $6; d = exp(l) - p; if (d < 0) d = -d; exit !(d < 1e-3 * p)}' && ok \
  || bad "eval_only: $out"
out=$(./tg --data fort --eval_only --load ck --global_train_batch_size 4 --split 100,0,0 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "split 100,0,0 gives the validation and test splits no weight" && ok || bad "no splits: $out"
out=$(./tg --data fort --iters 5 --global_train_batch_size 4 --eval_interval 2 --split 1000,1,0 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "the validation split (--split 1000,1,0): fort: split 1" \
  && ! echo "$out" | grep -q "step 0/" && ok || bad "empty validation split: $out"
# the real peak memory beside the plan
out=$(./tg --data fort --iters 1 --global_train_batch_size 4 2>&1)
echo "$out" | grep -q "\[rank 0/1\] gvrt: memory after step 0: peak resident set [1-9][0-9.]* MiB (host, VmHWM); the plan's arenas" \
  && ok || bad "peak memory line: $out"
# pipeline: the pp2 program (no decode step: whole forwards) samples the same greedy ids, and both ranks log their peak
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
one=$(./tg --init_from "$fx" --data fort --iters 0 --sample 12 --sample_format ids 2>&1 | ids)
out=$(GV_COMM=mpi timeout 60 "$mpiexec" -n 2 ./pp2 --init_from "$fx" --data fort --iters 0 --sample 12 \
      --sample_format ids 2>&1 </dev/null)
[ -n "$one" ] && [ "$(echo "$out" | ids)" = "$one" ] && echo "$out" | grep -q "no KV cache: this program has no decode step" \
  && ok || bad "pp2 greedy ids ('$one' on one rank, KV cache), without a cache: $out"
# ZeRO-3 (its weights gathered from both ranks): both run the forwards, one prints the same ids
out=$(GV_COMM=mpi timeout 60 "$mpiexec" -n 2 ./z3 --init_from "$fx" --data fort --iters 0 --sample 12 \
      --sample_format ids 2>&1 </dev/null)
[ "$(echo "$out" | grep -c "^sample_ids>")" = 1 ] && [ "$(echo "$out" | ids)" = "$one" ] \
  && ok || bad "ZeRO-3 greedy ids ('$one' on one rank): $out"
out=$(GV_COMM=mpi timeout 60 "$mpiexec" -n 2 ./pp2 --data fort --global_train_batch_size 4 --iters 1 2>&1 </dev/null)
[ "$(echo "$out" | grep -c "memory after step 0: peak resident set")" = 2 ] && echo "$out" | grep -q "\[rank 1/2\] gvrt: memory after" \
  && ok || bad "pp2 memory lines: $out"
finish
