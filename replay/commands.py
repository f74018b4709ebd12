"""The replay room's commands: `tierstream replay | export | explain`, given their parsed arguments."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def replay(args: argparse.Namespace) -> int:
    from replay.file import main as replay_main
    from tiering.params import RuleParams

    if args.action:
        return _action(args)
    if args.from_kafka:
        return _from_kafka(args)
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


def _action(args: argparse.Namespace) -> int:
    """`tierstream replay promote NS` / `tierstream replay drop NS`."""
    from plumbing.settings import Settings
    from replay.namespaces import NamespaceError, drop, promote

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


def _from_kafka(args: argparse.Namespace) -> int:
    import json
    import uuid

    from plumbing.settings import Settings
    from projections.keys import resolve_namespace_sync
    from replay.ledger import Bound
    from replay.verify import diff_namespaces, diff_outputs, diff_shop_states
    from replay.whatif import WhatIfError, load_standards, parse_sets, report_namespaces, table
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
    from plumbing.redis_clients import sync_redis

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


def export(args: argparse.Namespace) -> int:
    import asyncio

    from plumbing.settings import Settings
    from replay.export import ExportError, export
    from replay.ledger import Bound

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


def explain(args: argparse.Namespace) -> int:
    import asyncio

    import orjson

    from plumbing.settings import Settings
    from replay.explain import ExplainError, explain, render
    from replay.export import ExportError

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
