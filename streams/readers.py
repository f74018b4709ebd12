"""The worker's two readers: raw aiokafka consumers run as Faust tasks.

* `IngestReader` reads the four input topics, merges them into producer order, validates
  and appends to the ledger (streams/pipeline.py `ingest`);
* `LedgerReader` reads the ledger and folds each partition's records into Redis
  (streams/pipeline.py `evaluate`: fold, publish the outputs, commit state + offset).

Why not Faust streams (measured, docs/performance.md): a Faust stream hands records over in
small per-partition chunks with per-record overhead. Through Faust one worker folded ≈ 650
events/s in batches of ≈ 30 records; a batch's fixed cost (Redis round trips, the fenced
MULTI/EXEC) dominated. `getmany` returns thousands of records over all assigned partitions
at once, and every fetch response carries each partition's end offset, so the arrival merge
needs no ListOffsets request: a partition counts as caught up for a record when an end
offset read *after* the record arrived says so. The Faust app still runs the worker: these
tasks, the clock and feed timers, the producer, `/health` and `/metrics`.

Ingest commits its own group's offsets (`<app id>-ingest`) after the ledger acknowledged the
records released, up to the last released record of each partition (the merge releases a
partition's records in offset order), at most once a second and when partitions move or the
reader stops: a worker that dies reads up to a second of input again, and the dedupe store
drops what the ledger already has (a bad message among it is dead-lettered again, with the
same id and payload). The range assignor gives a worker the same partition numbers of every
input topic, so a shop's input (keyed by shop) and the fanned-out copies of
global events for those partitions meet in one merge. The ledger reader starts each
partition after the offset its Redis namespace stored (the truth; its group's Kafka offsets
are only for lag tools), so a record is folded once however partitions move.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from plumbing.ingest import FANOUT_HEADER
from plumbing.metrics import info
from plumbing.settings import Settings
from plumbing.topics import INPUT_TOPICS, LEDGER, started
from projections.processor import LedgerGap
from streams.arrival import ArrivalMerge
from streams.ledger_writer import LedgerWriter
from streams.pipeline import InputMessage, Pipeline, Send

FETCH_MAX_WAIT_MS = 25  # an idle fetch returns this often, carrying fresh end offsets
TOP_UP_MS = 5  # the ledger reader's second look for records appended while it was busy
COMMIT_EVERY_S = 1.0  # a reader's group offsets are committed this often (a round trip a second, not a batch)
MAX_RECORDS = 5000  # per getmany
ARRIVAL_MAX_HOLD_S = 5.0  # see docs/design-notes.md, "Arrival order"
# aiokafka waits for a group coordinator without end: a coordinator on a broker that lost its place
# in the cluster (alive, answering, no longer registered) held a commit, and the reader, for minutes
COMMIT_TIMEOUT_S = 15.0
# a batch (ledger append, fold, commit) that takes this long is stuck, not slow (p99 ≈ 6 s on a loaded
# machine): the reader restarts from what was committed, as after any failure (docs/reliability.md)
HANDLE_TIMEOUT_S = 60.0


def _merged(first: dict[TopicPartition, list[ConsumerRecord]],
            then: dict[TopicPartition, list[ConsumerRecord]]) -> dict[TopicPartition, list[ConsumerRecord]]:
    """Two consecutive fetches as one (a partition's records stay in offset order)."""
    out = {tp: list(records) for tp, records in first.items()}
    for tp, records in then.items():
        out.setdefault(tp, []).extend(records)
    return out


def _fanned_out(headers: Any) -> bool:
    return bool(headers) and any(k == FANOUT_HEADER for k, _v in headers)  # most records carry none


class GroupReader:
    """A consumer-group member over some topics: fetch in large batches, hand them to `handle`.

    The loop and the rebalance callbacks never interleave (one lock)."""

    name = "reader"
    top_up = False  # after a fetch, take what a fresh fetch returns at once into the same batch

    def __init__(self, settings: Settings, pipeline: Pipeline, topics: list[str], group_id: str) -> None:
        self.settings, self.pipeline, self.topics, self.group_id = settings, pipeline, topics, group_id
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self.partitions: list[str] = []  # "topic/partition" held now (in /health)
        self._done_upto: dict[TopicPartition, int] = {}  # next offset to commit per partition, not yet committed
        self._committed_at = 0.0
        # for the lag in /metrics: per partition held, the next offset to process, and the end offset
        # read at assignment (before the first fetch response brings its highwater)
        self.positions: dict[TopicPartition, int] = {}
        self._ends: dict[TopicPartition, int] = {}

    async def starting(self) -> None:
        """Before joining the group."""

    async def run(self) -> None:
        self.positions, self._ends = {}, {}
        await self.starting()
        consumer = self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka, group_id=self.group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            partition_assignment_strategy=(RangePartitionAssignor,))
        consumer.subscribe(self.topics, listener=_Rebalance(self))
        await started(consumer)
        info(f"{self.name} reader started", group=self.group_id)
        try:
            while not self._stopping:
                got = await consumer.getmany(timeout_ms=FETCH_MAX_WAIT_MS, max_records=MAX_RECORDS)
                if got and self.top_up:
                    got = _merged(got, await consumer.getmany(timeout_ms=TOP_UP_MS, max_records=MAX_RECORDS))
                async with self._lock:
                    try:
                        await asyncio.wait_for(self.handle(consumer, got), HANDLE_TIMEOUT_S)
                    except TimeoutError as exc:
                        raise TimeoutError(f"{self.name}: a batch took over {HANDLE_TIMEOUT_S:.0f} s") from exc
                    await self.commit_if_due(consumer)
        finally:
            with contextlib.suppress(Exception):
                async with self._lock:
                    await self.closing(consumer)
            await consumer.stop()

    def stop(self) -> None:
        self._stopping = True

    def reset(self) -> None:
        """Forget what a failed run held, before running again (it is read again)."""

    async def handle(self, consumer: AIOKafkaConsumer, got: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        raise NotImplementedError

    async def closing(self, consumer: AIOKafkaConsumer) -> None:
        """The reader stops: commit what is done."""

    async def revoked(self) -> None:
        if self._consumer is not None:
            async with self._lock:
                await self.on_revoked(self._consumer)

    async def assigned(self, tps: set[TopicPartition]) -> None:
        prefix = len(self.settings.topic_prefix)
        self.partitions = sorted(f"{tp.topic[prefix:]}/{tp.partition}" for tp in tps)
        self.positions = {tp: o for tp, o in self.positions.items() if tp in tps}
        if self._consumer is not None:
            with contextlib.suppress(Exception):  # only the lag needs it; a fetch brings it too
                self._ends = dict(await asyncio.wait_for(self._consumer.end_offsets(list(tps)), 5)) if tps else {}
            await self.on_assigned(self._consumer, tps)

    def lag(self) -> dict[tuple[str, int], int]:
        """Per partition held: its end offset minus the next offset to process (records not yet
        appended to the ledger by ingest, not yet folded and committed by evaluate). Topics unprefixed."""
        consumer, cut = self._consumer, len(self.settings.topic_prefix)
        if consumer is None:
            return {}
        out: dict[tuple[str, int], int] = {}
        for tp, position in list(self.positions.items()):
            try:
                end = max(consumer.highwater(tp) or 0, self._ends.get(tp, 0))
            except Exception:  # not assigned any more (a rebalance under way)
                continue
            out[tp.topic[cut:], tp.partition] = max(0, end - position)
        return out

    async def on_revoked(self, consumer: AIOKafkaConsumer) -> None:
        pass

    async def on_assigned(self, consumer: AIOKafkaConsumer, tps: set[TopicPartition]) -> None:
        pass

    async def commit_if_due(self, consumer: AIOKafkaConsumer) -> None:
        """Commit what is done if the last commit is COMMIT_EVERY_S old."""
        if self._done_upto and time.monotonic() - self._committed_at >= COMMIT_EVERY_S:
            await self.commit_done(consumer)

    async def commit_done(self, consumer: AIOKafkaConsumer) -> None:
        """Commit the group's offsets up to what is done (`_done_upto`), now."""
        offsets, self._done_upto = self._done_upto, {}
        self._committed_at = time.monotonic()
        assigned = consumer.assignment()
        mine = {tp: OffsetAndMetadata(o, "") for tp, o in offsets.items() if tp in assigned}
        if not mine:
            return
        try:
            await asyncio.wait_for(consumer.commit(mine), COMMIT_TIMEOUT_S)
        except (CommitFailedError, TimeoutError) as exc:
            # a rebalance got there first, or no coordinator answered: the offsets are committed with
            # the next commit, or the next owner reads those records again (and drops them as seen)
            self.pipeline.metrics.bump(f"{self.name}_commit_failed")
            self.pipeline.metrics.retried(f"{self.name}_commit", exc)
            info(f"{self.name} commit failed", reason=repr(exc))


class IngestReader(GroupReader):
    """Read the inputs, merge into producer order, route to the ledger, commit; report progress for the clock."""

    name = "ingest"

    def __init__(self, settings: Settings, pipeline: Pipeline, send: Send, group_id: str) -> None:
        super().__init__(settings, pipeline, [settings.topic(t) for t in INPUT_TOPICS], group_id)
        self.send = send
        self.ledger = LedgerWriter(settings.kafka, settings.partitions)
        self.merge: ArrivalMerge[Any] = ArrivalMerge(max_hold_s=ARRIVAL_MAX_HOLD_S)
        self._prefix_len = len(settings.topic_prefix)

    async def handle(self, consumer: AIOKafkaConsumer, got: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        received = time.time() * 1000  # liveness only: which end offsets are newer than a record
        for tp, records in got.items():
            self.merge.extend((tp.topic, tp.partition), [(r.timestamp, r.offset, r) for r in records], received)
        await self._flush(consumer)

    async def starting(self) -> None:
        await self.ledger.start()

    async def closing(self, consumer: AIOKafkaConsumer) -> None:
        await self.commit_done(consumer)
        await self.ledger.stop()

    def reset(self) -> None:
        forced = self.merge.forced
        self.merge = ArrivalMerge(max_hold_s=ARRIVAL_MAX_HOLD_S)
        self.merge.forced = forced
        self._done_upto = {}
        self.ledger = LedgerWriter(self.settings.kafka, self.settings.partitions)  # a failed producer is not reused

    async def _flush(self, consumer: AIOKafkaConsumer) -> None:
        assigned = sorted(consumer.assignment())
        keys = [(tp.topic, tp.partition) for tp in assigned]
        # read once per flush: they only change when a fetch response is processed, not during a release
        highwater: dict[Any, int | None] = {k: consumer.highwater(tp) for k, tp in zip(keys, assigned, strict=True)}
        observed: dict[Any, float | None] = {k: consumer.last_poll_timestamp(tp)
                                             for k, tp in zip(keys, assigned, strict=True)}
        ready = self.merge.release(keys, highwater.get, time.monotonic(), observed.get)
        pending = {f"{tp.topic[self._prefix_len:]}/{tp.partition}": self.merge.waiting(k, highwater[k])
                   for k, tp in zip(keys, assigned, strict=True)}
        if not ready:
            await self.pipeline.report_progress({}, pending)
            return
        await self._send(ready, pending)
        now_ms = time.time() * 1000  # stage latencies for /health only
        for r in (ready[0], ready[-1]):
            self.pipeline.metrics.observe("input_to_ledger_ms", now_ms - r.timestamp)

    async def _send(self, ready: list[Any], pending: dict[str, bool]) -> None:
        cut = self._prefix_len
        batch = [InputMessage(r.topic[cut:], r.partition, r.offset, r.value, _fanned_out(r.headers)) for r in ready]
        await self.pipeline.ingest(batch, self.send, self.ledger, pending)
        upto = {(r.topic, r.partition): r.offset + 1 for r in ready}  # the last of each partition wins
        self._done_upto.update((TopicPartition(*tp), offset) for tp, offset in upto.items())
        self.positions.update((TopicPartition(*tp), offset) for tp, offset in upto.items())

    async def on_revoked(self, consumer: AIOKafkaConsumer) -> None:
        """Before partitions move: send what is held (the next owner starts after it) and commit.
        (A duplicate the next owner reads again is dropped by the dedupe store.)"""
        held = self.merge.drain()
        if held:
            self.pipeline.metrics.bump("arrival_drained", len(held))
            await self._send(held, {})
        with contextlib.suppress(Exception):
            await self.commit_done(consumer)

    async def on_assigned(self, consumer: AIOKafkaConsumer, tps: set[TopicPartition]) -> None:
        for tp in sorted(tps):
            position = self.positions[tp] = await consumer.position(tp)
            self.merge.start((tp.topic, tp.partition), position)


class LedgerReader(GroupReader):
    """Fold each ledger partition's records into Redis, a partition at a time, in large batches."""

    name = "evaluate"
    # aiokafka keeps one fetched batch per partition: records appended while a pass runs, after
    # that batch came in, wait for the pass after next. A second fetch right away takes them now.
    top_up = True

    def __init__(self, settings: Settings, pipeline: Pipeline, send: Send, group_id: str) -> None:
        super().__init__(settings, pipeline, [settings.topic(LEDGER)], group_id)
        self.send = send
        self._target: str | None = None

    def follow(self, namespace: str) -> None:
        """The live pointer names `namespace` (a promote): switch to it at the next batch."""
        self._target = namespace

    def reset(self) -> None:
        self.pipeline.forget()

    async def starting(self) -> None:
        target = await self.pipeline.pointer_target()
        if target != self.pipeline.namespace:
            await self.pipeline.switch_namespace(target)

    async def handle(self, consumer: AIOKafkaConsumer, got: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        target, self._target = self._target, None
        if target is not None and target != self.pipeline.namespace:
            # what was fetched belongs to the old namespace's positions: drop it, switch, seek, fetch again
            await self.pipeline.switch_namespace(target)
            await self.on_assigned(consumer, consumer.assignment())
            return
        batches = [(tp, got[tp]) for tp in sorted(got) if got[tp]]
        if not batches:
            return
        fetched_ms = time.time() * 1000  # stage latencies for /health only
        oldest = min(records[0].timestamp for _tp, records in batches)
        metrics = self.pipeline.metrics
        metrics.observe("ledger_to_fetch_ms", fetched_ms - oldest)
        try:
            await self.pipeline.evaluate_pass([(tp.partition, records) for tp, records in batches], self.send)
        except LedgerGap as gap:  # Redis holds less than it acknowledged (a failover): re-fold from there
            info("stored state is behind the records fetched; reading again from the stored offsets",
                 reason=str(gap))
            metrics.bump("ledger_gaps")
            await self.on_assigned(consumer, {tp for tp, _records in batches})
            return
        done_ms = time.time() * 1000
        metrics.observe("ledger_to_commit_ms", done_ms - oldest)
        metrics.observe("evaluate_pass_ms", done_ms - fetched_ms)
        done = {tp: records[-1].offset + 1 for tp, records in batches}
        self._done_upto.update(done)  # for lag tools only
        self.positions.update(done)

    async def closing(self, consumer: AIOKafkaConsumer) -> None:
        await self.commit_done(consumer)

    async def on_assigned(self, consumer: AIOKafkaConsumer, tps: set[TopicPartition]) -> None:
        """Resume each partition after what its Redis namespace folded, whatever the group committed."""
        for tp in sorted(tps):
            stored = await asyncio.to_thread(self.pipeline.stored_offset, tp.partition)
            consumer.seek(tp, stored + 1)
            self.positions[tp] = stored + 1


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, reader: GroupReader) -> None:
        self.reader = reader

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.reader.revoked()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.reader.assigned(set(assigned))
