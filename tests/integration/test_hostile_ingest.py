"""Hostile input through ingest on the real broker: each bad message becomes a dead letter with its
raw bytes, and the worker carries on (a valid event after the garbage is folded)."""

from __future__ import annotations

import asyncio
import base64
import io
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plumbing.ingest import MAX_MESSAGE_BYTES, route
from plumbing.kafka import consume, produce
from plumbing.redis_clients import sync_redis
from plumbing.settings import Settings
from plumbing.topics import ensure_topics
from projections.keys import Keys
from tests.integration.live import Worker, delete_namespace, settings_for, wait_caught_up, wait_ingested
from tiering.contract import INPUT_TOPICS
from tiering.outputs import DEAD_RAW_MAX

pytestmark = pytest.mark.integration
TS = 1_669_860_000_000
VALID = {"event_id": "v1", "type": "order_paid", "ts": TS, "shop_id": "shop-1", "order_id": "o1",
         "user_id": "u1", "amount_cents": 100}


def order(**fields: Any) -> bytes:
    return orjson.dumps({**VALID, "event_id": os.urandom(6).hex(), **fields})


class Sender:
    """One producer on its own event loop: raw bytes to an input topic, acknowledged, from sync code."""

    def __init__(self, s: Settings) -> None:
        self.s, self.loop = s, asyncio.new_event_loop()
        self.loop.run_until_complete(ensure_topics(s))
        self.producer = self.loop.run_until_complete(self._start())

    async def _start(self) -> AIOKafkaProducer:  # made inside its loop
        producer = AIOKafkaProducer(bootstrap_servers=self.s.kafka, acks="all")
        await producer.start()
        return producer

    def send(self, topic: str, raw: bytes, key: bytes | None = None) -> None:
        self.loop.run_until_complete(self.producer.send_and_wait(self.s.topic(topic), raw, key=key))

    def close(self) -> None:
        self.loop.run_until_complete(self.producer.stop())
        self.loop.close()


class Stack:
    def __init__(self, s: Settings, worker: Worker, sender: Sender) -> None:
        self.s, self.worker, self.sender, self.sent = s, worker, sender, 0

    def send(self, topic: str, raw: bytes, key: bytes | None = None) -> None:
        self.sender.send(topic, raw, key)
        self.sent += 1

    def folded(self, shop: str) -> dict[str, Any] | None:
        """The shop's read model once everything sent is folded (None: never folded)."""
        wait_ingested([self.worker], self.sent)
        wait_caught_up(self.s)
        r = sync_redis(str(self.s.redis))
        try:
            raw = r.get(Keys(self.s.namespace, self.s.partitions).view(shop))
        finally:
            r.close()
        return orjson.loads(raw) if raw is not None else None

    def dead_letters(self) -> list[dict[str, Any]]:
        buf = io.BytesIO()
        asyncio.run(consume(self.s, buf, 2.0, topics=("dead-letters",)))
        return [orjson.loads(ln) for ln in buf.getvalue().splitlines()]


@pytest.fixture
def stack(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    s = settings_for(kafka_bootstrap, redis_url, f"t{os.urandom(4).hex()}-hostile")
    w = Worker(s, tmp_path, "hostile").start().wait_ready()
    sender = Sender(s)
    try:
        yield Stack(s, w, sender)
    finally:
        sender.close()
        w.stop()
        delete_namespace(redis_url, s.namespace)


def raw_of(dl: dict[str, Any]) -> bytes:
    """The bytes a dead letter kept."""
    return base64.b64decode(dl["raw_base64"]) if "raw_base64" in dl else dl["raw"].encode()


HOSTILE: dict[str, bytes] = {
    "deep nesting": order()[:-1] + b',"x":' + b"[" * 1000 + b"]" * 1000 + b"}",
    "too deep for orjson": b"[" * 2000 + b"]" * 2000,
    "invalid UTF-8": order(user_id="u")[:-1] + b',"note":"\xff\xfe\xc0"}',
    "huge string": order(user_id="u" * 900_000),
    "int past 2^63": order(amount_cents=2**63 + 5),
    "int past 2^64": order()[:-1] + b',"amount_cents":184467440737095516160}',
    "NaN": order()[:-1].replace(b'"amount_cents":100', b'"amount_cents":NaN') + b"}",
    "Infinity": order()[:-1].replace(b'"amount_cents":100', b'"amount_cents":Infinity') + b"}",
    "duplicate keys": order()[:-1] + b',"shop_id":"shop-2"}',
    "shop id with }": order(shop_id="a}b"),
    "shop id with {": order(shop_id="{shop-1}"),
    "shop id with :": order(shop_id="shop-1:s"),
    "shop id with newline": order(shop_id="shop-1\nx"),
    "shop id of 10 kB": order(shop_id="s" * 10_240),
    "empty": b"",
}


def test_each_hostile_case_is_a_dead_letter_and_the_worker_carries_on(stack: Stack) -> None:
    for name, raw in HOSTILE.items():
        assert len(raw) < MAX_MESSAGE_BYTES, name
        stack.send("orders", raw, key=b"shop-1")
    stack.send("orders", order(), key=b"shop-1")  # a valid order after the garbage
    view = stack.folded("shop-1")  # only the valid order can have made the shop
    assert view is not None and view["shop_id"] == "shop-1"
    dls = stack.dead_letters()
    assert len(dls) == len(HOSTILE), [d["reason"] for d in dls]
    by_raw = {raw_of(d) if "truncated" not in d else d["raw"][:100].encode(): d for d in dls}
    for name, raw in HOSTILE.items():
        expected = route(raw, "orders", 0, 0, stack.s.partitions).dead
        assert expected is not None, name
        key = raw if len(raw) <= DEAD_RAW_MAX else raw[:100]
        got = by_raw[key]
        assert got["reason"] == expected["reason"], name
        assert got["source"]["topic"] == "orders" and got["source"]["offset"] >= 0
    assert by_raw[HOSTILE["invalid UTF-8"]]["raw_base64"]
    huge = by_raw[HOSTILE["huge string"][:100]]
    assert huge["truncated"] is True and huge["raw_size"] == len(HOSTILE["huge string"])
    assert not [k for k in _redis_keys(stack) if "a}b" in k or "{shop-1}" in k or "\n" in k]


def _redis_keys(stack: Stack) -> list[str]:
    r = sync_redis(str(stack.s.redis))
    try:
        return [k.decode(errors="replace") for k in r.scan_iter(f"{stack.s.namespace}:*", count=1000)]
    finally:
        r.close()


def test_an_oversize_message_is_refused_and_produce_dead_letters_it(stack: Stack) -> None:
    big = order(note="n" * (MAX_MESSAGE_BYTES + 10))
    # the broker itself refuses it (message.max.bytes 1 MiB + 12), with a producer that would send it
    async def broker_says() -> None:
        p = AIOKafkaProducer(bootstrap_servers=stack.s.kafka, max_request_size=4 * MAX_MESSAGE_BYTES)
        await p.start()
        try:
            await p.send_and_wait(stack.s.topic("orders"), big + b"x" * 1000)
        finally:
            await p.stop()

    with pytest.raises(MessageSizeTooLargeError):
        asyncio.run(broker_says())
    # `tierstream produce` sends its dead letter instead, and the lines after it
    n = asyncio.run(produce(stack.s, io.BytesIO(big + b"\n" + order() + b"\n")))
    assert n == 2
    stack.sent += 1  # only the valid line reaches an input topic
    assert stack.folded("shop-1") is not None
    (dl,) = stack.dead_letters()
    assert "over the 1048576 bytes the broker takes" in dl["reason"] and dl["source"] == {"topic": "orders", "line": 1}
    assert dl["truncated"] is True and dl["raw_size"] == len(big) and big.startswith(dl["raw"].encode())
    assert dl["shop_id"] == "shop-1"


# bytes of every kind, and valid events with a few bytes put in somewhere (most then fail late in
# the checks, some stay valid): both through the real topics
ANY_BYTES = st.binary(max_size=600)
BASE = orjson.dumps({**VALID, "shop_id": "prop-shop"})
SPLICED = st.builds(lambda at, junk: BASE[:at] + junk + BASE[at:], st.integers(0, len(BASE)),
                    st.binary(min_size=1, max_size=8))


def test_any_bytes_through_ingest_on_the_broker(stack: Stack) -> None:
    """A hypothesis property on the real broker: whatever bytes reach an input topic, each is a
    dead letter with those bytes and its reason, or an event; and the worker folds what follows."""
    sent: list[tuple[str, bytes]] = []

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(raw=st.one_of(ANY_BYTES, SPLICED), topic=st.sampled_from(sorted(INPUT_TOPICS)))
    def send_any(raw: bytes, topic: str) -> None:
        stack.send(topic, raw, key=b"prop-shop")
        sent.append((topic, raw))

    send_any()
    stack.send("orders", order(shop_id="after-shop"), key=b"after-shop")
    assert stack.folded("after-shop") is not None, "the worker stopped folding after the garbage"
    expected = Counter((t, raw) for t, raw in sent if route(raw, t, 0, 0, stack.s.partitions).dead is not None)
    got = Counter((d["source"]["topic"], raw_of(d)) for d in stack.dead_letters())
    assert got == expected
    assert sum(expected.values()) >= len(sent) // 2  # the property did feed garbage
