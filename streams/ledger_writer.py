"""Appending to the ledger a batch at a time: one produce batch per ledger partition.

Ingest used to send each record through the producer (a future and a callback per record: a
quarter of the worker's time under backlog, measured with py-spy). Here the records of an
ingest batch are grouped by ledger partition, appended to aiokafka batches, and each batch is
sent whole; partitions are chosen as the default partitioner does (murmur2 of the key), so the
ledger is laid out exactly as before. Order within a partition is kept: a partition's batches go
to the producer's queue for that partition in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from plumbing.partitioner import partition_for
from plumbing.topics import started

MAX_BATCH_BYTES = 512 * 1024  # below the broker's default message.max.bytes (1 MiB)

LedgerRecord = tuple[bytes | None, bytes, int | None]  # key, value, partition (None: by key)


class PartialWrite(Exception):
    """Some partitions' batches failed (the broker went away): `written` are the partitions whose
    every batch the broker acknowledged, so the caller can record those and re-read only the rest."""

    def __init__(self, written: set[int], cause: BaseException) -> None:
        super().__init__(f"ledger write failed on some partitions ({cause!r}); written: {sorted(written)}")
        self.written, self.cause = written, cause


class LedgerWriter:
    def __init__(self, bootstrap: str, partitions: int) -> None:
        self.bootstrap, self.partitions = bootstrap, partitions
        self._producer: AIOKafkaProducer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("LedgerWriter.start() first")
        return self._producer

    async def start(self) -> None:
        """Connect a producer of its own (made here: aiokafka binds it to the running loop)."""
        if self._producer is None:
            # idempotent: a batch retried after a lost acknowledgement (a broker or the network failing)
            # is written once, in order
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                        linger_ms=0,
                                        max_batch_size=MAX_BATCH_BYTES, max_request_size=2 * MAX_BATCH_BYTES)
            await started(producer)
            self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def partition_of(self, record: LedgerRecord) -> int:
        key, _value, p = record
        if p is None:
            if key is None:
                raise ValueError("a ledger record needs a key or a partition")
            p = partition_for(key, self.partitions)
        return p

    async def write(self, topic: str, records: Sequence[LedgerRecord]) -> None:
        """Append the records (in order per partition) and wait until the broker has them all;
        `PartialWrite` says which partitions were written when some were not."""
        sent = await self._send(topic, records)
        results = await asyncio.gather(*(f for _p, f in sent), return_exceptions=True)
        lost = {p for (p, _f), r in zip(sent, results, strict=True) if isinstance(r, BaseException)}
        if lost:
            cause = next(r for r in results if isinstance(r, BaseException))
            raise PartialWrite({p for p, _f in sent} - lost, cause)

    async def enqueue(self, topic: str, records: Sequence[LedgerRecord]) -> list[Any]:
        """Hand the records to the producer as one batch per partition (in order per partition);
        return the batches' delivery futures without waiting for them."""
        return [f for _p, f in await self._send(topic, records)]

    async def _send(self, topic: str, records: Sequence[LedgerRecord]) -> list[tuple[int, Any]]:
        by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
        for record in records:
            by_partition.setdefault(self.partition_of(record), []).append((record[0], record[1]))
        futures: list[tuple[int, Any]] = []
        for p, items in sorted(by_partition.items()):
            batch = self.producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                    futures.append((p, await self.producer.send_batch(batch, topic, partition=p)))
                    batch = self.producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"a ledger record of {len(value)} bytes does not fit a batch")
            futures.append((p, await self.producer.send_batch(batch, topic, partition=p)))
        return futures
