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

from plumbing.kafka_security import faust_credentials, kafka_kwargs
from plumbing.metrics import info
from plumbing.settings import Settings
from plumbing.webport import worker_bind, worker_port
from streams.pipeline import Pipeline
from streams.producers import Sender
from streams.prom import CONTENT_TYPE, WorkerCollector, exposition, registry_for
from streams.readers import CLOSE_TIMEOUT_S, STUCK_S, GroupReader, IngestReader, LedgerReader

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
        broker_credentials=faust_credentials(settings.kafka_security),  # the same as every aiokafka client's
    )
    # Faust starts a producer of its own; ours (Sender, below) sends outputs, dead letters and markers
    app.transport.Producer = IdempotentProducer  # type: ignore[misc]
    # No Faust stream consumes anything (the readers below are raw aiokafka consumers): the app runs
    # as a producer + web server + timers + tasks, and never joins a Faust consumer group.
    app.producer_only = True
    pipeline = Pipeline(settings)

    # outputs, dead letters and markers: our own producer, replaced when a send is stuck (Faust's
    # could not be, and held every send after a leader moved: streams/producers.py)
    sender = Sender(kafka_kwargs(settings), on_renew=lambda exc: pipeline.metrics.retried("producer", exc))
    send = sender.send

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

    async def watch_sender() -> None:  # (a task taking an argument is handed the app)
        await sender.watch()

    app.task(watch_sender)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def stop_readers(_app: Any, *args: Any, **kwargs: Any) -> None:
        for reader in readers:
            reader.stop()
        # a batch still publishing fails and is folded again by the next worker: nothing is lost
        await sender.stop()

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

    _ = (tick, feeds, pointer, Health, MetricsView, stop_readers, watch_sender)
    return app, pipeline


class IdempotentProducer(FaustKafkaProducer):
    """Faust's aiokafka producer with `enable_idempotence` (Faust sets it only inside transactions):
    a send retried after a lost acknowledgement is written once and in order."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


def refused(settings: Settings, exc: BaseException) -> None:
    """A permission Redis refuses (its ACL), or a user and password it refuses, does not heal by
    retrying: the worker stops at once with one line saying so, and exit code 1, instead of
    restarting a reader forever."""
    from redis.exceptions import AuthenticationError, NoPermissionError

    from plumbing.settings import redact_url
    from projections.acl import refused_line

    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, NoPermissionError | AuthenticationError):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return
    line = refused_line(seen, "worker", settings.namespace, settings.topic_prefix) \
        if isinstance(seen, NoPermissionError) else \
        f"Redis at {redact_url(str(settings.redis))} refused the user and password of TIERSTREAM_REDIS ({seen})"
    print(f"tierstream worker: {line}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)  # from inside a Faust task: no orderly stop to wait for; commits are atomic, nothing is lost


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
            refused(pipeline.settings, exc)
            pipeline.metrics.bump(f"{name}_errors")
            pipeline.metrics.retried(name, exc)
            if not failing:
                info(f"{name} step failed; retrying every tick", error=repr(exc))
            failing = True
    return run


class ReaderStuck(Exception):
    """The reader's loop did not come round for STUCK_S (streams/readers.py)."""


async def watched(reader: GroupReader, stuck_s: float = STUCK_S, every_s: float = 1.0) -> None:
    """Run the reader; if its loop stops coming round for `stuck_s`, cancel it and raise ReaderStuck
    (the supervisor restarts it). aiokafka can wait without end where no timeout of ours reaches:
    in the soak, after a broker kill, ingest sat for two minutes in a rebalance while input piled up."""
    task = asyncio.ensure_future(reader.run())
    try:
        while not task.done():
            await asyncio.wait([task], timeout=every_s)
            if not task.done() and reader.stuck_for() > stuck_s:
                stuck = reader.stuck_for()
                task.cancel()
                await asyncio.wait([task], timeout=2 * CLOSE_TIMEOUT_S + 5)  # its clean-up is bounded
                raise ReaderStuck(f"{reader.name}: the reader's loop did not come round for {stuck:.0f} s")
        task.result()
    finally:
        if not task.done():
            task.cancel()


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
                await watched(reader)
                return  # stopped on purpose
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                refused(reader.settings, exc)
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
