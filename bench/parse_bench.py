"""The contract check's cost per message (parse_event), A/B against another checkout's, in one process.

    python -m bench.parse_bench --baseline /path/to/other/checkout [--rounds 60] [--lines 20000]

Both versions parse the same simulated lines in 500-line chunks, alternating, and each chunk keeps
its best time over the rounds: on a shared, loaded machine the best of many short runs moves far
less than a mean, and both sides meet the same load.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.workload import SimConfig, Simulator
from tiering import contract

CHUNK = 500


def _load_contract(checkout: Path) -> Any:
    spec = importlib.util.spec_from_file_location("baseline_contract", checkout / "tiering" / "contract.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"parse_bench: no tiering/contract.py under {checkout}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _chunk_ns(parse: Callable[[bytes], Any], chunk: list[bytes]) -> float:
    t = time.perf_counter()
    for line in chunk:
        try:
            parse(line)
        except contract.InvalidEvent:
            pass
        except ValueError:  # the baseline's own InvalidEvent class
            pass
    return (time.perf_counter() - t) / len(chunk) * 1e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout whose tiering/contract.py to compare")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--lines", type=int, default=20_000)
    args = ap.parse_args(argv)
    base = _load_contract(args.baseline)
    lines = list(Simulator(SimConfig(shops=200, days=20, seed=7, events_per_shop_day=3)).lines())[:args.lines]
    chunks = [lines[i:i + CHUNK] for i in range(0, len(lines), CHUNK)]
    best = {"baseline": [float("inf")] * len(chunks), "this": [float("inf")] * len(chunks)}
    for _ in range(args.rounds):
        for i, chunk in enumerate(chunks):
            best["baseline"][i] = min(best["baseline"][i], _chunk_ns(base.parse_event, chunk))
            best["this"][i] = min(best["this"][i], _chunk_ns(contract.parse_event, chunk))
    b, m = (sum(v) / len(chunks) for v in (best["baseline"], best["this"]))
    print(f"parse_event over {len(lines)} simulated lines, best of {args.rounds} alternating rounds per "
          f"{CHUNK}-line chunk: baseline {b:.0f} ns/msg, this checkout {m:.0f} ns/msg, ratio {m / b:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
