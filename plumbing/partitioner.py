"""The shop partitioner: which ledger partition a shop's records go to (Kafka's default, murmur2)."""

from __future__ import annotations

import functools

from aiokafka.partitioner import murmur2


@functools.lru_cache(maxsize=1 << 16)
def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a keyed record: the one function the ledger's
    producers and the key layout share (murmur2 is pure Python in aiokafka and keys are shop ids:
    remembered for the shops seen lately)."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)
