"""The `tierstream` command line (interfaces.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _count(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _sim_day(text: str) -> str:
    """An argparse type: a first simulated day, YYYY-MM-DD, inside the contract's years."""
    from datetime import date

    try:
        d = date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected YYYY-MM-DD ({exc})") from None
    if not date(1990, 1, 2) <= d <= date(2099, 12, 30):  # a local day starting 1990-01-01 begins before 1990 UTC
        raise argparse.ArgumentTypeError(f"{text}: the first day must be from 1990-01-02 to 2099-12-30 "
                                         "(event timestamps fall in 1990-2099, the contract's range)")
    return text


def _replay(args: argparse.Namespace) -> int:
    from replay.commands import replay

    return replay(args)


def _export(args: argparse.Namespace) -> int:
    from replay.commands import export

    return export(args)


def _explain(args: argparse.Namespace) -> int:
    from replay.commands import explain

    return explain(args)


def _simulate(args: argparse.Namespace) -> int:
    from simulator.commands import simulate

    return simulate(args)


def _devstack(args: argparse.Namespace) -> int:
    from devstack.commands import devstack

    if args.secure:  # its Redis users get the project's ACL rules, which devstack/ may not import
        from cli.devstack_secure import devstack_secure
        from devstack import stack

        return devstack_secure(stack.StackConfig.from_env(), args.action)

    return devstack(args)


def _worker(args: argparse.Namespace) -> int:
    from plumbing.settings import Settings
    from streams.app import run_worker

    return run_worker(Settings.from_env(), loglevel=args.loglevel)


def _produce(args: argparse.Namespace) -> int:
    from plumbing.kafka import produce_cmd
    from plumbing.settings import Settings

    return produce_cmd(Settings.from_env(), args.input, args.rate)


def _dashboard(args: argparse.Namespace) -> int:
    from dashboard.server import run_dashboard
    from plumbing.settings import Settings

    return run_dashboard(Settings.from_env(), host=args.host, port=args.port)


def _consume(args: argparse.Namespace) -> int:
    from plumbing.kafka import consume_cmd
    from plumbing.settings import Settings

    return consume_cmd(Settings.from_env(), args.output, args.idle_seconds)


def _schema(args: argparse.Namespace) -> int:
    from cli.schema import main as schema_main

    return schema_main(args.type, args.write, args.list)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tierstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("replay", help="fold input events into output events (file form); rebuild, verify, "
                                      "what-if from the log; `replay promote NS` / `replay drop NS`")
    r.add_argument("action", nargs="*", help="promote NAMESPACE | drop NAMESPACE")
    r.add_argument("--input", help="input events, JSONL, in arrival order")
    r.add_argument("--output", help="where to write every output event, JSONL, in emission order")
    r.add_argument("--from-kafka", action="store_true", help="re-fold the ledger into a fresh Redis namespace")
    r.add_argument("--namespace", help="with --from-kafka: the namespace to build (default: a new one)")
    r.add_argument("--verify", action="store_true", help="with --from-kafka: compare with the live namespace")
    r.add_argument("--from", dest="start", help="with --from-kafka: first record, an offset or an instant")
    r.add_argument("--to", dest="stop", help="with --from-kafka: last record, an offset or an instant")
    r.add_argument("--standards", help="what-if: industry standards (JSON) that apply throughout")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="what-if: a rule parameter (repeatable)")
    r.add_argument("--report", help="what-if: also write the report as JSON to this file")
    r.add_argument("--publish-shop-state", action="store_true",
                   help="with --from-kafka: send the rebuild's shop_state records to the shop-state topic")
    r.add_argument("--workers", type=_count, help="processes: shops split among them for a file (default 1), "
                                                 "ledger partitions for --from-kafka (default: the cores)")
    r.set_defaults(func=_replay)

    s = sub.add_parser("simulate", help="write a realistic, seeded workload in the input contract")
    s.add_argument("--shops", type=_count, default=100)
    s.add_argument("--days", type=_count, default=45)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--start", type=_sim_day, default="2023-01-01", help="first local day (YYYY-MM-DD)")
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
    db.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only); see TIERSTREAM_DASHBOARD_TOKEN")
    db.add_argument("--port", type=int, default=8080)
    db.set_defaults(func=_dashboard)

    ex = sub.add_parser("export", help="write the input topics (or the ledger) as a JSONL file for the file form")
    ex.add_argument("--output", required=True)
    ex.add_argument("--source", choices=["inputs", "ledger"], default="inputs")
    ex.add_argument("--from", dest="start", help="first record: an offset or an instant")
    ex.add_argument("--to", dest="stop", help="last record: an offset or an instant")
    ex.set_defaults(func=_export)

    xp = sub.add_parser("explain", help="a shop's assessment for a cycle and the events that fed it")
    xp.add_argument("shop")
    xp.add_argument("--cycle", help="the cycle's first day, e.g. 2023-01-16 (default: the latest assessed)")
    xp.add_argument("--json", action="store_true", help="the same as JSON")
    xp.set_defaults(func=_explain)

    sc = sub.add_parser("schema", help="print the JSON Schema (draft 2020-12) of an input or output type, or all")
    sc.add_argument("type", nargs="?", help="an event type, e.g. tier_changed (default: every schema, keyed by type)")
    sc.add_argument("--list", action="store_true", help="list the types with their kind and topic")
    sc.add_argument("--write", metavar="DIR", help="write every schema, as built from the contract, into DIR")
    sc.set_defaults(func=_schema)

    d = sub.add_parser("devstack", help="a real Kafka and Redis on loopback for this machine")
    d.add_argument("action", choices=["up", "down", "status", "env"])
    d.add_argument("--redis-cluster", action="store_true",
                   help="up: also a Redis Cluster of 3 masters (TIERSTREAM_DEVSTACK_CLUSTER_PORT, default 17100)")
    d.add_argument("--replicas", type=int, choices=[0, 1], default=0, help="up --redis-cluster: replicas per master")
    d.add_argument("--brokers", type=int, default=None,
                   help="Kafka nodes (KRaft, replicated); default 1, or as many as the last `up` "
                        "(docs/reliability.md)")
    d.add_argument("--secure", action="store_true",
                   help="the secure stack beside the plain one: Kafka over SASL_SSL (SCRAM), Redis over TLS with "
                        "ACL users worker and dashboard; `env --secure` prints the worker's variables")
    d.set_defaults(func=_devstack)

    from cli.help import decorate

    decorate(p, sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        reason = _unavailable(exc, args.command)
        if reason is None:
            raise  # a bug: the traceback is the report
        print(f"tierstream {args.command}: {reason}", file=sys.stderr)
        return 1


def _unavailable(exc: Exception, command: str = "") -> str | None:
    """What to tell the user when a command's broker, Redis or file is not there, or refuses it; None otherwise."""
    from aiokafka.errors import KafkaConnectionError
    from redis.exceptions import AuthenticationError, NoPermissionError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from plumbing.settings import Settings, SettingsError, redact_url

    if isinstance(exc, SettingsError):
        return str(exc)
    hint = "is it running? `tierstream devstack up` starts one here, `eval \"$(tierstream devstack env)\"` points at it"
    if isinstance(exc, KafkaConnectionError):
        from plumbing.kafka_security import diagnose

        reason = diagnose(Settings.from_env())
        return f"{reason}; {hint}" if reason.startswith("cannot reach") else reason
    from plumbing.redis_clients import RedisConfigError

    if isinstance(exc, RedisConfigError):
        return str(exc)
    if isinstance(exc, NoPermissionError):
        from projections.acl import refused_line

        s = Settings.from_env()
        return refused_line(exc, "dashboard" if command == "dashboard" else "worker", s.namespace, s.topic_prefix)
    if isinstance(exc, AuthenticationError):  # a ConnectionError to redis-py, but nothing is down
        return (f"Redis at {redact_url(str(Settings.from_env().redis))} refused the user and password of "
                f"TIERSTREAM_REDIS ({exc})")
    if isinstance(exc, RedisConnectionError):
        return f"cannot reach Redis at {redact_url(str(Settings.from_env().redis))} ({exc}); {hint}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return str(exc)
    return None


if __name__ == "__main__":
    sys.exit(main())
