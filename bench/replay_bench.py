"""Benchmark the file form: events/s and peak memory, beside raw JSON parsing of the same file.

    python -m bench.replay_bench [--shops 1000] [--days 50] [--seed 3] [--repeat 3]

Each replay runs in a fresh subprocess (so peak RSS is its own); the baseline
(read + orjson.loads of every line) runs in the same session, so the ratio holds
on a noisy machine. Memory is measured at two history lengths to show what it grows with.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import orjson

from simulator.workload import SimConfig, write_simulation

_CHILD = """
import resource, sys, time
from replay.file import replay_file
from tiering.fold import Folder
from tiering.params import RuleParams
p = RuleParams(); store = Folder(p).new_store()
t = time.perf_counter()
with open(sys.argv[1], 'rb') as src, open(sys.argv[2], 'wb') as dst:
    stats = replay_file(src, dst, p, store)
dt = time.perf_counter() - t
members = sum(m.total for m in store._members.values())
print(dt, stats.lines, members, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def raw_parse_seconds(path: str) -> float:
    t = time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            with contextlib.suppress(orjson.JSONDecodeError):
                orjson.loads(line)
    return time.perf_counter() - t


def replay_once(path: str) -> tuple[float, int, int, int]:
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        res = subprocess.run([sys.executable, "-c", _CHILD, path, out.name], capture_output=True, text=True,
                             check=True)
    dt, lines, members, rss_kb = res.stdout.split()
    return float(dt), int(lines), int(members), int(rss_kb)


def measure(shops: int, days: int, seed: int, repeat: int, workdir: str) -> dict[str, float]:
    path = os.path.join(workdir, f"sim-{shops}-{days}-{seed}.jsonl")
    if not os.path.exists(path):
        print(f"bench: simulating {shops} shops x {days} days ...", file=sys.stderr, flush=True)
        write_simulation(SimConfig(shops=shops, days=days, seed=seed), path)
    runs, raws = [], []
    for i in range(repeat):
        raws.append(raw_parse_seconds(path))
        runs.append(replay_once(path))
        print(f"bench: run {i + 1}/{repeat}: {runs[-1][1] / runs[-1][0]:,.0f} events/s", file=sys.stderr, flush=True)
    lines = runs[0][1]
    replay_s = statistics.median(r[0] for r in runs)
    raw_s = statistics.median(raws)
    return {"shops": shops, "days": days, "events": lines, "members": runs[0][2],
            "replay_events_per_s": round(lines / replay_s), "raw_parse_events_per_s": round(lines / raw_s),
            "ratio_to_raw_parse": round(raw_s / replay_s, 4), "peak_rss_mb": round(runs[0][3] / 1024, 1),
            "rss_bytes_per_member": round(runs[0][3] * 1024 / max(runs[0][2], 1))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shops", type=int, default=1000)
    ap.add_argument("--days", type=int, default=50)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "tierstream-bench"))
    args = ap.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    results = [measure(args.shops, args.days // 2, args.seed, args.repeat, args.workdir),
               measure(args.shops, args.days, args.seed, args.repeat, args.workdir)]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
