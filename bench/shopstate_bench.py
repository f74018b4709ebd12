"""What the shop-state snapshots cost the fold: the same workload folded with and without them.

    python -m bench.shopstate_bench [--shops 500] [--days 60] [--seed 3] [--repeat 5]

Both variants fold the same parsed events through the memory store in this process, alternating
run by run, so the ratio holds on a shared machine; the figure is the fold's CPU, not Redis's or
the broker's (a snapshot is one more small record per moved shop to send).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import time
from typing import Any

from simulator.workload import SimConfig, Simulator
from tiering.contract import InvalidEvent, parse_line
from tiering.fold import Folder
from tiering.params import RuleParams
from tiering.shopstate import Snapshots


def fold_all(events: list[dict[str, Any]], snapshots: bool) -> tuple[float, int, int]:
    """Seconds, outputs and snapshots of one fold of `events`."""
    folder = Folder(RuleParams())
    store = folder.new_store()
    snap = Snapshots(folder.cal, 0) if snapshots else None
    outputs = states = 0
    gc.disable()
    t0 = time.perf_counter()
    for offset, e in enumerate(events):
        outs = folder.fold(store, e)
        if outs:
            outputs += len(outs)
            if snap is not None:
                states += len(snap(store, outs, offset))
    dt = time.perf_counter() - t0
    gc.enable()
    return dt, outputs, states


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shops", type=int, default=500)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    events = []
    for line in Simulator(SimConfig(shops=args.shops, days=args.days, seed=args.seed)).lines():
        with contextlib.suppress(InvalidEvent):
            events.append(parse_line(line))
    times: dict[bool, list[float]] = {False: [], True: []}
    counts: dict[bool, tuple[int, int]] = {}
    for _ in range(args.repeat):
        for snapshots in (False, True):
            dt, outputs, states = fold_all([dict(e) for e in events], snapshots)
            times[snapshots].append(dt)
            counts[snapshots] = (outputs, states)
    base, with_states = statistics.median(times[False]), statistics.median(times[True])
    print(f"{len(events):,} events, {counts[True][0]:,} outputs, {counts[True][1]:,} shop_state records")
    print(f"fold without snapshots: median {base:.3f}s ({len(events) / base:,.0f} events/s) of {times[False]}")
    print(f"fold with snapshots:    median {with_states:.3f}s ({len(events) / with_states:,.0f} events/s) "
          f"of {times[True]}")
    print(f"ratio with/without: {with_states / base:.3f}")


if __name__ == "__main__":
    main()
