#!/usr/bin/env python3
"""gen_vit_ops.py - PyTorch references of the primitives ViT needs, for tests/ops/vit (the
fixture is committed; regenerate with /usr/bin/python3 tests/reference/gen_vit_ops.py, or
check it with --check). Needs torch (GV_SETUP_TORCH=1 scripts/setup).

Writes tests/reference/fixtures/vit_ops.bin (gen_t5_ops.py's format, magic "GVRF"):
  header [2] 4 (vit ops), [3] B, [4] C, [5] S (image side), [6] p (patch), [7] hidden, [13] record count;
  "pixels" [B,C,S,S], "w" [hidden,C,p,p], "b" [hidden], "cls" [1,1,hidden] f32 inputs;
  "pe_dy" [B,N,hidden], N = (S/p)^2: the gradient reaching the patch embedding;
  "pe_y" [B,N,hidden] = Conv2d(stride p)(pixels).flatten(2).transpose(1, 2) (Hugging Face's
    ViTPatchEmbeddings), "pe_dw", "pe_db" its weight and bias gradients;
  "ct_x" [B,N,hidden], "ct_dy" [B,N+1,hidden]; "ct_y" = cat(cls.expand(B), x) on dim 1,
    "ct_dx", "ct_dcls" its gradients;
  "ft_dy" [B,hidden]; "ft_y" = ct_y[:, 0], "ft_dx" [B,N+1,hidden] its gradient.
Computed in float64, stored as f32.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_writer import MAGIC, serialize, write_or_check  # noqa: E402

B, C, S, P, HID = 2, 3, 12, 4, 8
N = (S // P) ** 2
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "vit_ops.bin")


def records():
    g = torch.Generator().manual_seed(224)
    r = {n: torch.randn(*shape, generator=g, dtype=torch.float64) for n, shape in
         [("pixels", (B, C, S, S)), ("w", (HID, C, P, P)), ("b", (HID,)), ("cls", (1, 1, HID)),
          ("pe_dy", (B, N, HID)), ("ct_x", (B, N, HID)), ("ct_dy", (B, N + 1, HID)), ("ft_dy", (B, HID))]}
    recs = [(n, r[n], 0) for n in r]
    w, b = r["w"].clone().requires_grad_(True), r["b"].clone().requires_grad_(True)
    y = torch.nn.functional.conv2d(r["pixels"], w, b, stride=P).flatten(2).transpose(1, 2)
    y.backward(r["pe_dy"])
    recs += [("pe_y", y, 0), ("pe_dw", w.grad, 0), ("pe_db", b.grad, 0)]
    x, cls = r["ct_x"].clone().requires_grad_(True), r["cls"].clone().requires_grad_(True)
    y = torch.cat([cls.expand(B, -1, -1), x], dim=1)
    y.backward(r["ct_dy"])
    recs += [("ct_y", y, 0), ("ct_dx", x.grad, 0), ("ct_dcls", cls.grad, 0)]
    x = y.detach().clone().requires_grad_(True)
    y = x[:, 0]
    y.backward(r["ft_dy"])
    recs += [("ft_y", y, 0), ("ft_dx", x.grad, 0)]
    return [MAGIC, 1, 4, B, C, S, P, HID, 0, 0, 0, 0, 0, len(recs)], recs


def main():
    return write_or_check(OUT, serialize(*records()))


if __name__ == "__main__":
    sys.exit(main())
