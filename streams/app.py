"""The Faust app: ingest, clock and evaluate agents over one Pipeline. Built in `create_app`;
nothing connects at import time."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Producer as FaustKafkaProducer
from faust.web import Request, Response, View

from plumbing.metrics import info
from plumbing.settings import Settings
from plumbing.webport import worker_bind, worker_port
from streams.pipeline import Pipeline
from streams.prom import CONTENT_TYPE, WorkerCollector, exposition, registry_for
from streams.readers import GroupReader, IngestReader, LedgerReader

CLOCK_EVERY_S = 0.1
READER_RESTART_MIN_S, READER_RESTART_MAX_S = 0.5, 10.0
POINTER_EVERY_S = 1.0  # how often a worker checks the live pointer (`replay promote`)
FEED_FLUSH_EVERY_S = 0.05  # held-back dashboard feed announcements go out this often


def _broker_url(kafka: str) -> str:
    return "kafka://" + ";".join(h.strip() for h in kafka.split(",") if h.strip())


def create_app(settings: Settings, web_port: int | None = None) -> tuple[faust.App, Pipeline]:
    port = web_port if web_port is not None else worker_port()
    roles = settings.roles
    app = faust.App(
        f"{settings.topic_prefix}tierstream-{settings.namespace}",
        broker=_broker_url(settings.kafka),
        key_serializer="raw", value_serializer="raw",
        topic_allow_declare=False, topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        web_port=port, web_bind=worker_bind(),
        datadir=os.path.join(tempfile.gettempdir(), f"tierstream-faust-{settings.topic_prefix}{port}"),
        producer_acks=-1,
    )
    app.transport.Producer = IdempotentProducer  # type: ignore[misc]  # outputs, dead letters, markers
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
        app.timer(FEED_FLUSH_EVERY_S, name="feeds")(_tolerant(pipeline, "feeds", feeds))
        app.timer(POINTER_EVERY_S, name="pointer")(_tolerant(pipeline, "pointer", pointer))
    if "clock" in roles:
        app.timer(CLOCK_EVERY_S, name="clock")(_tolerant(pipeline, "clock", tick))

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

    registry = registry_for(WorkerCollector(
        pipeline.metrics, lambda: {r.name: r.lag() for r in readers}, pipeline.folded_watermarks,
        lambda: pipeline.clock_watermark, pipeline.params.lateness_ms,
        lambda: {"namespace": pipeline.namespace, "roles": ",".join(sorted(roles))}, [r.name for r in readers],
        pipeline.fold_duplicates))

    @app.page("/metrics")
    class MetricsView(View):
        """Prometheus text exposition (streams/prom.py); the JSON stays at /health."""

        async def get(self, request: Request) -> Response:
            return self.bytes(exposition(registry), headers={"Content-Type": CONTENT_TYPE})

    _ = (tick, feeds, pointer, Health, MetricsView, stop_readers)
    return app, pipeline


class IdempotentProducer(FaustKafkaProducer):
    """Faust's aiokafka producer with `enable_idempotence` (Faust sets it only inside transactions):
    a send retried after a lost acknowledgement is written once and in order."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


def _tolerant(pipeline: Pipeline, name: str, step: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """A timer step that survives the broker or Redis going away: it fails this tick and tries the next
    (logged once per incident, counted in /health)."""
    failing = False

    async def run() -> None:
        nonlocal failing
        try:
            await step()
            failing = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            pipeline.metrics.bump(f"{name}_errors")
            pipeline.metrics.retried(name, exc)
            if not failing:
                info(f"{name} step failed; retrying every tick", error=repr(exc))
            failing = True
    return run


def _supervised(app: faust.App, reader: GroupReader) -> Callable[[], Awaitable[None]]:
    """Run a reader; when it fails (the broker or Redis went away), start it again from what was
    committed, with a growing pause. A restarted reader re-reads: ingest from its group's committed
    offsets (duplicates are dropped by the dedupe store and the fold), evaluate from the offsets
    stored in Redis (records at or below them are skipped), so a failure loses nothing."""
    async def run() -> None:
        pause = READER_RESTART_MIN_S
        while True:
            started = asyncio.get_running_loop().time()
            try:
                await reader.run()
                return  # stopped on purpose
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if asyncio.get_running_loop().time() - started > 60:
                    pause = READER_RESTART_MIN_S  # it had been running fine: a new incident
                reader.pipeline.metrics.bump(f"{reader.name}_restarts")
                reader.pipeline.metrics.retried(reader.name, exc)
                info(f"{reader.name} reader failed; restarting", error=repr(exc), pause_s=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, READER_RESTART_MAX_S)
                reader.reset()
    return run


class QuietWorker(faust.Worker):
    """A faust Worker without the terminal spinner. Its log handler sets the root logger to DEBUG
    (filtering in the handler instead), so every aiokafka `log.debug` built a log record: ≈ 4 %
    of a busy worker's CPU in a py-spy profile. Without it the root logger keeps `loglevel`."""

    def on_setup_root_logger(self, logger: Any, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)


def run_worker(settings: Settings, loglevel: str = "warning") -> int:
    """`tierstream worker`: create the topics, then run the agents until stopped."""
    from plumbing.metrics import GC_TENURE_EVERY_S, GcTenure, setup_logging, watch_gc
    from plumbing.topics import ensure_topics
    from plumbing.webport import port_problem, worker_bind, worker_port

    try:  # before anything connects: a taken port is one line, not a traceback from deep in faust
        port = worker_port()
        problem = port_problem(worker_bind(), port, "set TIERSTREAM_WEB_PORT to a free port")
    except ValueError as exc:
        problem = str(exc)
    if problem is not None:
        print(f"tierstream worker: {problem}", file=sys.stderr)
        return 1
    setup_logging()
    created = asyncio.run(ensure_topics(settings))
    info("worker starting", settings=repr(settings), created_topics=created, web_port=port)
    app, pipeline = create_app(settings, web_port=port)
    watch_gc(pipeline.metrics)
    tenure = GcTenure()
    tenure.tick(time.monotonic())  # what startup built (modules, the app, clients) is never garbage

    @app.timer(GC_TENURE_EVERY_S, name="gc-tenure")
    async def gc_tenure() -> None:
        tenure.tick(time.monotonic())

    worker = QuietWorker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
