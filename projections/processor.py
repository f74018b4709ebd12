"""Fold batches of ledger records into Redis stores: the worker's and the log replay's shared
step (numbered as it runs), for one partition or for several at once.

Several partitions at once (`fold_pass`, `commit_pass`) share their round trips: one loads every
partition's clock and offset, one prefetches what all their records read, one pipeline carries each
partition's fenced commit script (projections/commit.py). A batch's cost was mostly those round
trips, paid per partition; at a few events per partition per fetch they made the evaluate step's
latency."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from projections.commit import After, Extra, commit_many
from projections.readmodels import Prepared, ReadModels
from projections.redis_store import RedisStore
from tiering.fold import Folder
from tiering.outputs import Output
from tiering.shopstate import Snapshots

Records = Sequence[tuple[int, dict[str, Any]]]  # (ledger offset, record)


class PartitionProcessor:
    def __init__(self, folder: Folder, store: RedisStore, read_models: bool = True, feeds: bool = True,
                 feed_interval_s: float = 0.25, shop_state: bool = False) -> None:
        self.folder, self.store = folder, store
        # with shop_state, each record's outputs are followed by the `shop_state` records of the shops they moved
        self.snapshots = Snapshots(folder.cal, store.p) if shop_state else None
        self.skipped = 0
        self.read_models = ReadModels(folder.closer, store.keys, store.p, feeds=feeds,
                                      min_interval_s=feed_interval_s) if read_models else None

    def fold_batch(self, records: Records) -> tuple[list[Output], int | None]:
        """Fold (offset, record) pairs; return the outputs and the last offset folded (None: nothing new)."""
        return fold_pass([(self, records)])[0]

    def commit(self, offset: int) -> None:
        """Write the state changes, the read models and the offset in one fenced transaction."""
        commit_pass([(self, offset)])

    def flush_feeds(self, force: bool = False) -> int:
        """Announce read-model changes the feed throttle held back; returns how many."""
        return self.read_models.flush(self.store.r, force) if self.read_models is not None else 0

    def feeds_due(self, now: float) -> bool:
        """Whether `flush_feeds` has anything to announce at `now` (no I/O)."""
        return self.read_models is not None and bool(self.read_models.due(now))


class LedgerGap(RuntimeError):
    """Records start past the stored offset + 1: Redis lost commits (a failover: its replication is
    asynchronous) or the reader skipped some. Nothing was folded; read again from `stored`."""

    def __init__(self, stored: dict[int, int]) -> None:
        super().__init__("stored offsets behind the records fetched (partition: stored offset): "
                         + ", ".join(f"{p}: {o}" for p, o in sorted(stored.items())))
        self.stored = stored


def fold_pass(batches: Sequence[tuple[PartitionProcessor, Records]],
              contiguous: bool = False) -> list[tuple[list[Output], int | None]]:
    """Fold each processor's records; per batch, the outputs and the last offset folded.

    1. load every partition's clock and offset (one round trip); 2. skip records at or below
    its offset (a redelivery after a crash or rebalance) and, with `contiguous` (the live
    ledger, whose offsets have no holes), refuse records that start after it + 1 (LedgerGap);
    3. prefetch what the rest will read (one round trip); 4. fold each partition's records in
    ledger order. The caller publishes the outputs, then calls `commit_pass`."""
    if not batches:
        return []
    client = batches[0][0].store.r
    pipe = client.pipeline(transaction=False)
    for proc, _records in batches:
        proc.store.queue_load(pipe)
    loaded = iter(pipe.execute())
    todos: list[list[tuple[int, dict[str, Any]]]] = []
    gaps: dict[int, int] = {}
    for proc, records in batches:
        last = proc.store.apply_load(loaded)
        todo = [(o, r) for o, r in records if o > last]
        proc.skipped += len(records) - len(todo)
        todos.append(todo)
        if contiguous and todo and todo[0][0] > last + 1 and last >= 0:
            gaps[proc.store.p] = last
    if gaps:
        raise LedgerGap(gaps)
    pipe = client.pipeline(transaction=False)
    appliers = [proc.store.queue_prefetch(pipe, [r for _, r in todo])
                for (proc, _records), todo in zip(batches, todos, strict=True) if todo]
    if appliers:
        fetched = iter(pipe.execute())
        for apply in appliers:
            apply(fetched)
    results: list[tuple[list[Output], int | None]] = []
    for (proc, _records), todo in zip(batches, todos, strict=True):
        outputs: list[Output] = []
        fold, store, snap = proc.folder.fold, proc.store, proc.snapshots
        for offset, record in todo:
            outs = fold(store, record)
            if outs:
                outputs += outs
                if snap is not None:
                    outputs += snap(store, outs, offset)
        results.append((outputs, todo[-1][0] if todo else None))
    return results


def commit_pass(batches: Sequence[tuple[PartitionProcessor, int]]) -> None:
    """5. write each partition's state changes, read models and new offset: one fenced script per
    partition, all in one pipeline; then the platform feed of those that committed."""
    if not batches:
        return
    items: list[tuple[RedisStore, int, Extra]] = []
    after: list[After] = []
    for proc, offset in batches:
        rm = proc.read_models
        if rm is None:
            items.append((proc.store, offset, None))
            after.append(None)
            continue
        prep = rm.prepare(proc.store)
        items.append((proc.store, offset, _writer(rm, prep)))
        after.append(_after(rm, prep))
    commit_many(batches[0][0].store.r, items, after)


def _writer(rm: ReadModels, prep: Prepared) -> Callable[[Any], None]:
    return lambda pipe: rm.write(pipe, prep)


def _after(rm: ReadModels, prep: Prepared) -> Callable[[Any], None]:
    return lambda pipe: rm.after_commit(pipe, prep)
