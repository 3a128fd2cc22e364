#!/usr/bin/env python3
"""count_hf_params.py - the parameter counts of the zoo's mixture-of-experts sizes as
transformers counts them: MixtralForCausalLM built from Mixtral-8x7B's config on the meta
device (no memory), sum of numel over parameters; tests/unit/frontend checks gvc's count
against the number printed here.
  build/hf-venv/bin/python tests/reference/count_hf_params.py     (46702792704)
torch 1.13 has no meta-device context manager: the tensors the modules allocate with
torch.empty are made on the meta device instead."""
import torch
import transformers as tf

_empty = torch.empty


def _meta_empty(*args, **kw):
    kw["device"] = "meta"
    return _empty(*args, **kw)


def main():
    torch.empty = _meta_empty
    cfg = tf.MixtralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                           num_attention_heads=32, num_key_value_heads=8, num_local_experts=8,
                           num_experts_per_tok=2, max_position_embeddings=32768, rope_theta=1e6,
                           tie_word_embeddings=False)
    with tf.modeling_utils.no_init_weights():
        model = tf.MixtralForCausalLM(cfg)
    torch.empty = _empty
    n = sum(p.numel() for p in model.parameters())
    print(f"mixtral_8x7b: {n} parameters (MixtralForCausalLM, meta device)")
    return 0 if n == 46702792704 else 1


if __name__ == "__main__":
    raise SystemExit(main())
