#!/usr/bin/env python3
"""gen_t5_s2s.py - Hugging Face T5ForConditionalGeneration on source/target pairs of
different lengths with padding: the reference an encoder-decoder trained by gvc must
match. The model is the committed small random T5 of tests/reference/hf/t5 (written by
gen_hf_fixtures.py), reloaded in float64; nothing is downloaded.

Writes tests/reference/fixtures/t5_s2s.bin (gen_fixtures.py's format, magic "GVRF"):
  header [2] 7 (t5 pairs), [3] V, [4] C, [5] L, [6] H, [10] B, [11] S (source length),
  [12] T (target length), [13] record count;
  "src_tokens" i32 [B,S]: the sources, right-padded with 0 (the encoder's attention mask is
    src != 0, masking those keys in the encoder's self-attention and the cross-attention);
  "target" i32 [B,T]: the targets, right-padded with 0;
  "tokens" i32 [B,T]: the decoder's input, the target shifted right behind
    decoder_start_token_id = 0 (what gv_pairs_get gives; checked equal to T5's _shift_right);
  "labels" i32 [B,T]: the target with pads as -1 (transformers' -100: ignored);
  "logits" f32 [B,T,V]; "loss" f64 [1]: transformers' loss, the mean over the real labels;
  "loss_sum" f64 [1]: the sum over them, "count" i32 [1]: how many;
  "prompt" i32 [P]: a source of P = 9 ids (no padding) and "greedy" i32 [N]: what
    model.generate(prompt, max_new_tokens=N, do_sample=False, decoder_start_token_id=0)
    continues it with, N = 10, the start id left out (no end id met); "greedy_margin" f64 [1]:
    the smallest gap between the largest two logits over the steps. The tiny random model
    mostly repeats one id: the source is the first of a seeded series whose continuation
    holds 3 different ids, so that reading another position's logits shows.
Run: build/hf-venv/bin/python tests/reference/gen_t5_s2s.py [--check]
"""
import os
import sys

import torch
import transformers as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_writer import MAGIC, serialize, write_or_check  # noqa: E402

B, S, T = 3, 12, 7
P, N = 9, 10        # the generation's source length and new tokens
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "t5_s2s.bin")


def build():
    model = tf.T5ForConditionalGeneration.from_pretrained(os.path.join(HERE, "hf", "t5"),
                                                          torch_dtype=torch.float64).eval()
    cfg = model.config
    g = torch.Generator().manual_seed(2718)
    src = torch.randint(1, cfg.vocab_size, (B, S), generator=g)
    tgt = torch.randint(1, cfg.vocab_size, (B, T), generator=g)
    src[1, S - 5:] = 0          # a short source: 5 padded keys
    src[2, S - 1:] = 0
    tgt[0, T - 2:] = 0          # a short target: 2 ignored labels
    tgt[2, T - 4:] = 0
    labels = tgt.masked_fill(tgt == 0, -100)
    dec = torch.cat([torch.zeros(B, 1, dtype=tgt.dtype), tgt[:, :-1]], 1)
    assert torch.equal(dec, model._shift_right(labels)), "decoder input differs from T5's _shift_right"
    with torch.no_grad():
        out = model(input_ids=src, attention_mask=(src != 0).long(), decoder_input_ids=dec, labels=labels)
        # the padding matters: without the mask the short sources give other logits
        plain = model(input_ids=src, decoder_input_ids=dec).logits
    assert float((plain[1] - out.logits[1]).abs().max()) > 1e-3, "the source padding mask changes nothing"
    ce = torch.nn.functional.cross_entropy(out.logits.reshape(-1, cfg.vocab_size), labels.reshape(-1),
                                           ignore_index=-100, reduction="sum")
    count = int((labels != -100).sum())
    assert abs(float(ce) / count - float(out.loss)) < 1e-12
    recs = [("src_tokens", src, 2), ("target", tgt, 2), ("tokens", dec, 2),
            ("labels", labels.masked_fill(labels < 0, -1), 2), ("logits", out.logits, 0),
            ("loss", out.loss.reshape(1), 1), ("loss_sum", ce.reshape(1), 1),
            ("count", torch.tensor([count]), 2)]
    recs += generation(model)
    header = [MAGIC, 1, 7, cfg.vocab_size, cfg.d_model, cfg.num_layers, cfg.num_heads, 0, 0, 0, B, S, T, len(recs)]
    return serialize(header, recs), float(out.loss), count


def generation(model):
    """The records of a greedy generation: its source, the ids and the smallest logit margin."""
    g = torch.Generator().manual_seed(3141)
    while True:
        src = torch.randint(2, model.config.vocab_size, (1, P), generator=g)
        with torch.no_grad():
            out = model.generate(src, max_new_tokens=N, do_sample=False, decoder_start_token_id=0,
                                 output_scores=True, return_dict_in_generate=True)
        ids = out.sequences[0, 1:]
        if len(ids) == N and len(set(ids.tolist())) >= 3:
            break
    assert int(out.sequences[0, 0]) == 0 and model.config.eos_token_id not in ids.tolist()
    margin = min(float(torch.topk(s[0], 2).values[0] - torch.topk(s[0], 2).values[1]) for s in out.scores)
    return [("prompt", src[0], 2), ("greedy", ids, 2), ("greedy_margin", torch.tensor([margin]), 1)]


def main():
    torch.set_num_threads(1)
    data, loss, count = build()
    return write_or_check(OUT, data, f": loss {loss:.6f} over {count} labels")


if __name__ == "__main__":
    sys.exit(main())
