#!/usr/bin/python3
"""program_torch.py - training-step benchmark of what users run: programs `gvc compile` makes
from tests/bench/runtime/bench.gvm (GPT-2-shaped and LLaMA-shaped, vocabulary 50304, seq 256,
micro-batch 8), trained on the fortunes dataset, beside the same models in PyTorch (the
tests/reference/gen_fixtures.py model code, float32, AdamW, clip 1.0) with the same thread
count, in the same run (PyTorch in a child process with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS
set: Debian's torch uses OpenBLAS, whose threads torch.set_num_threads does not limit). For each model and thread count it prints the median step time, the
spread of the steady-state steps (min, max, max / median), GFLOP/s by llm.c's formula
(6 N + 6 L C T per token, N the parameters that multiply: a tied embedding once, an untied
input embedding not at all) and that as a
fraction of the OpenBLAS sgemm peak measured (step_bench --peak) just before each pair.

  /usr/bin/python3 tests/bench/runtime/program_torch.py --build build [--threads 1,2]
      [--iters 10] [--warmup 2] [--rounds 2] [--models bench_gpt2,bench_llama] [--time-ops] [--no-torch]
      [--blas-core CORE|auto]

--time-ops compiles with `gvc compile --time_ops` and prints each program's per-op table.
The implementations alternate (--rounds times gvc then PyTorch, per model and thread count, the
timed steps split between the rounds; the per-op table is the last round's), so a busy machine
shows in both; compare them only within one run.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
torch = gf = None     # imported in main()

SEQ, MICRO_BATCH = 256, 8
# The gen_fixtures.py configurations of bench.gvm's sizes.
MODELS = {
    "bench_gpt2": dict(model=1, V=50304, C=384, L=6, H=6, KV=6, F=4 * 384, S=SEQ, B=MICRO_BATCH, T=SEQ),
    "bench_llama": dict(model=2, V=50304, C=384, L=6, H=6, KV=2, F=1024, S=0, B=MICRO_BATCH, T=SEQ),
}
STEP_RE = re.compile(r"step (\d+)/\d+ \| loss (\S+) .*?\| ([0-9.]+) ms/step")


def llmc_flops_per_step(c):
    """llm.c's estimate: (6 N + 6 L C T) per token, B T tokens a step. N counts the parameters
    that multiply: GPT-2's tied embedding once (it is the LM head), an untied model's input
    embedding not at all (a lookup; counting it would add 6 V C a token that nobody computes)."""
    n = 0
    for name, shape in gf.param_shapes(c):
        if name == "embedding.weight" and c["model"] != 1:
            continue
        k = 1
        for d in shape:
            k *= d
        n += k
    return (6 * n + 6 * c["L"] * c["C"] * c["T"]) * c["B"] * c["T"], n


def sgemm_peak(build, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run([os.path.join(build, "tests", "bench", "runtime", "step_bench"), "--peak"], env=env,
                         check=True, capture_output=True, text=True).stdout
    return float(out.split()[1]), out.split()[2]


def compile_model(build, name, time_ops):
    exe = os.path.join(build, "bench", name + ("_timed" if time_ops else ""))
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    cmd = [os.path.join(build, "gvc"), "compile", os.path.join(HERE, "bench.gvm"), "--model", name,
           "--seq", str(SEQ), "--micro-batch", str(MICRO_BATCH), "-o", exe]
    if time_ops:
        cmd.append("--time_ops")
    subprocess.run(cmd, check=True)
    return exe


def run_gvc(exe, data, threads, iters, warmup):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), GV_COMM="self")
    p = subprocess.run([exe, "--data", data, "--iters", str(warmup + iters), "--global_train_batch_size",
                        str(MICRO_BATCH), "--log_interval", "1"], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"program_torch.py: {exe} failed:\n{p.stdout}{p.stderr}")
    times, loss = [], None
    for m in STEP_RE.finditer(p.stdout + p.stderr):
        if int(m.group(1)) >= warmup:
            times.append(float(m.group(3)) / 1e3)
        loss = float(m.group(2))
    table = [ln for ln in (p.stdout + p.stderr).splitlines() if "time per op" in ln or re.search(r"gvrt:\s{3}", ln)]
    return times, loss, table


def run_torch(c, data_tokens, threads, iters, warmup):
    torch.set_num_threads(threads)
    params = gf.init_params(c, seed=1)
    names = [n for n, _ in gf.param_shapes(c)]
    p = {n: params[n].clone().requires_grad_(True) for n in names}
    opt = torch.optim.AdamW([{"params": [p[n] for n in names if p[n].dim() >= 2], "weight_decay": 0.1},
                             {"params": [p[n] for n in names if p[n].dim() < 2], "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    B, T = c["B"], c["T"]
    times, loss = [], None
    for i in range(warmup + iters):
        off = (i * B * (T + 1)) % (len(data_tokens) - B * (T + 1))
        tok = data_tokens[off:off + B * (T + 1)].view(B, T + 1)
        x, y = tok[:, :-1].contiguous(), tok[:, 1:].contiguous()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = gf.loss_fn(gf.forward(p, x, c), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p[n] for n in names], 1.0)
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times, loss.item()


def torch_worker(name, data, threads, iters, warmup):
    """The PyTorch side in a process of its own: Debian's torch calls a generic BLAS (OpenBLAS),
    which torch.set_num_threads does not limit, so OPENBLAS_NUM_THREADS must be set before it
    loads (run_torch_child). Prints the step times and the last loss."""
    times, loss = run_torch(MODELS[name], fortunes_tokens(data), threads, iters, warmup)
    print("times " + " ".join(f"{t:.6f}" for t in times))
    print(f"loss {loss:.6f}")


def run_torch_child(name, data, threads, iters, warmup):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", name, "--data-prefix", data,
                        "--threads", str(threads), "--iters", str(iters), "--warmup", str(warmup)],
                       env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"program_torch.py: the PyTorch run of {name} failed:\n{p.stdout}{p.stderr}")
    vals = dict(line.split(" ", 1) for line in p.stdout.splitlines() if " " in line)
    return [float(t) for t in vals["times"].split()], float(vals["loss"])


def fortunes_tokens(data):
    """The dataset's tokens (uint16 byte tokens of gvc data), for PyTorch's batches."""
    import numpy as np
    raw = np.fromfile(data + ".bin", dtype=np.uint16)
    return torch.from_numpy(raw[: 4 << 20].astype(np.int64))


def row(label, times, flops, peak, extra=""):
    med = statistics.median(times)
    gf_s = flops / med / 1e9
    return (f"  {label:<14} {med * 1e3:9.1f} {min(times) * 1e3:8.1f} {max(times) * 1e3:8.1f} "
            f"{100 * (max(times) / med - 1):+7.1f}% {gf_s:8.1f} {100 * gf_s / peak:6.1f}%{extra}"), med


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="the build folder (gvc, step_bench, data/fortunes)")
    ap.add_argument("--threads", default="1,2", help="thread counts, comma separated (default 1,2)")
    ap.add_argument("--iters", type=int, default=10, help="timed steps (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed first steps of each run (default 2)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="gvc and PyTorch alternate this many times, the timed steps split between them (default 2)")
    ap.add_argument("--models", default="bench_gpt2,bench_llama", help="bench.gvm sizes (default both)")
    ap.add_argument("--time-ops", action="store_true", help="compile with --time_ops and print the per-op tables")
    ap.add_argument("--no-torch", action="store_true", help="time the compiled programs only")
    ap.add_argument("--blas-core", metavar="CORE",
                    help="OPENBLAS_CORETYPE for the sgemm peak, gvc and PyTorch alike (e.g. Haswell, SkylakeX; 'auto' "
                         "unsets it: OpenBLAS's own detection); default: as the environment has it")
    ap.add_argument("--torch-worker", metavar="MODEL", help=argparse.SUPPRESS)
    ap.add_argument("--data-prefix", help=argparse.SUPPRESS)
    a = ap.parse_args()
    global torch, gf
    import torch
    import gen_fixtures as gf
    if a.torch_worker:
        torch_worker(a.torch_worker, a.data_prefix, int(a.threads), a.iters, a.warmup)
        return
    if a.rounds < 1 or a.iters < a.rounds or a.warmup < 0:
        ap.error(f"--iters {a.iters} must be at least --rounds {a.rounds} (>= 1), and --warmup not negative")
    if a.blas_core == "auto":          # every child (step_bench, the programs, PyTorch) inherits it
        os.environ.pop("OPENBLAS_CORETYPE", None)
    elif a.blas_core:
        os.environ["OPENBLAS_CORETYPE"] = a.blas_core
    data = os.path.join(a.build, "data", "fortunes")
    if not os.path.exists(data + ".bin"):
        sys.exit(f"program_torch.py: {data}.bin is missing (scripts/make-corpus {a.build} builds it)")
    threads = [int(t) for t in a.threads.split(",")]
    print(f"seq {SEQ}, micro-batch {MICRO_BATCH}, fortunes dataset; {a.iters} timed steps in {a.rounds} "
          f"rounds, each after {a.warmup} warm-up steps; "
          f"PyTorch {torch.__version__} float32; load average {os.getloadavg()[0]:.2f} at start")
    if os.getloadavg()[0] > 1.5:
        print("the machine is busy: on a shared machine run this under `nice -n -20` (as root) and compare gvc with "
              "PyTorch only within one run")
    for name in a.models.split(","):
        c = MODELS[name]
        flops, nparams = llmc_flops_per_step(c)
        exe = compile_model(a.build, name, a.time_ops)
        print(f"\n{name}: V={c['V']} C={c['C']} L={c['L']} H={c['H']} KV={c['KV']} F={c['F']}; "
              f"{nparams / 1e6:.2f} M parameters in N; {flops / 1e9:.1f} GFLOP a step (llm.c's formula)")
        print(f"  {'':<14} {'median ms':>9} {'min':>8} {'max':>8} {'max/med':>8} {'GFLOP/s':>8} {'%peak':>7}")
        for t in threads:
            g_times, t_times, peaks, table = [], [], [], []
            for r in range(a.rounds):                 # interleaved: gvc, PyTorch, gvc, PyTorch, ...
                n = a.iters // a.rounds + (r < a.iters % a.rounds)
                peak, core = sgemm_peak(a.build, t)
                peaks.append(peak)
                times, g_loss, table = run_gvc(exe, data, t, n, a.warmup)
                g_times += times
                if not a.no_torch:
                    times, t_loss = run_torch_child(name, data, t, n, a.warmup)
                    t_times += times
            peak = max(peaks)
            line, gm = row(f"gvc {t}t", g_times, flops, peak,
                           f"   loss {g_loss:.4f}; sgemm peak {peak:.1f} GFLOP/s (max of {len(peaks)}, OpenBLAS {core} kernels)")
            print(line, flush=True)
            if not a.no_torch:
                line, tm = row(f"PyTorch {t}t", t_times, flops, peak,
                               f"   loss {t_loss:.4f}")
                print(line)
                print(f"  {'':<14} gvc / PyTorch throughput: {tm / gm:.2f}x", flush=True)
            for ln in table:
                print("    " + ln)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
