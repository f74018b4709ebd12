"""Broker faults on a three-node cluster, mid-stream: SIGKILL one node and restart it, a rolling
restart of all three, and SIGKILL of the active controller, which also leads ledger partitions."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from devstack import brokers
from plumbing.topics import LEDGER
from tests.integration.faults.harness import FaultRun, workload
from tests.integration.live import Worker, settings_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]
DOWN_S = 5.0  # how long a killed node stays down: past the cluster's session timeout, so leaders move


def _run(cluster: brokers.ClusterConfig, redis_url: str, name: str, tmp_path: Path, **kw: Any) -> FaultRun:
    s = settings_for(cluster.bootstrap, redis_url, name)
    return FaultRun(name.split("-", 1)[1], s, s, tmp_path, **kw)


def _bounce(cluster: brokers.ClusterConfig, node: int, sig: int, topic: str) -> None:
    """Kill a node, start it again, and wait until it is back in every replica set of `topic` (a
    killed node stays registered until its session times out: registration alone proves nothing)."""
    brokers.kill_node(cluster, node, sig)
    time.sleep(DOWN_S)
    deadline = time.monotonic() + 60
    # until the cluster noticed (an empty answer, no broker answering in time, proves nothing)
    while node in {b["node_id"] for b in (brokers.describe(cluster).get("brokers") or [{"node_id": node}])}:
        assert time.monotonic() < deadline, f"the cluster still lists node {node} a minute after it was killed"
        time.sleep(0.5)
    brokers.start_node(cluster, node)
    brokers.wait_ready(cluster, timeout=240)
    brokers.wait_in_sync(cluster, topic, timeout=240)


@pytest.mark.faults_long  # the controller test below kills a broker too, in the short run
def test_sigkill_of_one_broker_mid_stream_then_restart_loses_nothing(
        cluster: brokers.ClusterConfig, redis_url: str, unique: str, tmp_path: Path) -> None:
    run = _run(cluster, redis_url, f"{unique}-sigkill-broker", tmp_path)

    def fault(w: Worker) -> dict[str, Any]:
        node = brokers.leaders(cluster, run.s.topic(LEDGER))[0]  # the leader of ledger partition 0
        _bounce(cluster, node, signal.SIGKILL, run.s.topic(LEDGER))
        return {"killed_node": node}

    report = run.run(fault)
    print(report)
    assert report["killed_node"] in cluster.ids


def test_sigkill_of_the_controller_and_ledger_leader_mid_stream_loses_nothing(
        cluster: brokers.ClusterConfig, redis_url: str, unique: str, tmp_path: Path) -> None:
    """Each node is a broker and a voter: the active controller leads some ledger partitions too,
    so its loss moves the quorum's leadership and those partitions' at once."""
    run = _run(cluster, redis_url, f"{unique}-kill-controller", tmp_path)

    def fault(w: Worker) -> dict[str, Any]:
        controller = int(brokers.describe(cluster)["controller_id"])
        led = sorted(p for p, leader in brokers.leaders(cluster, run.s.topic(LEDGER)).items() if leader == controller)
        _bounce(cluster, controller, signal.SIGKILL, run.s.topic(LEDGER))
        after = int(brokers.describe(cluster)["controller_id"])
        return {"killed_controller": controller, "ledger_partitions_it_led": led, "controller_after": after}

    report = run.run(fault)
    print(report)
    assert report["ledger_partitions_it_led"], "the controller led no ledger partition: the test proved less"


@pytest.mark.faults_long
def test_rolling_restart_of_all_three_brokers_mid_stream_loses_nothing(
        cluster: brokers.ClusterConfig, redis_url: str, unique: str, tmp_path: Path) -> None:
    """Each node in turn: a clean stop (SIGTERM: controlled shutdown), a start, and the ledger back
    in sync before the next, as an operator's rolling upgrade does."""
    run = _run(cluster, redis_url, f"{unique}-rolling", tmp_path, lines=workload(shops=150, days=30))

    def fault(w: Worker) -> dict[str, Any]:
        for node in cluster.ids:
            _bounce(cluster, node, signal.SIGTERM, run.s.topic(LEDGER))
        return {"restarted": list(cluster.ids)}

    report = run.run(fault)
    print(report)


def test_devstack_status_shows_each_broker_and_the_active_controller(cluster: brokers.ClusterConfig) -> None:
    import os
    import subprocess
    import sys

    from tests.integration.live import ROOT

    env = {**os.environ, "TIERSTREAM_DEVSTACK_HOME": str(cluster.home),
           "TIERSTREAM_DEVSTACK_KAFKA_PORT": str(cluster.base)}
    deadline = time.monotonic() + 120
    while True:  # a node restarted by another test may still be registering: status is a snapshot
        out = subprocess.run([sys.executable, "-m", "cli.main", "devstack", "status", "--brokers", "3"], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=120).stdout.splitlines()
        nodes = [ln for ln in out if ln.startswith("kafka-")]
        if all(": running (pid " in ln for ln in nodes) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert [ln.split(":")[0] for ln in nodes] == ["kafka-1", "kafka-2", "kafka-3"]
    assert all(": running (pid " in ln for ln in nodes), out
    assert sum("[active controller]" in ln for ln in nodes) == 1, out
