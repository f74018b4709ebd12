"""Harness for end-to-end tests: worker subprocesses, produce/consume, waiting for the fold to catch up."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from plumbing.kafka import consume, produce
from plumbing.kafka_security import kafka_kwargs, security_env
from plumbing.redis_clients import sync_redis
from plumbing.settings import Settings
from plumbing.topics import LEDGER
from projections.keys import Keys

if TYPE_CHECKING:
    from devstack.secure import SecureConfig

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(kafka: str, redis_url: str, prefix: str, namespace: str | None = None) -> Settings:
    return Settings.from_env({"TIERSTREAM_KAFKA": kafka, "TIERSTREAM_REDIS": redis_url,
                              "TIERSTREAM_TOPIC_PREFIX": f"{prefix}-", "TIERSTREAM_NAMESPACE": namespace or prefix})


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `tierstream` subprocess needs to use these settings."""
    return {**os.environ, "TIERSTREAM_KAFKA": settings.kafka, "TIERSTREAM_REDIS": str(settings.redis),
            "TIERSTREAM_TOPIC_PREFIX": settings.topic_prefix, "TIERSTREAM_NAMESPACE": settings.namespace,
            **security_env(settings.kafka_security), **extra}


def secure_settings(scfg: SecureConfig, prefix: str, rules: str | None = None) -> tuple[Settings, str]:
    """Settings for the secure devstack: Kafka over SASL_SSL as `worker`; Redis over TLS as a user of
    this test's own with the worker's least-privilege rules for its namespace (or `rules`). And the
    admin's Redis URL, to inspect and clean up what the test made."""
    from devstack import secure
    from projections.acl import worker_rules

    user, password = f"w-{prefix}", f"pw-{uuid.uuid4().hex}"
    secure.set_user(scfg, user, password, rules if rules is not None else worker_rules(prefix, f"{prefix}-"))
    env = {**secure.env(scfg), "TIERSTREAM_REDIS": scfg.redis_url(user, password),
           "TIERSTREAM_TOPIC_PREFIX": f"{prefix}-", "TIERSTREAM_NAMESPACE": prefix}
    return Settings.from_env(env), scfg.redis_url("admin", secure.passwords(scfg)["redis.admin"])


class Worker:
    """`tierstream worker` in a subprocess with its own web port and log file."""

    def __init__(self, settings: Settings, log_dir: Path, name: str = "worker",
                 env: dict[str, str] | None = None) -> None:
        self.settings, self.port, self.env = settings, free_port(), env or {}
        self.log = log_dir / f"{name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        env = env_for(self.settings, TIERSTREAM_WEB_PORT=str(self.port), **self.env)
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=env, cwd=ROOT,
                                         stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as r:
                return dict(orjson.loads(r.read()))
        except OSError:
            return None

    def wait_ready(self, timeout: float = 60) -> Worker:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, f"worker died:\n{self.tail()}"
            if self.health() is not None:
                return self
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout}s:\n{self.tail()}")

    def wait_batches(self, n: int, timeout: float = 60) -> None:
        """Until the worker has folded `n` ledger batches (mid-stream, for a fault to strike)."""
        deadline = time.monotonic() + timeout
        while (self.health() or {}).get("counters", {}).get("batches", 0) < n:
            assert time.monotonic() < deadline, f"the worker never got going\n{self.tail()}"
            time.sleep(0.1)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def produce_lines(settings: Settings, lines: bytes) -> int:
    return asyncio.run(produce(settings, io.BytesIO(lines)))


def consume_all(settings: Settings, idle_seconds: float = 3.0) -> list[bytes]:
    buf = io.BytesIO()
    asyncio.run(consume(settings, buf, idle_seconds))
    return [ln for ln in buf.getvalue().splitlines() if ln]


async def _ledger_ends(settings: Settings) -> dict[int, int]:
    c = AIOKafkaConsumer(**kafka_kwargs(settings), group_id=None)
    await c.start()
    try:
        tps = [TopicPartition(settings.topic(LEDGER), p) for p in range(settings.partitions)]
        ends = await c.end_offsets(tps)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await c.stop()


def wait_assigned(workers: list[Worker], reader: str, partitions: int, timeout: float = 60) -> list[list[str]]:
    """Until the workers' `reader`s together hold `partitions` partitions; what each holds."""
    deadline = time.monotonic() + timeout
    held: list[list[str]] = []
    while time.monotonic() < deadline:
        held = [(w.health() or {}).get("assigned", {}).get(reader, []) for w in workers]
        if sum(len(h) for h in held) == partitions and all(held):
            return held
        time.sleep(0.3)
    raise AssertionError(f"{reader} partitions not shared out in {timeout}s: {held}")


def copy_ledger(src: Settings, dst: Settings) -> int:
    """Append every ledger record of `src` to the same partition of `dst`'s ledger, in order."""
    async def run() -> int:
        c = AIOKafkaConsumer(**kafka_kwargs(src), group_id=None, auto_offset_reset="earliest")
        p = AIOKafkaProducer(**kafka_kwargs(dst), acks="all", linger_ms=5)
        await c.start()
        await p.start()
        try:
            tps = [TopicPartition(src.topic(LEDGER), n) for n in range(src.partitions)]
            ends = await c.end_offsets(tps)
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            n = 0
            async def behind() -> bool:
                return any([await c.position(tp) < ends[tp] for tp in tps])

            while await behind():
                for tp, records in (await c.getmany(timeout_ms=1000, max_records=5000)).items():
                    for r in records:
                        if r.offset < ends[tp]:
                            await p.send(dst.topic(LEDGER), r.value, key=r.key, partition=tp.partition)
                            n += 1
            await p.flush()
            return n
        finally:
            await c.stop()
            await p.stop()

    return asyncio.run(run())


def wait_ingested(workers: list[Worker], messages: int, timeout: float = 120) -> None:
    """Until the workers together have taken in at least `messages` input messages."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = sum((w.health() or {}).get("counters", {}).get("events_in", 0) for w in workers)
        if seen >= messages:
            return
        time.sleep(0.3)
    raise AssertionError(f"only {seen} of {messages} input messages ingested in {timeout}s")


def wait_caught_up(settings: Settings, timeout: float = 180, settle: float = 3.0) -> None:
    """Until the ledger stops growing and every partition's folded offset reached its end."""
    r = sync_redis(str(settings.redis))
    keys = Keys(settings.namespace)
    deadline, stable_since, last = time.monotonic() + timeout, None, None
    try:
        while time.monotonic() < deadline:
            ends = asyncio.run(_ledger_ends(settings))
            folded = {p: int(v) if (v := r.get(keys.offset(p))) is not None else -1 for p in ends}
            done = all(folded[p] >= end - 1 for p, end in ends.items())
            if done and ends == last:
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= settle:
                    return
            else:
                stable_since = None
            last = ends
            time.sleep(0.5)
        raise AssertionError(f"not caught up in {timeout}s: ends={last}")
    finally:
        r.close()


def fold_lines(workers: list[Worker], settings: Settings, lines: bytes) -> None:
    """Produce `lines` to the input topics and wait until the workers have taken them in and folded them."""
    wait_ingested(workers, produce_lines(settings, lines))
    wait_caught_up(settings)


@contextlib.contextmanager
def running_worker(settings: Settings, log_dir: Path, redis_url: str, name: str = "worker") -> Iterator[Worker]:
    """A ready worker for the block; stopped, and its namespace deleted, after it."""
    w = Worker(settings, log_dir, name).start().wait_ready()
    try:
        yield w
    finally:
        w.stop()
        delete_namespace(redis_url, settings.namespace)


def state_dump(redis_url: str, namespace: str) -> dict[str, Any]:
    from replay.verify import dump
    return dump(redis_url, namespace)


def delete_namespace(redis_url: str, namespace: str) -> None:
    r = sync_redis(redis_url)
    try:
        keys = list(r.scan_iter(f"{namespace}:*", count=1000))
        for i in range(0, len(keys), 1000):
            r.delete(*keys[i:i + 1000])
    finally:
        r.close()


class DashboardServer:
    """`tierstream dashboard` in a subprocess on a free port."""

    def __init__(self, settings: Settings, log_dir: Path, token: str | None = None) -> None:
        self.settings, self.port, self.token = settings, free_port(), token
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"dashboard-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> DashboardServer:
        env = env_for(self.settings)
        env.pop("TIERSTREAM_DASHBOARD_TOKEN", None)
        if self.token is not None:
            env["TIERSTREAM_DASHBOARD_TOKEN"] = self.token
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "dashboard", "--port", str(self.port)],
                                         env=env, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dashboard died:\n{self.log.read_text(errors='replace')}"
            if self.get("/health")[0] == 200:
                return self
            time.sleep(0.2)
        raise AssertionError(f"dashboard not ready in {timeout}s")

    def get(self, path: str) -> tuple[int, Any]:
        """GET a JSON path, with the token when the server has one."""
        req = urllib.request.Request(self.url + path)
        if self.token is not None:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, orjson.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read())
        except OSError:
            return 0, None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
