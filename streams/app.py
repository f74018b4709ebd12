"""The Faust app: ingest, clock and evaluate agents over one Pipeline. Built in `create_app`;
nothing connects at import time."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections import defaultdict
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TP
from faust.web import Request, Response, View

from streams.arrival import ArrivalMerge
from streams.ingest import FANOUT_HEADER
from streams.metrics import info
from streams.pipeline import InputMessage, Pipeline
from streams.settings import Settings
from streams.topics import INPUT_TOPICS, LEDGER

INGEST_BATCH, EVALUATE_BATCH, BATCH_WITHIN_S, CLOCK_EVERY_S = 2000, 2000, 0.02, 0.1
ARRIVAL_MAX_HOLD_S = 5.0  # see docs/design-notes.md, "Arrival order"
FEED_FLUSH_EVERY_S = 0.05  # held-back dashboard feed announcements go out this often


def _broker_url(kafka: str) -> str:
    return "kafka://" + ";".join(h.strip() for h in kafka.split(",") if h.strip())


def fanned_out(headers: Any) -> bool:
    items = headers.items() if isinstance(headers, dict) else (headers or ())
    return any(k == FANOUT_HEADER for k, _v in items)


def create_app(settings: Settings, web_port: int | None = None) -> tuple[faust.App, Pipeline]:
    port = web_port if web_port is not None else int(os.environ.get("TIERSTREAM_WEB_PORT", "6066"))
    roles = settings.roles
    app = faust.App(
        f"{settings.topic_prefix}tierstream-{settings.namespace}",
        broker=_broker_url(settings.kafka),
        key_serializer="raw", value_serializer="raw",
        topic_allow_declare=False, topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        web_port=port, web_bind="127.0.0.1",
        datadir=os.path.join(tempfile.gettempdir(), f"tierstream-faust-{settings.topic_prefix}{port}"),
        producer_acks=-1,
        # A rebalance must not wait for the records the arrival merge holds unacked: Faust commits
        # only contiguous acked offsets, so they are read again by the next owner (and deduplicated).
        stream_wait_empty=False,
        broker_commit_every=EVALUATE_BATCH,
        stream_buffer_maxsize=1_000_000,  # the arrival merge holds records; never pause a partition for it
    )
    pipeline = Pipeline(settings)
    prefix_len = len(settings.topic_prefix)
    inputs = app.topic(*(settings.topic(t) for t in INPUT_TOPICS))
    ledger = app.topic(settings.topic(LEDGER))

    async def send(topic: str, key: bytes | None, value: bytes, partition: int | None) -> Any:
        return await app.producer.send(topic, key, value, partition, None, None)

    input_names = {settings.topic(t) for t in INPUT_TOPICS}
    merge: ArrivalMerge[Any] = ArrivalMerge(max_hold_s=ARRIVAL_MAX_HOLD_S)
    flushing = asyncio.Lock()
    ingest_stream: list[Any] = []

    async def send_to_ledger(ready: list[Any]) -> dict[str, int]:
        batch = [InputMessage(e.message.topic[prefix_len:], e.message.partition, e.message.offset, e.value,
                              fanned_out(e.message.headers)) for e in ready]
        sent = await pipeline.ingest(batch, send)
        for e in ready:
            await ingest_stream[0].ack(e)
        return sent

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        """After a rebalance, where partitions stood is unknown: send what is held and start afresh."""
        if ingest_stream and len(merge):
            held = merge.drain()
            pipeline.metrics.bump("arrival_drained", len(held))
            await pipeline.report_progress(await send_to_ledger(held), {})

    async def flush_arrivals() -> None:
        """Send what the arrival merge releases to the ledger; ack those records only then."""
        if not ingest_stream:
            return
        async with flushing:
            assigned = sorted(TP(tp.topic, tp.partition) for tp in app.consumer.assignment()
                              if tp.topic in input_names)
            # fresh end offsets (a ListOffsets request), not the last fetch's: a partition is only
            # caught up if nothing older can still be on its way
            try:
                ends = await asyncio.wait_for(app.consumer.highwaters(*assigned), 1.0) if assigned else {}
            except TimeoutError:
                return  # the consumer is busy (a rebalance): try again on the next tick
            unknown = [tp for tp in assigned if not merge.knows((tp.topic, tp.partition))]
            if unknown:
                for tp, offset in (await start_offsets(unknown)).items():
                    merge.start((tp.topic, tp.partition), offset)
            ready = merge.release([(tp.topic, tp.partition) for tp in assigned],
                                  lambda tp: ends.get(TP(*tp)), time.monotonic())
            sent = await send_to_ledger(ready) if ready else {}
            pending = {f"{tp.topic[prefix_len:]}/{tp.partition}": merge.waiting((tp.topic, tp.partition),
                                                                                 ends.get(tp))
                       for tp in assigned}
            await pipeline.report_progress(sent, pending)

    async def start_offsets(tps: list[TP]) -> dict[TP, int]:
        """Where this group resumes each partition: its committed offset, else the earliest."""
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(app.conf.id, partitions=list(tps))
        finally:
            await admin.close()
        earliest = await app.consumer.earliest_offsets(*tps)
        out = {}
        for tp in tps:
            meta = committed.get(TopicPartition(tp.topic, tp.partition))
            out[tp] = meta.offset if meta is not None and meta.offset >= 0 else earliest.get(tp, 0)
        return out

    async def ingest(stream: Any) -> None:
        ingest_stream[:] = [stream]
        async for events in stream.noack_take(INGEST_BATCH, within=BATCH_WITHIN_S):
            for e in events:
                m = e.message
                merge.add((m.topic, m.partition), round(m.timestamp * 1000), m.offset, e)
            await flush_arrivals()

    async def arrivals() -> None:
        await flush_arrivals()

    if "ingest" in roles:
        app.agent(inputs, name="ingest")(ingest)
        app.timer(BATCH_WITHIN_S, name="arrivals")(arrivals)

    async def evaluate(stream: Any) -> None:
        async for events in stream.take_events(EVALUATE_BATCH, within=BATCH_WITHIN_S):
            by_partition: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
            for e in events:
                by_partition[e.message.partition].append((e.message.offset, e.value))
            for partition in sorted(by_partition):
                await pipeline.evaluate(partition, by_partition[partition], send)

    async def tick() -> None:
        w = await pipeline.tick(send)
        if w is not None:
            info("watermark marker", watermark=w)

    async def feeds() -> None:
        await pipeline.flush_feeds()

    if "evaluate" in roles:
        app.agent(ledger, name="evaluate")(evaluate)
        app.timer(FEED_FLUSH_EVERY_S, name="feeds")(feeds)
    if "clock" in roles:
        app.timer(CLOCK_EVERY_S, name="clock")(tick)

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            pipeline.metrics.counters["arrival_forced"] = merge.forced
            return self.json({"status": "ok", "namespace": settings.namespace, **pipeline.metrics.snapshot()})

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.json(pipeline.metrics.snapshot())

    _ = (ingest, arrivals, evaluate, tick, feeds, Health, MetricsView, on_revoked)
    return app, pipeline


def run_worker(settings: Settings, loglevel: str = "warning") -> int:
    """`tierstream worker`: create the topics, then run the agents until stopped."""
    import asyncio

    from streams.metrics import setup_logging
    from streams.topics import ensure_topics

    setup_logging()
    created = asyncio.run(ensure_topics(settings))
    info("worker starting", settings=repr(settings), created_topics=created)
    app, _pipeline = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
