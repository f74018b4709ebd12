"""Readiness probe: one real Kafka metadata request with aiokafka."""

from __future__ import annotations

import asyncio


async def _metadata(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) != -1
    except Exception:  # not ready yet: any failure means "ask again"
        return False
    finally:
        await admin.close()


def kafka_metadata_ok(bootstrap: str) -> bool:
    try:
        return asyncio.run(asyncio.wait_for(_metadata(bootstrap), 8))
    except TimeoutError:
        return False
