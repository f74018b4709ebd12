"""The Redis store against the memory store on generated histories: same outputs, event by event."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
import redis as redis_lib
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devstack import stack
from projections.redis_store import RedisStore
from tests.builders import Run
from tests.unit.test_properties import EVENT_TS, VALID_EVENTS
from tiering.contract import MIN_EVENT_TS

pytestmark = pytest.mark.integration

# the clock's watermark markers, as the live ledger interleaves them with events
MARKERS = st.builds(lambda w: {"type": "watermark", "watermark": w}, EVENT_TS)


@pytest.fixture(scope="module")
def client(devstack: stack.StackConfig, redis_url: str) -> Any:
    c = redis_lib.Redis.from_url(redis_url)
    yield c
    c.close()


def test_any_valid_history_folds_alike_in_both_stores(client: Any) -> None:
    """Events and markers; every record is its own Redis batch (load, fold, fenced commit; a cold cache every third), so
    encoding, the overlay and the read-back of every piece of state a history reaches are compared
    with the memory fold's outputs, byte for byte."""

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(VALID_EVENTS | MARKERS, max_size=25))
    @example([  # the first watermark before the calendar's first boundary: a close with no cycle before it
        {"type": "clock_advanced", "ts": MIN_EVENT_TS, "event_id": "0"},
        {"type": "member_joined", "ts": MIN_EVENT_TS + 4 * 3_600_000, "event_id": "1", "shop_id": "a",
         "user_id": "a", "channel": "live", "join_type": "registration"},
    ])
    def check(events: list[dict[str, Any]]) -> None:
        ns = f"t{uuid.uuid4().hex[:10]}"
        try:
            memory = Run().feed(*events)
            in_redis = Run(redis_factory=lambda p: RedisStore(client, ns, 0, p)).feed(*events)
            assert [orjson.dumps(o) for o in in_redis.outputs] == [orjson.dumps(o) for o in memory.outputs]
        finally:
            keys = list(client.scan_iter(f"{ns}:*", count=1000))
            if keys:
                client.delete(*keys)

    check()
