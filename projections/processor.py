"""Fold a batch of ledger records of one partition into a Redis store: the worker's and the
log replay's shared step (numbered as it runs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.readmodels import ReadModels
from projections.redis_store import RedisStore
from tiering.fold import Folder
from tiering.outputs import Output


class PartitionProcessor:
    def __init__(self, folder: Folder, store: RedisStore, read_models: bool = True, feeds: bool = True,
                 feed_interval_s: float = 0.25) -> None:
        self.folder, self.store = folder, store
        self.skipped = 0
        self.read_models = ReadModels(folder.closer, store.keys, store.p, feeds=feeds,
                                      min_interval_s=feed_interval_s) if read_models else None

    def fold_batch(self, records: Sequence[tuple[int, dict[str, Any]]]) -> tuple[list[Output], int | None]:
        """Fold (offset, record) pairs; return the outputs and the last offset folded (None: nothing new).

        1. load the partition's clock and offset; 2. skip records at or below that offset
        (a redelivery after a crash or rebalance); 3. prefetch what the rest will read;
        4. fold them in ledger order. The caller publishes the outputs, then calls `commit`."""
        last = self.store.load()
        todo = [(o, r) for o, r in records if o > last]
        self.skipped += len(records) - len(todo)
        if not todo:
            return [], None
        self.store.prefetch([r for _, r in todo])
        outputs: list[Output] = []
        fold = self.folder.fold
        for _offset, record in todo:
            outputs.extend(fold(self.store, record))
        return outputs, todo[-1][0]

    def commit(self, offset: int) -> None:
        """5. write the state changes, the read models and the offset in one fenced transaction."""
        rm = self.read_models
        if rm is None:
            self.store.commit(offset)
            return
        prep = rm.prepare(self.store)
        self.store.commit(offset, lambda pipe: rm.write(pipe, prep))
        rm.committed(prep)

    def flush_feeds(self, force: bool = False) -> int:
        """Announce read-model changes the feed throttle held back; returns how many."""
        return self.read_models.flush(self.store.r, force) if self.read_models is not None else 0
