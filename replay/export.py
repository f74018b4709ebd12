"""`tierstream export`: history from the log to the file form, to replay offline.

`--source inputs` (default) writes the input topics' records as they arrived — raw bytes,
invalid lines included, so the file form dead-letters them as ingest did — merged across
topics into producer order (record timestamp, then topic, partition, offset: the order the
worker's arrival merge restores). A global event a producer fanned out to every partition is
written once. `--source ledger` writes what ingest accepted instead: the validated events of
every ledger partition (watermark markers and the per-partition copies of global events
left out), merged by the time ingest appended them.

`--from` / `--to` (inclusive; replay.ledger.Bound) select records by offset or by record
timestamp in every partition. Records are held in memory to be merged: fine for what a
person replays offline (a million records ≈ a few hundred MB).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from plumbing.ingest import FANOUT_HEADER
from plumbing.progress import Progress
from plumbing.settings import Settings
from plumbing.topics import INPUT_TOPICS, LEDGER, started
from replay.ledger import Bound
from tiering.contract import GLOBAL_TYPES


class ExportError(RuntimeError):
    """Nothing to export from where it was asked; the message says why."""


async def read_to_end(settings: Settings, topics: list[str], keep: Callable[[Any], bool],
                      partitions: list[int] | None = None, label: str | None = None) -> list[Any]:
    """Every record of the topics' partitions (all, or `partitions`) up to their end offsets now,
    that `keep` accepts; progress on stderr under `label`. Export and explain read with it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024)
    await started(consumer)
    try:
        missing = sorted(set(topics) - await consumer.topics())
        if missing:
            raise ExportError(f"no such topic(s): {', '.join(missing)} (is TIERSTREAM_TOPIC_PREFIX right?)")
        numbers = partitions if partitions is not None else range(settings.partitions)
        tps = [TopicPartition(t, p) for t in topics for p in numbers]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        total = sum(ends.values())
        bar = Progress(label or "", total, enabled=None if label else False)
        out: list[Any] = []
        read = 0
        position = {tp: await consumer.position(tp) for tp in tps}
        while any(position[tp] < ends[tp] for tp in tps):
            got = await consumer.getmany(*[tp for tp in tps if position[tp] < ends[tp]], timeout_ms=1000,
                                         max_records=20_000)
            for tp, records in got.items():
                for r in records:
                    if r.offset < ends[tp]:
                        read += 1
                        if keep(r):
                            out.append(r)
                if records:
                    position[tp] = records[-1].offset + 1
            bar.update(read)
        bar.close()
        return out
    finally:
        await consumer.stop()


def _within(start: Bound | None, stop: Bound | None) -> Callable[[Any], bool]:
    def keep(r: Any) -> bool:
        return ((start is None or start.at_or_after(r.offset, r.timestamp))
                and (stop is None or stop.before(r.offset, r.timestamp)))
    return keep


def _order(r: Any) -> tuple[int, str, int, int]:
    return (r.timestamp, r.topic, r.partition, r.offset)


async def export(settings: Settings, out: IO[bytes], source: str = "inputs", start: Bound | None = None,
                 stop: Bound | None = None, progress: bool = False) -> int:
    """Write the selected history as JSONL; return the number of lines written."""
    if source == "inputs":
        records = await read_to_end(settings, [settings.topic(t) for t in INPUT_TOPICS], _within(start, stop),
                                    label="export" if progress else None)
    elif source == "ledger":
        records = await read_to_end(settings, [settings.topic(LEDGER)], _within(start, stop),
                                    label="export" if progress else None)
    else:
        raise ValueError(f"--source must be inputs or ledger, not {source!r}")
    n = 0
    globals_seen: set[object] = set()
    for r in sorted(records, key=_order):
        value = r.value if r.value is not None else b""
        if source == "inputs":
            if any(k == FANOUT_HEADER for k, _ in (r.headers or ())):
                if value in globals_seen:
                    continue  # the same global event, fanned out to another partition
                globals_seen.add(value)
            line = value
        else:
            event = orjson.loads(value)
            if event.get("type") == "watermark":
                continue
            if event.get("type") in GLOBAL_TYPES:
                if event["event_id"] in globals_seen:
                    continue  # its copy on another ledger partition
                globals_seen.add(event["event_id"])
            line = orjson.dumps(event)
        out.write(line.replace(b"\n", b" ") + b"\n")
        n += 1
    return n
