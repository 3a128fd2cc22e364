#!/usr/bin/env python3
"""hf_param_counts.py - the parameter counts Hugging Face reports for the configurations of
the zoo's T5, GPT-NeoX (Pythia), Gemma and ViT sizes (models/t5.gvm, gpt_neox.gvm, gemma.gvm;
vit.gvm: ViTForImageClassification with 1000 labels, i.e. ViTModel without its pooler plus the
classifier), built with transformers on the meta device (nothing
downloaded, no memory used); tests/unit/frontend checks gvc's counts against these numbers.
  build/hf-venv/bin/python tests/reference/hf_param_counts.py   (GV_SETUP_HF=1 scripts/setup)
"""
import torch
import transformers as tf

# T5ForConditionalGeneration's configs of t5-small, t5-base, t5-large and t5-3b
T5 = {
    "t5_small": dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8),
    "t5_base": dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12),
    "t5_large": dict(d_model=1024, d_kv=64, d_ff=4096, num_layers=24, num_heads=16),
    "t5_3b": dict(d_model=1024, d_kv=128, d_ff=16384, num_layers=24, num_heads=32),
}

# ViTForImageClassification's configs of google/vit-base-patch16-224, vit-large-patch16-224,
# vit-huge-patch14-224-in21k (1000 labels here), and the zoo's test size
VIT = {
    "vit_base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                     patch_size=16),
    "vit_large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                      patch_size=16),
    "vit_huge": dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, intermediate_size=5120,
                     patch_size=14),
    "vit_tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                     patch_size=2, image_size=8, num_channels=1, num_labels=10),
}

# GPTNeoXForCausalLM's configs of EleutherAI/pythia-160m ... pythia-2.8b (vocabulary 50304,
# intermediate 4 x hidden, rotary_pct 0.25, parallel residual, untied embed_out)
PYTHIA = {
    "pythia_160m": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12),
    "pythia_410m": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16),
    "pythia_1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=8),
    "pythia_1_4b": dict(hidden_size=2048, num_hidden_layers=24, num_attention_heads=16),
    "pythia_2_8b": dict(hidden_size=2560, num_hidden_layers=32, num_attention_heads=32),
}

# GemmaForCausalLM's configs of google/gemma-2b and gemma-7b (head_dim 256, tied head)
GEMMA = {
    "gemma_2b": dict(hidden_size=2048, intermediate_size=16384, num_hidden_layers=18, num_attention_heads=8,
                     num_key_value_heads=1),
    "gemma_7b": dict(hidden_size=3072, intermediate_size=24576, num_hidden_layers=28, num_attention_heads=16,
                     num_key_value_heads=16),
}


class meta_params:
    """Parameters made on the meta device (torch 1.13 has no device context; this is what
    accelerate's init_empty_weights does)."""
    def __enter__(self):
        self.old = torch.nn.Module.register_parameter

        def register(module, name, param):
            self.old(module, name, param)
            if param is not None and not param.is_meta:   # a tied (already meta) tensor stays shared
                kw = param.__dict__
                module._parameters[name] = type(param)(module._parameters[name].to("meta"), **kw)
        torch.nn.Module.register_parameter = register

    def __exit__(self, *exc):
        torch.nn.Module.register_parameter = self.old


def count(cls, cfg):
    with meta_params():
        model = cls(cfg)
    assert all(p.is_meta for p in model.parameters())
    return sum(p.numel() for p in model.parameters())   # tied tensors once


def main():
    for size, kw in T5.items():
        cfg = tf.T5Config(vocab_size=32128, relative_attention_num_buckets=32, relative_attention_max_distance=128,
                          feed_forward_proj="relu", tie_word_embeddings=True, **kw)
        print(f"models/t5.gvm {size} {count(tf.T5ForConditionalGeneration, cfg)}")
    for size, kw in VIT.items():
        kw = dict(dict(image_size=224, num_channels=3, num_labels=1000, qkv_bias=True, layer_norm_eps=1e-12), **kw)
        print(f"models/vit.gvm {size} {count(tf.ViTForImageClassification, tf.ViTConfig(**kw))}")
    for size, kw in PYTHIA.items():
        cfg = tf.GPTNeoXConfig(vocab_size=50304, intermediate_size=4 * kw["hidden_size"], rotary_pct=0.25,
                               max_position_embeddings=2048, use_parallel_residual=True, hidden_act="gelu",
                               tie_word_embeddings=False, **kw)
        print(f"models/gpt_neox.gvm {size} {count(tf.GPTNeoXForCausalLM, cfg)}")
    for size, kw in GEMMA.items():
        cfg = tf.GemmaConfig(vocab_size=256000, head_dim=256, max_position_embeddings=8192, rms_norm_eps=1e-6,
                             hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, **kw)
        print(f"models/gemma.gvm {size} {count(tf.GemmaForCausalLM, cfg)}")


if __name__ == "__main__":
    main()
