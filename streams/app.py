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
from faust.types import TP
from faust.web import Request, Response, View

from streams.arrival import ArrivalMerge
from streams.metrics import info
from streams.pipeline import InputMessage, Pipeline
from streams.settings import Settings
from streams.topics import INPUT_TOPICS, LEDGER

INGEST_BATCH, EVALUATE_BATCH, BATCH_WITHIN_S, CLOCK_EVERY_S = 2000, 2000, 0.02, 0.1
ARRIVAL_MAX_HOLD_S = 1.0


def _broker_url(kafka: str) -> str:
    return "kafka://" + ";".join(h.strip() for h in kafka.split(",") if h.strip())


def create_app(settings: Settings, web_port: int | None = None) -> tuple[faust.App, Pipeline]:
    port = web_port if web_port is not None else int(os.environ.get("TIERSTREAM_WEB_PORT", "6066"))
    app = faust.App(
        f"{settings.topic_prefix}tierstream",
        broker=_broker_url(settings.kafka),
        key_serializer="raw", value_serializer="raw",
        topic_allow_declare=False, topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        web_port=port, web_bind="127.0.0.1",
        datadir=os.path.join(tempfile.gettempdir(), f"tierstream-faust-{settings.topic_prefix}{port}"),
        producer_acks=-1,
        broker_commit_every=EVALUATE_BATCH,
        stream_buffer_maxsize=8192,
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

    async def flush_arrivals() -> None:
        """Send what the arrival merge releases to the ledger; ack those records only then."""
        if not ingest_stream or not len(merge):
            return
        async with flushing:
            assigned = [(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in input_names]
            ready = merge.release(assigned, lambda tp: app.consumer.highwater(TP(*tp)), time.monotonic())
            if ready:
                batch = [InputMessage(e.message.topic[prefix_len:], e.message.partition, e.message.offset,
                                      e.value) for e in ready]
                await pipeline.ingest(batch, send)
                for e in ready:
                    await ingest_stream[0].ack(e)

    @app.agent(inputs, name="ingest")
    async def ingest(stream: Any) -> None:
        ingest_stream[:] = [stream]
        async for events in stream.noack_take(INGEST_BATCH, within=BATCH_WITHIN_S):
            for e in events:
                m = e.message
                merge.add((m.topic, m.partition), round(m.timestamp * 1000), m.offset, e)
            await flush_arrivals()

    @app.timer(BATCH_WITHIN_S, name="arrivals")
    async def arrivals() -> None:
        await flush_arrivals()

    @app.agent(ledger, name="evaluate")
    async def evaluate(stream: Any) -> None:
        async for events in stream.take_events(EVALUATE_BATCH, within=BATCH_WITHIN_S):
            by_partition: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
            for e in events:
                by_partition[e.message.partition].append((e.message.offset, e.value))
            for partition in sorted(by_partition):
                await pipeline.evaluate(partition, by_partition[partition], send)

    @app.timer(CLOCK_EVERY_S, name="clock")
    async def tick() -> None:
        w = await pipeline.tick(send)
        if w is not None:
            info("watermark marker", watermark=w)

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "namespace": settings.namespace, **pipeline.metrics.snapshot()})

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.json(pipeline.metrics.snapshot())

    _ = (ingest, arrivals, evaluate, tick, Health, MetricsView)
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
