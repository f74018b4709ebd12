"""The Faust app: ingest, clock and evaluate agents over one Pipeline. Built in `create_app`;
nothing connects at import time."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.web import Request, Response, View

from streams.metrics import info
from streams.pipeline import Pipeline
from streams.readers import GroupReader, IngestReader, LedgerReader
from streams.settings import Settings

CLOCK_EVERY_S = 0.1
POINTER_EVERY_S = 1.0  # how often a worker checks the live pointer (`replay promote`)
FEED_FLUSH_EVERY_S = 0.05  # held-back dashboard feed announcements go out this often


def _broker_url(kafka: str) -> str:
    return "kafka://" + ";".join(h.strip() for h in kafka.split(",") if h.strip())


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
    )
    # No Faust stream consumes anything (the readers below are raw aiokafka consumers): the app runs
    # as a producer + web server + timers + tasks, and never joins a Faust consumer group.
    app.producer_only = True
    pipeline = Pipeline(settings)

    async def send(topic: str, key: bytes | None, value: bytes, partition: int | None) -> Any:
        return await app.producer.send(topic, key, value, partition, None, None)

    # the readers are raw aiokafka consumers run as Faust tasks, not Faust streams: streams/readers.py says why
    readers: list[GroupReader] = []
    if "ingest" in roles:
        readers.append(IngestReader(settings, pipeline, send, group_id=f"{app.conf.id}-ingest"))

    async def tick() -> None:
        w = await pipeline.tick(send)
        if w is not None:
            info("watermark marker", watermark=w)

    async def feeds() -> None:
        await pipeline.flush_feeds()

    async def pointer() -> None:
        target = await pipeline.pointer_target()
        if target != pipeline.namespace:
            for reader in readers:
                if isinstance(reader, LedgerReader):
                    reader.follow(target)

    if "evaluate" in roles:
        readers.append(LedgerReader(settings, pipeline, send, group_id=f"{app.conf.id}-evaluate"))
        app.timer(FEED_FLUSH_EVERY_S, name="feeds")(feeds)
        app.timer(POINTER_EVERY_S, name="pointer")(pointer)
    if "clock" in roles:
        app.timer(CLOCK_EVERY_S, name="clock")(tick)

    for reader in readers:
        app.task(_supervised(app, reader))

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def stop_readers(sender: Any, *args: Any, **kwargs: Any) -> None:
        for reader in readers:
            reader.stop()

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            for reader in readers:
                if isinstance(reader, IngestReader):
                    pipeline.metrics.counters["arrival_forced"] = reader.merge.forced
            return self.json({"status": "ok", "namespace": pipeline.namespace, **pipeline.metrics.snapshot(),
                              "assigned": {r.name: r.partitions for r in readers}})

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.json(pipeline.metrics.snapshot())

    _ = (tick, feeds, pointer, Health, MetricsView, stop_readers)
    return app, pipeline


def _supervised(app: faust.App, reader: GroupReader) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await reader.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the worker must not go on without a reader: stop it, loudly
            info(f"{reader.name} reader failed; stopping the worker", error=repr(exc))
            await app.crash(exc)
            raise
    return run


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
