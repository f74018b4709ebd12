"""Rebuild from the log: re-fold the ledger from its first offset into a fresh Redis namespace.

Reads with raw aiokafka in large batches (not through Faust streams), folds with the same
PartitionProcessor and Redis store as the worker, and is resumable: the namespace keeps
its own offsets, so a second run continues where the first stopped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from plumbing.metrics import GcTenure
from plumbing.progress import Progress
from plumbing.redis_clients import sync_redis
from plumbing.settings import Settings
from plumbing.topics import LEDGER, SHOP_STATE, started
from projections.processor import PartitionProcessor, commit_pass, fold_pass
from projections.redis_store import RedisStore
from tiering.fold import Folder
from tiering.outputs import Output
from tiering.params import RuleParams


@dataclass
class RebuildResult:
    records: int = 0
    resumed: int = 0  # records the namespace had folded before this run (outputs of those not here)
    outputs: list[Output] = field(default_factory=list)
    shop_states: list[Output] = field(default_factory=list)  # with shop_state: the snapshots, in ledger order
    seconds: float = 0.0


@dataclass(frozen=True)
class Bound:
    """Where a rebuild starts or stops in each ledger partition: an offset, or an instant (epoch ms)
    compared with the record timestamps (when ingest appended the record to the ledger)."""

    offset: int | None = None
    instant: int | None = None

    @classmethod
    def parse(cls, text: str) -> Bound:
        """`1234` (an offset), `1700000000000` (epoch ms: 13 digits or more) or an ISO-8601 instant."""
        t = text.strip()
        if t.isdigit():
            return cls(instant=int(t)) if len(t) >= 13 else cls(offset=int(t))
        try:
            when = datetime.fromisoformat(t)
        except ValueError:
            raise ValueError(f"{text!r} is neither an offset, epoch milliseconds nor an ISO-8601 instant") from None
        if when.tzinfo is None:
            raise ValueError(f"{text!r}: give the instant a timezone (e.g. {t}+08:00 or {t}Z)")
        return cls(instant=int(when.timestamp() * 1000))

    def at_or_after(self, offset: int, timestamp: int) -> bool:
        """Whether a record is at or after this bound (for `--from`: it is taken)."""
        if self.offset is not None:
            return offset >= self.offset
        return self.instant is None or timestamp >= self.instant

    def before(self, offset: int, timestamp: int) -> bool:
        """Whether a record is at or before this bound (for `--to`: it is folded)."""
        if self.offset is not None:
            return offset <= self.offset
        return self.instant is None or timestamp <= self.instant


async def rebuild(settings: Settings, namespace: str, params: RuleParams | None = None,
                  batch: int = 5000, progress: bool = False, keep_outputs: bool = True,
                  start: Bound | None = None, stop: Bound | None = None, shop_state: bool = False,
                  publish_shop_state: bool = False, partitions: list[int] | None = None,
                  on_progress: Callable[[int, int, int], None] | None = None) -> RebuildResult:
    """Fold the ledger into `namespace`, resuming after what it already holds; `start`/`stop`
    (inclusive) bound the records folded in every partition. With `shop_state` the `shop_state`
    snapshots are kept (`result.shop_states`, the same records the worker publishes); with
    `publish_shop_state` they are also sent to the shop-state topic, each pass's before its commit.
    `partitions` (default: all) are the ledger partitions folded here (replay/parallel.py gives
    each process its own); `on_progress(done, total, resumed)` hears of every pass."""
    params = params or RuleParams()
    folder = Folder(params)
    client = sync_redis(str(settings.redis))
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024)
    await started(consumer)
    producer = await started(AIOKafkaProducer(bootstrap_servers=settings.kafka, acks="all", linger_ms=5)) \
        if publish_shop_state else None
    result = RebuildResult()
    tenure = GcTenure()  # the caches and outputs grow for the whole rebuild: keep full collections short
    t0 = time.perf_counter()
    try:
        tps = [TopicPartition(settings.topic(LEDGER), p)
               for p in (range(settings.partitions) if partitions is None else partitions)]
        ends = await consumer.end_offsets(tps)
        if stop is not None and stop.offset is not None:
            ends = {tp: min(end, stop.offset + 1) for tp, end in ends.items()}
        elif stop is not None and stop.instant is not None:
            after = await consumer.offsets_for_times({tp: stop.instant + 1 for tp in tps})
            ends = {tp: after[tp].offset if after.get(tp) is not None else end for tp, end in ends.items()}
        first = dict.fromkeys(tps, 0)
        if start is not None and start.offset is not None:
            first = dict.fromkeys(tps, start.offset)
        elif start is not None and start.instant is not None:
            found = await consumer.offsets_for_times(dict.fromkeys(tps, start.instant))
            first = {tp: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in tps}
        total = sum(max(0, ends[tp] - first[tp]) for tp in tps)
        consumer.assign(tps)
        procs = {tp.partition: PartitionProcessor(folder, RedisStore(client, namespace, tp.partition, params),
                                                 feeds=False,  # read models yes; nobody follows a rebuild's feeds
                                                 shop_state=shop_state or publish_shop_state)
                 for tp in tps}
        for tp in tps:  # resume: start after what this namespace already folded
            consumer.seek(tp, max(first[tp], procs[tp.partition].store.load() + 1))
        position = {tp: await consumer.position(tp) for tp in tps}
        done0 = result.resumed = sum(max(0, min(position[tp], ends[tp]) - first[tp]) for tp in tps)
        if on_progress is not None:
            on_progress(done0, total, done0)
        bar = Progress("replay", total, start=done0, enabled=None if progress else False)
        while any(position[tp] < ends[tp] for tp in tps):
            got = await consumer.getmany(*[tp for tp in tps if position[tp] < ends[tp]], timeout_ms=1000,
                                         max_records=batch)
            work: list[tuple[PartitionProcessor, list[tuple[int, Any]]]] = []
            for tp, recs in sorted(got.items(), key=lambda kv: kv[0].partition):
                recs = [r for r in recs if r.offset < ends[tp]]
                if not recs:
                    continue
                work.append((procs[tp.partition], [(r.offset, orjson.loads(r.value)) for r in recs]))
                result.records += len(recs)
                position[tp] = recs[-1].offset + 1
            # the fetch's partitions together, as the worker does (projections/processor.py)
            folded = await asyncio.to_thread(fold_pass, work)
            if shop_state or publish_shop_state:
                states = [o for outs, _last in folded for o in outs if o["type"] == "shop_state"]
                folded = [([o for o in outs if o["type"] != "shop_state"], last) for outs, last in folded]
                if producer is not None:
                    await _send_states(producer, settings.topic(SHOP_STATE), states)
                if shop_state:
                    result.shop_states += states
            await asyncio.to_thread(commit_pass, [(proc, last) for (proc, _r), (_o, last)
                                                  in zip(work, folded, strict=True) if last is not None])
            if keep_outputs:
                for outs, _last in folded:
                    result.outputs.extend(outs)
            tenure.tick(time.monotonic())
            done = sum(min(position[tp], ends[tp]) - first[tp] for tp in tps)
            if on_progress is not None:
                on_progress(done, total, done0)
            bar.update(done)
    finally:
        tenure.release()
        await consumer.stop()
        if producer is not None:
            await producer.stop()
        client.close()
    result.seconds = time.perf_counter() - t0
    bar.close()
    return result


async def _send_states(producer: AIOKafkaProducer, topic: str, states: list[Output]) -> None:
    futures = [await producer.send(topic, orjson.dumps(o), key=o["shop_id"].encode()) for o in states]
    await asyncio.gather(*futures)


def progress_line(done: int, total: int, t0: float, resumed: int = 0, workers: int = 1) -> None:
    """The rebuild's one progress line: records, rate of this run, ETA (all workers together)."""
    _progress(done, total, t0, resumed, f" ({workers} workers)" if workers > 1 else "")


def _progress(done: int, total: int, t0: float, resumed: int = 0, suffix: str = "") -> None:
    elapsed = max(time.perf_counter() - t0, 1e-9)
    rate = (done - resumed) / elapsed
    eta = (total - done) / rate if rate else float("inf")
    width = 30
    filled = int(width * done / total) if total else width
    print(f"\rreplay: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} records "
          f"{rate:,.0f}/s eta {eta:,.0f}s{suffix}", end="", file=sys.stderr, flush=True)
