#!/usr/bin/env bash
# convert.sh GVC SRC - WORK - gvc convert alone (no training binary, no MPI: it also runs
# in the sanitizer build) on the Hugging Face fixtures of every family (tests/reference/hf:
# GPT-2, LLaMA in three shards, Mistral in bf16, Qwen2, BERT, Mixtral's experts stacked, T5,
# GPT-NeoX's per-head query_key_value, Gemma): --from-hf then --to-hf gives
# the fixture's tensors bit for bit; --dtype bf16; GPT2Model's and BertForMaskedLM's names;
# a tied folder without lm_head.weight. Refused, each naming what is wrong: a config.json
# field that disagrees with the size (with the size line it describes), a damaged
# safetensors file, a missing tensor, another family's folder, a bad or mistyped mapping
# file, a folder that is no checkpoint, an unknown --dtype.
source "$(dirname "$0")/../e2e_lib.sh"
rm -rf ./*
export GV_COMM=self
check=$HF_CHECK
fx=$src/tests/reference/hf
gvm=$src/tests/e2e/hf/tiny_hf.gvm

for fam in gpt2 llama mistral qwen2 bert mixtral t5 gpt_neox gemma; do
  map=(); [ $fam = mistral ] && map=(--map "$src/models/mistral.hf.map")
  "$gvc" convert "$gvm" --model tiny_$fam "${map[@]}" --from-hf "$fx/$fam" -o $fam.safetensors >$fam.log 2>&1 \
    && "$gvc" convert "$gvm" --model tiny_$fam "${map[@]}" --load $fam.safetensors --to-hf out_$fam >>$fam.log 2>&1 \
    && "$check" same out_$fam/model.safetensors "$fx/$fam"/model*.safetensors && ok || bad "$fam: $(tail -2 $fam.log)"
  grep -q '"architectures"' out_$fam/config.json && ok || bad "$fam: exported config.json"
done

# --dtype bf16: Mistral's bf16 fixture out again as bf16, the same values, half the size
"$gvc" convert "$gvm" --model tiny_mistral --map "$src/models/mistral.hf.map" --load mistral.safetensors \
  --to-hf out_bf16 --dtype bf16 >/dev/null && "$check" same out_bf16/model.safetensors "$fx/mistral/model.safetensors" \
  && head -c 400 out_bf16/model.safetensors | grep -q '"BF16"' && grep -q '"bfloat16"' out_bf16/config.json \
  && [ $(stat -c %s out_bf16/model.safetensors) -lt $(($(stat -c %s out_mistral/model.safetensors) * 6 / 10)) ] \
  && ok || bad "--dtype bf16"

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
refused "cut header" "cut/model.safetensors: field 'header length' is .* past the end of the file" \
  "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf cut -o x.safetensors
mkdir -p shard && cp "$fx/llama/config.json" shard/ && cp "$fx/llama/model-00001-of-00003.safetensors" shard/model.safetensors
refused "missing tensor" "shard: no tensor .model.layers." "$gvc" convert "$gvm" --model tiny_llama --from-hf shard -o x.safetensors
refused "llama weights as gpt2" "field 'model_type' is \"llama\"" \
  "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf "$fx/llama" -o x.safetensors
refused "--dtype f16" "option --dtype 'f16': expected f32 or bf16" \
  "$gvc" convert "$gvm" --model tiny_gpt2 --from-hf "$fx/gpt2" -o x.safetensors --dtype f16
refused "not a checkpoint" "nock/latest: not a checkpoint index" \
  bash -c "mkdir -p nock && '$gvc' convert '$gvm' --model tiny_gpt2 --load nock --to-hf x"
printf 'architecture X\nconfig n_embd = hiddn\n' > typo.map
refused "a hyper-parameter the model lacks" "typo.map:2: error: the model 'gpt2_family' has no hyper-parameter 'hiddn'" \
  "$gvc" convert "$gvm" --model tiny_gpt2 --map typo.map --from-hf "$fx/gpt2" -o x.safetensors
mkdir -p pct && cp "$fx/gpt_neox/model.safetensors" pct/ && sed 's/"rotary_pct": 0.25/"rotary_pct": 0.5/' "$fx/gpt_neox/config.json" > pct/config.json
refused "rotary_pct" "field 'rotary_pct' is 0.5" "$gvc" convert "$gvm" --model tiny_gpt_neox --from-hf pct -o x.safetensors
mkdir -p hdim && cp "$fx/gemma/model.safetensors" hdim/ && sed 's/"head_dim": 16/"head_dim": 8/' "$fx/gemma/config.json" > hdim/config.json
refused "head_dim" "field 'head_dim' is 8, the size 'tiny_gemma' has head_dim = 16" \
  "$gvc" convert "$gvm" --model tiny_gemma --from-hf hdim -o x.safetensors
printf 'architecture X\ntensor a b = c split 1 groups heads\n' > groups.map
refused "groups with split 1" "groups.map:2: error: .groups HYPER. goes with .split 0. and no transpose" \
  "$gvc" convert "$gvm" --model tiny_gpt_neox --map groups.map --from-hf "$fx/gpt_neox" -o x.safetensors
printf 'architecture X\ntensor a b = c transpose\n' > bad.map
refused "a bad mapping" "bad.map:2: error: several gvc tensors need .split D." \
  "$gvc" convert "$gvm" --model tiny_gpt2 --map bad.map --from-hf "$fx/gpt2" -o x.safetensors

finish
