"""Rebuild from the log: re-fold the ledger from its first offset into a fresh Redis namespace.

Reads with raw aiokafka in large batches (not through Faust streams), folds with the same
PartitionProcessor and Redis store as the worker, and is resumable: the namespace keeps
its own offsets, so a second run continues where the first stopped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field

import orjson
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition

from projections.processor import PartitionProcessor
from projections.redis_store import RedisStore
from streams.settings import Settings
from streams.topics import LEDGER
from tiering.fold import Folder
from tiering.outputs import Output
from tiering.params import RuleParams


@dataclass
class RebuildResult:
    records: int = 0
    outputs: list[Output] = field(default_factory=list)
    seconds: float = 0.0


async def rebuild(settings: Settings, namespace: str, params: RuleParams | None = None,
                  batch: int = 5000, progress: bool = False, keep_outputs: bool = True) -> RebuildResult:
    params = params or RuleParams()
    folder = Folder(params)
    client = redis.Redis.from_url(str(settings.redis))
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    result = RebuildResult()
    t0 = time.perf_counter()
    try:
        tps = [TopicPartition(settings.topic(LEDGER), p) for p in range(settings.partitions)]
        ends = await consumer.end_offsets(tps)
        total = sum(ends.values())
        consumer.assign(tps)
        procs = {tp.partition: PartitionProcessor(folder, RedisStore(client, namespace, tp.partition, params),
                                                 feeds=False)  # read models yes; nobody follows a rebuild's feeds
                 for tp in tps}
        for tp in tps:  # resume: start after what this namespace already folded
            consumer.seek(tp, procs[tp.partition].store.load() + 1)
        position = {tp: await consumer.position(tp) for tp in tps}
        while any(position[tp] < ends[tp] for tp in tps):
            got = await consumer.getmany(*[tp for tp in tps if position[tp] < ends[tp]], timeout_ms=1000,
                                         max_records=batch)
            for tp, recs in sorted(got.items(), key=lambda kv: kv[0].partition):
                recs = [r for r in recs if r.offset < ends[tp]]
                if not recs:
                    continue
                decoded = [(r.offset, orjson.loads(r.value)) for r in recs]
                proc = procs[tp.partition]
                outs, last = await asyncio.to_thread(proc.fold_batch, decoded)
                if last is not None:
                    await asyncio.to_thread(proc.commit, last)
                if keep_outputs:
                    result.outputs.extend(outs)
                result.records += len(recs)
                position[tp] = recs[-1].offset + 1
            if progress:
                _progress(sum(position.values()), total, t0)
    finally:
        await consumer.stop()
        client.close()
    result.seconds = time.perf_counter() - t0
    if progress:
        print(file=sys.stderr)
    return result


def _progress(done: int, total: int, t0: float) -> None:
    elapsed = max(time.perf_counter() - t0, 1e-9)
    rate = done / elapsed
    eta = (total - done) / rate if rate else float("inf")
    width = 30
    filled = int(width * done / total) if total else width
    print(f"\rreplay: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} records "
          f"{rate:,.0f}/s eta {eta:,.0f}s", end="", file=sys.stderr, flush=True)
