"""Replication from configuration, the cluster's layout, and the ledger writer's partial-write bookkeeping."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from devstack import brokers
from plumbing.partitioner import partition_for
from plumbing.settings import Settings
from plumbing.topics import replication_for
from streams.ledger_writer import LedgerWriter, PartialWrite

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("env", "nodes", "expected"), [
    ({}, 1, (1, {})),
    ({}, 2, (2, {})),
    ({}, 3, (3, {"min.insync.replicas": "2"})),
    ({}, 5, (3, {"min.insync.replicas": "2"})),
    ({"TIERSTREAM_REPLICATION": "auto"}, 3, (3, {"min.insync.replicas": "2"})),
    ({"TIERSTREAM_REPLICATION": "1"}, 3, (1, {})),
    ({"TIERSTREAM_REPLICATION": "5"}, 5, (5, {"min.insync.replicas": "4"})),
])
def test_replication_follows_the_broker_count_unless_configured(env: dict[str, str], nodes: int,
                                                                expected: tuple[int, dict[str, str]]) -> None:
    assert replication_for(Settings.from_env(env), nodes) == expected


def test_replication_beyond_the_brokers_and_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="TIERSTREAM_REPLICATION=3 but the cluster has 1 broker"):
        replication_for(Settings.from_env({"TIERSTREAM_REPLICATION": "3"}), 1)
    for bad in ("0", "three", "-1"):
        with pytest.raises(ValueError, match="TIERSTREAM_REPLICATION must be 'auto' or a positive integer"):
            Settings.from_env({"TIERSTREAM_REPLICATION": bad})


def test_cluster_ports_and_properties(tmp_path: Path) -> None:
    cc = brokers.ClusterConfig(tmp_path, 19292)
    assert [(cc.client_port(n), cc.controller_port(n), cc.fault_port(n), cc.proxy_port(n)) for n in cc.ids] == [
        (19292, 19293, 19392, 19393), (19294, 19295, 19394, 19395), (19296, 19297, 19396, 19397)]
    assert cc.bootstrap == "127.0.0.1:19292,127.0.0.1:19294,127.0.0.1:19296"
    props = dict(line.split("=", 1) for line in brokers._properties(cc, 2).replace("\\\n", "").splitlines() if line)
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19293,2@127.0.0.1:19295,3@127.0.0.1:19297"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19294,FAULTY://127.0.0.1:19395"
    assert "FAULTY://127.0.0.1:19394" in props["listeners"]
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("3", "2")
    assert props["unclean.leader.election.enable"] == "false"


def test_devstack_brokers_flag_env_and_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIERSTREAM_DEVSTACK_BROKERS", raising=False)
    assert brokers.for_stack(tmp_path, 19092, None) is None  # one broker by default
    assert brokers.for_stack(tmp_path, 19092, 1) is None
    cc = brokers.for_stack(tmp_path, 19092, 3)
    assert cc is not None and cc.nodes == 3 and cc.client_port(1) == 19092
    (tmp_path / "brokers").write_text("3")  # what `up --brokers 3` leaves: later commands find the cluster
    found = brokers.for_stack(tmp_path, 19092, None)
    assert found is not None and found.nodes == 3
    monkeypatch.setenv("TIERSTREAM_DEVSTACK_BROKERS", "1")
    assert brokers.for_stack(tmp_path, 19092, None) is None
    with pytest.raises(brokers.DevstackError, match="--brokers takes a positive number"):
        brokers.for_stack(tmp_path, 19092, 0)


class _Batch:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def append(self, key: bytes | None, value: bytes, timestamp: None) -> object:
        self.items.append((key, value))
        return object()


class _Producer:
    """Acknowledges every partition's batch except `failing`'s (a broker that went away)."""

    def __init__(self, failing: int) -> None:
        self.failing = failing

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, partition: int) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if partition == self.failing:
            fut.set_exception(ConnectionError("broker gone"))
        else:
            fut.set_result(None)
        return fut


def test_a_partial_ledger_write_names_the_partitions_that_were_written() -> None:
    writer = LedgerWriter("unused:9092", 8)
    writer._producer = _Producer(failing=partition_for(b"shop-1", 8))  # type: ignore[assignment]
    records = [(b"shop-1", b"a", None), (None, b"b", 0), (None, b"c", 5)]

    async def run() -> PartialWrite:
        with pytest.raises(PartialWrite) as exc:
            await writer.write("ledger", records)
        return exc.value

    err = asyncio.run(run())
    assert isinstance(err.cause, ConnectionError)
    assert err.written == {0, 5} - {partition_for(b"shop-1", 8)}
