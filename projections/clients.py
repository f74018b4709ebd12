"""Redis clients for the asyncio side (ingest, the clock, the dashboard).

redis-py's asyncio connection packs a command in Python: one `Encoder.encode` call and one
bytes join per argument, ≈ 660 ns per argument here. Its sync connection hands the whole
command to hiredis instead (≈ 190 ns). Ingest's dedupe commands (HMGET, HSET) carry two or three
arguments per event, which made this ≈ 6 % of a busy one-process worker in py-spy. The
connection below packs as the sync client does; what it sends is byte-for-byte the same
(tests/unit/test_clients.py).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE


class HiredisPackingConnection(Connection):
    """An asyncio connection whose commands are packed by hiredis, as the sync client's are."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._packer.pack(*args)
        return packed


def async_redis(url: str) -> aioredis.Redis:
    """`redis.asyncio.from_url(url)`, with hiredis packing for plain TCP URLs (redis://) when
    hiredis is installed; TLS and unix-socket URLs keep redis-py's own connection classes."""
    if HIREDIS_AVAILABLE and url.startswith("redis://"):
        return aioredis.from_url(url, connection_class=HiredisPackingConnection)
    return aioredis.from_url(url)
