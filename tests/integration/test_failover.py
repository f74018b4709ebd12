"""Lost commits and failover: the offset fence turns state Redis lost into re-folding, not wrong state."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from devstack import cluster
from plumbing.redis_clients import sync_redis
from projections.keys import Keys
from projections.processor import LedgerGap, PartitionProcessor, fold_pass
from projections.redis_store import RedisStore
from replay.verify import dump
from simulator.workload import SimConfig, Simulator
from tests.builders import at, close_through, premium_shop, standard
from tests.integration.live import (
    Worker,
    consume_all,
    delete_namespace,
    produce_lines,
    settings_for,
    state_dump,
    wait_caught_up,
    wait_ingested,
)
from tests.integration.test_live import assert_same_meaning, rebuilt
from tiering.fold import Folder
from tiering.params import RuleParams

pytestmark = pytest.mark.integration


def _records() -> list[tuple[int, dict[str, Any]]]:
    jan1, feb1 = at(2023, 1, 1), at(2023, 2, 1)
    events = [standard(), *premium_shop("s1", jan1), *premium_shop("s2", jan1), *premium_shop("s3", jan1),
              close_through(at(2023, 1, 16)), *premium_shop("s1", at(2023, 1, 16)), close_through(feb1)]
    return list(enumerate(events))


def _fold(client: Any, ns: str, batches: list[list[tuple[int, dict[str, Any]]]]) -> list[bytes]:
    proc = PartitionProcessor(Folder(RuleParams()), RedisStore(client, ns, 0, RuleParams()))
    outputs: list[bytes] = []
    for batch in batches:
        outs, last = fold_pass([(proc, batch)], contiguous=True)[0]
        assert last is not None
        proc.commit(last)
        outputs += [orjson.dumps(o) for o in outs]
    return outputs


def test_commits_a_failover_lost_are_folded_again(state_redis_url: str, unique: str) -> None:
    """Redis acknowledges a commit, then a failover to a replica that had not received it loses it
    (replication is asynchronous). Forced here by restoring the partition's keys as they were
    before the last commit: the next batch's records start past the stored offset + 1, the pass
    refuses them (LedgerGap, nothing folded), and reading again from the stored offset ends with
    the state and outputs of a fold that never lost anything."""
    client = sync_redis(state_redis_url)
    records = _records()
    cut1, cut2 = len(records) // 3, 2 * len(records) // 3
    ns, clean = f"{unique}-lossy", f"{unique}-clean"
    try:
        expected = _fold(client, clean, [records])
        proc = PartitionProcessor(Folder(RuleParams()), RedisStore(client, ns, 0, RuleParams()))
        outputs: list[bytes] = []
        snapshot: dict[Any, Any] = {}
        for batch in (records[:cut1], records[cut1:cut2]):
            if batch[0][0] == cut1:  # what a replica that missed the next commit holds
                snapshot = {k: client.dump(k) for k in client.scan_iter(f"{ns}:*")}
            outs, last = fold_pass([(proc, batch)], contiguous=True)[0]
            assert last is not None
            proc.commit(last)
            outputs += [orjson.dumps(o) for o in outs]
        assert snapshot
        for key in client.scan_iter(f"{ns}:*"):  # the failover: the replica's keys replace the master's
            if key not in snapshot:
                client.delete(key)
        for key, raw in snapshot.items():
            client.restore(key, 0, raw, replace=True)
        with pytest.raises(LedgerGap) as gap:
            fold_pass([(proc, records[cut2:])], contiguous=True)
        assert gap.value.stored == {0: cut1 - 1}
        again, last = fold_pass([(proc, records[cut1:])], contiguous=True)[0]  # the reader seeks back
        assert last == records[-1][0]
        proc.commit(last)
        outputs += [orjson.dumps(o) for o in again]
        assert dump(state_redis_url, ns) == dump(state_redis_url, clean)
        assert set(outputs) == set(expected)  # refolded outputs repeat ids with the same payloads
        assert len({orjson.loads(o)["event_id"] for o in outputs}) == len(set(outputs))
    finally:
        delete_namespace(state_redis_url, ns)
        delete_namespace(state_redis_url, clean)
        client.close()


@pytest.fixture
def cluster_cfg(redis_cluster: str, devstack: Any) -> cluster.ClusterConfig:
    if os.environ.get("TIERSTREAM_TEST_EXTERNAL") == "1":
        pytest.skip("kills a master of the devstack's own cluster; an external cluster is not ours to kill")
    cfg = cluster.ClusterConfig.from_env(devstack.home, replicas=1)
    assert cfg.url == redis_cluster and cluster.healthy(cfg)
    return cfg


def test_sigkill_of_a_master_mid_stream_fails_over_and_state_equals_a_replay(
        cluster_cfg: cluster.ClusterConfig, kafka_bootstrap: str, unique: str, tmp_path: Path) -> None:
    """The master holding ledger partition 0's slot is killed (SIGKILL) while input arrives; its
    replica takes over. The worker rides through the errors and MOVED replies and ends with Redis
    equal to a clean replay of the ledger, and no output id with two payloads."""
    s = settings_for(kafka_bootstrap, cluster_cfg.url, f"{unique}-failover")
    lines = b"\n".join(Simulator(SimConfig(shops=120, days=34, seed=5, events_per_shop_day=3)).lines()) + b"\n"
    client = sync_redis(cluster_cfg.url)
    node = client.get_node_from_key(Keys(s.namespace).offset(0))
    victim = int(node.port)
    pid = int(cluster_cfg.pidfile(victim).read_text())
    w = Worker(s, tmp_path, "failover").start().wait_ready()
    try:
        producer = threading.Thread(target=produce_lines, args=(s, lines))
        producer.start()
        w.wait_batches(20)  # folding, mid-stream
        assert producer.is_alive(), "input should still be arriving at the kill"
        os.kill(pid, signal.SIGKILL)
        producer.join()
        wait_ingested([w], 1)
        wait_caught_up(s, timeout=240)
        roles = {p: cluster.node_info(p, "replication").get("role") for p in cluster_cfg.ports if p != victim}
        assert list(roles.values()).count("master") == 3, f"no replica took over: {roles}"
        outputs, state = consume_all(s), state_dump(cluster_cfg.url, s.namespace)
        assert_same_meaning(outputs)
        replay_outputs, replay_state = rebuilt(s, f"{unique}-failover-rebuild")
        assert replay_state == state
        assert set(replay_outputs) <= set(outputs)
        assert w.proc is not None and w.proc.poll() is None, "the worker should have ridden through"
    finally:
        w.stop()
        delete_namespace(cluster_cfg.url, s.namespace)
        client.close()
        if not cluster.running(cluster_cfg) or victim not in cluster.running(cluster_cfg):
            cluster.start_node(cluster_cfg, victim)  # it rejoins as its old replica's replica
        deadline = time.monotonic() + 60
        while not cluster.healthy(cluster_cfg) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert cluster.healthy(cluster_cfg), "the cluster did not heal after the test"


def test_a_cluster_that_is_not_ok_is_refused_in_one_line(devstack: Any, tmp_path: Path) -> None:
    """A cluster-enabled node that serves no slots says cluster_state:fail: every command refuses it."""
    from plumbing.redis_clients import RedisConfigError, sync_redis

    # past the devstack cluster's six ports: a node's bus port is its port + 10000, so an
    # ephemeral port (above 55535) cannot be a cluster node's
    port = cluster.ClusterConfig.from_env(devstack.home).base_port + 9
    cfg = cluster.ClusterConfig(tmp_path, base_port=port)
    cluster.start_node(cfg, port)
    try:
        deadline = time.monotonic() + 10
        while not cluster.node_info(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cluster.node_info(port).get("cluster_state") == "fail"
        with pytest.raises(RedisConfigError, match="cluster_state:ok") as exc:
            sync_redis(f"redis-cluster://127.0.0.1:{port}")
        assert "\n" not in str(exc.value)
    finally:
        if cfg.pidfile(port).exists():
            os.kill(int(cfg.pidfile(port).read_text()), signal.SIGKILL)
