"""Benchmark the file form on N processes against one, in the same run, and check the bytes.

    python -m bench.shard_bench [--input F] [--workers 2] [--repeat 3]

Runs `tierstream replay --input F` with `--workers 1` and `--workers N` alternately, `--repeat`
times each (wall clock, process start included), compares the outputs byte for byte and prints
the medians and their ratio. Beside wall time it records the CPU time of each run (user + system
of the command and its workers): on a shared machine the wall ratio says what the load left,
while `N x cpu_1 / cpu_N` is the speedup N free cores would give if the shards are balanced.
Without --input it simulates the 1M-event file of
docs/performance.md (1000 shops, 50 days, seed 3).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from simulator.workload import SimConfig, write_simulation


def run(path: str, out: str, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "replay", "--input", path, "--output", out, "--workers", str(workers)],
                   check=True, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "tierstream-bench"))
    args = ap.parse_args(argv)
    path = args.input
    if path is None:
        os.makedirs(args.workdir, exist_ok=True)
        path = os.path.join(args.workdir, "sim-1000-50-3.jsonl")
        if not os.path.exists(path):
            write_simulation(SimConfig(shops=1000, days=50, seed=3), path)
    with open(path, "rb") as f:
        lines = sum(1 for _ in f)
    times: dict[int, list[float]] = {1: [], args.workers: []}
    cpu: dict[int, list[float]] = {1: [], args.workers: []}
    with tempfile.TemporaryDirectory() as tmp:
        outs = {n: os.path.join(tmp, f"out{n}.jsonl") for n in times}
        for i in range(args.repeat):
            for n in times:
                wall, cpu_s = run(path, outs[n], n)
                times[n].append(wall)
                cpu[n].append(cpu_s)
                print(f"bench: run {i + 1}/{args.repeat}, {n} worker(s): {lines / wall:,.0f} lines/s, "
                      f"{cpu_s * 1e6 / lines:.1f} CPU-us/line",
                      file=sys.stderr, flush=True)
        identical = filecmp.cmp(outs[1], outs[args.workers], shallow=False)
    med = {n: statistics.median(t) for n, t in times.items()}
    print(json.dumps({"lines": lines, "workers": args.workers, "identical_output": identical,
                      "lines_per_s_1": round(lines / med[1]),
                      f"lines_per_s_{args.workers}": round(lines / med[args.workers]),
                      "ratio": round(med[1] / med[args.workers], 3),
                      "cpu_us_per_line": {str(n): round(statistics.median(c) * 1e6 / lines, 2) for n, c in cpu.items()},
                      "speedup_on_free_cores": round(args.workers * statistics.median(cpu[1])
                                                     / statistics.median(cpu[args.workers]), 3),
                      "runs_s": {str(n): [round(x, 1) for x in t] for n, t in times.items()}}, indent=2))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
