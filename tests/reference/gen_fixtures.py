#!/usr/bin/python3
"""gen_fixtures.py - independent PyTorch oracle for the tiny GPT-2- and LLaMA-style models.

Writes tests/reference/fixtures/{tiny_gpt,tiny_llama}.bin, the llm.c debug_state.bin idea:
initial weights (CONVENTIONS.md names), one batch of tokens and labels, the logits, the
loss, every parameter's gradient, and the loss curve of 10 AdamW steps with global-norm
clipping and warmup + cosine LR. Everything is plain PyTorch written from CONVENTIONS.md,
independent of the C code (no shared tables, no shared RNG).

Precision: weights are drawn in float32 and stored in float32. Logits, loss and grads are
computed in float64 from those same fp32 weights (stored rounded to fp32, which is far
below any fp32 test tolerance). The 10-step curve is run twice: `losses` in float64
(params promoted to fp64, fp64 optimizer state) and `losses_f32` entirely in float32, so
a C fp32 trainer can be compared with both and the fp32-vs-fp64 gap is visible.

Run with /usr/bin/python3 (torch 1.13: no scaled_dot_product_attention, written by hand).
  /usr/bin/python3 tests/reference/gen_fixtures.py [outdir]            writes the fixtures
  /usr/bin/python3 tests/reference/gen_fixtures.py --check [fixdir]    regenerates and compares

File format (little endian), read by tests/reference/fixture.c:
  int32 header[64]: [0] magic 0x46525647 ("GVRF"), [1] version 1, [2] model (1 gpt, 2 llama),
    [3] vocab V, [4] hidden C, [5] layers L, [6] heads H, [7] kv_heads KV, [8] ffn F,
    [9] max positions S (0 for llama), [10] batch B, [11] seq T, [12] steps N,
    [13] number of records; rest 0.
  then records: int32 name_len, name bytes (no NUL), int32 dtype (0 f32, 1 f64, 2 i32),
    int32 ndim, int32 dims[ndim], data (row-major).
  Records, in this order: "hparams" f64 [lr, beta1, beta2, eps, weight_decay, clip,
    warmup_steps, min_lr, norm_eps, rope_base]; "tokens" i32 [B,T]; "labels" i32 [B,T];
    "param/<name>" f32 for every parameter in CONVENTIONS order; "logits" f32 [B,T,V];
    "loss" f64 [1]; "grad/<name>" f32 in the same order; "lrs" f64 [N];
    "grad_norms" f64 [N] (pre-clip); "losses" f64 [N+1] (loss before each step and after
    the last); "losses_f32" f64 [N+1].
"""
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

MAGIC, VERSION = 0x46525647, 1
TEXT = (b"First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. "
        b"First Citizen: You are all resolved rather to die than to famish?")

CFG = {
    "tiny_gpt": dict(model=1, V=256, C=64, L=2, H=4, KV=4, F=256, S=64, B=2, T=32),
    "tiny_llama": dict(model=2, V=256, C=64, L=2, H=4, KV=2, F=160, S=0, B=2, T=32),
}
OPT = dict(lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, clip=1.0,
           warmup=3, min_lr=1e-4, steps=10, norm_eps=1e-5, rope_base=10000.0)


# ---- parameters: names, shapes, init ----

def param_shapes(c):
    """(name, shape) in CONVENTIONS order."""
    C, F_, V = c["C"], c["F"], c["V"]
    out = [("embedding.weight", (V, C))]
    if c["model"] == 1:
        out.append(("pos_embedding.weight", (c["S"], C)))
        for i in range(c["L"]):
            p = f"layers.{i}."
            out += [(p + "ln1.weight", (C,)), (p + "ln1.bias", (C,))]
            for m in "qkvo":
                out += [(p + f"attn.{m}.weight", (C, C)), (p + f"attn.{m}.bias", (C,))]
            out += [(p + "ln2.weight", (C,)), (p + "ln2.bias", (C,)),
                    (p + "mlp.up.weight", (F_, C)), (p + "mlp.up.bias", (F_,)),
                    (p + "mlp.down.weight", (C, F_)), (p + "mlp.down.bias", (C,))]
        out += [("final_norm.weight", (C,)), ("final_norm.bias", (C,))]
    else:
        D = C // c["H"]
        for i in range(c["L"]):
            p = f"layers.{i}."
            out += [(p + "ln1.weight", (C,)),
                    (p + "attn.q.weight", (c["H"] * D, C)), (p + "attn.k.weight", (c["KV"] * D, C)),
                    (p + "attn.v.weight", (c["KV"] * D, C)), (p + "attn.o.weight", (C, c["H"] * D)),
                    (p + "ln2.weight", (C,)),
                    (p + "mlp.gate.weight", (F_, C)), (p + "mlp.up.weight", (F_, C)),
                    (p + "mlp.down.weight", (C, F_))]
        out += [("final_norm.weight", (C,)), ("head.weight", (V, C))]
    return out


def init_params(c, seed):
    """GPT-2 init: N(0, 0.02) weights/embeddings, 0.02/sqrt(2L) for o and down, zero
    biases, unit norm weights. Drawn in float32 with torch's CPU generator."""
    g = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in param_shapes(c):
        if name.endswith(".bias"):
            t = torch.zeros(shape)
        elif len(shape) == 1:
            t = torch.ones(shape)
        else:
            std = 0.02 / math.sqrt(2 * c["L"]) if (".attn.o." in name or ".mlp.down." in name) else 0.02
            t = torch.randn(shape, generator=g, dtype=torch.float32) * std
        params[name] = t
    return params


# ---- model (plain PyTorch, from CONVENTIONS.md) ----

def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)      # biased variance
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def linear(x, p, name):
    y = x @ p[name + ".weight"].t()
    return y + p[name + ".bias"] if name + ".bias" in p else y


def rope(x, base):
    """x: (B,H,T,D); HF rotate_half convention, position = t."""
    T, D = x.shape[-2], x.shape[-1]
    i = torch.arange(D // 2, dtype=torch.float64)
    theta = base ** (-2.0 * i / D)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * theta[None, :]   # (T, D/2)
    cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attention(h, p, pre, c, use_rope):
    B, T, C = h.shape
    H, KV = c["H"], c["KV"]
    D = C // H
    q = linear(h, p, pre + "attn.q").view(B, T, H, D).transpose(1, 2)
    k = linear(h, p, pre + "attn.k").view(B, T, KV, D).transpose(1, 2)
    v = linear(h, p, pre + "attn.v").view(B, T, KV, D).transpose(1, 2)
    if use_rope:
        q, k = rope(q, OPT["rope_base"]), rope(k, OPT["rope_base"])
    if KV != H:                                        # query head h uses kv head h // (H/KV)
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(-1)
    y = (att @ v).transpose(1, 2).reshape(B, T, H * D)
    return linear(y, p, pre + "attn.o")


def forward(p, tokens, c):
    """Returns logits (B,T,V)."""
    eps = OPT["norm_eps"]
    T = tokens.shape[1]
    x = p["embedding.weight"][tokens]
    gpt = c["model"] == 1
    if gpt:
        x = x + p["pos_embedding.weight"][:T]
    for i in range(c["L"]):
        pre = f"layers.{i}."
        if gpt:
            h = layernorm(x, p[pre + "ln1.weight"], p[pre + "ln1.bias"], eps)
            x = x + attention(h, p, pre, c, False)
            h = layernorm(x, p[pre + "ln2.weight"], p[pre + "ln2.bias"], eps)
            x = x + linear(F.gelu(linear(h, p, pre + "mlp.up"), approximate="tanh"), p, pre + "mlp.down")
        else:
            h = rmsnorm(x, p[pre + "ln1.weight"], eps)
            x = x + attention(h, p, pre, c, True)
            h = rmsnorm(x, p[pre + "ln2.weight"], eps)
            x = x + linear(F.silu(linear(h, p, pre + "mlp.gate")) * linear(h, p, pre + "mlp.up"),
                           p, pre + "mlp.down")
    if gpt:
        x = layernorm(x, p["final_norm.weight"], p["final_norm.bias"], eps)
        return x @ p["embedding.weight"].t()           # tied head
    x = rmsnorm(x, p["final_norm.weight"], eps)
    return x @ p["head.weight"].t()


def loss_fn(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


# ---- optimizer and schedule ----

def lr_at(step):
    """step = 0-based index of the update being taken. Linear warmup to lr over
    `warmup` steps ((step+1)/warmup, llm.c), then cosine from lr down to min_lr,
    reaching min_lr at step == steps (the step after the last one taken)."""
    lr, lo, W, N = OPT["lr"], OPT["min_lr"], OPT["warmup"], OPT["steps"]
    if step < W:
        return lr * (step + 1) / W
    ratio = (step - W) / (N - W)
    return lo + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - lo)


def train_curve(params0, tokens, labels, c, dtype):
    """N steps of AdamW (decay on rank >= 2 params only), clip 1.0, lr_at(step).
    Returns (losses[N+1], grad_norms[N], lrs[N])."""
    names = [n for n, _ in param_shapes(c)]
    p = {n: params0[n].detach().to(dtype).clone().requires_grad_(True) for n in names}
    decay = [p[n] for n in names if p[n].dim() >= 2]
    no_decay = [p[n] for n in names if p[n].dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": OPT["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"])
    losses, norms, lrs = [], [], []
    for step in range(OPT["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward(p, tokens, c), labels)
        loss.backward()
        losses.append(loss.item())
        norm = torch.nn.utils.clip_grad_norm_([p[n] for n in names], OPT["clip"])
        norms.append(float(norm))
        lr = lr_at(step)
        lrs.append(lr)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
    with torch.no_grad():
        losses.append(loss_fn(forward(p, tokens, c), labels).item())
    return losses, norms, lrs


# ---- file writing ----

def record(f, name, t, dtype_code):
    nb = name.encode()
    f.write(struct.pack("<i", len(nb)) + nb)
    f.write(struct.pack("<ii", dtype_code, t.dim()))
    f.write(struct.pack(f"<{t.dim()}i", *t.shape))
    tt, np_code = {0: (torch.float32, "<f4"), 1: (torch.float64, "<f8"), 2: (torch.int32, "<i4")}[dtype_code]
    f.write(t.detach().to(tt).contiguous().numpy().astype(np_code).tobytes())


def make_records(key):
    """(header ints, [(name, tensor, dtype code)]) of one fixture."""
    c = CFG[key]
    B, T = c["B"], c["T"]
    params = init_params(c, seed=1234 + c["model"])
    text = torch.tensor(list(TEXT), dtype=torch.long)
    rows = torch.stack([text[b * (T + 1): b * (T + 1) + T + 1] for b in range(B)])
    tokens, labels = rows[:, :T].contiguous(), rows[:, 1:].contiguous()

    names = [n for n, _ in param_shapes(c)]
    p64 = {n: params[n].double().requires_grad_(True) for n in names}
    logits = forward(p64, tokens, c)
    loss = loss_fn(logits, labels)
    loss.backward()

    losses, norms, lrs = train_curve(params, tokens, labels, c, torch.float64)
    losses32, _, _ = train_curve(params, tokens, labels, c, torch.float32)

    hp = [OPT["lr"], OPT["beta1"], OPT["beta2"], OPT["eps"], OPT["weight_decay"], OPT["clip"],
          OPT["warmup"], OPT["min_lr"], OPT["norm_eps"], OPT["rope_base"]]
    recs = [("hparams", torch.tensor(hp, dtype=torch.float64), 1),
            ("tokens", tokens, 2), ("labels", labels, 2)]
    recs += [("param/" + n, params[n], 0) for n in names]
    recs += [("logits", logits, 0), ("loss", loss.reshape(1), 1)]
    recs += [("grad/" + n, p64[n].grad, 0) for n in names]
    recs += [("lrs", torch.tensor(lrs, dtype=torch.float64), 1),
             ("grad_norms", torch.tensor(norms, dtype=torch.float64), 1),
             ("losses", torch.tensor(losses, dtype=torch.float64), 1),
             ("losses_f32", torch.tensor(losses32, dtype=torch.float64), 1)]
    header = [MAGIC, VERSION, c["model"], c["V"], c["C"], c["L"], c["H"], c["KV"], c["F"],
              c["S"], B, T, OPT["steps"], len(recs)]
    return header, recs


def write_fixture(path, header, recs):
    with open(path, "wb") as f:
        f.write(struct.pack("<64i", *(header + [0] * (64 - len(header)))))
        for name, t, code in recs:
            record(f, name, t, code)


def read_fixture(path):
    """(header ints, {name: numpy array}) of a fixture file."""
    import numpy as np
    with open(path, "rb") as f:
        buf = f.read()
    header = list(struct.unpack_from("<64i", buf, 0))
    pos, out = 256, {}
    for _ in range(header[13]):
        (n,) = struct.unpack_from("<i", buf, pos)
        name = buf[pos + 4: pos + 4 + n].decode()
        pos += 4 + n
        code, ndim = struct.unpack_from("<ii", buf, pos)
        dims = struct.unpack_from(f"<{ndim}i", buf, pos + 8)
        pos += 8 + 4 * ndim
        dt = np.dtype(["<f4", "<f8", "<i4"][code])
        cnt = int(np.prod(dims)) if dims else 1
        out[name] = np.frombuffer(buf, dt, cnt, pos).reshape(dims)
        pos += cnt * dt.itemsize
    return header, out


def check_fixture(key, path):
    """Regenerates one fixture and compares it with the committed file: header, tokens and
    weights exactly (torch's CPU generator is stable), computed values to 1e-6 relative of
    each tensor's scale (another BLAS or thread count reorders fp64 sums). True if equal."""
    import numpy as np
    header, recs = make_records(key)
    old_header, old = read_fixture(path)
    ok = header == old_header[: len(header)]
    for name, t, _ in recs:
        new = t.detach().numpy()
        ref = old.get(name)
        if ref is None or ref.shape != new.shape:
            print(f"{path}: record {name} missing or reshaped")
            ok = False
            continue
        exact = name in ("hparams", "tokens", "labels") or name.startswith("param/")
        err = float(np.max(np.abs(new.astype("f8") - ref.astype("f8")))) if new.size else 0.0
        scale = float(np.max(np.abs(ref.astype("f8")))) if ref.size else 0.0
        if (exact and err != 0.0) or err > 1e-6 * scale + 1e-12:
            print(f"{path}: record {name} differs: max err {err:.3e}, scale {scale:.3e}")
            ok = False
    print(f"{path}: {'matches' if ok else 'DIFFERS from'} a fresh run of gen_fixtures.py")
    return ok


def make_fixture(key, outdir):
    header, recs = make_records(key)
    path = os.path.join(outdir, key + ".bin")
    write_fixture(path, header, recs)
    r = {name: t for name, t, _ in recs}
    print(f"{path}: loss {r['loss'].item():.9f}  losses[N] {r['losses'][-1].item():.9f} "
          f"(f32 {r['losses_f32'][-1].item():.9f})  grad_norm[0] {r['grad_norms'][0].item():.4f}  "
          f"{os.path.getsize(path)} bytes")


def main():
    torch.set_num_threads(1)                            # deterministic reductions
    args = sys.argv[1:]
    check = bool(args) and args[0] == "--check"
    if check:
        args = args[1:]
    outdir = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    if check:
        ok = all([check_fixture(key, os.path.join(outdir, key + ".bin")) for key in CFG])
        sys.exit(0 if ok else 1)
    os.makedirs(outdir, exist_ok=True)
    for key in CFG:
        make_fixture(key, outdir)


if __name__ == "__main__":
    main()
