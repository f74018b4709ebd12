"""Shared fixtures: the devstack for integration tests, unique names per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devstack import stack

TEST_TOPIC = r"^t[0-9a-f]{8,10}-"  # the prefixes `unique` and the live tests give their topics
TEST_KEY = r"^(tierstream:(\{(dedupe|clock):|pointer:))?t[0-9a-f]{8,10}[-:]"  # their namespaces and keys


@pytest.fixture(scope="session")
def devstack() -> Iterator[stack.StackConfig]:
    """A running devstack: the one already up, or one started (and stopped) for this session.

    Set TIERSTREAM_KAFKA and TIERSTREAM_REDIS to use an existing Kafka and Redis instead."""
    cfg = stack.StackConfig.from_env()
    external = os.environ.get("TIERSTREAM_TEST_EXTERNAL") == "1"
    started = False
    if not external:
        ok, _ = stack.status(cfg)
        if not ok:
            for line in stack.up(cfg):
                print(line)
            started = True
    yield cfg
    if not external:
        # every test names its topics t<hex>-...; leaving thousands behind makes the next broker
        # start take minutes (it loads every partition), so the session removes what it made
        topics, keys = stack.delete_topics(cfg, TEST_TOPIC), stack.delete_keys(cfg, TEST_KEY)
        print(f"devstack: removed {topics} test topics and {keys} test keys")
    if started and os.environ.get("TIERSTREAM_KEEP_DEVSTACK") != "1":
        stack.down(cfg)


@pytest.fixture(scope="session")
def kafka_bootstrap(devstack: stack.StackConfig) -> str:
    return os.environ.get("TIERSTREAM_KAFKA", devstack.bootstrap) if os.environ.get(
        "TIERSTREAM_TEST_EXTERNAL") == "1" else devstack.bootstrap


@pytest.fixture(scope="session")
def redis_url(devstack: stack.StackConfig) -> str:
    return os.environ.get("TIERSTREAM_REDIS", devstack.redis_url) if os.environ.get(
        "TIERSTREAM_TEST_EXTERNAL") == "1" else devstack.redis_url


@pytest.fixture(scope="session")
def redis_cluster(devstack: stack.StackConfig) -> Iterator[str]:
    """The devstack's Redis Cluster (3 masters, a replica each: the failover test needs them), started
    for the session unless one runs; its URL. With TIERSTREAM_TEST_EXTERNAL=1, the cluster
    TIERSTREAM_TEST_REDIS_CLUSTER names (a redis-cluster:// URL), which must then be set."""
    from devstack import cluster

    if os.environ.get("TIERSTREAM_TEST_EXTERNAL") == "1":
        url = os.environ.get("TIERSTREAM_TEST_REDIS_CLUSTER")
        if not url:
            pytest.fail("TIERSTREAM_TEST_EXTERNAL=1: set TIERSTREAM_TEST_REDIS_CLUSTER to a redis-cluster:// URL "
                        "(the cluster half of the topology tests)")
        yield url
        return
    cfg = cluster.ClusterConfig.from_env(devstack.home, replicas=1)
    started = not cluster.healthy(cfg)
    if started:
        print(cluster.up(cfg))
    yield cfg.url
    print(f"redis cluster: removed {cluster.delete_keys(cfg, TEST_KEY)} test keys")
    if started and os.environ.get("TIERSTREAM_KEEP_DEVSTACK") != "1":
        print(cluster.down(cfg))


@pytest.fixture(scope="session")
def secure_devstack(devstack: stack.StackConfig) -> Iterator[Any]:
    """The secure devstack (devstack/secure.py: Kafka over SASL_SSL, Redis over TLS with ACL users)
    beside the plain one, started for the session unless it runs. Not with TIERSTREAM_TEST_EXTERNAL=1."""
    from cli.devstack_secure import devstack_rules
    from devstack import secure

    if os.environ.get("TIERSTREAM_TEST_EXTERNAL") == "1":
        pytest.skip("the secure devstack is the devstack's own: not with TIERSTREAM_TEST_EXTERNAL=1")
    cfg = secure.SecureConfig.from_env(devstack)
    started = not secure.status(cfg)[0]
    if started:
        print("\n".join(secure.up(cfg, devstack_rules("live", ""))))
    yield cfg
    topics, keys = secure.delete_test_data(cfg, TEST_TOPIC, TEST_KEY)
    print(f"secure devstack: removed {topics} test topics and {keys} test keys")
    if started and os.environ.get("TIERSTREAM_KEEP_DEVSTACK") != "1":
        print("\n".join(secure.down(cfg)))


@pytest.fixture(scope="session", params=["single", "cluster"])
def state_redis_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """Where the tests that hold the pipeline's promises keep state: the single Redis, then the cluster."""
    return redis_url if request.param == "single" else str(request.getfixturevalue("redis_cluster"))


@pytest.fixture
def unique() -> str:
    """A prefix no other test uses: for topic names and Redis namespaces."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def new_run(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Make a `Run` over the memory store, or over a fresh Redis namespace (one suite, two stores)."""
    from tests.builders import Run

    if request.param == "memory":
        yield lambda params=None: Run(params)
        return
    from projections.redis_store import RedisStore

    request.getfixturevalue("devstack")
    client = request.getfixturevalue("redis_client")
    ns = request.getfixturevalue("unique")
    runs = iter(range(1_000_000))  # a second Run of the same test gets a namespace of its own (`ns:1`, ...)

    def make(params: Any = None) -> Run:
        k = next(runs)
        return Run(params, redis_factory=lambda p: RedisStore(client, f"{ns}:{k}" if k else ns, 0, p))

    yield make


@pytest.fixture
def redis_client(redis_url: str, unique: str) -> Iterator[Any]:
    """A client of the devstack's Redis; the keys of namespace `unique` are deleted afterwards."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(f"{unique}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
