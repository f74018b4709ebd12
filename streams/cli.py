"""The `tierstream` command line (interfaces.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack import stack


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
    from replay.file import main as replay_main
    from tiering.params import RuleParams

    if args.action:
        return _replay_action(args)
    if args.from_kafka:
        return _replay_kafka(args)
    if args.standards or args.set or args.start or args.stop or args.verify:
        print("tierstream replay: --standards, --set, --from, --to and --verify go with --from-kafka",
              file=sys.stderr)
        return 2
    if not args.input or not args.output:
        print("tierstream replay: --input and --output are required for the file form "
              "(or --from-kafka)", file=sys.stderr)
        return 2
    from replay.procs import ChildFailed

    try:
        return replay_main(args.input, args.output, RuleParams(), workers=args.workers or 1)
    except (OSError, ChildFailed) as exc:
        print(f"tierstream replay: {exc}", file=sys.stderr)
        return 2


def _replay_action(args: argparse.Namespace) -> int:
    """`tierstream replay promote NS` / `tierstream replay drop NS`."""
    from replay.namespaces import NamespaceError, drop, promote
    from streams.settings import Settings

    settings = Settings.from_env()
    if args.action[0] not in ("promote", "drop") or len(args.action) != 2:
        print("tierstream replay: expected `replay promote NAMESPACE` or `replay drop NAMESPACE`", file=sys.stderr)
        return 2
    verb, namespace = args.action
    try:
        if verb == "promote":
            old = promote(str(settings.redis), settings.namespace, namespace, settings.partitions)
            print(f"promote: {settings.namespace!r} now names {namespace!r} (was {old!r}); workers switch "
                  f"within a second and resume from its offsets; `tierstream replay drop {old}` when done")
        else:
            n = drop(str(settings.redis), settings.namespace, namespace)
            print(f"drop: deleted {n} keys of namespace {namespace!r}")
    except NamespaceError as exc:
        print(f"tierstream replay {verb}: {exc}", file=sys.stderr)
        return 1
    return 0


def _replay_kafka(args: argparse.Namespace) -> int:
    import json
    import uuid

    from projections.keys import resolve_namespace_sync
    from replay.ledger import Bound
    from replay.verify import diff_namespaces, diff_outputs, diff_shop_states
    from replay.whatif import WhatIfError, load_standards, parse_sets, report_namespaces, table
    from streams.settings import Settings
    from tiering.params import RuleParams

    settings = Settings.from_env()
    what_if = bool(args.standards or args.set)
    try:
        start = Bound.parse(args.start) if args.start else None
        stop = Bound.parse(args.stop) if args.stop else None
        params = RuleParams()
        if args.set:
            params = params.with_overrides(**parse_sets(args.set))
        if args.standards:
            params = params.with_overrides(pinned_standards=load_standards(args.standards))
    except (ValueError, WhatIfError) as exc:
        print(f"tierstream replay: {exc}", file=sys.stderr)
        return 2
    if what_if and args.verify:
        print("tierstream replay: --verify compares with what is live; a what-if differs on purpose", file=sys.stderr)
        return 2
    if args.publish_shop_state and (what_if or args.start):
        print("tierstream replay: --publish-shop-state publishes the present of a whole history: not with a "
              "what-if (hypothetical) or --from (a partial history)", file=sys.stderr)
        return 2
    namespace = args.namespace or f"{'whatif' if what_if else 'rebuild'}-{uuid.uuid4().hex[:8]}"
    result = _rebuild(args, settings, namespace, params, start, stop)
    if result is None:
        return 1
    print(f"replay: folded {result.records} ledger records into namespace {namespace!r} "
          f"in {result.seconds:.1f}s ({result.records / max(result.seconds, 1e-9):,.0f}/s)", file=sys.stderr)
    from projections.clients import sync_redis

    r = sync_redis(str(settings.redis))
    try:
        live = resolve_namespace_sync(r, settings.namespace)
    finally:
        r.close()
    if what_if:
        report = report_namespaces(str(settings.redis), live, namespace, settings.partitions)
        report.update(live_namespace=live, scratch_namespace=namespace,
                      parameters={"set": args.set or [], "standards": args.standards})
        print(table(report))
        if args.report:
            with open(args.report, "w") as f:
                json.dump(report, f, indent=2, sort_keys=True)
            print(f"what-if: report written to {args.report}", file=sys.stderr)
        print(f"what-if: scratch namespace {namespace!r} kept; `tierstream replay drop {namespace}` to remove it",
              file=sys.stderr)
        return 0
    if args.verify:
        diffs = diff_namespaces(str(settings.redis), live, namespace)
        if result.resumed:
            print(f"verify: outputs not compared: {namespace!r} was resumed ({result.resumed} records folded by an "
                  "earlier run, whose outputs are not at hand); rebuild into a new namespace to compare them",
                  file=sys.stderr)
        else:
            diffs += diff_outputs(settings, result.outputs)
            diffs += diff_shop_states(settings, result.shop_states)
        for line in diffs[:50]:
            print(line)
        if len(diffs) > 50:
            print(f"... and {len(diffs) - 50} more")
        print(f"verify: {len(diffs)} difference(s) between {live!r} and {namespace!r}")
        return 1 if diffs else 0
    return 0


def _rebuild(args: argparse.Namespace, settings: Any, namespace: str, params: Any, start: Any,
             stop: Any) -> Any:
    """The rebuild on `--workers` processes (default: the cores); None when it failed (said why)."""
    import asyncio
    import os

    from replay.ledger import rebuild
    from replay.parallel import rebuild_parallel
    from replay.procs import ChildFailed

    workers = args.workers or os.cpu_count() or 1
    if workers == 1:
        return asyncio.run(rebuild(settings, namespace, params=params, progress=True,
                                   keep_outputs=bool(args.verify), start=start, stop=stop,
                                   shop_state=bool(args.verify), publish_shop_state=args.publish_shop_state))
    try:
        return rebuild_parallel(settings, namespace, params, workers, keep_outputs=bool(args.verify),
                                start=start, stop=stop, publish_shop_state=args.publish_shop_state)
    except ChildFailed as exc:
        print(f"tierstream replay: the rebuild into {namespace!r} failed: {exc}; every worker was stopped, "
              f"and a rerun with --namespace {namespace} resumes from what was committed", file=sys.stderr)
        return None


def _export(args: argparse.Namespace) -> int:
    import asyncio

    from replay.export import ExportError, export
    from replay.ledger import Bound
    from streams.settings import Settings

    try:
        start = Bound.parse(args.start) if args.start else None
        stop = Bound.parse(args.stop) if args.stop else None
    except ValueError as exc:
        print(f"tierstream export: {exc}", file=sys.stderr)
        return 2
    try:
        with open(args.output, "wb") as out:
            n = asyncio.run(export(Settings.from_env(), out, args.source, start, stop, progress=True))
    except (ExportError, OSError) as exc:
        print(f"tierstream export: {exc}", file=sys.stderr)
        return 1
    print(f"export: wrote {n} lines to {args.output} (replay them with tierstream replay --input {args.output})",
          file=sys.stderr)
    return 0


def _explain(args: argparse.Namespace) -> int:
    import asyncio

    import orjson

    from replay.explain import ExplainError, explain, render
    from replay.export import ExportError
    from streams.settings import Settings

    try:
        x = asyncio.run(explain(Settings.from_env(), args.shop, args.cycle))
    except (ExplainError, ExportError) as exc:
        print(f"tierstream explain: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(x, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render(x))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from datetime import date, timedelta

    from bench.simulate import SimConfig, write_simulation

    if date.fromisoformat(args.start) + timedelta(days=args.days) > date(2099, 12, 31):
        print(f"tierstream simulate: {args.days} days from {args.start} run past 2099, the contract's last year",
              file=sys.stderr)
        return 2
    from streams.progress import Progress

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


def _devstack(args: argparse.Namespace) -> int:
    from devstack import cluster, stack

    cfg = stack.StackConfig.from_env()
    if args.secure:
        from streams.secure_cli import devstack_secure

        return devstack_secure(cfg, args.action)
    try:
        if _devstack_cluster(cfg, args):
            return 0 if args.action != "status" or args.cluster_ok else 1
        if args.action == "up":
            lines = stack.up(cfg, args.redis_cluster, args.replicas)
        elif args.action == "down":
            from devstack import secure

            lines = stack.down(cfg) + secure.down(secure.SecureConfig.from_env(cfg))
        elif args.action == "env":
            lines = stack.env_lines(cfg)
        else:
            ok, lines = stack.status(cfg)
            print("\n".join(lines))
            return 0 if ok else 1
    except (stack.DevstackError, cluster.ClusterError) as exc:
        print(f"devstack {args.action}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _devstack_cluster(cfg: stack.StackConfig, args: argparse.Namespace) -> bool:
    """`--brokers N` (N > 1, or the cluster the last `up` started): the cluster takes the one broker's place."""
    from devstack import brokers

    cc = brokers.for_stack(cfg.home, cfg.kafka_port, args.brokers)
    if cc is None:
        return False
    args.cluster_ok, lines = brokers.stack_action(cfg, cc, args.action)
    print("\n".join(lines))
    return True


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


def _schema(args: argparse.Namespace) -> int:
    from streams.schema_cli import main as schema_main

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
    db.add_argument("--host", default="127.0.0.1")
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

    from streams.cli_help import decorate

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

    from streams.settings import Settings, SettingsError, redact_url

    if isinstance(exc, SettingsError):
        return str(exc)
    hint = "is it running? `tierstream devstack up` starts one here, `eval \"$(tierstream devstack env)\"` points at it"
    if isinstance(exc, KafkaConnectionError):
        from streams.kafka_security import diagnose

        reason = diagnose(Settings.from_env())
        return f"{reason}; {hint}" if reason.startswith("cannot reach") else reason
    from projections.clients import RedisConfigError

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
