"""Redis clients that pack commands with one hiredis call.

redis-py's asyncio connection packs a command in Python: one `Encoder.encode` call and one
bytes join per argument, ≈ 660 ns per argument here; ingest's dedupe commands (HMGET, HSET)
carry two or three arguments per event, which made it ≈ 6 % of a busy one-process worker in
py-spy. Its sync connection hands the command to hiredis, but first converts every argument
in a Python generator (bytearray and memoryview into bytes), ≈ 45 of its ≈ 190 ns per
argument; the evaluate step's commits carry several arguments per event. `HiredisPacker` makes
one hiredis call and leaves what hiredis refuses (bytearray, wrong types) to redis-py's own
packer, so what goes on the wire, and what is refused, is the same (tests/unit/test_clients.py).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.connection import HiredisRespSerializer
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


def async_redis(url: str) -> aioredis.Redis:
    """`redis.asyncio.from_url(url)`, packing with hiredis for plain TCP URLs (redis://) when
    hiredis is installed; TLS and unix-socket URLs keep redis-py's own connection classes."""
    if HIREDIS_AVAILABLE and url.startswith("redis://"):
        return aioredis.from_url(url, connection_class=HiredisPackingConnection)
    return aioredis.from_url(url)


def sync_redis(url: str) -> redis.Redis:
    """`redis.Redis.from_url(url)` (bytes replies), packing with hiredis when it is installed."""
    if HIREDIS_AVAILABLE:
        return redis.Redis.from_url(url, command_packer=HiredisPacker())
    return redis.Redis.from_url(url)
