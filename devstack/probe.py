"""Readiness probe: one real Kafka metadata request with aiokafka."""

from __future__ import annotations

import asyncio
from typing import Any


async def _metadata(bootstrap: str, client: dict[str, Any]) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **client)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) != -1
    except Exception:  # not ready yet: any failure means "ask again"
        return False
    finally:
        await admin.close()


def kafka_metadata_ok(bootstrap: str, **client: Any) -> bool:
    """`client`: more aiokafka keyword arguments (TLS and SASL for the secure devstack)."""
    try:
        return asyncio.run(asyncio.wait_for(_metadata(bootstrap, client), 8))
    except TimeoutError:
        return False
