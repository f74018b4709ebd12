"""Redis clients that pack commands with one hiredis call.

redis-py's asyncio connection packs a command in Python: one `Encoder.encode` call and one
bytes join per argument, ≈ 660 ns per argument here; ingest's dedupe commands (HMGET, HSET)
carry two or three arguments per event, which made it ≈ 6 % of a busy one-process worker in
py-spy. Its sync connection hands the command to hiredis, but first converts every argument
in a Python generator (bytearray and memoryview into bytes), ≈ 45 of its ≈ 190 ns per
argument; the evaluate step's commits carry several arguments per event. `HiredisPacker` makes
one hiredis call and leaves what hiredis refuses (bytearray, wrong types) to redis-py's own
packer, so what goes on the wire, and what is refused, is the same (tests/unit/test_clients.py).

`TIERSTREAM_REDIS` may name a Redis Cluster instead: `redis-cluster://[user:password@]host:port[,host:port...]`
(seed nodes; the client learns the rest). Then both factories return redis-py's cluster clients,
which route each command by its key's slot and follow MOVED/ASK; the store's keys of a ledger
partition share a slot (projections/keys.py), so the code is the same on both.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import HiredisRespSerializer
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.utils import HIREDIS_AVAILABLE

if HIREDIS_AVAILABLE:
    import hiredis


class HiredisPacker:
    """A command packer (redis-py's `command_packer`): the command in one hiredis call."""

    _fallback = HiredisRespSerializer()

    def pack(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str):  # "CONFIG GET" goes as two arguments, as redis-py sends it
            args = (*name.encode().split(), *args[1:])
        elif b" " in name:
            args = (*name.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # bytearray, or a type Redis cannot take: redis-py converts or refuses
            packed: list[bytes] = self._fallback.pack(*args)
            return packed


class HiredisPackingConnection(Connection):
    """An asyncio connection whose commands `HiredisPacker` packs."""

    _packer = HiredisPacker()

    def pack_command(self, *args: Any) -> list[bytes]:
        return self._packer.pack(*args)


CLUSTER_SCHEME = "redis-cluster"
# A failover takes the cluster a few seconds (node timeout, then the replica's election): a
# command retries with growing pauses for about that long before its caller sees the error.
CLUSTER_RETRIES = 8


class RedisConfigError(ValueError):
    """TIERSTREAM_REDIS cannot be used: the message says why, in one line."""


def cluster_seeds(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]] | None:
    """The seed nodes and credentials of a `redis-cluster://` URL; None for any other URL."""
    parts = urlsplit(url)
    if parts.scheme != CLUSTER_SCHEME:
        return None
    auth, _, hosts = parts.netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise RedisConfigError(f"TIERSTREAM_REDIS: {CLUSTER_SCHEME}:// takes host:port[,host:port...], "
                                   f"got {item.strip()!r}")
        seeds.append((host.strip("[]"), int(port)))
    if parts.path not in ("", "/", "/0"):
        raise RedisConfigError(f"TIERSTREAM_REDIS: a cluster has only database 0, got {parts.path!r}")
    creds: dict[str, Any] = {}
    if auth:  # user:password, :password or password, as in redis:// URLs
        user, sep, password = auth.partition(":")
        creds = {"username": unquote(user) or None, "password": unquote(password)} if sep else \
            {"password": unquote(user)}
    return seeds, creds


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(base=0.1, cap=2.0)


def sync_cluster(url: str) -> RedisCluster:
    """A RedisCluster for a `redis-cluster://` URL, refused unless every node it asks is `cluster_state:ok`."""
    found = cluster_seeds(url)
    if found is None:
        raise RedisConfigError(f"not a {CLUSTER_SCHEME}:// URL")
    seeds, creds = found
    try:
        client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in seeds],  # type: ignore[no-untyped-call]
                              retry=Retry(_backoff(), CLUSTER_RETRIES), **creds)
        states: Any = client.cluster_info(target_nodes=RedisCluster.PRIMARIES)
    except (redis.RedisError, RedisClusterException) as exc:
        where = ",".join(f"{h}:{p}" for h, p in seeds)
        raise RedisConfigError(f"TIERSTREAM_REDIS: the Redis Cluster at {where} is not usable (it must answer, "
                               f"cover every slot and be cluster_state:ok): {exc}".replace("\n", " ")) from None
    per_node = states if isinstance(states, dict) and "cluster_state" not in states else {"node": states}
    bad = {n: i.get("cluster_state") for n, i in per_node.items() if i.get("cluster_state") != "ok"}
    if bad:
        client.close()
        raise RedisConfigError(f"TIERSTREAM_REDIS: the cluster is not cluster_state:ok ({bad})")
    return client


def async_redis(url: str) -> Any:
    """`redis.asyncio.from_url(url)`, packing with hiredis for plain TCP URLs (redis://) when
    hiredis is installed; TLS and unix-socket URLs keep redis-py's own connection classes. A
    `redis-cluster://` URL gives redis-py's asyncio RedisCluster (checked with a blocking client
    first, so a bad URL fails at start, in one line)."""
    found = cluster_seeds(url)
    if found is not None:
        sync_cluster(url).close()
        seeds, creds = found
        return AsyncRedisCluster(startup_nodes=[AsyncClusterNode(h, p) for h, p in seeds],
                                 retry=AsyncRetry(_backoff(), CLUSTER_RETRIES), **creds)
    if HIREDIS_AVAILABLE and url.startswith("redis://"):
        return aioredis.from_url(url, connection_class=HiredisPackingConnection)
    return aioredis.from_url(url)


def sync_redis(url: str) -> Any:
    """`redis.Redis.from_url(url)` (bytes replies), packing with hiredis when it is installed; a
    RedisCluster for a `redis-cluster://` URL."""
    if cluster_seeds(url) is not None:
        return sync_cluster(url)
    if HIREDIS_AVAILABLE:
        return redis.Redis.from_url(url, command_packer=HiredisPacker())
    return redis.Redis.from_url(url)
