#!/usr/bin/env python3
"""gen_hf_fixtures.py - small random Hugging Face models of each family gvc converts
(GPT-2, LLaMA, Mistral, Qwen2, BERT, Mixtral, T5, GPT-NeoX, Gemma), built with `transformers` from a config (nothing
downloaded), saved with save_pretrained, and their outputs for gvc's tests.

For each family F it writes tests/reference/hf/F/:
  config.json, model.safetensors (or shards + model.safetensors.index.json: llama),
    as save_pretrained writes them (mistral in bf16, the others f32);
  ref.bin, a named-tensor file in gen_fixtures.py's format (magic "GVRF"): header
    [2] family (1 gpt2, 2 llama, 3 mistral, 4 qwen2, 5 bert, 6 t5 and mixtral, 7 gpt_neox,
    8 gemma), [3] V, [4] C, [5] L, [6] H,
    [7] KV, [8] F, [9] positions, [10] B, [11] T, [13] record count; records
    "tokens" i32 [B,T], "labels" i32 [B,T] (the next tokens), "logits" f32 [B,T,V]
    (computed in float64 from the saved weights, reloaded with from_pretrained),
    "prompt" i32 [P], "greedy" i32 [N] (argmax continuation, one full forward per token,
    causal families only), "margin" f64 [1] (the smallest top-1 minus top-2 logit gap of
    the greedy steps: how far from a tie the reference is).
    Mixtral (family 6) adds "router_ids" i32 [L, B*T, k] (each layer's top-k experts of the
    batch's tokens), "router_margin" f64 [1] (the smallest gap between a token's k-th and
    (k+1)-th router logit: how far from a tie the routing is), "loss" f64 [1] (the
    cross-entropy plus router_aux_loss_coef times the sum over layers of each layer's
    load-balancing loss, gvc's definition) and "hf_loss" f64 [1] (transformers' own loss,
    whose auxiliary term pools the layers' router logits before the product: equal to
    gvc's for one layer only), and "grad/NAME" f32 [rows, cols] for every parameter: the
    gradient of "loss" (autograd in float64) under gvc's name and layout.
Every weight is perturbed from transformers' init (biases and norms not 0/1), so a
transposed or misplaced tensor changes the logits.

Needs torch and transformers (scripts/setup with GV_SETUP_HF=1 makes a venv with both):
  build/hf-venv/bin/python tests/reference/gen_hf_fixtures.py [outdir] [--only FAMILY]
  build/hf-venv/bin/python tests/reference/gen_hf_fixtures.py --check   (regenerate, compare)
  build/hf-venv/bin/python tests/reference/gen_hf_fixtures.py --load-check DIR FAMILY
      (from_pretrained on a folder gvc exported; prints the max logit difference to ref.bin)
"""
import os
import struct
import sys
import tempfile

import torch
import transformers as tf

V, C, L, H, B, T = 96, 32, 2, 4, 2, 16
PROMPT, NEW = [5, 17], 12
FAMILIES = {
    "gpt2": (1, lambda: tf.GPT2LMHeadModel(tf.GPT2Config(
        vocab_size=V, n_embd=C, n_layer=L, n_head=H, n_positions=32, bos_token_id=0, eos_token_id=0))),
    "llama": (2, lambda: tf.LlamaForCausalLM(tf.LlamaConfig(
        vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=2,
        intermediate_size=64, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0))),
    "mistral": (3, lambda: tf.MistralForCausalLM(tf.MistralConfig(
        vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=2,
        intermediate_size=64, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=1e6,
        sliding_window=4096))),
    "qwen2": (4, lambda: tf.Qwen2ForCausalLM(tf.Qwen2Config(
        vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=2,
        intermediate_size=64, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=1e6,
        tie_word_embeddings=False))),
    "mixtral": (6, lambda: tf.MixtralForCausalLM(tf.MixtralConfig(
        vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=2,
        intermediate_size=48, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=1e6,
        num_local_experts=4, num_experts_per_tok=2, router_aux_loss_coef=0.02, sliding_window=None))),
    "bert": (5, lambda: tf.BertModel(tf.BertConfig(
        vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=H, intermediate_size=128,
        max_position_embeddings=32, type_vocab_size=2, layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0), add_pooling_layer=False)),
    "t5": (6, lambda: tf.T5ForConditionalGeneration(tf.T5Config(
        vocab_size=V, d_model=C, d_kv=8, d_ff=64, num_layers=L, num_heads=H, relative_attention_num_buckets=8,
        relative_attention_max_distance=16, dropout_rate=0.0, feed_forward_proj="relu", tie_word_embeddings=True,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))),
    "gpt_neox": (7, lambda: tf.GPTNeoXForCausalLM(tf.GPTNeoXConfig(
        vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=H, intermediate_size=128,
        max_position_embeddings=64, rotary_pct=0.25, rotary_emb_base=10000, layer_norm_eps=1e-5,
        use_parallel_residual=True, hidden_act="gelu", tie_word_embeddings=False, bos_token_id=0, eos_token_id=0))),
    "gemma": (8, lambda: tf.GemmaForCausalLM(tf.GemmaConfig(
        vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=2,
        head_dim=16, intermediate_size=64, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
        hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, pad_token_id=0, bos_token_id=0,
        eos_token_id=0))),
}
KV = {"gpt2": 4, "llama": 2, "mistral": 2, "qwen2": 2, "bert": 4, "mixtral": 2, "t5": 4, "gpt_neox": 4, "gemma": 2}
FFN = {"gpt2": 128, "llama": 64, "mistral": 64, "qwen2": 64, "bert": 128, "mixtral": 48, "t5": 64, "gpt_neox": 128,
       "gemma": 64}
POS = {"gpt2": 32, "llama": 64, "mistral": 64, "qwen2": 64, "bert": 32, "mixtral": 64, "t5": 0, "gpt_neox": 64,
       "gemma": 64}
CAUSAL_LM = ("gpt2", "llama", "mistral", "qwen2", "mixtral", "gpt_neox", "gemma")   # those with greedy ids


def perturb(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                base = 1.0 if ("norm" in name.lower() or "ln" in name) and name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.08 * torch.randn(p.shape, generator=gen))


def logits_of(family, model, ids):
    if family == "bert":
        h = model(input_ids=ids).last_hidden_state
        return h @ model.embeddings.word_embeddings.weight.T
    if family == "t5":   # gvc's T5 reads the same tokens in both stacks
        return model(input_ids=ids, decoder_input_ids=ids).logits
    return model(input_ids=ids).logits


def greedy(family, model):
    seq, margin = list(PROMPT), float("inf")
    for _ in range(NEW):
        row = logits_of(family, model, torch.tensor([seq]))[0, -1]
        top = torch.topk(row, 2).values
        margin = min(margin, float(top[0] - top[1]))
        seq.append(int(torch.argmax(row)))
    return seq[len(PROMPT):], margin


def record(name, dtype, arr_shape, data):
    code, fmt = {"f32": (0, "f"), "f64": (1, "d"), "i32": (2, "i")}[dtype]
    out = struct.pack("<i", len(name)) + name.encode() + struct.pack("<ii", code, len(arr_shape))
    out += struct.pack("<%di" % len(arr_shape), *arr_shape)
    return out + struct.pack("<%d%s" % (len(data), fmt), *data)


def gvc_grads(model):
    """Each parameter's gradient under gvc's name and layout (the experts stacked)."""
    pairs = [("embedding.weight", "model.embed_tokens.weight"), ("final_norm.weight", "model.norm.weight"),
             ("head.weight", "lm_head.weight")]
    for i in range(L):
        h = f"model.layers.{i}."
        pairs += [(f"layers.{i}.ln1.weight", h + "input_layernorm.weight"),
                  (f"layers.{i}.ln2.weight", h + "post_attention_layernorm.weight"),
                  (f"layers.{i}.moe.router.weight", h + "block_sparse_moe.gate.weight")]
        pairs += [(f"layers.{i}.attn.{m}.weight", h + f"self_attn.{m}_proj.weight") for m in "qkvo"]
    named = dict(model.named_parameters())
    out = [(g, named[n].grad) for g, n in pairs]
    for i in range(L):
        experts = model.model.layers[i].block_sparse_moe.experts
        for g, w in (("gate", "w1"), ("up", "w3"), ("down", "w2")):
            out.append((f"layers.{i}.moe.{g}.weight", torch.stack([getattr(e, w).weight.grad for e in experts])))
    return [record("grad/" + g, "f32", [t.numel() // t.shape[-1], t.shape[-1]], t.float().flatten().tolist())
            for g, t in out]


def moe_records(model, tokens):
    """Mixtral: the router's choices, the loss with the load-balancing term per layer and the
    gradients of that loss (autograd)."""
    cfg = model.config
    k, E = cfg.num_experts_per_tok, cfg.num_local_experts
    model.zero_grad()
    out = model(input_ids=tokens[:, :T], labels=tokens[:, :T], output_router_logits=True)
    logits = out.logits
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), tokens[:, 1:].reshape(-1))
    ids, aux, margin = [], 0.0, float("inf")
    for rl in out.router_logits:                        # [B*T, E] per layer
        probs = torch.softmax(rl, -1)
        top = torch.topk(rl, k + 1 if k < E else k, -1)
        if k < E:
            margin = min(margin, float((top.values[:, k - 1] - top.values[:, k]).min()))
        sel = top.indices[:, :k]
        ids += sel.flatten().tolist()
        mask = torch.nn.functional.one_hot(sel, E).to(probs.dtype)
        aux = aux + E * (mask.mean(0) * probs.mean(0).unsqueeze(0)).sum()
    loss = ce + cfg.router_aux_loss_coef * aux
    loss.backward()
    # transformers' loss: the labels shifted inside, so its cross-entropy drops the last token
    return [record("router_ids", "i32", [L, B * T, k], ids),
            record("router_margin", "f64", [1], [margin]),
            record("loss", "f64", [1], [float(loss)]),
            record("hf_loss", "f64", [1], [float(out.loss)])] + gvc_grads(model)


def reference(family, model_dir):
    code = FAMILIES[family][0]
    cls = {"bert": tf.BertModel, "t5": tf.T5ForConditionalGeneration}.get(family, tf.AutoModelForCausalLM)
    kw = {"add_pooling_layer": False} if family == "bert" else {}
    model = cls.from_pretrained(model_dir, torch_dtype=torch.float64, **kw).eval()
    gen = torch.Generator().manual_seed(1234 + code)
    tokens = torch.randint(0, V, (B, T + 1), generator=gen)
    torch.set_default_dtype(torch.float64)  # (Mistral builds its mask in the default dtype)
    with torch.no_grad():
        lg = logits_of(family, model, tokens[:, :T])
        new, margin = greedy(family, model) if family in CAUSAL_LM else ([], float("inf"))
    extra = moe_records(model, tokens) if family == "mixtral" else []
    torch.set_default_dtype(torch.float32)
    recs = [record("tokens", "i32", [B, T], tokens[:, :T].flatten().tolist()),
            record("labels", "i32", [B, T], tokens[:, 1:].flatten().tolist()),
            record("logits", "f32", [B, T, V], lg.float().flatten().tolist()),
            record("prompt", "i32", [len(PROMPT)], PROMPT)]
    if new:
        recs.append(record("greedy", "i32", [len(new)], new))
    recs.append(record("margin", "f64", [1], [min(margin, 1e9)]))
    recs += extra
    header = [0] * 64
    header[:14] = [0x46525647, 1, code, V, C, L, H, KV[family], FFN[family], POS[family], B, T, 0, len(recs)]
    return struct.pack("<64i", *header) + b"".join(recs), lg, margin


def build(family, outdir):
    code, make = FAMILIES[family]
    torch.manual_seed(code)
    model = make().eval()
    perturb(model, torch.Generator().manual_seed(100 + code))
    d = os.path.join(outdir, family)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("model") or f == "config.json":
            os.remove(os.path.join(d, f))
    if family == "mistral":
        model = model.to(torch.bfloat16)
    shard = "48KB" if family == "llama" else "10GB"
    model.save_pretrained(d, safe_serialization=True, max_shard_size=shard)
    gc = os.path.join(d, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)
    ref, _, margin = reference(family, d)
    with open(os.path.join(d, "ref.bin"), "wb") as f:
        f.write(ref)
    print(f"{family}: {sum(p.numel() for p in model.parameters())} parameters, greedy margin {margin:.3g}")


def load_check(folder, family):
    """from_pretrained on a folder gvc exported; its logits against the committed ref.bin."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf", family)
    ref, lg, _ = reference(family, folder)
    refc, lgc, _ = reference(family, here)
    err = float((lg - lgc).abs().max() / lgc.abs().max())
    print(f"{family}: {folder} loads with from_pretrained; logits differ by {err:.3g} of the max")
    return 0 if err <= 1e-6 else 1


def main():
    args = sys.argv[1:]
    if args and args[0] == "--load-check":
        return load_check(args[1], args[2])
    check = bool(args) and args[0] == "--check"
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf")
    outdir = tempfile.mkdtemp(prefix="gvc_hf_") if check else (args[0] if args else here)
    torch.set_num_threads(1)
    only = args[args.index("--only") + 1] if "--only" in args else None
    if args and args[0] == "--only":
        outdir = here
    for family in FAMILIES:
        if only is None or family == only:
            build(family, outdir)
    print(f"written to {outdir}")
    if not check:
        return 0
    bad = 0
    for family in FAMILIES:
        for f in sorted(os.listdir(os.path.join(here, family))):
            a = open(os.path.join(here, family, f), "rb").read()
            b = open(os.path.join(outdir, family, f), "rb").read()
            if a != b:
                print(f"differs: {family}/{f}")
                bad = 1
    print("the fixtures regenerate byte for byte" if not bad else "the fixtures differ")
    return bad


if __name__ == "__main__":
    sys.exit(main())
