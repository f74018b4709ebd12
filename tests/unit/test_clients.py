"""Our Redis clients pack commands in one hiredis call: the same bytes as redis-py's own packings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import DataError

from plumbing.redis_clients import HiredisPacker, HiredisPackingConnection, async_redis, sync_redis

pytestmark = pytest.mark.unit

COMMANDS: list[tuple[Any, ...]] = [
    ("HMGET", "tierstream:{dedupe:x}:20000", "e-1", "e-2"),
    ("HSET", "k", *[x for i in range(2000) for x in (f"event-{i:06d}", 1)]),  # past redis-py's 6,000-byte chunking
    ("SET", "k", b"\x00\xff\r\n", "EX", 40 * 86_400),
    ("SET", "k", 1.5),
    ("SET", "k", -(2**70)),
    ("SET", "k", "成员 é"),
    ("SET", "k", b"x" * 100_000),
    ("CONFIG GET", "maxmemory"),  # a two-word command name is split as redis-py splits it
    (b"CLIENT LIST",),
    ("EVAL", "return 1", 1, "k", "a", 2),
    ("SET", "k", bytearray(b"ab")),  # hiredis refuses it: redis-py's packer converts it
    ("SET", "k", memoryview(b"cd")),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: str(a[0]))
def test_packs_the_bytes_redis_py_packs(args: tuple[Any, ...]) -> None:
    ours = b"".join(HiredisPacker().pack(*args))
    assert ours == b"".join(Connection().pack_command(*args))  # redis-py asyncio
    assert ours == b"".join(HiredisRespSerializer().pack(*args))  # redis-py sync
    assert ours == b"".join(HiredisPackingConnection().pack_command(*args))
    assert ours.startswith(b"*")


@pytest.mark.parametrize("bad", [None, True, object()])
def test_refuses_what_redis_py_refuses(bad: Any) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        HiredisPacker().pack("SET", "k", bad)


def test_only_plain_tcp_urls_get_the_packing_connection() -> None:
    def cls(url: str) -> type:
        client = async_redis(url)
        try:
            return client.connection_pool.connection_class  # type: ignore[no-any-return]
        finally:
            asyncio.run(client.aclose())

    assert cls("redis://127.0.0.1:6379/0") is HiredisPackingConnection
    assert cls("rediss://127.0.0.1:6379/0") is SSLConnection
    assert cls("unix:///tmp/redis.sock") is UnixDomainSocketConnection


def test_the_sync_client_packs_with_hiredis() -> None:
    client = sync_redis("redis://127.0.0.1:6379/0")
    try:
        assert isinstance(client.connection_pool.connection_kwargs["command_packer"], HiredisPacker)
    finally:
        client.close()


@pytest.mark.integration
def test_a_transaction_round_trip_on_the_devstack(redis_url: str, unique: str) -> None:
    r = sync_redis(redis_url)
    key = f"test:{unique}:s"
    try:
        pipe = r.pipeline(transaction=True)
        pipe.set(key, b"\x00\xff")
        pipe.get(key)
        pipe.delete(key)
        assert pipe.execute() == [True, b"\x00\xff", 1]
    finally:
        r.close()


@pytest.mark.integration
def test_a_pipeline_round_trip_on_the_devstack(redis_url: str, unique: str) -> None:
    async def go() -> list[Any]:
        r = async_redis(redis_url)
        key = f"test:{unique}:h"
        try:
            pipe = r.pipeline(transaction=False)
            pipe.hset(key, mapping={f"e-{i}": i for i in range(3000)})
            pipe.hmget(key, ["e-0", "e-2999", "missing"])
            pipe.delete(key)
            return await pipe.execute()  # type: ignore[no-any-return]
        finally:
            await r.aclose()

    assert asyncio.run(go()) == [3000, [b"0", b"2999", None], 1]
