"""The `tierstream` command line (interfaces.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _replay(args: argparse.Namespace) -> int:
    from replay.file import main as replay_main
    from tiering.params import RuleParams

    if args.from_kafka:
        return _replay_kafka(args)
    if not args.input or not args.output:
        print("tierstream replay: --input and --output are required for the file form "
              "(or --from-kafka)", file=sys.stderr)
        return 2
    return replay_main(args.input, args.output, RuleParams())


def _replay_kafka(args: argparse.Namespace) -> int:
    import asyncio
    import uuid

    from replay.ledger import rebuild
    from replay.verify import diff_namespaces
    from streams.settings import Settings

    settings = Settings.from_env()
    namespace = args.namespace or f"rebuild-{uuid.uuid4().hex[:8]}"
    result = asyncio.run(rebuild(settings, namespace, progress=True, keep_outputs=False))
    print(f"replay: folded {result.records} ledger records into namespace {namespace!r} "
          f"in {result.seconds:.1f}s ({result.records / max(result.seconds, 1e-9):,.0f}/s)", file=sys.stderr)
    if args.verify:
        diffs = diff_namespaces(str(settings.redis), settings.namespace, namespace)
        for line in diffs[:50]:
            print(line)
        print(f"verify: {len(diffs)} difference(s) between {settings.namespace!r} and {namespace!r}")
        return 1 if diffs else 0
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from bench.simulate import SimConfig, write_simulation

    cfg = SimConfig(shops=args.shops, days=args.days, seed=args.seed, start=args.start)
    n = write_simulation(cfg, args.output)
    print(f"simulate: wrote {n} events for {args.shops} shops over {args.days} days to {args.output}",
          file=sys.stderr)
    return 0


def _devstack(args: argparse.Namespace) -> int:
    from devstack import stack

    cfg = stack.StackConfig.from_env()
    try:
        if args.action == "up":
            lines = stack.up(cfg)
        elif args.action == "down":
            lines = stack.down(cfg)
        elif args.action == "env":
            lines = stack.env_lines(cfg)
        else:
            ok, lines = stack.status(cfg)
            print("\n".join(lines))
            return 0 if ok else 1
    except stack.DevstackError as exc:
        print(f"devstack {args.action}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _worker(args: argparse.Namespace) -> int:
    from streams.app import run_worker
    from streams.settings import Settings

    return run_worker(Settings.from_env(), loglevel=args.loglevel)


def _produce(args: argparse.Namespace) -> int:
    from streams.kafka_io import produce_cmd
    from streams.settings import Settings

    return produce_cmd(Settings.from_env(), args.input, args.rate)


def _dashboard(args: argparse.Namespace) -> int:
    from streams.dashboard import run_dashboard
    from streams.settings import Settings

    return run_dashboard(Settings.from_env(), host=args.host, port=args.port)


def _consume(args: argparse.Namespace) -> int:
    from streams.kafka_io import consume_cmd
    from streams.settings import Settings

    return consume_cmd(Settings.from_env(), args.output, args.idle_seconds)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tierstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("replay", help="fold input events into output events (file form)")
    r.add_argument("--input", help="input events, JSONL, in arrival order")
    r.add_argument("--output", help="where to write every output event, JSONL, in emission order")
    r.add_argument("--from-kafka", action="store_true", help="re-fold the ledger into a fresh Redis namespace")
    r.add_argument("--namespace", help="with --from-kafka: the namespace to build (default: a new one)")
    r.add_argument("--verify", action="store_true", help="with --from-kafka: compare with the live namespace")
    r.set_defaults(func=_replay)

    s = sub.add_parser("simulate", help="write a realistic, seeded workload in the input contract")
    s.add_argument("--shops", type=int, default=100)
    s.add_argument("--days", type=int, default=45)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--start", default="2023-01-01", help="first local day (YYYY-MM-DD)")
    s.add_argument("--output", required=True)
    s.set_defaults(func=_simulate)

    w = sub.add_parser("worker", help="run the stream processor against the configured Kafka and Redis")
    w.add_argument("--loglevel", default="warning")
    w.set_defaults(func=_worker)

    pr = sub.add_parser("produce", help="send a JSONL file of input events to their input topics, in order")
    pr.add_argument("--input", required=True)
    pr.add_argument("--rate", type=float, help="lines per second (default: as fast as in-order sending goes)")
    pr.set_defaults(func=_produce)

    co = sub.add_parser("consume", help="read every output topic from the beginning into a JSONL file")
    co.add_argument("--output", required=True)
    co.add_argument("--idle-seconds", type=float, default=5.0)
    co.set_defaults(func=_consume)

    db = sub.add_parser("dashboard", help="serve the HTTP API and the dashboard page over the read models")
    db.add_argument("--host", default="127.0.0.1")
    db.add_argument("--port", type=int, default=8080)
    db.set_defaults(func=_dashboard)

    d = sub.add_parser("devstack", help="a real Kafka and Redis on loopback for this machine")
    d.add_argument("action", choices=["up", "down", "status", "env"])
    d.set_defaults(func=_devstack)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
