#!/usr/bin/python3
"""gen_moe_fixtures.py - PyTorch oracle for gvrt's mixture-of-experts ops (gvrt.h, "Mixture of
experts"): top-k, take, the routing permutation and its inverse, the per-expert GEMM and the
load-balancing loss, forward and backward (autograd, float64, from float32 inputs), written
plainly from the definitions (torch.topk, a stable sort of the assignments by expert, one
matmul per expert, Mixtral's load_balancing_loss_func for one layer), not from the C code.

Writes tests/reference/fixtures/moe_ops.bin in gen_fixtures.py's format (header [3] M, [4] C,
[5] E, [6] k, [7] N, [13] records). The last expert is never chosen (its router logits are
low), so the empty-expert path is covered.
  /usr/bin/python3 tests/reference/gen_moe_fixtures.py [outdir]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import MAGIC, VERSION, write_fixture  # noqa: E402

M, C, E, K, N = 12, 8, 6, 2, 5


def main():
    g = torch.Generator().manual_seed(20261207)
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float32)
    logits = rnd(M, E)
    logits[:, E - 1] -= 10.0
    x, w, yp = rnd(M, C), rnd(E, N, C), rnd(M * K, C)
    dy_take, dy_grp, dy_unp = rnd(M, K), rnd(M * K, N), rnd(M, C)
    gates = torch.rand(M, K, generator=g)
    d = lambda t: t.double().requires_grad_(True)

    vals, idx = torch.topk(logits.double(), K, dim=-1)
    lg = d(logits)
    take = torch.gather(lg, 1, idx)
    (take * dy_take.double()).sum().backward()

    flat = idx.reshape(-1)
    order = torch.sort(flat, stable=True).indices     # routed row r holds assignment order[r]
    pos = torch.empty_like(order)
    pos[order] = torch.arange(M * K)
    xd = d(x)
    xp = xd[order // K]
    dxp = rnd(M * K, C).double()
    (xp * dxp).sum().backward()

    xpd, wd = d(xp.detach().float()), d(w)
    experts = flat[order]
    y = torch.stack([xpd[r] @ wd[experts[r]].T for r in range(M * K)])
    (y * dy_grp.double()).sum().backward()

    ypd, gd = d(yp), d(gates)
    comb = (gd.unsqueeze(-1) * ypd[pos].reshape(M, K, C)).sum(1)
    (comb * dy_unp.double()).sum().backward()

    probs = d(torch.softmax(logits.double(), -1).float())
    mask = torch.nn.functional.one_hot(idx, E).double()       # Mixtral: [tokens, k, E]
    aux = E * (mask.mean(0) * probs.mean(0).unsqueeze(0)).sum()
    aux.backward()

    f32, f64, i32 = 0, 1, 2
    recs = [("logits", logits, f32), ("topk_idx", idx, i32), ("topk_val", vals, f32), ("take_dy", dy_take, f32),
            ("take_dx", lg.grad, f32), ("x", x, f32), ("xp", xp, f32), ("dxp", dxp, f32),
            ("permute_dx", xd.grad, f32), ("w", w, f32), ("grouped_y", y, f32), ("grouped_dy", dy_grp, f32),
            ("grouped_dx", xpd.grad, f32), ("grouped_dw", wd.grad, f32), ("yp", yp, f32), ("gates", gates, f32),
            ("unpermute_y", comb, f32), ("unpermute_dy", dy_unp, f32), ("unpermute_dyp", ypd.grad, f32),
            ("unpermute_dgates", gd.grad, f32), ("probs", probs, f32),
            ("aux_scale", torch.tensor([E / (M * M)], dtype=torch.float64), f64),
            ("aux_loss", aux.reshape(1), f64), ("aux_dprobs", probs.grad, f32)]
    header = [MAGIC, VERSION, 0, M, C, E, K, N, 0, 0, 0, 0, 0, len(recs)]
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fixtures")
    write_fixture(os.path.join(out, "moe_ops.bin"), header, recs)
    print(f"wrote {os.path.join(out, 'moe_ops.bin')}: {len(recs)} records")


if __name__ == "__main__":
    main()
