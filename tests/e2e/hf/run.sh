#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - the training binary on the Hugging Face fixtures of every
# family imported by gvc convert (GPT-2, LLaMA, Mistral, Qwen2, BERT, Mixtral, T5, GPT-NeoX,
# Gemma; convert.sh tests the converter alone and each export bit for bit; T5 on padded
# source/target pairs, fixtures/t5_s2s.bin, with its step-0 loss over the real labels within
# 1e-5 relative of transformers', compiled with both lengths at --seq and with the source's
# apart, --src_seq 12 --seq 7): the step-0 logits
# (--init_from the import, --dump) within 1e-5 of transformers' largest logit, the greedy
# ids (--sample_format ids) equal to transformers' (Mixtral: its step-0 loss, with the
# load-balancing term, within 1e-5 of the reference's, and every gradient within 1e-4 of
# autograd's), with the KV cache and with a whole forward per token (--no_kv_cache); a trained checkpoint folder goes out to
# Hugging Face and back in unchanged; --initialize_on_meta 1 without weights and an import
# of another family are refused. Under mpirun, LLaMA as tp2, pp2 and ZeRO-3 dp2 loads the
# import with --initialize_on_meta 1: the same greedy ids (tp2, pp2), the one-rank step-0
# loss (ZeRO-3); the checkpoint each saves exports to Hugging Face whole. T5 generates
# transformers' greedy ids from a source (--sample on an encoder-decoder), at most T of them,
# up to --eos_id, and refuses a source longer than S.
source "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
export GV_COMM=self
check=$HF_CHECK
fx=$src/tests/reference/hf
gvm=$src/tests/e2e/hf/tiny_hf.gvm
ids() { grep "^sample_ids>" | sed 's/^.*| //'; }
gen1() { "$@" --iters 0 --global_train_batch_size 2 --sample 12 --prompt 5,17 --sample_format ids 2>&1; }
gen() { gen1 "$@" | ids; }

for fam in gpt2 llama mistral qwen2 bert mixtral t5 gpt_neox gemma; do
  map=(); [ $fam = mistral ] && map=(--map "$src/models/mistral.hf.map")
  ref=$fx/$fam/ref.bin; shape=(--seq 16 --micro-batch 2); gb=2
  [ $fam = t5 ] && { ref=$fx/../fixtures/t5_s2s.bin; shape=(--seq 12 --micro-batch 3); gb=3; } # sources of 12, targets of 7
  "$gvc" convert "$gvm" --model tiny_$fam "${map[@]}" --from-hf "$fx/$fam" -o $fam.safetensors >$fam.log 2>&1 \
    && "$gvc" compile "$gvm" --model tiny_$fam "${shape[@]}" -o $fam.bin >>$fam.log 2>&1 \
    || { bad "$fam: import or compile: $(tail -2 $fam.log)"; continue; }
  ./$fam.bin --init_from $fam.safetensors --batch_from "$ref" --iters 1 --global_train_batch_size $gb \
    --dump $fam.dump >>$fam.log 2>&1 && "$check" logits $fam.dump "$ref" && ok || bad "$fam: logits"
  if [ $fam = mixtral ] || [ $fam = t5 ]; then
    l=$(losses <$fam.log | head -1)
    "$check" loss "$l" "$ref" && ok || bad "$fam: step-0 loss '$l'"
  fi
  if [ $fam = mixtral ]; then
    "$check" grads $fam.dump "$fx/$fam/ref.bin" && ok || bad "$fam: gradients"
  fi
  if [ $fam != bert ] && [ $fam != t5 ]; then  # encoders and encoder-decoders: logits only
    out=$(gen1 ./$fam.bin --init_from $fam.safetensors --batch_from "$fx/$fam/ref.bin")
    g=$(echo "$out" | ids)
    "$check" greedy "$fx/$fam/ref.bin" $g && echo "$out" | grep -q "tokens/s (KV cache)" && ok \
      || bad "$fam: greedy ids '$g' (KV cache): $out"
    w=$(gen ./$fam.bin --init_from $fam.safetensors --batch_from "$fx/$fam/ref.bin" --no_kv_cache)
    [ -n "$w" ] && [ "$w" = "$g" ] && ok || bad "$fam: the window's greedy ids '$w', the KV cache's '$g'"
  fi
done

# T5 with its two lengths apart (--src_seq 12 --seq 7, the fixture's own: sources padded to
# 12, targets to 7, the cross-attentions 7 x 12): the same logits and step-0 loss
"$gvc" compile "$gvm" --model tiny_t5 --src_seq 12 --seq 7 --micro-batch 3 -o t5_st.bin >t5_st.log 2>&1 \
  && ./t5_st.bin --init_from t5.safetensors --batch_from "$fx/../fixtures/t5_s2s.bin" --iters 1 --global_train_batch_size 3 \
       --dump t5_st.dump >>t5_st.log 2>&1 && "$check" logits t5_st.dump "$fx/../fixtures/t5_s2s.bin" \
  && "$check" loss "$(losses <t5_st.log | head -1)" "$fx/../fixtures/t5_s2s.bin" && ok || bad "t5 --src_seq 12 --seq 7: $(tail -2 t5_st.log)"

# a trained model out: 2 steps from the import, its checkpoint folder exported, imported
# again, and the weights a program starts from are the trained ones, bit for bit
./gpt2.bin --init_from gpt2.safetensors --batch_from "$fx/gpt2/ref.bin" --iters 2 --global_train_batch_size 2 \
  --save ck --dump_params trained.params >train.log 2>&1 \
  && "$gvc" convert "$gvm" --model tiny_gpt2 --load ck --to-hf trained >>train.log 2>&1 \
  && "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf trained -o trained.safetensors >>train.log 2>&1 \
  && ./gpt2.bin --init_from trained.safetensors --batch_from "$fx/gpt2/ref.bin" --iters 0 --global_train_batch_size 2 \
       --dump_params again.params >>train.log 2>&1 \
  && cmp -s trained.params again.params && ! cmp -s trained/model.safetensors "$fx/gpt2/model.safetensors" \
  && ok || bad "checkpoint -> Hugging Face -> gvc: $(tail -3 train.log)"

# refusals
refused() { # WHAT PATTERN COMMAND...
  local what=$1 pat=$2; shift 2
  out=$("$@" 2>&1) && { bad "$what: accepted"; return; }
  echo "$out" | grep -q -- "$pat" && ok || bad "$what: '$out' does not say '$pat'"
}
refused "--initialize_on_meta without weights" "give the weights with --init_from" \
  ./gpt2.bin --initialize_on_meta 1 --batch_from "$fx/gpt2/ref.bin" --iters 1 --global_train_batch_size 2
refused "--init_from missing tensor" "no f32 record 'layers.0.attn.q.bias'" \
  ./qwen2.bin --init_from llama.safetensors --batch_from "$fx/qwen2/ref.bin" --iters 1 --global_train_batch_size 2

# T5 generates (the prompt its source, the decoder from the start id 0, a whole forward a
# token): the fixture's source 21,...,28 ("prompt") continues as transformers' generate did
# ("greedy", 10 ids); with the decoder's 7 positions (--seq 7) the first 7 and a line saying
# so; --eos_id ends after the first end id; a source longer than S (12) is refused
t5gen() { "$1" --init_from t5.safetensors --batch_from "$fx/../fixtures/t5_s2s.bin" --iters 0 --global_train_batch_size 3 \
  --sample 10 --sample_format ids --prompt "${2:-21,21,75,6,49,20,27,19,28}" "${@:3}" 2>&1; }
out=$(t5gen ./t5.bin); g=$(echo "$out" | ids)
"$check" greedy "$fx/../fixtures/t5_s2s.bin" $g && echo "$out" | grep -q "no KV cache for an encoder-decoder" && ok \
  || bad "t5: generated ids '$g': $out"
out=$(t5gen ./t5_st.bin); g7=$(echo "$out" | ids)
[ -n "$g" ] && [ "$g7" = "$(echo $g | cut -d' ' -f1-7)" ] && echo "$out" | grep -q "the decoder has this program's 7 positions" \
  && ok || bad "t5 --seq 7: '$g7' (of '$g'): $out"
e=$(t5gen ./t5.bin "" --eos_id 72 | ids)
[ "$e" = "31 31 72" ] && ok || bad "t5 --eos_id 72: '$e' (all: '$g')"
refused "t5: a source longer than S" "has 13 tokens, more than the program's source length S = 12" \
  t5gen ./t5.bin 1,2,3,4,5,6,7,8,9,10,11,12,13

# any strategy loads the import: LLaMA as tp2 and pp2 under mpirun generate transformers'
# ids; as ZeRO-3 dp2 (which does not sample) its step-0 loss is the one-rank program's
unset GV_COMM
one=$(GV_COMM=self ./llama.bin --init_from llama.safetensors --batch_from "$fx/llama/ref.bin" --iters 1 \
      --global_train_batch_size 2 2>&1 | losses | head -1)
for s in "tp2 2 --num_gpus_per_node 2 --global_tp_deg 2" "pp2 2 --num_gpus_per_node 2 --pp_deg 2 --chunks 1" \
         "zero3 1 --num_gpus_per_node 2 --default_dp_type zero3"; do
  set -- $s; name=$1; mb=$2; shift 2
  "$gvc" compile "$gvm" --model tiny_llama --seq 16 --micro-batch $mb "$@" -o $name.bin >$name.log 2>&1 \
    || { bad "$name: compile: $(tail -2 $name.log)"; continue; }
  run=(timeout 120 "$mpiexec" -n 2 ./$name.bin --initialize_on_meta 1 --init_from llama.safetensors
       --batch_from "$fx/llama/ref.bin")
  if [ $name = zero3 ]; then
    l=$("${run[@]}" --iters 1 --global_train_batch_size 2 2>&1 | losses | head -1)
    echo "$l" > a.txt; echo "$one" > b.txt
    [ -n "$one" ] && close a.txt b.txt 1 && ok || bad "$name: step-0 loss '$l', one rank '$one'"
  else
    g=$(gen "${run[@]}" | head -1)
    "$check" greedy "$fx/llama/ref.bin" $g && ok || bad "$name: greedy ids '$g'"
  fi
  # its checkpoint (one step with --lr 0: the import's values) exports whole, equal to the fixture
  "${run[@]}" --iters 1 --lr 0 --global_train_batch_size 2 --save ck_$name >>$name.log 2>&1 \
    && "$gvc" convert "$gvm" --model tiny_llama --load ck_$name --to-hf out_$name >>$name.log 2>&1 \
    && "$check" same out_$name/model.safetensors "$fx/llama"/model-*.safetensors \
    && ok || bad "$name: checkpoint -> Hugging Face: $(tail -2 $name.log)"
done
finish
