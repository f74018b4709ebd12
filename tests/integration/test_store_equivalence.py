"""The Redis store against the memory store on generated histories: same outputs, event by event."""

from __future__ import annotations

import os
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devstack import stack
from plumbing.redis_clients import sync_redis
from projections.processor import PartitionProcessor
from projections.redis_store import RedisStore
from tests.builders import Run
from tests.unit.test_properties import EVENT_TS, VALID_EVENTS
from tiering.contract import MIN_EVENT_TS
from tiering.fold import Folder
from tiering.outputs import Output
from tiering.params import RuleParams

pytestmark = pytest.mark.integration

# the clock's watermark markers, as the live ledger interleaves them with events
MARKERS = st.builds(lambda w: {"type": "watermark", "watermark": w}, EVENT_TS)


@pytest.fixture(scope="module")
def client(devstack: stack.StackConfig, state_redis_url: str) -> Any:
    c = sync_redis(state_redis_url)
    yield c
    c.close()


@pytest.fixture(scope="module")
def examples(state_redis_url: str) -> int:
    """Histories per property: fewer on the cluster, whose client takes ≈ 4x as long a round trip
    (redis-py routes each command in Python); the layout is the same, so what differs there is
    routing, which every example exercises. TIERSTREAM_TEST_LONG=1 runs the full count on both."""
    return 40 if state_redis_url.startswith("redis://") or os.environ.get("TIERSTREAM_TEST_LONG") == "1" else 12


def _drop(client: Any, ns: str) -> None:
    keys = list(client.scan_iter(f"{ns}:*", count=1000))
    if keys:
        client.delete(*keys)


def test_any_valid_history_folds_alike_in_both_stores(client: Any, examples: int) -> None:
    """Events and markers; every record is its own Redis batch (load, fold, fenced commit; a cold
    cache every third), so encoding, the overlay and the read-back of every piece of state a
    history reaches are compared with the memory fold's outputs, byte for byte."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
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
            _drop(client, ns)

    check()


def test_any_valid_history_folds_alike_in_batches_of_any_size(client: Any, examples: int) -> None:
    """As the worker folds: several records per batch, one fenced commit each, the cache kept or
    dropped between batches. Same outputs as the memory fold, byte for byte."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(VALID_EVENTS | MARKERS, max_size=30), st.lists(st.tuples(st.integers(1, 8), st.booleans())))
    @example([  # a close in the middle of a batch forgets an id the batch's prefetch found stored
        {"type": "member_joined", "ts": 702_642_828_089, "event_id": "x", "shop_id": "a", "user_id": "a",
         "channel": "live", "join_type": "registration"},
        {"type": "member_joined", "ts": 1_672_775_278_094, "event_id": "y", "shop_id": "a", "user_id": "a",
         "channel": "live", "join_type": "registration"},
        {"type": "member_joined", "ts": MIN_EVENT_TS, "event_id": "x", "shop_id": "a", "user_id": "a",
         "channel": "live", "join_type": "registration"},
    ], [(1, False)])
    def check(records: list[dict[str, Any]], cuts: list[tuple[int, bool]]) -> None:
        ns = f"t{uuid.uuid4().hex[:10]}"
        try:
            memory = Run().feed(*records)
            proc = PartitionProcessor(Folder(RuleParams()), RedisStore(client, ns, 0, RuleParams()))
            outputs: list[Output] = []
            offset, steps = 0, iter(cuts)
            while offset < len(records):
                size, cold = next(steps, (len(records), False))
                if cold:
                    proc.store.forget_cache()
                batch = [(offset + i, r) for i, r in enumerate(records[offset:offset + size])]
                outs, last = proc.fold_batch(batch)
                assert last == batch[-1][0]
                proc.commit(last)
                outputs.extend(outs)
                offset += len(batch)
            assert [orjson.dumps(o) for o in outputs] == [orjson.dumps(o) for o in memory.outputs]
        finally:
            _drop(client, ns)

    check()
