"""The devstack's broker started with the settings docker-compose.yml gives Kafka, on loopback.

Docker's network is played by 127.0.0.2 (the `kafka` container: its INTERNAL and CONTROLLER
listeners) and the host's published port by 127.0.0.1: a client on the host must be told
127.0.0.1:<published port>, one in a container kafka:29092 — each the address it came in by."""

from __future__ import annotations

import asyncio
import pathlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devstack import stack
from tests import compose

pytestmark = pytest.mark.integration
CONTAINER = "127.0.0.2"  # the kafka container's address on the simulated compose network


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def on_loopback(props: dict[str, str], service: dict[str, Any], home: pathlib.Path) -> dict[str, str]:
    """Compose's addresses moved onto loopback: container ports to free ports on CONTAINER, the
    published port to a free one on 127.0.0.1, the service's hostname to CONTAINER."""
    [(ip, host_port, container_port)] = compose.published(service)
    ports = {port: free_port(CONTAINER) for _, (_, port) in compose.listeners(props["listeners"]).items()}
    ports[container_port] = free_port(ip)

    def bind(name: str, port: int) -> str:
        return f"{name}://{ip if port == container_port else CONTAINER}:{ports[port]}"

    def advertise(name: str, host: str, port: int) -> str:
        if host == service["hostname"]:
            return f"{name}://{CONTAINER}:{ports[port]}"
        assert (host, port) == (ip, host_port), f"{name} advertises {host}:{port}, which nothing publishes"
        return f"{name}://{ip}:{ports[container_port]}"

    voter, at = props["controller.quorum.voters"].split("@")
    voter_host, voter_port = at.rsplit(":", 1)
    assert voter_host == service["hostname"]
    return {**props,
            "listeners": ",".join(bind(n, p) for n, (_, p) in compose.listeners(props["listeners"]).items()),
            "advertised.listeners": ",".join(
                advertise(n, h, p) for n, (h, p) in compose.listeners(props["advertised.listeners"]).items()),
            "controller.quorum.voters": f"{voter}@{CONTAINER}:{ports[int(voter_port)]}",
            "log.dirs": str(home / "kafka-data")}


@pytest.fixture(scope="module")
def compose_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(host bootstrap, container bootstrap) of a broker running compose's settings."""
    service = compose.load()["services"]["kafka"]
    home = tmp_path_factory.mktemp("compose-kafka")
    props = on_loopback(compose.kafka_properties(service), service, home)
    listeners = compose.listeners(props["listeners"])
    cfg = stack.StackConfig(home, kafka_port=listeners["HOST"][1], controller_port=listeners["CONTROLLER"][1],
                            redis_port=free_port("127.0.0.1"))
    try:
        stack.kafka_up(cfg, settings=props, cluster_id=service["environment"]["CLUSTER_ID"])
        yield cfg.bootstrap, f"{CONTAINER}:{listeners['INTERNAL'][1]}"
    finally:
        stack.stop_kafka(cfg)


async def _brokers(bootstrap: str) -> list[tuple[str, int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        return [(b["host"], b["port"]) for b in cluster["brokers"]]
    finally:
        await admin.close()


async def test_each_listener_advertises_the_address_its_clients_can_reach(
        compose_broker: tuple[str, str]) -> None:
    from_host, from_container = compose_broker
    host, port = from_host.split(":")
    assert await _brokers(from_host) == [(host, int(port))]
    host, port = from_container.split(":")
    assert await _brokers(from_container) == [(host, int(port))]


async def test_a_record_produced_from_the_host_reaches_a_consumer_in_a_container(
        compose_broker: tuple[str, str], unique: str) -> None:
    from_host, from_container = compose_broker
    topic = f"{unique}-compose"
    admin = AIOKafkaAdminClient(bootstrap_servers=from_container)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=from_host, acks="all")
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=f"shop-{i % 3}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=from_container, auto_offset_reset="earliest",
                                group_id=f"{unique}-g", enable_auto_commit=False)
    await consumer.start()
    got: list[bytes] = []
    try:
        while len(got) < 10:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=5000), 30)
            assert batch, "no records within 5 s"
            got += [r.value for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    assert sorted(got) == sorted(f"v{i}".encode() for i in range(10))
