"""Topic names (events.md) and their creation by the project (the broker never auto-creates)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from plumbing.settings import Settings

INPUT_TOPICS: Final = ("member-joins", "orders", "benefit-redemptions", "config-changes")
LEDGER: Final = "ledger"
OUTPUT_TOPICS: Final = ("tier-assessments", "tier-changes", "recruitment-throttles", "member-protection",
                        "dead-letters", "late-events")
SHOP_STATE: Final = "shop-state"  # compacted, keyed by shop: each shop's present (tiering/shopstate.py)
ALL_TOPICS: Final = (*INPUT_TOPICS, LEDGER, *OUTPUT_TOPICS, SHOP_STATE)
KEEP_FOREVER: Final = {"retention.ms": "-1", "retention.bytes": "-1"}
# what a topic is created with (README, "For downstream consumers"): the ledger and the tier history
# are kept forever; shop-state keeps each shop's last record; the rest take the broker's retention
TOPIC_CONFIGS: Final[dict[str, dict[str, str]]] = {
    LEDGER: KEEP_FOREVER, "tier-assessments": KEEP_FOREVER, "tier-changes": KEEP_FOREVER,
    SHOP_STATE: {"cleanup.policy": "compact"},
}

Client = TypeVar("Client")


async def started(client: Client) -> Client:
    """Start an aiokafka client (consumer, producer or admin). If it cannot reach the broker, close
    it before the error goes on: a client left half-started is reported as unclosed at exit."""
    c: Any = client
    try:
        await c.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await (c.stop() if hasattr(c, "stop") else c.close())
        raise
    return client


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 15.0) -> None:
    """New partitions need a leader before producers can write without retries."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        described = await admin.describe_topics(names)
        if all(t.get("partitions") and all(p.get("leader", -1) >= 0 for p in t["partitions"]) for t in described):
            return
        await asyncio.sleep(0.1)


def replication_for(settings: Settings, brokers: int) -> tuple[int, dict[str, str]]:
    """The replication factor and the topic config that goes with it: TIERSTREAM_REPLICATION, or
    min(3, brokers); from 3 replicas on, a write (acks=all) needs all but one in sync, so one
    broker may fail without losing an acknowledged record or stopping the writers."""
    rf = settings.replication or min(3, max(1, brokers))
    if rf > brokers:
        raise ValueError(f"TIERSTREAM_REPLICATION={rf} but the cluster has {brokers} broker(s)")
    return rf, ({"min.insync.replicas": str(rf - 1)} if rf >= 3 else {})


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every topic that is missing; return the names created. Idempotent."""
    admin = await started(AIOKafkaAdminClient(bootstrap_servers=settings.kafka))
    try:
        existing = set(await admin.list_topics())
        wanted = [settings.topic(t) for t in ALL_TOPICS]
        rf, configs = replication_for(settings, len((await admin.describe_cluster())["brokers"]))
        missing = [
            NewTopic(name, num_partitions=settings.partitions, replication_factor=rf,
                     topic_configs={**configs, **TOPIC_CONFIGS.get(t, {})})
            for t, name in zip(ALL_TOPICS, wanted, strict=True) if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker created them first
                await admin.create_topics(missing)
            await _wait_for_leaders(admin, [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()
