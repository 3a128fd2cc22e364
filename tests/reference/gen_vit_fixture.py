#!/usr/bin/env python3
"""gen_vit_fixture.py - a small random Hugging Face ViTForImageClassification with the
configuration of models/vit.gvm's vit_tiny (8x8 grey images, 2x2 patches, hidden 32, 2
layers, 4 heads, ffn 128, 10 classes, LayerNorm eps 1e-12, exact GELU), its weights under
gvc's parameter names, and its logits on the first micro-batch a training program with
--seed 1234 --data digits.gvimg --split 1 draws (tests/e2e/vit checks gvc's against them).
  build/hf-venv/bin/python tests/reference/gen_vit_fixture.py [--check]   (GV_SETUP_HF=1 scripts/setup)

The images are tests/data/digits/digits.csv.gz as `gvc data --images --pixel-max 16` stores
them (round(v * 255 / 16) as u8), in the order of the runtime's shuffle (numpy's
RandomState(seed).shuffle of 0..count-1: split 0 of --split 1 is every image), normalised as the runtime feeds them (x / 127.5 - 1,
ViTImageProcessor's mean and std 0.5). Writes tests/reference/fixtures/vit_tiny.bin
(gen_t5_ops.py's format, magic "GVRF"): header [2] 5 (vit), [3] B; "param/NAME" f32 for every
parameter of vit_tiny (HF's tensors, the position embeddings without their leading 1);
"grad/NAME" f32 the gradient of HF's loss (but a key bias's, zero but for rounding);
"logits" f32 [B, 10]; "labels" i32 [B]; "loss" f64 [1], the mean cross-entropy of the B
labels. Also saves the model (fp32) with save_pretrained into tests/reference/hf/vit, for
gvc convert --from-hf with models/vit.hf.map.
"""
import gzip
import os
import sys
import tempfile

import numpy as np
import torch
import transformers as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_writer import MAGIC, check_files, checking, serialize, write_or_check  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "vit_tiny.bin")
HF_DIR = os.path.join(HERE, "hf", "vit")  # the model as transformers saves it (fp32), for gvc convert
HF_OUT = HF_DIR
DIGITS = os.path.join(HERE, "..", "data", "digits", "digits.csv.gz")
B, SEED, L = 4, 1234, 2


def images():
    with gzip.open(DIGITS, "rt") as f:
        rows = np.array([[int(v) for v in line.split(",")] for line in f if line.strip()], dtype=np.int64)
    px = ((rows[:, :64] * 255 + 8) // 16).astype(np.float64)
    order = np.arange(len(rows))
    np.random.RandomState(SEED).shuffle(order)
    pick = order[:B]
    return torch.tensor(px[pick] / 127.5 - 1.0).reshape(B, 1, 8, 8), torch.tensor(rows[pick, 64], dtype=torch.int32)


def gvc_names(model):
    """gvc's name -> the HF tensor, for every parameter of vit_tiny."""
    sd, v = model.state_dict(), "vit.embeddings."
    m = {"patch_embeddings.weight": sd[v + "patch_embeddings.projection.weight"],
         "patch_embeddings.bias": sd[v + "patch_embeddings.projection.bias"],
         "cls_token.weight": sd[v + "cls_token"], "position_embeddings.weight": sd[v + "position_embeddings"][0],
         "final_norm.weight": sd["vit.layernorm.weight"], "final_norm.bias": sd["vit.layernorm.bias"],
         "classifier.weight": sd["classifier.weight"], "classifier.bias": sd["classifier.bias"]}
    for i in range(L):
        h = f"vit.encoder.layer.{i}."
        for g, hf in [("ln1", "layernorm_before"), ("ln2", "layernorm_after"), ("attn.q", "attention.attention.query"),
                      ("attn.k", "attention.attention.key"), ("attn.v", "attention.attention.value"),
                      ("attn.o", "attention.output.dense"), ("mlp.up", "intermediate.dense"),
                      ("mlp.down", "output.dense")]:
            for leaf in ("weight", "bias"):
                m[f"layers.{i}.{g}.{leaf}"] = sd[h + hf + "." + leaf]
    assert len(m) == len(sd), "every HF tensor has a gvc name"
    return m


def hf_keys(model, names):
    """The HF parameter behind each of gvc's names (in names' order)."""
    by_ptr = {p.data_ptr(): k for k, p in model.named_parameters()}
    return [by_ptr[t.data_ptr()] for t in names.values()]


def records():
    torch.manual_seed(SEED)
    cfg = tf.ViTConfig(image_size=8, patch_size=2, num_channels=1, hidden_size=32, num_hidden_layers=L,
                       num_attention_heads=4, intermediate_size=128, num_labels=10, layer_norm_eps=1e-12,
                       hidden_act="gelu", qkv_bias=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = tf.ViTForImageClassification(cfg).double().eval()
    with torch.no_grad():  # weights of O(0.1..1) so that every part shows in the logits
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64) * (0.1 if "norm" not in name else 0.05)
                    + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    px, labels = images()
    out = model(pixel_values=px, labels=labels.long())
    out.loss.backward()
    names = gvc_names(model)
    params = dict(model.named_parameters())
    grads = {n: params[k].grad.reshape(t.shape) for (n, t), k in zip(names.items(), hf_keys(model, names))}
    recs = [("param/" + n, t, 0) for n, t in names.items()]
    # (a key bias's gradient is 0 exactly, the softmax does not see it: rounding only, left out)
    recs += [("grad/" + n, g, 0) for n, g in grads.items() if not n.endswith("attn.k.bias")]
    recs += [("logits", out.logits, 0), ("labels", labels, 2), ("loss", out.loss.reshape(1), 1)]
    model.float().save_pretrained(HF_OUT, safe_serialization=True)
    return [MAGIC, 1, 5, B, 0, 0, 0, 0, 0, 0, 0, 0, 0, len(recs)], recs


def main():
    global HF_OUT
    tmp = tempfile.TemporaryDirectory()
    HF_OUT = tmp.name if checking() else HF_DIR
    data = serialize(*records())
    if checking():
        return check_files([(OUT, data)] + [(os.path.join(HF_DIR, n), open(os.path.join(HF_OUT, n), "rb").read())
                                            for n in ("config.json", "model.safetensors")])
    return write_or_check(OUT, data)


if __name__ == "__main__":
    sys.exit(main())
