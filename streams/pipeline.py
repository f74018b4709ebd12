"""The worker's steps without Faust: ingest a batch, tick the clock, evaluate a ledger batch.

streams/app.py wires these into Faust agents; keeping them here keeps them testable
and lets the log replay (replay/) share the evaluate step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import orjson

from plumbing.ingest import Routed, encode, reason_class, route
from plumbing.metrics import Metrics, info
from plumbing.redis_clients import async_redis, sync_redis
from plumbing.settings import Settings
from plumbing.topics import INPUT_TOPICS, LEDGER
from projections.commit import FencedOut
from projections.keys import Keys, resolve_namespace
from projections.processor import PartitionProcessor, commit_pass, fold_pass
from projections.redis_store import RedisStore
from projections.scripts import queue_script
from streams import clock
from streams.ledger_writer import LedgerRecord, LedgerWriter, PartialWrite
from tiering.fold import Folder
from tiering.outputs import OUTPUT_TOPIC, Output
from tiering.params import RuleParams

Send = Callable[[str, bytes | None, bytes, int | None], Awaitable[Any]]  # topic, key, value, partition
PROGRESS_FRESH_MS = 3000  # an ingest progress report older than this counts as "still waiting"
DEDUPE_TTL_S = 40 * 86_400  # over two cycles; correctness does not rest on it (the fold dedupes too)


class InputMessage(NamedTuple):  # a tuple: cheaper to build per message than a frozen dataclass
    topic: str  # unprefixed
    partition: int
    offset: int
    value: bytes | None
    fanned_out: bool = False  # a copy of a global event its producer sent to every partition


class Pipeline:
    def __init__(self, settings: Settings, params: RuleParams | None = None, tick_ms: int = 15 * 60_000) -> None:
        self.settings = settings
        self.params = params or RuleParams()
        self.folder = Folder(self.params)
        self.metrics = Metrics()
        self.tick_ms = tick_ms
        self.clock_keys = clock.ClockKeys(settings.topic_prefix)
        self.aredis = async_redis(str(settings.redis))
        self.sredis = sync_redis(str(settings.redis))
        self._processors: dict[int, PartitionProcessor] = {}
        self.input_partitions = [f"{t}/{p}" for t in INPUT_TOPICS for p in range(settings.partitions)]
        self._raise_max = self.aredis.register_script(clock.RAISE_MAX)
        self._evaluating = asyncio.Lock()  # one fold/commit/feed flush at a time per worker
        # the namespace folded into: the one the live pointer of settings.namespace names, else that name
        self.namespace = settings.namespace
        self.clock_watermark: int | None = None  # the last marker's watermark any clock sent (/metrics)

    async def pointer_target(self) -> str:
        """The namespace the live pointer of settings.namespace names now (`replay promote`)."""
        return await resolve_namespace(self.aredis, self.settings.namespace)

    async def switch_namespace(self, target: str) -> None:
        """Fold into `target` from now on. The caller (the ledger reader, under its lock) then
        seeks every partition to the new namespace's stored offsets."""
        async with self._evaluating:
            info("namespace switch", old=self.namespace, new=target)
            self.namespace = target
            self.forget()
            self.metrics.bump("namespace_switches")

    async def close(self) -> None:
        await self.aredis.aclose()
        self.sredis.close()

    @staticmethod
    def _dedupe_id(m: InputMessage, event: dict[str, Any]) -> str:
        """Fanned-out copies of one global event are one event per partition."""
        return f"{event['event_id']}@{m.partition}" if m.fanned_out else str(event["event_id"])

    def _buckets(self, ids: Sequence[tuple[str, int]]) -> dict[str, list[str]]:
        """Event ids grouped by their dedupe hash: one per prefix and UTC day of the event's ts.

        A handful of HMGET/HSET per batch instead of a command per event. A duplicate resent
        with another ts lands in another bucket and passes here; the fold drops it (its own
        per-cycle event ids), so correctness never rests on this store."""
        by_day: dict[int, list[str]] = {}
        for eid, ts in ids:
            day = ts // 86_400_000
            bucket = by_day.get(day)
            if bucket is None:
                bucket = by_day[day] = []
            bucket.append(eid)
        prefix = f"tierstream:{{dedupe:{self.settings.topic_prefix}}}:"
        return {f"{prefix}{day}": bucket for day, bucket in by_day.items()}

    async def _seen(self, ids: Sequence[tuple[str, int]]) -> set[str]:
        """The ids ingest already appended to the ledger."""
        if not ids:
            return set()
        buckets = self._buckets(ids)
        pipe = self.aredis.pipeline(transaction=False)
        for bucket, bucket_ids in buckets.items():
            pipe.hmget(bucket, bucket_ids)
        seen: set[str] = set()
        for bucket_ids, hits in zip(buckets.values(), await pipe.execute(), strict=True):
            seen.update(i for i, hit in zip(bucket_ids, hits, strict=True) if hit is not None)
        return seen

    # -- ingest ------------------------------------------------------------------------------

    async def ingest(self, batch: Sequence[InputMessage], send: Send, ledger: LedgerWriter,
                     pending: dict[str, bool]) -> None:
        """Validate, drop duplicates, append to the ledger, then record the ids appended and report
        progress (`report_progress`: the largest ts sent per input partition, and `pending`) in one
        round trip.

        Dead letters go through `send`; valid events to the ledger a produce batch per partition."""
        n = self.settings.partitions
        routed = []  # (message, where it goes, its dedupe id: "" for a dead letter)
        for m in batch:
            r = route(m.value, m.topic, m.partition, m.offset, n, m.fanned_out)
            routed.append((m, r, self._dedupe_id(m, r.event) if r.event is not None else ""))
        self.metrics.bump("events_in", len(batch))
        seen = await self._seen([(eid, r.event["ts"]) for _m, r, eid in routed if r.event is not None])
        futures: list[Any] = []
        appended: list[LedgerRecord] = []
        fresh: list[tuple[str, int]] = []
        fresh_routes: list[Routed] = []  # each fresh event's route: which ledger partitions it went to
        max_ts: dict[tuple[str, int], int] = {}  # per input partition, named once per batch below
        for m, r, eid in routed:
            if r.dead is not None:
                self.metrics.bump("dead_letters", label=reason_class(r.dead["reason"]))
                futures.append(await send(self.settings.topic("dead-letters"), r.key, encode(r.dead), None))
                continue
            assert r.event is not None
            if eid in seen:
                self.metrics.bump("duplicates")
                continue
            seen.add(eid)
            value = encode(r.event)
            for p in r.partitions if r.partitions is not None else (None,):
                appended.append((r.key, value, p))
            ts = r.event["ts"]
            fresh.append((eid, ts))
            fresh_routes.append(r)
            if ts > max_ts.get((m.topic, m.partition), ts - 1):
                max_ts[m.topic, m.partition] = ts
        if appended:
            try:
                await ledger.write(self.settings.topic(LEDGER), appended)
            except PartialWrite as exc:
                # what reached the ledger is recorded as seen, so the batch read again after the
                # reader restarts appends only what is missing (each event in the ledger once)
                self.metrics.bump("ledger_partial_writes")
                written = [f for f, r in zip(fresh, fresh_routes, strict=True)
                           if self._ledger_partitions(r, ledger) <= exc.written]
                if written:
                    await self._remember(written).execute()
                raise exc.cause from exc
        await asyncio.gather(*futures)
        pipe = self._remember(fresh)
        await self.report_progress({f"{topic}/{part}": ts for (topic, part), ts in max_ts.items()}, pending, pipe)
        self.metrics.bump("ledger_out", len(fresh))

    def _remember(self, ids: Sequence[tuple[str, int]]) -> Any:
        """A pipeline that records these ids as appended to the ledger (not yet executed)."""
        pipe = self.aredis.pipeline(transaction=False)
        for bucket, bucket_ids in self._buckets(ids).items():
            pipe.hset(bucket, mapping=dict.fromkeys(bucket_ids, 1))
            pipe.expire(bucket, DEDUPE_TTL_S)
        return pipe

    @staticmethod
    def _ledger_partitions(r: Routed, ledger: LedgerWriter) -> set[int]:
        return set(r.partitions) if r.partitions is not None else {ledger.partition_of((r.key, b"", None))}

    async def report_progress(self, max_ts: dict[str, int], pending: dict[str, bool], pipe: Any = None) -> None:
        """Tell the clock how far each input partition got, and which still have records waiting
        (added to `pipe`, if given, which is then executed)."""
        pipe = pipe if pipe is not None else self.aredis.pipeline(transaction=False)
        if max_ts:
            args: list[Any] = []
            for tp, ts in sorted(max_ts.items()):
                args += [tp, ts]
            queue_script(pipe, clock.RAISE_FIELDS, [self.clock_keys.max_by_tp], args)
        if pending:
            now = int(time.time() * 1000)  # liveness of the report only
            pipe.hset(self.clock_keys.pending, mapping={tp: clock.encode_pending(p, now) for tp, p in pending.items()})
        await pipe.execute()

    # -- clock -------------------------------------------------------------------------------

    async def tick(self, send: Send) -> int | None:
        """Append a watermark marker to every ledger partition if the watermark crossed a tick."""
        pipe = self.aredis.pipeline(transaction=False)
        pipe.hgetall(self.clock_keys.max_by_tp)
        pipe.hgetall(self.clock_keys.pending)
        pipe.get(self.clock_keys.sent)
        raw_max, raw_pending, raw_sent = await pipe.execute()
        if raw_sent is not None:
            self.clock_watermark = int(raw_sent)
        wall = int(time.time() * 1000)
        reports = {k.decode(): v.decode() for k, v in raw_pending.items()}
        waiting = {tp: clock.is_waiting(reports.get(tp), wall, PROGRESS_FRESH_MS) for tp in self.input_partitions}
        event_now = clock.event_time({k.decode(): int(v) for k, v in raw_max.items()}, waiting)
        w = clock.due_tick(event_now, int(raw_sent) if raw_sent is not None else None,
                           self.params.lateness_ms, self.tick_ms)
        if w is None or not await self._raise_max(keys=[self.clock_keys.sent], args=[w]):
            return None
        value = encode(clock.marker(w))
        futures = [await send(self.settings.topic(LEDGER), None, value, p) for p in range(self.settings.partitions)]
        await asyncio.gather(*futures)
        self.metrics.bump("markers")
        self.clock_watermark = w
        return w

    # -- evaluate ----------------------------------------------------------------------------

    def processor(self, partition: int) -> PartitionProcessor:
        proc = self._processors.get(partition)
        if proc is None:
            store = RedisStore(self.sredis, self.namespace, partition, self.params)
            proc = self._processors[partition] = PartitionProcessor(
                self.folder, store, feed_interval_s=self.settings.feed_interval_ms / 1000, shop_state=True)
        return proc

    def stored_offset(self, partition: int) -> int:
        """The last ledger offset this namespace folded for the partition (-1: none)."""
        raw = self.sredis.get(Keys(self.namespace).offset(partition))
        return int(raw) if raw is not None else -1

    def folded_watermarks(self) -> dict[int, int]:
        """Per ledger partition this worker folds, the watermark its state has reached (/metrics)."""
        return {p: proc.store.clock.watermark for p, proc in list(self._processors.items())
                if proc.store.clock.watermark is not None}

    def fold_duplicates(self) -> dict[int, int]:
        """Per ledger partition this worker folds, the duplicates its fold dropped (state: kept with the clock)."""
        return {p: proc.store.clock.stats.get("duplicates", 0) for p, proc in list(self._processors.items())}

    def forget(self) -> None:
        """Drop the per-partition processors (their cached clock and offset): the next batch loads afresh."""
        self._processors.clear()

    async def evaluate_pass(self, batches: Sequence[tuple[int, Sequence[Any]]], send: Send) -> int:
        """Fold the ledger records of several partitions (one fetch's worth: per partition, records
        with `.offset` and `.value`, as aiokafka fetches them) into Redis, publish the outputs,
        commit every partition in one transaction; return outputs sent.

        Outputs are published before the state commit, so a crash in between re-emits the same
        outputs (same ids, same payloads) instead of losing them."""
        decoded = [(p, [(r.offset, orjson.loads(r.value)) for r in records]) for p, records in batches if records]
        if not decoded:
            return 0
        async with self._evaluating:
            return await self._evaluate(decoded, send)

    async def _evaluate(self, decoded: list[tuple[int, list[tuple[int, Any]]]], send: Send) -> int:
        work = [(self.processor(p), records) for p, records in decoded]
        for attempt in range(3):  # after a fence, fold_pass reloads each partition's state
            t0 = time.perf_counter()
            results = await asyncio.to_thread(fold_pass, work, True)
            self.metrics.observe("fold_batch_ms", (time.perf_counter() - t0) * 1000)
            todo = [(proc, last) for (proc, _r), (_o, last) in zip(work, results, strict=True) if last is not None]
            if not todo:
                return 0
            outputs = [o for outs, _last in results for o in outs]
            await self.publish(outputs, send)
            try:
                t1 = time.perf_counter()
                await asyncio.to_thread(commit_pass, todo)
                self.metrics.observe("commit_ms", (time.perf_counter() - t1) * 1000)
            except FencedOut as exc:
                info("batch fenced out; reloading", partitions=[p for p, _r in decoded], attempt=attempt,
                     reason=str(exc))
                self.metrics.bump("fenced")
                self.metrics.retried("commit", exc)
                continue
            self.metrics.bump("batches")
            self.metrics.bump("ledger_folded", sum(len(r) for _p, r in decoded))
            return len(outputs)
        raise FencedOut(f"partitions {[p for p, _r in decoded]}: gave up after 3 fenced attempts")

    async def flush_feeds(self) -> int:
        """Announce read-model changes the feed throttle held back (a timer calls this). Under load
        the next pass announces them (`ReadModels.throttle`): then there is nothing due here, and
        no thread hop or lock is taken for it."""
        if not any(proc.feeds_due(time.monotonic()) for proc in list(self._processors.values())):
            return 0
        async with self._evaluating:
            now = time.monotonic()
            procs = [proc for proc in self._processors.values() if proc.feeds_due(now)]
            n = 0
            for proc in procs:
                n += await asyncio.to_thread(proc.flush_feeds)
            return n

    async def publish(self, outputs: Sequence[Output], send: Send) -> None:
        """Send the outputs, then, once they are acknowledged, the `shop_state` records among them:
        a shop-state record is never on its topic before the outputs it reflects are on theirs."""
        events = [o for o in outputs if o["type"] != "shop_state"]
        await self._send_all(events, send)
        if len(events) < len(outputs):
            await self._send_all([o for o in outputs if o["type"] == "shop_state"], send)
        by_type: dict[str, int] = {}
        for o in events:
            by_type[o["type"]] = by_type.get(o["type"], 0) + 1
        for otype, n in by_type.items():
            self.metrics.bump("outputs", n, label=otype)
        self.metrics.bump("shop_states", len(outputs) - len(events))

    async def _send_all(self, outputs: Sequence[Output], send: Send) -> None:
        futures = []
        for o in outputs:
            key = (o.get("shop_id") or o["event_id"]).encode()
            futures.append(await send(self.settings.topic(OUTPUT_TOPIC[o["type"]]), key, encode(o), None))
        await asyncio.gather(*futures)
