"""Ingest: validate input messages exactly as the file form does, route them to the ledger.

Pure routing lives in `route`; the Faust agent (streams/app.py) adds the Redis dedupe
and the sends. A valid shop event goes to the ledger keyed by shop; a global config
event is copied to every ledger partition; anything else becomes a dead letter.

A producer may fan a global event out itself, one copy to each input partition, marked
with the header `tierstream-fanout`; each copy then goes to the ledger partition of the
same number only. Every ledger partition is then a merge of co-partitioned inputs that
one worker owns, so its order does not depend on how many workers there are.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from tiering.contract import GLOBAL_TYPES, InvalidEvent, is_shop_id, parse_event
from tiering.outputs import dead_letter

FANOUT_HEADER = "tierstream-fanout"


class Routed(NamedTuple):  # a tuple: cheaper to build per message than a frozen dataclass
    """One record to send: to the ledger (event) or to dead-letters (dead)."""

    event: dict[str, Any] | None
    dead: dict[str, Any] | None
    key: bytes | None
    partitions: tuple[int, ...] | None  # None: by key; else these partitions


def route(raw: bytes | None, topic: str, partition: int, offset: int, ledger_partitions: int,
          fanned_out: bool = False) -> Routed:
    """Decide where one input message goes. `topic` is unprefixed."""
    try:
        event = parse_event(raw if raw is not None else b"", topic)
    except InvalidEvent as exc:
        source = {"topic": topic, "partition": partition, "offset": offset}
        dl = dead_letter(str(exc), raw if raw is not None else b"", source, exc.shop_id)
        return Routed(None, dl, exc.shop_id.encode() if exc.shop_id else None, None)
    if event["type"] in GLOBAL_TYPES:
        if fanned_out and partition < ledger_partitions:
            return Routed(event, None, None, (partition,))
        return Routed(event, None, None, tuple(range(ledger_partitions)))
    return Routed(event, None, event["shop_id"].encode(), None)


# aiokafka's default max_request_size, and just under the broker's default message.max.bytes
# (1 MiB + 12): a bigger message is refused before it reaches a topic.
MAX_MESSAGE_BYTES = 1_048_576


def oversize(raw: bytes, topic: str, line: int, limit: int = MAX_MESSAGE_BYTES) -> Routed:
    """A message too big for the broker, as the dead letter `tierstream produce` sends instead
    (keyed by its shop when one is readable in the kept part): never folded, never lost."""
    reason = f"message of {len(raw)} bytes is over the {limit} bytes the broker takes: not sent to {topic}"
    shop = _readable_shop(raw[:4096])
    dl = dead_letter(reason, raw, {"topic": topic, "line": line}, shop)
    return Routed(None, dl, shop.encode() if shop else None, None)


def _readable_shop(head: bytes) -> str | None:
    """The shop id near the start of a message, if it is written plainly there."""
    start = head.find(b'"shop_id"')
    if start < 0:
        return None
    value = head[start + 9:].lstrip(b" \t:").split(b'"', 2)
    shop = value[1].decode("ascii", "replace") if len(value) == 3 and value[0] == b"" else None
    return shop if is_shop_id(shop) else None


def encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


# A dead letter's reason is free text naming the value; its class (a bounded set) labels the
# Prometheus counter. First match wins, in this order ("unknown type" before "invalid").
REASON_CLASSES = (("not valid JSON", "malformed_json"), ("duplicate key", "malformed_json"),
                  ("nested deeper", "malformed_json"), ("not a JSON object", "not_an_object"),
                  ("unknown type", "unknown_type"), ("missing field 'type'", "unknown_type"),
                  ("does not belong on topic", "wrong_topic"), ("unknown input topic", "wrong_topic"),
                  ("missing field", "missing_field"), ("invalid '", "invalid_field"),
                  ("must be after", "invalid_field"))


def reason_class(reason: str) -> str:
    """The class of a dead letter's reason: malformed_json, not_an_object, unknown_type, wrong_topic,
    missing_field, invalid_field, or other."""
    for fragment, cls in REASON_CLASSES:
        if fragment in reason:
            return cls
    return "other"
