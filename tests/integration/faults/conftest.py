"""The three-broker cluster and the fault proxies for the fault tests, one of each per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack import brokers, stack
from devstack.faultproxy import FaultProxy, ProxyHost
from tests.conftest import TEST_TOPIC

LONG = os.environ.get("TIERSTREAM_FAULTS_LONG") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long fault tests run only with TIERSTREAM_FAULTS_LONG=1 (README, docs/reliability.md):
    deselected, and counted as such in the summary, otherwise."""
    if LONG:
        return
    keep = [i for i in items if i.get_closest_marker("faults_long") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


@pytest.fixture(scope="session")
def cluster(devstack: stack.StackConfig) -> Iterator[brokers.ClusterConfig]:
    """A running three-node KRaft cluster beside the devstack (its home's `cluster/`), on the 12 ports
    from TIERSTREAM_TEST_CLUSTER_PORT (default: the devstack's Kafka port + 20; node i takes
    base+2i, base+2i+1, base+6+2i, base+7+2i). Started (and stopped) by the session when not up."""
    if os.environ.get("TIERSTREAM_TEST_EXTERNAL") == "1":
        pytest.fail("fault tests need the project's own devstack (unset TIERSTREAM_TEST_EXTERNAL)")
    cc = brokers.ClusterConfig.for_tests(devstack.home, devstack.kafka_port)
    ok, _ = brokers.status(cc)
    started = not ok
    if started:
        for line in brokers.up(cc):
            print(line)
    yield cc
    for n in cc.ids:  # a test that failed half-way may have left a node down
        brokers.start_node(cc, n)
    brokers.wait_ready(cc)
    removed = stack.delete_topics(stack.StackConfig(cc.home, cc.client_port(1)), TEST_TOPIC)
    print(f"cluster: removed {removed} test topics")
    if started and os.environ.get("TIERSTREAM_KEEP_DEVSTACK") != "1":
        brokers.down(cc)


@pytest.fixture(scope="session")
def proxies(cluster: brokers.ClusterConfig, devstack: stack.StackConfig) -> Iterator[ProxyHost]:
    """Fault proxies: `kafka-N` in front of each node's FAULTY listener (on the port it advertises),
    `redis` in front of the devstack's Redis (on a free port)."""
    from tests.integration.live import free_port

    host = ProxyHost()
    try:
        for n in cluster.ids:
            host.add(FaultProxy(cluster.proxy_port(n), cluster.fault_port(n), f"kafka-{n}", kafka=True))
        host.add(FaultProxy(free_port(), devstack.redis_port, "redis"))
        yield host
    finally:
        host.close()
