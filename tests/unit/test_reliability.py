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
    cc = brokers.ClusterConfig(tmp_path, 19112)
    assert [(cc.client_port(n), cc.controller_port(n), cc.fault_port(n), cc.proxy_port(n)) for n in cc.ids] == [
        (19112, 19113, 19118, 19119), (19114, 19115, 19120, 19121), (19116, 19117, 19122, 19123)]
    assert cc.bootstrap == "127.0.0.1:19112,127.0.0.1:19114,127.0.0.1:19116"
    assert cc.proxied_bootstrap == "127.0.0.1:19119,127.0.0.1:19121,127.0.0.1:19123"
    assert cc.ports == range(19112, 19124)
    props = dict(line.split("=", 1) for line in brokers._properties(cc, 2).replace("\\\n", "").splitlines() if line)
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19113,2@127.0.0.1:19115,3@127.0.0.1:19117"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19114,FAULTY://127.0.0.1:19121"
    assert "FAULTY://127.0.0.1:19120" in props["listeners"]
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
    writer = LedgerWriter({"bootstrap_servers": "unused:9092"}, 8)
    writer._producer = _Producer(failing=partition_for(b"shop-1", 8))  # type: ignore[assignment]
    records = [(b"shop-1", b"a", None), (None, b"b", 0), (None, b"c", 5)]

    async def run() -> PartialWrite:
        with pytest.raises(PartialWrite) as exc:
            await writer.write("ledger", records)
        return exc.value

    err = asyncio.run(run())
    assert isinstance(err.cause, ConnectionError)
    assert err.written == {0, 5} - {partition_for(b"shop-1", 8)}


def test_clusters_of_devstacks_a_hundred_ports_apart_never_share_a_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """The team runs devstacks on Kafka ports 100 apart; each may run a `--brokers 3` cluster on its
    Kafka port and a test cluster. The old layout (FAULTY ports at +100, test cluster at +200) put
    one engineer's cluster on the next one's Kafka port (docs/reliability.md)."""
    monkeypatch.delenv("TIERSTREAM_TEST_CLUSTER_PORT", raising=False)
    taken: dict[int, int] = {}
    for kafka_port in range(19092, 19800, 100):
        home = Path(f"/nonexistent/{kafka_port}")
        ports = {kafka_port, kafka_port + 1, *brokers.ClusterConfig(home, kafka_port).ports,
                 *brokers.ClusterConfig.for_tests(home, kafka_port).ports}
        assert len(ports) == 2 + 2 * 12 - 2, "the devstack's cluster and its test cluster overlap"
        clashes = {p: taken[p] for p in ports if p in taken}
        assert clashes == {}, f"the devstack on {kafka_port} shares ports with another: {clashes}"
        taken.update(dict.fromkeys(ports, kafka_port))
        assert max(ports) < kafka_port + 100


def test_test_cluster_port_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIERSTREAM_TEST_CLUSTER_PORT", "21000")
    cc = brokers.ClusterConfig.for_tests(tmp_path, 19092)
    assert (cc.base, cc.home) == (21000, tmp_path / "cluster")
    monkeypatch.setenv("TIERSTREAM_TEST_CLUSTER_PORT", "abc")
    with pytest.raises(brokers.DevstackError, match="TIERSTREAM_TEST_CLUSTER_PORT must be a port number, got 'abc'"):
        brokers.ClusterConfig.for_tests(tmp_path, 19092)


def test_a_node_running_from_the_home_with_other_ports_is_refused_not_taken_as_running(tmp_path: Path) -> None:
    import os

    old, new = brokers.ClusterConfig(tmp_path, 19292), brokers.ClusterConfig(tmp_path, 19112)
    old.node_home(1).mkdir(parents=True)
    (old.node_home(1) / "server.properties").write_text(brokers._properties(old, 1))
    old.pidfile(1).write_text(str(os.getpid()))  # a live pid: "node 1 is running", at the old ports
    assert "already running" in brokers.start_node(old, 1)
    with pytest.raises(brokers.DevstackError,
                       match=r"kafka-1 \(pid \d+\) runs from .* with other ports than base 19112"):
        brokers.start_node(new, 1)


class _Reader:
    """What the watchdog reads of a reader: `run`, `stuck_for`, `name`."""

    name = "ingest"

    def __init__(self, hang: bool, fail: bool = False) -> None:
        self.hang, self.fail, self.beat, self.cancelled = hang, fail, 0.0, False

    def stuck_for(self) -> float:
        return asyncio.get_running_loop().time() - self.beat

    async def run(self) -> None:
        self.beat = asyncio.get_running_loop().time()
        try:
            for _ in range(3):  # a loop that comes round
                await asyncio.sleep(0.05)
                self.beat = asyncio.get_running_loop().time()
            if self.fail:
                raise ConnectionError("broker gone")
            if self.hang:
                await asyncio.Event().wait()  # where no timeout reaches
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def test_a_reader_whose_loop_stops_coming_round_is_cancelled_and_reported_stuck() -> None:
    from streams.app import ReaderStuck, watched

    async def main() -> None:
        hung = _Reader(hang=True)
        with pytest.raises(ReaderStuck, match="ingest: the reader's loop did not come round for 0 s"):
            await asyncio.wait_for(watched(hung, stuck_s=0.3, every_s=0.05), 5)  # type: ignore[arg-type]
        assert hung.cancelled
        await watched(_Reader(hang=False), stuck_s=0.3, every_s=0.05)  # type: ignore[arg-type]  # ends: returns
        with pytest.raises(ConnectionError, match="broker gone"):  # a failure is the supervisor's, as before
            await watched(_Reader(hang=False, fail=True), stuck_s=0.3, every_s=0.05)  # type: ignore[arg-type]

    asyncio.run(main())


def test_ingest_pauses_a_partition_while_the_merge_holds_its_cap_and_resumes_below() -> None:
    from aiokafka import TopicPartition

    from streams import readers
    from streams.arrival import ArrivalMerge

    class Consumer:
        def __init__(self, tps: list[TopicPartition]) -> None:
            self.tps, self._paused = tps, set()

        def assignment(self) -> set[TopicPartition]:
            return set(self.tps)

        def paused(self) -> set[TopicPartition]:
            return set(self._paused)

        def pause(self, tp: TopicPartition) -> None:
            self._paused.add(tp)

        def resume(self, tp: TopicPartition) -> None:
            self._paused.discard(tp)

    a, b = TopicPartition("orders", 0), TopicPartition("orders", 1)
    ingest = readers.IngestReader(Settings.from_env({}), _Pipeline(), _send, "g")  # type: ignore[arg-type]
    ingest.merge = ArrivalMerge()
    for tp in (a, b):
        ingest.merge.start((tp.topic, tp.partition), 0)
    cap = readers.MAX_HELD_PER_PARTITION
    ingest.merge.extend(("orders", 0), [(i, i, i) for i in range(cap)])
    ingest.merge.extend(("orders", 1), [(i, i, i) for i in range(cap - 1)])
    consumer = Consumer([a, b])
    ingest._bound_held(consumer)  # type: ignore[arg-type]
    assert consumer.paused() == {a}, "only the partition at the cap stops fetching"
    assert ingest.merge.held(("orders", 0)) == cap
    ingest.merge.drain()
    ingest._bound_held(consumer)  # type: ignore[arg-type]
    assert consumer.paused() == set()


class _Metrics:
    def __init__(self) -> None:
        self.bumped: list[str] = []

    def bump(self, name: str, n: int = 1) -> None:
        self.bumped.append(name)


class _Pipeline:
    def __init__(self) -> None:
        self.metrics = _Metrics()


async def _send(topic: str, key: bytes | None, value: bytes, partition: int | None) -> None:
    return None
