#!/usr/bin/python3
"""step_torch.py - training-step benchmark: our C reference trainer (CPU backend) vs the
same GPT-2-style model in PyTorch (the gen_fixtures.py model code, float32), both with the
same thread count. Prints each median step time, the ratio, and achieved GFLOP/s against
the OpenBLAS sgemm peak the C program measures in the same run.

  setsid /usr/bin/python3 tests/bench/runtime/step_torch.py --exe build-r/tests/bench/runtime/step_bench \
      [--threads 2] [--iters 10] [--omp-wait passive] [--layers 6 --hidden 384 --heads 6 --seq 256 --batch 8 --vocab 256]

A step = forward + backward + clip_grad_norm_(1.0) + AdamW (the fixture settings).
FLOPs counted: every matmul as 2*M*N*K, forward + 2x for backward, attention QK^T and AV
as dense T x T (what both implementations compute); elementwise work is not counted.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "reference"))
torch = gf = None     # imported in main(), after OMP_WAIT_POLICY is settled


def step_flops(c):
    B, T, C, L, V, Fh = c["B"], c["T"], c["C"], c["L"], c["V"], c["F"]
    per_layer = 2 * B * T * C * (4 * C + 2 * Fh) + 2 * 2 * B * T * T * C
    fwd = L * per_layer + 2 * B * T * C * V
    return 3 * fwd


def torch_step_times(c, iters, warmup):
    params = gf.init_params(c, seed=1)
    names = [n for n, _ in gf.param_shapes(c)]
    p = {n: params[n].clone().requires_grad_(True) for n in names}
    g = torch.Generator().manual_seed(0)
    tok = torch.randint(0, c["V"], (c["B"], c["T"] + 1), generator=g)
    x, y = tok[:, :-1].contiguous(), tok[:, 1:].contiguous()
    opt = torch.optim.AdamW([{"params": [p[n] for n in names if p[n].dim() >= 2], "weight_decay": 0.1},
                             {"params": [p[n] for n in names if p[n].dim() < 2], "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    times, loss = [], None
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = gf.loss_fn(gf.forward(p, x, c), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p[n] for n in names], 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    return times, loss.item()


def run_c(exe, c, iters, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    args = [exe, str(c["L"]), str(c["C"]), str(c["H"]), str(c["T"]), str(c["B"]), str(c["V"]), str(iters)]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    vals = {}
    for line in out.splitlines():
        k, _, v = line.partition(" ")
        vals[k] = v.split()
    return vals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--omp-wait", choices=("default", "passive"), default="default",
                    help="OMP_WAIT_POLICY for both runs: passive stops idle OpenMP threads spinning "
                         "while OpenBLAS's own threads run sgemm")
    a = ap.parse_args()
    if a.omp_wait == "passive":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    # Debian's torch calls OpenBLAS, which torch.set_num_threads does not limit: set it before torch loads.
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    global torch, gf
    import torch
    import gen_fixtures as gf
    c = dict(model=1, V=a.vocab, C=a.hidden, L=a.layers, H=a.heads, KV=a.heads, F=4 * a.hidden,
             S=a.seq, B=a.batch, T=a.seq)
    torch.set_num_threads(a.threads)
    flops = step_flops(c)

    cres = run_c(a.exe, c, a.iters, a.threads)
    c_times = [float(t) for t in cres["step_s"]]
    peak = float(cres["sgemm_gflops"][0])
    t_times, t_loss = torch_step_times(c, a.iters, a.warmup)

    cm, tm = statistics.median(c_times), statistics.median(t_times)
    print(f"model: GPT-2 style L={c['L']} C={c['C']} H={c['H']} F={c['F']} T={c['T']} B={c['B']} V={c['V']} "
          f"threads={a.threads}, OMP_WAIT_POLICY {a.omp_wait}, {a.iters} timed steps after {a.warmup} warm-up")
    print(f"step GFLOP (matmuls, fwd+bwd): {flops / 1e9:.2f}")
    print(f"OpenBLAS sgemm peak (this run): {peak:.1f} GFLOP/s")
    print(f"gvrt C reference: median {cm * 1e3:.1f} ms (min {min(c_times) * 1e3:.1f})  "
          f"{flops / cm / 1e9:.1f} GFLOP/s = {100 * flops / cm / 1e9 / peak:.0f}% of peak  "
          f"loss {cres['loss'][0]}")
    print(f"PyTorch {torch.__version__}: median {tm * 1e3:.1f} ms (min {min(t_times) * 1e3:.1f})  "
          f"{flops / tm / 1e9:.1f} GFLOP/s = {100 * flops / tm / 1e9 / peak:.0f}% of peak  loss {t_loss:.4f}")
    phases = "  ".join(f"{k[:-2]} {statistics.median(float(x) for x in cres[k]) * 1e3:.1f}"
                       for k in ("fwd_s", "bwd_s", "update_s"))
    print(f"gvrt phases (median ms): {phases}")
    print(f"ratio C / PyTorch (median): {cm / tm:.2f}")


if __name__ == "__main__":
    main()
