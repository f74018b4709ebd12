"""Benchmark what /metrics costs a worker: a latency observation, and one scrape.

    python -m bench.metrics_bench [--rounds 7]

`observe` now also counts a histogram bucket (bisect over 14 bounds); the baseline in the same
run is the window append alone (what `observe` did before). A scrape renders a worker-sized
exposition: 6 stages and 2 collector generations with observations, 4 input topics × 8 and
the ledger's 8 partitions of lag, 8 watermarks, the process metrics. Medians of the rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import deque

from plumbing.metrics import Metrics
from streams.prom import STAGES, WorkerCollector, exposition, registry_for

OBSERVATIONS = 200_000


def _observe_ns(metrics: Metrics) -> float:
    t0 = time.perf_counter_ns()
    for i in range(OBSERVATIONS):
        metrics.observe("commit_ms", (i % 997) * 0.37)
    return (time.perf_counter_ns() - t0) / OBSERVATIONS


def _append_ns() -> float:
    window: deque[float] = deque(maxlen=Metrics.WINDOW)
    windows = {"commit_ms": window}
    t0 = time.perf_counter_ns()
    for i in range(OBSERVATIONS):  # the old observe: look up the window, append
        w = windows.get("commit_ms")
        assert w is not None
        w.append((i % 997) * 0.37)
    return (time.perf_counter_ns() - t0) / OBSERVATIONS


def _scrape_ms(rounds: int = 200) -> tuple[float, int]:
    m = Metrics()
    for name in (*STAGES, "gc_gen1_ms", "gc_gen2_ms"):
        for i in range(3000):
            m.observe(name, i * 0.7)
    for key in ("events_in", "ledger_out", "ledger_folded", "duplicates", "batches"):
        m.bump(key, 123_456)
    for reason in ("malformed_json", "unknown_type", "invalid_field"):
        m.bump("dead_letters", 7, label=reason)
    lag = {"ingest": {(t, p): 10 for t in ("orders", "member-joins", "benefit-redemptions", "config-changes")
                      for p in range(8)}, "evaluate": {("ledger", p): 5 for p in range(8)}}
    registry = registry_for(WorkerCollector(m, lambda: lag, lambda: dict.fromkeys(range(8), 1_676_476_800_000),
                                            lambda: 1_676_476_800_000, 43_200_000,
                                            lambda: {"namespace": "live", "roles": "clock,evaluate,ingest"},
                                            ["ingest", "evaluate"]))
    size = len(exposition(registry))
    t0 = time.perf_counter()
    for _ in range(rounds):
        exposition(registry)
    return (time.perf_counter() - t0) / rounds * 1000, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    observe, append, scrape = [], [], []
    size = 0
    for _ in range(args.rounds):
        observe.append(_observe_ns(Metrics()))
        append.append(_append_ns())
        ms, size = _scrape_ms()
        scrape.append(ms)
    obs, base = statistics.median(observe), statistics.median(append)
    print(json.dumps({"observe_ns_median": round(obs), "window_append_ns_median": round(base),
                      "observe_over_append": round(obs / base, 2),
                      "scrape_ms_median": round(statistics.median(scrape), 2), "scrape_bytes": size,
                      "rounds": args.rounds}))


if __name__ == "__main__":
    main()
