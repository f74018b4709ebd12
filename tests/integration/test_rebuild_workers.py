"""Rebuild on N processes (`replay --from-kafka --workers N`): same state as one process; a child
killed mid-run fails the command with nothing left running, and a rerun resumes to the same state."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bench.rebuild_bench import write_ledger
from plumbing.settings import Settings
from plumbing.topics import ensure_topics
from projections.keys import Keys
from replay.verify import diff_namespaces
from simulator.workload import SimConfig
from tests.integration.live import delete_namespace, env_for, settings_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ledger(kafka_bootstrap: str, redis_url: str) -> Iterator[Settings]:
    """A simulated history written straight to a ledger, and its rebuild on one process."""
    s = settings_for(kafka_bootstrap, redis_url, f"t{uuid.uuid4().hex[:8]}")
    asyncio.run(ensure_topics(s))
    asyncio.run(write_ledger(s, SimConfig(shops=120, days=40, seed=9, events_per_shop_day=8)))
    one = rebuild_cmd(s, s.namespace, 1)
    assert one.returncode == 0, one.stderr
    try:
        yield s
    finally:
        delete_namespace(redis_url, s.namespace)


def rebuild_cmd(s: Settings, namespace: str, workers: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(rebuild_argv(namespace, workers), env=env_for(s), cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def rebuild_argv(namespace: str, workers: int) -> list[str]:
    return [sys.executable, "-m", "cli.main", "replay", "--from-kafka", "--namespace", namespace,
            "--workers", str(workers)]


def workers_of(pid: int) -> list[int]:
    """The command's worker processes (spawned; not multiprocessing's resource tracker)."""
    try:
        kids = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
    return [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("workers", [2, 3])
def test_n_workers_build_the_same_state_as_one(ledger: Settings, workers: int, unique: str) -> None:
    ns = f"{unique}-w{workers}"
    try:
        res = rebuild_cmd(ledger, ns, workers)
        assert res.returncode == 0, res.stderr
        assert f"({workers} workers)" in res.stderr  # the one combined progress line
        assert diff_namespaces(str(ledger.redis), ledger.namespace, ns) == []
    finally:
        delete_namespace(str(ledger.redis), ns)


def test_a_killed_worker_fails_the_rebuild_and_a_rerun_resumes(ledger: Settings, unique: str) -> None:
    ns = f"{unique}-killed"
    r = redis.Redis.from_url(str(ledger.redis))
    offsets = [Keys(ns).offset(p) for p in range(ledger.partitions)]
    proc = subprocess.Popen(rebuild_argv(ns, 2), env=env_for(ledger), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(r.exists(k) for k in offsets):  # both children run; some partition has committed
            assert proc.poll() is None and time.monotonic() < deadline, "the rebuild ended before the kill"
            time.sleep(0.05)
        kids = workers_of(proc.pid)
        assert len(kids) == 2, kids
        os.kill(kids[1], signal.SIGKILL)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "died (killed by signal 9)" in err and f"--namespace {ns}" in err, err
        assert not [k for k in kids if alive(k)], "a child outlived the command"
        committed = sum(int(r.get(k) or -1) + 1 for k in offsets)
        resumed = rebuild_cmd(ledger, ns, 2)
        assert resumed.returncode == 0, resumed.stderr
        assert committed > 0
        assert diff_namespaces(str(ledger.redis), ledger.namespace, ns) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        r.close()
        delete_namespace(str(ledger.redis), ns)
