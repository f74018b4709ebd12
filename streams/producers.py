"""The worker's Kafka producers: idempotent, `acks=all`, and replaced when a send is stuck.

aiokafka can retry a batch for a partition whose leader moved without end (aio-libs/aiokafka#1018):
in the soak, after a broker kill and again when the cluster moved leaders back to their preferred
replica minutes later, the producer of outputs and dead letters held every send from then on, and
both readers timed out batch after batch, for good. `Sender` notices a send unacknowledged for
`stuck_s`, fails every send it holds (their callers fail and retry as after any broker error) and
goes on with a new producer; `close_producer` closes one without waiting on such a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer

from plumbing.topics import started

SEND_STUCK_S = 30.0  # a send unacknowledged this long is stuck, not slow (acks=all p99 < 1 s here)


class ProducerStuck(ConnectionError):
    """A send was not acknowledged for SEND_STUCK_S: the producer was replaced, the send failed."""


def new_producer(kafka: Mapping[str, Any], **kw: Any) -> AIOKafkaProducer:
    """Idempotent with acks=all: a batch resent after its acknowledgement was lost is written once, in order.
    `kafka`: the client keyword arguments (bootstrap servers, security) of `kafka_kwargs`."""
    return AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True, **kw)


async def close_producer(producer: AIOKafkaProducer, timeout: float = 10.0) -> None:
    """Flush and close; a producer whose flush hangs is aborted instead: its sender is cancelled and
    its unsent batches dropped (whoever sent them has failed, and sends again)."""
    try:
        await asyncio.wait_for(producer.stop(), timeout)
    except TimeoutError:
        sender: Any = getattr(producer, "_sender", None)  # aiokafka has no public abort
        if sender is not None:
            with contextlib.suppress(Exception):
                await sender.close()
        with contextlib.suppress(Exception):
            await producer.client.close()


class Sender:
    """`send(topic, key, value, partition)` -> a future of the acknowledgement, through a producer
    that is replaced when one of its sends is stuck (the `Send` of streams/pipeline.py)."""

    def __init__(self, kafka: Mapping[str, Any], stuck_s: float = SEND_STUCK_S, on_renew: Any = None) -> None:
        self.kafka, self.stuck_s, self.on_renew = dict(kafka), stuck_s, on_renew
        self._producer: AIOKafkaProducer | None = None
        self._pending: dict[asyncio.Future[Any], float] = {}  # our future -> when it was sent
        self._starting = asyncio.Lock()
        self.renewals = 0

    async def _get(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                self._producer = await started(new_producer(self.kafka))
            return self._producer

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None) -> asyncio.Future[Any]:
        await self.renew_if_stuck()
        producer = await self._get()
        acked = await producer.send(topic, value, key=key, partition=partition)
        ours: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ours] = time.monotonic()

        def relay(f: asyncio.Future[Any]) -> None:
            self._pending.pop(ours, None)
            if ours.done():  # failed already: the producer was replaced
                return
            if f.cancelled():
                ours.cancel()
            elif f.exception() is not None:
                ours.set_exception(f.exception())  # type: ignore[arg-type]
            else:
                ours.set_result(f.result())

        acked.add_done_callback(relay)
        return ours

    def oldest_pending_s(self) -> float:
        return time.monotonic() - min(self._pending.values()) if self._pending else 0.0

    async def renew_if_stuck(self) -> bool:
        """If a send has waited `stuck_s`: fail every pending send, replace the producer. True if it did."""
        if self.oldest_pending_s() < self.stuck_s:
            return False
        async with self._starting:
            if self.oldest_pending_s() < self.stuck_s:  # another caller renewed meanwhile
                return False
            old, self._producer = self._producer, None
            stuck = ProducerStuck(f"a send was not acknowledged for {self.stuck_s:.0f} s; producer replaced")
            pending, self._pending = list(self._pending), {}
            for fut in pending:
                if not fut.done():
                    fut.set_exception(stuck)
                    fut.exception()  # retrieved here: a caller that gave up on it already is not told twice
            self.renewals += 1
            if self.on_renew is not None:
                self.on_renew(stuck)
        if old is not None:
            await close_producer(old, timeout=1.0)
        return True

    async def watch(self, every_s: float = 1.0) -> None:
        """Check for stuck sends while nobody sends (a caller waiting on one is not sending)."""
        while True:
            await asyncio.sleep(every_s)
            await self.renew_if_stuck()

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await close_producer(producer)
