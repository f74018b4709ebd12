"""End to end on the devstack: produce → worker(s) → consume, against the file form and each other."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from plumbing.settings import Settings
from plumbing.topics import ensure_topics
from replay.file import replay_file
from replay.ledger import rebuild
from simulator.workload import SimConfig, Simulator
from tests.integration.live import (
    Worker,
    consume_all,
    copy_ledger,
    delete_namespace,
    produce_lines,
    settings_for,
    state_dump,
    wait_assigned,
    wait_caught_up,
    wait_ingested,
)

pytestmark = pytest.mark.integration
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios" / "public"  # a copy of ../shared/scenarios
FOLDERS = sorted(p for p in SCENARIOS.glob("*") if (p / "input.jsonl").exists())


def file_form(lines: bytes) -> list[bytes]:
    out = io.BytesIO()
    replay_file(io.BytesIO(lines), out)
    return out.getvalue().splitlines()


def comparable(outputs: list[bytes]) -> tuple[list[bytes], list[tuple[str, str]]]:
    """Outputs as the file form would give them: dead letters by (reason, raw), since their
    source is a line number in a file and a topic/partition/offset live."""
    rest, dead = [], []
    for line in outputs:
        o = orjson.loads(line)
        if o["type"] == "dead_letter":
            dead.append((o["reason"], o["raw"]))
        else:
            rest.append(line)
    return sorted(rest), sorted(dead)


def assert_same_meaning(outputs: list[bytes]) -> None:
    """Every output event id means one thing, however often it was delivered."""
    by_id: dict[str, set[bytes]] = collections.defaultdict(set)
    for line in outputs:
        by_id[orjson.loads(line)["event_id"]].add(line)
    assert {i: p for i, p in by_id.items() if len(p) > 1} == {}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_scenario_end_to_end_equals_the_file_form(folder: Path, kafka_bootstrap: str, state_redis_url: str, unique: str,
                                                  tmp_path: Path) -> None:
    s = settings_for(kafka_bootstrap, state_redis_url, unique)
    w = Worker(s, tmp_path, folder.name).start()
    try:
        w.wait_ready()
        n = produce_lines(s, (folder / "input.jsonl").read_bytes())
        wait_ingested([w], n)
        wait_caught_up(s)
        live = consume_all(s)
        expected = file_form((folder / "input.jsonl").read_bytes())
        assert comparable(live) == comparable(expected), f"{folder.name}: live differs\n{w.tail()}"
        got = tmp_path / "live.jsonl"
        got.write_bytes(b"\n".join(live) + b"\n")
        check = subprocess.run([sys.executable, str(SCENARIOS / "check.py"), str(folder / "expected.jsonl"),
                                str(got)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
    finally:
        w.stop()
        delete_namespace(state_redis_url, s.namespace)


@pytest.fixture(scope="module")
def workload() -> bytes:
    cfg = SimConfig(shops=200, days=34, seed=11, events_per_shop_day=3)
    return b"\n".join(Simulator(cfg).lines()) + b"\n"


def rebuilt(s: Settings, namespace: str) -> tuple[list[bytes], dict[str, object]]:
    """A clean replay of the ledger into a fresh namespace (replay/ledger.py)."""
    result = asyncio.run(rebuild(s, namespace))
    try:
        return [orjson.dumps(o) for o in result.outputs], state_dump(str(s.redis), namespace)
    finally:
        delete_namespace(str(s.redis), namespace)


@pytest.fixture(scope="module")
def live_run(kafka_bootstrap: str, state_redis_url: str, workload: bytes,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, list[bytes], dict[str, object]]]:
    """One worker processes the simulated workload; its ledger stays for the other tests."""
    s = settings_for(kafka_bootstrap, state_redis_url, f"t{uuid.uuid4().hex[:8]}-live")
    w = Worker(s, tmp_path_factory.mktemp("live")).start().wait_ready()
    try:
        n = produce_lines(s, workload)
        wait_ingested([w], n)
        wait_caught_up(s)
        yield s, consume_all(s), state_dump(state_redis_url, s.namespace)
    finally:
        w.stop()
        delete_namespace(state_redis_url, s.namespace)


def test_live_state_equals_a_clean_replay_of_its_ledger(
        live_run: tuple[Settings, list[bytes], dict[str, object]], unique: str) -> None:
    s, outputs, state = live_run
    assert len(outputs) > 500 and len(state) > 500
    assert_same_meaning(outputs)
    replay_outputs, replay_state = rebuilt(s, f"{unique}-rebuild")
    assert replay_state == state
    assert set(replay_outputs) == {ln for ln in outputs if orjson.loads(ln)["type"] != "dead_letter"}


def test_two_evaluate_workers_equal_one(live_run: tuple[Settings, list[bytes], dict[str, object]],
                                        tmp_path: Path, unique: str) -> None:
    """Two workers share a ledger of 8 partitions: same state, same outputs as the one worker had.

    The two join first and the ledger (a copy of the live run's, partition for partition) is
    written once both hold partitions, so neither can fold it all before the other joins."""
    s, outputs, state = live_run
    s2 = dataclasses.replace(s, topic_prefix=f"{unique}-", namespace=f"{unique}-two", roles=frozenset({"evaluate"}))
    asyncio.run(ensure_topics(s2))
    workers = [Worker(s2, tmp_path, f"two-{i}").start() for i in range(2)]
    try:
        for w in workers:
            w.wait_ready()
        held = wait_assigned(workers, "evaluate", 8)
        assert all(held) and not set(held[0]) & set(held[1]), held
        copy_ledger(s, s2)
        wait_caught_up(s2)
        assert all((w.health() or {}).get("counters", {}).get("batches", 0) > 0 for w in workers), \
            "both workers should have folded partitions"
        assert state_dump(str(s.redis), s2.namespace) == state
        again = consume_all(s2)
        assert_same_meaning(again)
        assert set(again) == {ln for ln in outputs if orjson.loads(ln)["type"] != "dead_letter"}
    finally:
        for w in workers:
            w.stop()
        delete_namespace(str(s.redis), s2.namespace)


def test_sigkill_mid_stream_then_restart_equals_a_clean_replay(
        kafka_bootstrap: str, state_redis_url: str, unique: str, workload: bytes, tmp_path: Path) -> None:
    """A worker killed with SIGKILL while input is arriving, then restarted: Redis ends equal to a
    clean replay of the ledger and no output id carries two payloads."""
    s = settings_for(kafka_bootstrap, state_redis_url, f"{unique}-crash")
    w = Worker(s, tmp_path, "crash").start().wait_ready()
    try:
        producer = threading.Thread(target=produce_lines, args=(s, workload))
        producer.start()
        w.wait_batches(20)  # folding, mid-stream
        assert producer.is_alive(), "input should still be arriving at the kill"
        w.kill(signal.SIGKILL)
        w = Worker(s, tmp_path, "restarted").start().wait_ready()
        producer.join()
        wait_ingested([w], 1)
        wait_caught_up(s)
        outputs, state = consume_all(s), state_dump(state_redis_url, s.namespace)
        assert_same_meaning(outputs)
        replay_outputs, replay_state = rebuilt(s, f"{unique}-crash-rebuild")
        assert replay_state == state
        assert set(replay_outputs) <= set(outputs)
    finally:
        w.stop()
        delete_namespace(state_redis_url, s.namespace)


def ledger_event_ids(s: Settings) -> set[str]:
    from replay.export import export

    buf = io.BytesIO()
    asyncio.run(export(s, buf, source="ledger"))
    return {orjson.loads(ln)["event_id"] for ln in buf.getvalue().splitlines()}


def valid_event_ids(lines: bytes) -> set[str]:
    from tiering.contract import InvalidEvent, parse_line

    ids = set()
    for ln in lines.splitlines():
        with contextlib.suppress(InvalidEvent):
            ids.add(parse_line(ln)["event_id"])
    return ids


@pytest.mark.parametrize("service", ["redis", "kafka"])
def test_a_restart_of_redis_or_the_broker_mid_stream_loses_nothing(
        service: str, devstack: Any, kafka_bootstrap: str, redis_url: str, unique: str, workload: bytes,
        tmp_path: Path) -> None:
    """The worker keeps running while Redis (AOF) or the broker stops and starts again mid-stream:
    every valid input event reaches the ledger, and Redis ends equal to a clean replay of it."""
    from devstack import stack

    if os.environ.get("TIERSTREAM_TEST_EXTERNAL") == "1":
        pytest.fail("restart tests need the project's own devstack (unset TIERSTREAM_TEST_EXTERNAL)")
    s = settings_for(kafka_bootstrap, redis_url, f"{unique}-{service}")
    lines = workload.splitlines()
    first, second = b"\n".join(lines[: len(lines) // 2]) + b"\n", b"\n".join(lines[len(lines) // 2:]) + b"\n"
    w = Worker(s, tmp_path, f"restart-{service}").start().wait_ready()
    try:
        produce_lines(s, first)
        w.wait_batches(5)  # folding, mid-stream
        if service == "redis":
            stack.stop_redis(devstack)
            time.sleep(2)
            stack.redis_up(devstack)
        else:
            stack.stop_kafka(devstack)
            time.sleep(2)
            stack.kafka_up(devstack)
        produce_lines(s, second)
        deadline = time.monotonic() + 120
        while True:  # the worker's own readers came back and took in the second half
            h = w.health() or {}
            if h.get("counters", {}).get("events_in", 0) >= len(lines) // 2 + 1 and h.get("assigned", {}).get(
                    "evaluate"):
                break
            assert time.monotonic() < deadline, f"the worker did not resume after the {service} restart\n{w.tail()}"
            time.sleep(0.5)
        wait_caught_up(s)
        assert w.proc is not None and w.proc.poll() is None, "the worker should have survived"
        counters = (w.health() or {}).get("counters", {})
        if service == "redis":  # the clock reads Redis every 0.1 s: the outage was felt and survived
            assert sum(v for k, v in counters.items() if k.endswith(("_errors", "_restarts"))) > 0, counters
        assert valid_event_ids(workload) <= ledger_event_ids(s)
        state = state_dump(redis_url, s.namespace)
        _outputs, replay_state = rebuilt(s, f"{unique}-{service}-rebuild")
        assert replay_state == state
        assert_same_meaning(consume_all(s))
    finally:
        w.stop()
        delete_namespace(redis_url, s.namespace)
