"""Rebuild on N processes: each folds its own ledger partitions into the same namespace.

A partition's state, offset and outputs depend on that partition's records alone (global events
are fanned out to every partition by ingest), and the Redis store commits each partition fenced
by its own stored offset, as several evaluate workers sharing a namespace do; so the children
need nothing from each other, and a rerun resumes every partition from its own offset.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from typing import Any

import orjson

from plumbing.settings import Settings
from replay.ledger import Bound, RebuildResult, progress_line, rebuild
from replay.procs import Progress, run_children
from tiering.params import RuleParams

REPORT_EVERY_S = 0.5


def split_partitions(partitions: int, workers: int) -> list[list[int]]:
    """Partition p goes to worker p mod N (no worker without a partition)."""
    n = max(1, min(workers, partitions))
    return [list(range(k, partitions, n)) for k in range(n)]


def rebuild_child(settings: Settings, namespace: str, params: RuleParams, partitions: list[int],
                  start: Bound | None, stop: Bound | None, outputs_path: str | None,
                  publish_shop_state: bool = False, progress: Progress | None = None) -> RebuildResult:
    """One child: rebuild its partitions; outputs and shop_state records (for --verify) go to
    files (`outputs_path`, `outputs_path.states`), not through a pipe."""
    last = [0.0]

    def report(done: int, total: int, resumed: int) -> None:
        now = time.monotonic()
        if progress is not None and (now - last[0] >= REPORT_EVERY_S or done == total):
            last[0] = now
            progress((done, total, resumed))

    keep = outputs_path is not None
    result = asyncio.run(rebuild(settings, namespace, params, keep_outputs=keep, start=start, stop=stop,
                                 shop_state=keep, publish_shop_state=publish_shop_state,
                                 partitions=partitions, on_progress=report))
    if progress is not None:
        progress((result.resumed + result.records, None, result.resumed))
    if outputs_path is not None:
        with open(outputs_path, "wb") as f:
            f.writelines(orjson.dumps(o) + b"\n" for o in result.outputs)
        with open(outputs_path + ".states", "wb") as f:
            f.writelines(orjson.dumps(o) + b"\n" for o in result.shop_states)
        result.outputs, result.shop_states = [], []
    return result


def rebuild_parallel(settings: Settings, namespace: str, params: RuleParams, workers: int,
                     keep_outputs: bool = False, start: Bound | None = None, stop: Bound | None = None,
                     show_progress: bool = True, publish_shop_state: bool = False) -> RebuildResult:
    """`tierstream replay --from-kafka --workers N`: the children's progress as one line; the
    first child to fail stops the others and fails the rebuild (ChildFailed), which a rerun resumes."""
    split = split_partitions(settings.partitions, workers)
    state: dict[int, tuple[int, int, int]] = {}
    t0 = time.perf_counter()

    def report(i: int, p: Any) -> None:
        done, total, resumed = p
        state[i] = (done, total if total is not None else state.get(i, (0, done, 0))[1], resumed)
        if show_progress and len(state) == len(split):
            done, total, resumed = (sum(v[j] for v in state.values()) for j in range(3))
            progress_line(done, total, t0, resumed, len(split))

    with tempfile.TemporaryDirectory(prefix="tierstream-rebuild-") as tmp:
        paths = [os.path.join(tmp, f"outputs-{k}.jsonl") if keep_outputs else None for k in range(len(split))]
        try:
            results = run_children(rebuild_child, [(settings, namespace, params, part, start, stop, paths[k],
                                                    publish_shop_state)
                                                   for k, part in enumerate(split)], on_progress=report)
        finally:
            if show_progress:
                print(file=sys.stderr)
        total = RebuildResult(records=sum(r.records for r in results), resumed=sum(r.resumed for r in results))
        for path in paths:
            if path is not None:
                with open(path, "rb") as f:
                    total.outputs.extend(orjson.loads(line) for line in f)
                with open(path + ".states", "rb") as f:
                    total.shop_states.extend(orjson.loads(line) for line in f)
    total.seconds = time.perf_counter() - t0
    return total
