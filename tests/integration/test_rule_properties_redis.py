"""The rule properties' histories (tests/histories.py) through the Redis store: the memory fold's
outputs, byte for byte, wherever the close of B falls and with events resent."""

from __future__ import annotations

import os
import uuid
from typing import Any

import orjson
import pytest
import redis as redis_lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack import stack
from projections.redis_store import RedisStore
from tests.builders import Run
from tests.histories import History, histories, with_resends

pytestmark = pytest.mark.integration
EXAMPLES = max(1, int(os.environ.get("TIERSTREAM_PROPERTY_EXAMPLES", "60")) // 6)  # a Redis fold is slower


@pytest.fixture(scope="module")
def client(devstack: stack.StackConfig, redis_url: str) -> Any:
    c = redis_lib.Redis.from_url(redis_url)
    yield c
    c.close()


def test_rule_histories_fold_alike_in_redis(client: Any) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(histories(), st.data())
    def check(h: History, data: st.DataObject) -> None:
        events = h.events(data.draw(st.integers(h.earliest_close(), len(h.window)), label="close"))
        if data.draw(st.booleans(), label="resend"):
            events = with_resends(data.draw, events)
        ns = f"t{uuid.uuid4().hex[:10]}"
        try:
            memory = Run().feed(*[dict(e) for e in events])
            in_redis = Run(redis_factory=lambda p: RedisStore(client, ns, 0, p)).feed(*[dict(e) for e in events])
            assert [orjson.dumps(o) for o in in_redis.outputs] == [orjson.dumps(o) for o in memory.outputs]
        finally:
            keys = list(client.scan_iter(f"{ns}:*", count=1000))
            if keys:
                client.delete(*keys)

    check()
