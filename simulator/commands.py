"""`tierstream simulate`: write a seeded workload file, with progress, given the parsed arguments."""

from __future__ import annotations

import argparse
import sys


def simulate(args: argparse.Namespace) -> int:
    from datetime import date, timedelta

    from simulator.workload import SimConfig, write_simulation

    if date.fromisoformat(args.start) + timedelta(days=args.days) > date(2099, 12, 31):
        print(f"tierstream simulate: {args.days} days from {args.start} run past 2099, the contract's last year",
              file=sys.stderr)
        return 2
    from plumbing.progress import Progress

    cfg = SimConfig(shops=args.shops, days=args.days, seed=args.seed, start=args.start)
    bar = Progress("simulate", args.days, unit="lines")
    try:
        n = write_simulation(cfg, args.output, progress=lambda days, lines: bar.update(days, lines))
    except OSError as exc:
        print(f"tierstream simulate: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    print(f"simulate: wrote {n} events for {args.shops} shops over {args.days} days to {args.output}",
          file=sys.stderr)
    return 0
