#!/usr/bin/env python3
"""ab_programs.py - A/B of two compiled training programs (an old and a new build of the same
model, e.g. `gvc compile --time_ops` before and after a change) on the same data, interleaved
old, new, new, old, ... so that both see the same load on a shared machine (run it under
`nice -n -20`). Prints each run's losses and step times, then per binary the median step
time and, for programs compiled with --time_ops, each op's ms a step (the median over the
runs) side by side.

  ab_programs.py OLD NEW --data build/data/fortunes [--threads 2] [--iters 4] [--warmup 1]
                 [--rounds 2] [--batch 8]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

STEP_RE = re.compile(r"step (\d+)/\d+ \| loss (\S+) .*?\| ([0-9.]+) ms/step")
OP_RE = re.compile(r"gvrt:\s{3}(\S.*?)\s+(?:([0-9.]+)\s+)?([0-9.]+)\s+([0-9.]+)%$")


def run(exe, a):
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), GV_COMM="self")
    p = subprocess.run([os.path.abspath(exe), "--data", a.data, "--iters", str(a.warmup + a.iters), "--global_train_batch_size",
                        str(a.batch), "--log_interval", "1"], env=env, capture_output=True, text=True)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        sys.exit(f"ab_programs.py: {exe} failed:\n{out}")
    steps = [(int(m.group(1)), m.group(2), float(m.group(3))) for m in STEP_RE.finditer(out)]
    ops = {}
    for ln in out.splitlines():
        m = OP_RE.search(ln)
        if m and m.group(1) != "op":
            ops[m.group(1).strip()] = float(m.group(3))
    return [t for i, _, t in steps if i >= a.warmup], [l for _, l, _ in steps], ops


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--data", required=True, help="the dataset prefix (PREFIX.bin/.idx)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=4, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=1, help="steps per run left out of the times")
    ap.add_argument("--rounds", type=int, default=2, help="old, new, new, old per round")
    ap.add_argument("--batch", type=int, default=8, help="--global_train_batch_size")
    a = ap.parse_args()
    res = {"old": ([], [], []), "new": ([], [], [])}
    print(f"load average {os.getloadavg()[0]:.2f} at start, {a.threads} threads", flush=True)
    for r in range(a.rounds):
        for which in ("old", "new", "new", "old"):
            times, losses, ops = run(a.old if which == "old" else a.new, a)
            res[which][0].extend(times)
            res[which][1].append(losses)
            res[which][2].append(ops)
            print(f"round {r + 1} {which}: losses {' '.join(losses)}; steps (ms) "
                  f"{' '.join(f'{t:.0f}' for t in times)}; load {os.getloadavg()[0]:.2f}", flush=True)
    for which in ("old", "new"):
        t = res[which][0]
        print(f"{which}: step median {statistics.median(t):.1f} ms (min {min(t):.1f}, max {max(t):.1f}) "
              f"over {len(t)} steps")
    same = all(l == res["old"][1][0] for which in res for l in res[which][1])
    print("losses: the same in every run" if same else "losses: DIFFER between runs")
    names = []
    for which in ("old", "new"):
        for ops in res[which][2]:
            names += [n for n in ops if n not in names]
    if names:
        print(f"{'op (ms a step, median of runs)':<32} {'old':>10} {'new':>10}")
        for n in names:
            cells = []
            for which in ("old", "new"):
                v = [ops[n] for ops in res[which][2] if n in ops]
                cells.append(f"{statistics.median(v):10.1f}" if v else f"{'-':>10}")
            print(f"{n:<32} {cells[0]} {cells[1]}")


if __name__ == "__main__":
    main()
