"""The worker's producer of outputs, dead letters and markers (streams/producers.py) on the cluster,
through the fault proxy: a send stuck past its limit fails, and the next goes through a new producer."""

from __future__ import annotations

import asyncio
import time

import pytest

from devstack import brokers
from devstack.faultproxy import ProxyHost
from plumbing.settings import Settings
from plumbing.topics import ensure_topics
from streams.producers import ProducerStuck, Sender
from tests.integration.live import settings_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_a_stuck_send_fails_and_the_next_goes_through_a_new_producer(
        cluster: brokers.ClusterConfig, proxies: ProxyHost, redis_url: str, unique: str) -> None:
    s: Settings = settings_for(cluster.bootstrap, redis_url, f"{unique}-sender")
    topic = s.topic("dead-letters")

    async def main() -> None:
        await ensure_topics(s)
        renewed: list[BaseException] = []
        sender = Sender({"bootstrap_servers": cluster.proxied_bootstrap}, stuck_s=2.0, on_renew=renewed.append)
        watch = asyncio.ensure_future(sender.watch(every_s=0.2))

        async def deliver(value: bytes) -> int:
            """Send until acknowledged (a stuck send fails and goes again through the new producer)."""
            deadline = time.monotonic() + 60
            while True:
                try:
                    return int((await asyncio.wait_for(await sender.send(topic, b"k", value, 0), 30)).offset)
                except ProducerStuck:
                    assert time.monotonic() < deadline, f"{value!r} never acknowledged"

        try:
            await deliver(b"before")  # (a new topic's first sends can meet aiokafka#1018 already)
            renewals = sender.renewals
            proxies.stall("kafka", 6)  # every byte to and from the brokers held for 6 s
            stuck = await sender.send(topic, b"k", b"during", 0)
            t0 = time.monotonic()
            with pytest.raises(ProducerStuck, match="not acknowledged for 2 s"):
                await asyncio.wait_for(stuck, 30)
            assert time.monotonic() - t0 < 5, "the watch should fail the send soon after 2 s"
            assert sender.renewals == renewals + 1 and len(renewed) == sender.renewals
            assert await deliver(b"after") >= 1  # once the stall is over, through a new producer
        finally:
            watch.cancel()
            await sender.stop()

    asyncio.run(main())
