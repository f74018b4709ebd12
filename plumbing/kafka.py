"""`tierstream produce` and `tierstream consume`: JSONL files to and from the topics."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from plumbing.ingest import FANOUT_HEADER, encode, oversize
from plumbing.kafka_security import kafka_kwargs
from plumbing.progress import Progress
from plumbing.settings import Settings
from plumbing.topics import OUTPUT_TOPICS, ensure_topics, started
from tiering.contract import GLOBAL_TYPES, TOPIC_OF_TYPE

SEND_STUCK_S = 30.0  # an in-order send not acknowledged by then goes again through a new producer


def _topic_of_line(line: bytes) -> tuple[str, bytes | None, bool]:
    """The input topic of a line (its `topic` field, else from `type`), its key (shop_id), and
    whether it is a global event (to be fanned out to every partition)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "config-changes", None, False  # unreadable: ingest will dead-letter it
    if not isinstance(obj, dict):
        return "config-changes", None, False
    etype = obj.get("type")
    topic = obj.get("topic") if isinstance(obj.get("topic"), str) else TOPIC_OF_TYPE.get(str(etype), "")
    shop = obj.get("shop_id")
    key = shop.encode() if isinstance(shop, str) else None
    return topic or "config-changes", key, key is None and etype in GLOBAL_TYPES


async def produce(settings: Settings, src: Iterable[bytes], in_order: bool = True, rate: float | None = None,
                  progress: Progress | None = None) -> int:
    """Send each line to its input topic keyed by shop_id, in order: each acknowledged before the
    next, with increasing record timestamps, so ingest can restore the file's order across topics.
    `in_order=False` pipelines the sends (faster; cross-topic order then only approximate).
    `rate` paces the sending at that many lines per second (a live feed for demos and benchmarks);
    `progress` is told the bytes of `src` read and the lines sent."""
    await ensure_topics(settings)

    async def new_producer() -> AIOKafkaProducer:
        return await started(AIOKafkaProducer(**kafka_kwargs(settings), acks="all", enable_idempotence=True,
                                              linger_ms=0 if in_order else 5))

    producer = await new_producer()
    abandoned: list[Any] = []  # stuck producers being stopped in the background
    n = read = lineno = oversized = 0
    stamp = 0
    t0 = time.monotonic()
    try:
        pending = []
        for line in src:
            read += len(line)
            lineno += 1
            line = line.rstrip(b"\n")
            if not line.strip():
                continue
            topic, key, is_global = _topic_of_line(line)
            # in order, record timestamps strictly increase in file order: ingest merges the topics by
            # them. Pipelined, they only never go back: +1 ms a line ran ahead of the clock above 1,000
            # lines/s (minutes ahead in a soak at 2,000/s, and every input→ledger latency negative)
            stamp = max(int(time.time() * 1000), stamp + 1 if in_order else stamp)
            # a keyless (global) event goes to every partition, so each ledger partition gets its copy
            # from the worker that owns it (plumbing/ingest.py)
            targets: list[int | None] = list(range(settings.partitions)) if is_global else [None if key else 0]
            headers = [(FANOUT_HEADER, b"1")] if is_global else []
            for p in targets:
                try:
                    fut = await producer.send(settings.topic(topic), line, key=key, timestamp_ms=stamp, partition=p,
                                              headers=headers or None)
                except MessageSizeTooLargeError:
                    fut = await _send_oversize(producer, settings, line, topic, lineno)
                    oversized += 1
                    pending.append(fut)  # awaited with the rest at the end
                    break  # one dead letter for the line, whatever its fan-out
                while in_order:
                    try:
                        await asyncio.wait_for(asyncio.shield(fut), SEND_STUCK_S)
                        break
                    except TimeoutError:
                        # aiokafka can retry a send for a partition whose leader moved without end
                        # (aio-libs/aiokafka#1018): a new producer, the same record again (ingest drops
                        # the copy if the first one lands after all: same event id and ts)
                        print(f"produce: a send was stuck {SEND_STUCK_S:.0f} s; sending again with a new producer",
                              file=sys.stderr, flush=True)
                        old, producer = producer, await new_producer()
                        abandoned.append(asyncio.get_running_loop().create_task(old.stop()))
                        fut = await producer.send(settings.topic(topic), line, key=key, timestamp_ms=stamp,
                                                  partition=p, headers=headers or None)
                if not in_order:
                    pending.append(fut)
            n += 1
            if rate:
                ahead = n / rate - (time.monotonic() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
                if len(pending) > 10_000:
                    await asyncio.gather(*pending)
                    pending.clear()
            if progress is not None:
                progress.update(read, n)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    if oversized:
        print(f"produce: {oversized} line(s) over the broker's message size went to dead-letters instead",
              file=sys.stderr, flush=True)
    return n


async def _send_oversize(producer: AIOKafkaProducer, settings: Settings, line: bytes, topic: str, lineno: int) -> Any:
    """A line too big for the broker: its dead letter (raw kept, truncated) to dead-letters, told in one line."""
    routed = oversize(line, topic, lineno)
    assert routed.dead is not None
    print(f"produce: line {lineno}: {routed.dead['reason']}; sent to dead-letters", file=sys.stderr, flush=True)
    return await producer.send(settings.topic("dead-letters"), encode(routed.dead), key=routed.key)


async def consume(settings: Settings, dst: IO[bytes], idle_seconds: float, topics: tuple[str, ...] = OUTPUT_TOPICS,
                  ) -> int:
    """Read topics from the beginning, write every record as a JSONL line; stop after idle_seconds."""
    names = [settings.topic(t) for t in topics]
    # without a group, a subscription is assigned every partition, read from the earliest offset
    consumer = AIOKafkaConsumer(*names, **kafka_kwargs(settings), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await started(consumer)
    n = 0
    try:
        last = time.monotonic()
        while time.monotonic() - last < idle_seconds:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for tp in sorted(batch, key=lambda t: (t.topic, t.partition)):
                for rec in batch[tp]:
                    dst.write(rec.value + b"\n")
                    n += 1
            if batch:
                last = time.monotonic()
    finally:
        await consumer.stop()
    return n


def produce_cmd(settings: Settings, path: str, rate: float | None = None) -> int:
    if rate is not None and rate <= 0:
        print("produce: --rate must be positive", file=sys.stderr)
        return 2
    with open(path, "rb") as src:
        bar = Progress("produce", os.fstat(src.fileno()).st_size, unit="lines")
        try:
            n = asyncio.run(produce(settings, src, in_order=rate is None or rate <= 1000, rate=rate, progress=bar))
        finally:
            bar.close()
    print(f"produce: sent {n} lines to the input topics", file=sys.stderr)
    return 0


def consume_cmd(settings: Settings, path: str, idle_seconds: float) -> int:
    with open(path, "wb") as dst:
        n = asyncio.run(consume(settings, dst, idle_seconds))
    print(f"consume: wrote {n} records to {path}", file=sys.stderr)
    return 0
