#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - gvc convert on the Hugging Face fixtures of every family
# (tests/reference/hf: GPT-2, LLaMA in three shards, Mistral in bf16, Qwen2, BERT):
# --from-hf, then the training binary's step-0 logits (--init_from the import, --dump)
# within 1e-5 of transformers' largest logit, its greedy ids (--sample_format ids) equal
# to transformers'; --to-hf of the import gives the fixture's tensors bit for bit; a
# trained checkpoint folder goes out and back in unchanged. Refused: a config.json field
# that disagrees with the size, a damaged safetensors file, a missing tensor, a bad
# mapping file, a folder that is no checkpoint, --initialize_on_meta 1 without weights.
# Under mpirun, LLaMA as tp2, pp2 and ZeRO-3 dp2 loads the import with --initialize_on_meta 1:
# the same greedy ids (tp2, pp2), the one-rank step-0 loss (ZeRO-3).
source "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
export GV_COMM=self
check=$HF_CHECK
fx=$src/tests/reference/hf
gvm=$src/tests/e2e/hf/tiny_hf.gvm
ids() { grep "^sample_ids>" | sed 's/^.*| //'; }
gen() { "$@" --iters 0 --global_train_batch_size 2 --sample 12 --prompt 5,17 --sample_format ids 2>&1 | ids; }

for fam in gpt2 llama mistral qwen2 bert; do
  map=(); [ $fam = mistral ] && map=(--map "$src/models/mistral.hf.map")
  "$gvc" convert "$gvm" --model tiny_$fam "${map[@]}" --from-hf "$fx/$fam" -o $fam.safetensors >$fam.log 2>&1 \
    && "$gvc" compile "$gvm" --model tiny_$fam --seq 16 --micro-batch 2 -o $fam.bin >>$fam.log 2>&1 \
    || { bad "$fam: import or compile: $(tail -2 $fam.log)"; continue; }
  ./$fam.bin --init_from $fam.safetensors --batch_from "$fx/$fam/ref.bin" --iters 1 --global_train_batch_size 2 \
    --dump $fam.dump >>$fam.log 2>&1 && "$check" logits $fam.dump "$fx/$fam/ref.bin" && ok || bad "$fam: logits"
  if [ $fam != bert ]; then
    g=$(gen ./$fam.bin --init_from $fam.safetensors --batch_from "$fx/$fam/ref.bin")
    "$check" greedy "$fx/$fam/ref.bin" $g && ok || bad "$fam: greedy ids '$g'"
  fi
  "$gvc" convert "$gvm" --model tiny_$fam "${map[@]}" --load $fam.safetensors --to-hf out_$fam >>$fam.log 2>&1 \
    && "$check" same out_$fam/model.safetensors "$fx/$fam"/model*.safetensors && ok || bad "$fam: export"
  grep -q '"architectures"' out_$fam/config.json && ok || bad "$fam: exported config.json"
done

# --dtype bf16: Mistral's bf16 fixture out again as bf16, the same values, half the size
"$gvc" convert "$gvm" --model tiny_mistral --map "$src/models/mistral.hf.map" --load mistral.safetensors \
  --to-hf out_bf16 --dtype bf16 >/dev/null && "$check" same out_bf16/model.safetensors "$fx/mistral/model.safetensors" \
  && head -c 400 out_bf16/model.safetensors | grep -q '"BF16"' && grep -q '"bfloat16"' out_bf16/config.json \
  && [ $(stat -c %s out_bf16/model.safetensors) -lt $(($(stat -c %s out_mistral/model.safetensors) * 6 / 10)) ] \
  && ok || bad "--dtype bf16"

# a trained model out: 2 steps from the import, its checkpoint folder exported, imported
# again, and the weights a program starts from are the trained ones, bit for bit
./gpt2.bin --init_from gpt2.safetensors --batch_from "$fx/gpt2/ref.bin" --iters 2 --global_train_batch_size 2 \
  --save ck --dump_params trained.params >train.log 2>&1 \
  && "$gvc" convert "$gvm" --model tiny_gpt2 --load ck --to-hf trained >>train.log 2>&1 \
  && "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf trained -o trained.safetensors >>train.log 2>&1 \
  && ./gpt2.bin --init_from trained.safetensors --batch_from "$fx/gpt2/ref.bin" --iters 0 --global_train_batch_size 2 \
       --dump_params again.params >>train.log 2>&1 \
  && cmp -s trained.params again.params && ! cmp -s trained/model.safetensors out_gpt2/model.safetensors \
  && ok || bad "checkpoint -> Hugging Face -> gvc: $(tail -3 train.log)"

# other classes' names: GPT2Model's (no "transformer."), BertForMaskedLM's ("bert."): the
# same import
mkdir -p g2model bertmlm && cp "$fx/gpt2/config.json" g2model/ && cp "$fx/bert/config.json" bertmlm/
"$check" rename "$fx/gpt2/model.safetensors" g2model/model.safetensors transformer. - >/dev/null \
  && "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf g2model -o g2model.safetensors >/dev/null \
  && "$check" same g2model.safetensors gpt2.safetensors && ok || bad "GPT2Model names"
"$check" rename "$fx/bert/model.safetensors" bertmlm/model.safetensors - bert. >/dev/null \
  && "$gvc" convert "$gvm" --model tiny_bert --from-hf bertmlm -o bertmlm.safetensors >/dev/null \
  && "$check" same bertmlm.safetensors bert.safetensors && ok || bad "BertForMaskedLM names"

# a LLaMA saved with tied embeddings has no lm_head.weight: the head is the embedding
mkdir -p tied && cp "$fx/qwen2/config.json" tied/ \
  && "$check" rename "$fx/qwen2/model.safetensors" tied/model.safetensors lm_head. DROP >/dev/null \
  && "$gvc" convert "$gvm" --model tiny_qwen2 --from-hf tied -o tied.safetensors >/dev/null \
  && "$check" tensor tied.safetensors head.weight "$fx/qwen2/model.safetensors" model.embed_tokens.weight \
  && ok || bad "tied embeddings"

# refusals, each naming what is wrong
refused() { # WHAT PATTERN COMMAND...
  local what=$1 pat=$2; shift 2
  out=$("$@" 2>&1) && { bad "$what: accepted"; return; }
  echo "$out" | grep -q -- "$pat" && ok || bad "$what: '$out' does not say '$pat'"
}
mkdir -p heads && cp "$fx/gpt2/model.safetensors" heads/ && sed 's/"n_head": 4/"n_head": 8/' "$fx/gpt2/config.json" > heads/config.json
refused "n_head 8" "heads/config.json: field 'n_head' is 8, the size 'tiny_gpt2' has heads = 4" \
  "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf heads -o x.safetensors
refused "n_head 8: the size it describes" "size NAME = gpt2_family(vocab = 96, hidden = 32, layers = 2, heads = 8, " \
  "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf heads -o x.safetensors
mkdir -p rope && cp "$fx/qwen2/model.safetensors" rope/ && sed 's/"rope_theta": 1000000.0/"rope_theta": 10000.0/' "$fx/qwen2/config.json" > rope/config.json
refused "rope_theta" "field 'rope_theta' is 10000" "$gvc" convert "$gvm" --model tiny_qwen2 --from-hf rope -o x.safetensors
mkdir -p cut && cp "$fx/gpt2/config.json" cut/ && head -c 20000 "$fx/gpt2/model.safetensors" > cut/model.safetensors
refused "truncated safetensors" "cut/model.safetensors: tensor '.*'.*past the end" \
  "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf cut -o x.safetensors
head -c 2000 "$fx/gpt2/model.safetensors" > cut/model.safetensors
refused "cut header" "cut/model.safetensors: header length .* past the end of the file" \
  "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf cut -o x.safetensors
mkdir -p shard && cp "$fx/llama/config.json" shard/ && cp "$fx/llama/model-00001-of-00003.safetensors" shard/model.safetensors
refused "missing tensor" "shard: no tensor .model.layers." "$gvc" convert "$gvm" --model tiny_llama --from-hf shard -o x.safetensors
refused "llama weights as gpt2" "field 'model_type' is \"llama\"" \
  "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf "$fx/llama" -o x.safetensors
refused "--initialize_on_meta without weights" "give the weights with --init_from" \
  ./gpt2.bin --initialize_on_meta 1 --batch_from "$fx/gpt2/ref.bin" --iters 1 --global_train_batch_size 2
refused "--dtype f16" "option --dtype 'f16': expected f32 or bf16" \
  "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf "$fx/gpt2" -o x.safetensors --dtype f16
refused "not a checkpoint" "nock/latest: not a checkpoint index" \
  bash -c "mkdir -p nock && '$gvc' convert '$gvm' --model tiny_gpt2 --load nock --to-hf x"
printf 'architecture X\nconfig n_embd = hiddn\n' > typo.map
refused "a hyper-parameter the model lacks" "typo.map:2: error: the model 'gpt2_family' has no hyper-parameter 'hiddn'" \
  "$gvc" convert "$gvm" --model tiny_gpt2 --map typo.map --from-hf "$fx/gpt2" -o x.safetensors
printf 'architecture X\ntensor a b = c transpose\n' > bad.map
refused "a bad mapping" "bad.map:2: error: several gvc tensors need .split D." \
  "$gvc" convert "$gvm" --model tiny_gpt2 --map bad.map --from-hf "$fx/gpt2" -o x.safetensors
refused "--init_from missing tensor" "no f32 record 'layers.0.attn.q.bias'" \
  ./qwen2.bin --init_from llama.safetensors --batch_from "$fx/qwen2/ref.bin" --iters 1 --global_train_batch_size 2

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
done
finish
