"""Network faults between the worker and Kafka, and the worker and Redis, through the fault proxy
(devstack/faultproxy.py): latency, a stall, a reset right after a produce request or a Redis
commit script (the write happened, its answer is lost), a half-close. The end conditions are the broker
faults' (harness.py); the worker's /health lists what it retried."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack import brokers
from devstack.faultproxy import KAFKA_PRODUCE, ProxyHost, kafka_request, redis_commit
from tests.integration.faults.harness import FaultRun, workload
from tests.integration.live import Worker, settings_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _run(cluster: brokers.ClusterConfig, proxies: ProxyHost, redis_url: str, name: str, tmp_path: Path,
         **kw: Any) -> FaultRun:
    s = settings_for(cluster.bootstrap, redis_url, name)
    through = dataclasses.replace(s, kafka=cluster.proxied_bootstrap,
                                  redis=type(s.redis)(f"redis://127.0.0.1:{proxies.proxies['redis'].listen_port}/0"))
    return FaultRun(name.split("-", 1)[1], s, through, tmp_path, **kw)


def latency(proxies: ProxyHost, side: str, seconds: float, lasting: float) -> dict[str, Any]:
    proxies.set_latency(side, seconds)
    time.sleep(lasting)
    proxies.set_latency(side, 0.0)
    return {f"{side}_latency_ms": seconds * 1000}


def stall(proxies: ProxyHost, side: str, seconds: float) -> dict[str, Any]:
    proxies.stall(side, seconds)
    time.sleep(seconds + 1)
    return {f"{side}_stall_s": seconds}


def reset_after_commit(proxies: ProxyHost, side: str, timeout: float = 60) -> dict[str, Any]:
    """Kafka: after a produce request (the ledger append); Redis: after the fold's commit script (or an EXEC)."""
    before = proxies.count(side, "resets_after_request")
    proxies.reset_after(side, kafka_request(KAFKA_PRODUCE) if side == "kafka" else redis_commit)
    deadline = time.monotonic() + timeout
    while proxies.count(side, "resets_after_request") == before:
        assert time.monotonic() < deadline, f"no {side} commit went through the proxy in {timeout}s"
        time.sleep(0.1)
    proxies.disarm(side)
    return {f"{side}_resets_after_commit": proxies.count(side, "resets_after_request") - before}


def half_close(proxies: ProxyHost, side: str) -> dict[str, Any]:
    n = proxies.half_close_all(side)
    assert n > 0, f"the worker had no {side} connection to half-close"
    time.sleep(2)
    return {f"{side}_half_closed": n}


def _sequence(proxies: ProxyHost, steps: list[Callable[[], dict[str, Any]]]) -> Callable[[Worker], dict[str, Any]]:
    def fault(w: Worker) -> dict[str, Any]:
        detail: dict[str, Any] = {}
        for step in steps:
            detail.update(step())
            assert w.proc is not None and w.proc.poll() is None, f"the worker died\n{w.tail()}"
        return detail
    return fault


# In the default run again: it passed three runs in a row on the merged code (docs/reliability.md)
def test_every_network_fault_in_turn_mid_stream_loses_nothing(
        cluster: brokers.ClusterConfig, proxies: ProxyHost, redis_url: str, unique: str, tmp_path: Path) -> None:
    """The short run: each fault once, briefly, on both links, in one worker's run."""
    run = _run(cluster, proxies, redis_url, f"{unique}-network", tmp_path, lines=workload(shops=60, days=24))
    p = proxies
    report = run.run(_sequence(p, [
        lambda: latency(p, "kafka", 0.05, 3), lambda: stall(p, "kafka", 3), lambda: reset_after_commit(p, "kafka"),
        lambda: half_close(p, "kafka"),
        lambda: latency(p, "redis", 0.02, 3), lambda: stall(p, "redis", 3), lambda: reset_after_commit(p, "redis"),
        lambda: half_close(p, "redis"),
    ]))
    print(report)
    # the commit whose answer was lost is retried: as a fenced commit folded again, or a restarted reader
    assert report["retries"], f"/health should list what the worker retried: {report}"


LONG_FAULTS: dict[str, Callable[[ProxyHost], dict[str, Any]]] = {
    "kafka-latency": lambda p: latency(p, "kafka", 0.2, 15),
    "kafka-stall": lambda p: stall(p, "kafka", 20),
    "kafka-reset": lambda p: reset_after_commit(p, "kafka"),
    "kafka-half-close": lambda p: half_close(p, "kafka"),
    "redis-latency": lambda p: latency(p, "redis", 0.1, 15),
    "redis-stall": lambda p: stall(p, "redis", 20),
    "redis-reset": lambda p: reset_after_commit(p, "redis"),
    "redis-half-close": lambda p: half_close(p, "redis"),
}


@pytest.mark.faults_long
@pytest.mark.parametrize("fault", sorted(LONG_FAULTS))
def test_one_network_fault_at_length_mid_stream_loses_nothing(
        fault: str, cluster: brokers.ClusterConfig, proxies: ProxyHost, redis_url: str, unique: str,
        tmp_path: Path) -> None:
    run = _run(cluster, proxies, redis_url, f"{unique}-{fault}", tmp_path, lines=workload(shops=120, days=30))
    report = run.run(_sequence(proxies, [lambda: LONG_FAULTS[fault](proxies)]))
    print(report)
