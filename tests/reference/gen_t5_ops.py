#!/usr/bin/env python3
"""gen_t5_ops.py - PyTorch references of the primitives T5 needs, for tests/ops/t5 (the
fixture is committed; regenerate with /usr/bin/python3 tests/reference/gen_t5_ops.py, or
check it with --check). Needs torch (GV_SETUP_TORCH=1 scripts/setup); transformers is used
when present (build/hf-venv) for Hugging Face's own bucket function, and a copy of it
otherwise (the same code, transformers 4.40.2's T5Attention._relative_position_bucket).

Writes tests/reference/fixtures/t5_ops.bin (gen_fixtures.py's format, magic "GVRF"):
  header [2] 3 (t5 ops), [3] B, [4] T, [5] S, [6] H, [7] D, [8] buckets, [9] max_distance,
  [10] TQ, [11] SX (the cross-attention's query and key lengths), [13] record count;
  "q" [B,T,H,D], "k", "v" [B,S,H,D], "bias" [T,S,H], "dout" [B,T,H,D] f32 inputs;
  "o", "dq", "dk", "dv", "dbias" f32: unscaled (scale 1) non-causal attention with the bias
    added to the scores, computed in float64 (dbias: the scores' gradient summed over B);
  "o_causal", "dq_causal", "dk_causal", "dv_causal", "dbias_causal": the same, causal, T = S;
  "buckets_bidir" i32 [T,T], "buckets_causal" i32 [T,T]: the bucket of key j for query i;
  "xq" [B,TQ,H,D], "xk", "xv" [B,SX,H,D], "xbias" [TQ,SX,H], "xdout" [B,TQ,H,D] f32 and "xids"
    i32 [B,SX] (0 = a padding key): "xo", "xdq", "xdk", "xdv", "xdbias": the unscaled
    non-causal attention of TQ queries over SX keys with the padding keys masked (Hugging Face
    T5's encoder attention mask; its cross-attention is the same without the bias).
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_writer import MAGIC, serialize, write_or_check  # noqa: E402

B, T, S, H, D, NB, MAXD = 2, 24, 24, 3, 8, 8, 20
TQ, SX = 7, 11      # the cross-attention: queries and keys of different lengths
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "t5_ops.bin")


def bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """transformers' T5Attention._relative_position_bucket (4.40.2)."""
    try:
        from transformers.models.t5.modeling_t5 import T5Attention
        return T5Attention._relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance)
    except ImportError:
        pass
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    relative_position_if_large = max_exact + (
        torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)).to(torch.long)
    relative_position_if_large = torch.min(relative_position_if_large,
                                           torch.full_like(relative_position_if_large, num_buckets - 1))
    relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
    return relative_buckets


def attention(q, k, v, bias, causal, ids=None):
    """o[b,t,h] = softmax_j(q.k + bias[t,j,h]) v (no scaling, as T5); keys with id 0 masked."""
    s = torch.einsum("bthd,bshd->bhts", q, k) + bias.permute(2, 0, 1)[None]
    if causal:
        s = s.masked_fill(torch.ones(T, S, dtype=torch.bool).triu(1 + S - T), float("-inf"))
    if ids is not None:
        s = s.masked_fill((ids == 0)[:, None, None, :], float("-inf"))
    return torch.einsum("bhts,bshd->bthd", torch.softmax(s, -1), v)


def records():
    g = torch.Generator().manual_seed(515)
    x = {n: torch.randn(*shape, generator=g, dtype=torch.float64) * sc for n, shape, sc in
         [("q", (B, T, H, D), 0.7), ("k", (B, S, H, D), 0.7), ("v", (B, S, H, D), 1.0), ("bias", (T, S, H), 1.0),
          ("dout", (B, T, H, D), 1.0)]}
    recs = [(n, x[n], 0) for n in ("q", "k", "v", "bias", "dout")]
    for causal, sfx in ((False, ""), (True, "_causal")):
        leaves = {n: x[n].clone().requires_grad_(True) for n in ("q", "k", "v", "bias")}
        o = attention(leaves["q"], leaves["k"], leaves["v"], leaves["bias"], causal)
        o.backward(x["dout"])
        recs += [("o" + sfx, o, 0)] + [("d" + n + sfx, leaves[n].grad, 0) for n in ("q", "k", "v", "bias")]
    rel = torch.arange(T)[None, :] - torch.arange(T)[:, None]      # key - query
    recs += [("buckets_bidir", bucket(rel, True, NB, MAXD), 2), ("buckets_causal", bucket(rel, False, NB, MAXD), 2)]
    x = {n: torch.randn(*shape, generator=g, dtype=torch.float64) * sc for n, shape, sc in
         [("xq", (B, TQ, H, D), 0.7), ("xk", (B, SX, H, D), 0.7), ("xv", (B, SX, H, D), 1.0),
          ("xbias", (TQ, SX, H), 1.0), ("xdout", (B, TQ, H, D), 1.0)]}
    ids = torch.randint(1, 100, (B, SX), generator=g)
    ids[0, 2] = ids[0, SX - 1] = 0          # a padding key inside the row and one at its end
    ids[1, SX - 4:] = 0                     # right padding
    recs += [(n, x[n], 0) for n in ("xq", "xk", "xv", "xbias", "xdout")] + [("xids", ids, 2)]
    leaves = {n: x[n].clone().requires_grad_(True) for n in ("xq", "xk", "xv", "xbias")}
    o = attention(leaves["xq"], leaves["xk"], leaves["xv"], leaves["xbias"], False, ids)
    o.backward(x["xdout"])
    recs += [("xo", o, 0)] + [("xd" + n[1:], leaves[n].grad, 0) for n in ("xq", "xk", "xv", "xbias")]
    return [MAGIC, 1, 3, B, T, S, H, D, NB, MAXD, TQ, SX, 0, len(recs)], recs


def main():
    return write_or_check(OUT, serialize(*records()))


if __name__ == "__main__":
    sys.exit(main())
