"""The devstack is real: a Kafka broker that stores and serves records, a Redis that keeps keys."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devstack import cluster, stack

pytestmark = pytest.mark.integration


async def test_kafka_round_trip_on_a_project_created_topic(kafka_bootstrap: str, unique: str) -> None:
    topic = f"{unique}-roundtrip"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=f"shop-{i % 5}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    got: list[tuple[bytes, bytes]] = []
    try:
        while len(got) < 30:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "no records within 5 s"
            got += [(r.key, r.value) for recs in batch.values() for r in recs]
    finally:
        await consumer.stop()
    assert sorted(v for _, v in got) == sorted(f"v{i}".encode() for i in range(30))
    assert {k for k, _ in got} == {f"shop-{i}".encode() for i in range(5)}


async def test_topics_are_not_auto_created(kafka_bootstrap: str, unique: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=3000,
                                    metadata_max_age_ms=1000)
        await producer.start()
        try:
            with pytest.raises(Exception):  # noqa: B017 - aiokafka raises a timeout for a missing topic
                await producer.send_and_wait(f"{unique}-never-created", b"x")
        finally:
            await producer.stop()
        assert f"{unique}-never-created" not in await admin.list_topics()
    finally:
        await admin.close()


async def test_redis_write_and_read_with_aof(redis_url: str, unique: str) -> None:
    r = aioredis.from_url(redis_url)
    try:
        await r.hset(f"{unique}:{{shop}}:h", mapping={"gmv": 100})
        await r.zadd(f"{unique}:{{shop}}:z", {"u1": 5, "u2": 9})
        assert await r.hget(f"{unique}:{{shop}}:h", "gmv") == b"100"
        assert await r.zcount(f"{unique}:{{shop}}:z", "(5", "+inf") == 1
        assert (await r.config_get("appendonly"))["appendonly"] == "yes"
    finally:
        await r.delete(f"{unique}:{{shop}}:h", f"{unique}:{{shop}}:z")
        await r.aclose()


def test_devstack_cli_status_and_env(devstack: stack.StackConfig) -> None:
    status = subprocess.run([sys.executable, "-m", "cli.main", "devstack", "status"], capture_output=True,
                            text=True)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "kafka: running" in status.stdout and "redis: running" in status.stdout
    env = subprocess.run([sys.executable, "-m", "cli.main", "devstack", "env"], capture_output=True,
                         text=True, check=True).stdout
    assert f"export TIERSTREAM_KAFKA={devstack.bootstrap}" in env
    c = cluster.ClusterConfig.from_env(devstack.home)  # the session's cluster runs once a test asked for it
    assert f"export TIERSTREAM_REDIS={c.url if cluster.running(c) else devstack.redis_url}\n" in env


def test_devstack_env_points_at_the_redis_cluster_while_it_runs(devstack: stack.StackConfig,
                                                                  redis_cluster: str) -> None:
    if os.environ.get("TIERSTREAM_TEST_EXTERNAL") == "1":
        pytest.skip("the devstack's own cluster only")
    status = subprocess.run([sys.executable, "-m", "cli.main", "devstack", "status"], capture_output=True,
                            text=True)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "redis cluster: running (6/6 nodes up, 1 replica(s) per master)" in status.stdout
    env = subprocess.run([sys.executable, "-m", "cli.main", "devstack", "env"], capture_output=True,
                         text=True, check=True).stdout
    assert f"export TIERSTREAM_REDIS={redis_cluster}\n" in env


def test_devstack_up_twice_is_harmless(devstack: stack.StackConfig) -> None:
    again = stack.up(devstack)
    assert all("already running" in line for line in again)


def test_redis_store_commit_is_fenced_by_the_offset(redis_client: Any, unique: str) -> None:
    """Two folds of one partition from the same offset: the second commit fails instead of overwriting."""
    from projections.commit import FencedOut
    from projections.redis_store import RedisStore
    from tiering.params import RuleParams

    a, b = RedisStore(redis_client, unique, 0, RuleParams()), RedisStore(redis_client, unique, 0, RuleParams())
    assert a.load() == -1 and b.load() == -1
    a.commit(10)
    with pytest.raises(FencedOut):
        b.commit(10)
    assert b.load() == 10


def test_cached_state_is_kept_only_while_the_offset_fence_holds(redis_client: Any, unique: str) -> None:
    """A store keeps what it committed for its next batch; once another worker has written the
    partition (the stored offset is not the one it committed) it folds from what Redis holds."""
    from projections.keys import Keys
    from projections.processor import PartitionProcessor
    from projections.redis_store import RedisStore
    from tiering.fold import Folder
    from tiering.params import RuleParams

    def paid(i: int, amount: int) -> dict[str, object]:
        return {"event_id": f"o{i}", "type": "order_paid", "ts": 1_672_588_800_000 + i, "shop_id": "s1",
                "order_id": f"o{i}", "user_id": "u1", "amount_cents": amount}

    def gmv(store: RedisStore) -> int:
        c = store.counters("s1", store.cal.cycle_start(1_672_588_800_000), create=False)
        assert c is not None
        return c.total_gmv

    folder = Folder(RuleParams())
    a = PartitionProcessor(folder, RedisStore(redis_client, unique, 0, RuleParams()), read_models=False)
    b = PartitionProcessor(folder, RedisStore(redis_client, unique, 0, RuleParams()), read_models=False)
    for offset, amount in ((0, 1), (1, 2)):
        _outs, last = a.fold_batch([(offset, paid(offset, amount))])
        assert last is not None
        a.commit(last)
    redis_client.delete(Keys(unique, home=0).counters("s1", a.store.cal.cycle_start(1_672_588_800_000)))
    a.fold_batch([(2, paid(2, 4))])
    assert gmv(a.store) == 1 + 2 + 4  # a warm batch folds on what a committed, not on Redis
    a.fold_batch([(2, paid(2, 4))])  # that batch did not commit: the next one reads Redis
    assert gmv(a.store) == 4
    a.commit(2)
    _outs, last = b.fold_batch([(3, paid(3, 8))])  # another worker moves the partition on
    assert last == 3 and gmv(b.store) == 4 + 8
    b.commit(3)
    _outs, last = a.fold_batch([(4, paid(4, 16))])
    assert last == 4 and gmv(a.store) == 4 + 8 + 16  # a's offset 2 is not Redis's 3: reloaded


def test_each_partition_of_a_pass_commits_on_its_own_fence(redis_client: Any, unique: str) -> None:
    """One evaluate pass commits partitions 0 and 1 in one pipeline, each fenced by its own offset
    (their keys lie in different slots of a cluster): partition 1's offset moved under it, so its
    commit writes nothing and FencedOut names it; partition 0's commit goes through."""
    from projections.commit import FencedOut, commit_many
    from projections.redis_store import RedisStore
    from tiering.params import RuleParams

    p0, p1 = RedisStore(redis_client, unique, 0, RuleParams()), RedisStore(redis_client, unique, 1, RuleParams())
    other = RedisStore(redis_client, unique, 1, RuleParams())
    assert p0.load() == -1 and p1.load() == -1 and other.load() == -1
    other.commit(5)  # another worker moved partition 1 on
    with pytest.raises(FencedOut, match="partition 1: offset moved from -1 to 5") as fenced:
        commit_many(redis_client, [(p0, 7, None), (p1, 7, None)])
    assert "partition 0" not in str(fenced.value)
    assert p0.offset == 7 and p1.load() == 5
    assert p0.load() == 7  # its cache is warm: the stored offset is the one it committed
    commit_many(redis_client, [(p1, 9, None)])  # reloaded: goes through
    assert p1.offset == 9
    assert RedisStore(redis_client, unique, 0, RuleParams()).load() == 7
    assert RedisStore(redis_client, unique, 1, RuleParams()).load() == 9
