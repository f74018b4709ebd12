"""Contract validation: precise dead-letter reasons, never another exception."""

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiering.contract import InvalidEvent, parse_event, parse_line

pytestmark = pytest.mark.unit

JOIN = {"event_id": "e1", "type": "member_joined", "ts": 1672502400000, "shop_id": "S", "user_id": "u",
        "channel": "live", "join_type": "purchase"}


def reason(obj: object) -> str:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(orjson.dumps(obj))
    return str(exc.value)


def test_valid_event_keeps_only_contract_fields() -> None:
    e = parse_event(orjson.dumps({**JOIN, "extra": 1}))
    assert e == JOIN


@pytest.mark.parametrize(("change", "expected"), [
    ({"type": "teleport"}, 'unknown type "teleport"'),
    ({"channel": "pigeon"}, "member_joined: invalid 'channel'"),
    ({"ts": "1"}, "member_joined: invalid 'ts'"),
    ({"ts": True}, "member_joined: invalid 'ts'"),
    ({"ts": 5}, "member_joined: invalid 'ts'"),
    ({"user_id": ""}, "member_joined: invalid 'user_id'"),
    ({"user_id": "x" * 129}, "member_joined: invalid 'user_id'"),
    ({"event_id": 5}, "member_joined: invalid 'event_id'"),
])
def test_bad_field_gives_precise_reason(change: dict[str, object], expected: str) -> None:
    assert reason({**JOIN, **change}).startswith(expected)


def test_missing_field_is_named() -> None:
    assert reason({k: v for k, v in JOIN.items() if k != "channel"}) == "member_joined: missing field 'channel'"


def test_negative_amount_and_bad_standard() -> None:
    assert "amount_cents" in reason({"event_id": "o", "type": "order_paid", "ts": 1672502400000, "shop_id": "S",
                                     "order_id": "o", "user_id": "u", "amount_cents": -5})
    assert "standard" in reason({"event_id": "s", "type": "industry_standard_changed", "ts": 1672502400000,
                                 "industry": "x", "effective_from": 0, "standard": {"min_effective_members": 1}})


def test_dead_letter_keeps_readable_shop_id() -> None:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(orjson.dumps({**JOIN, "channel": "pigeon"}))
    assert exc.value.shop_id == "S"


def test_topic_must_match_type() -> None:
    with pytest.raises(InvalidEvent, match="does not belong on topic"):
        parse_line(orjson.dumps({**JOIN, "topic": "orders"}))
    assert parse_line(orjson.dumps({**JOIN, "topic": "member-joins"}))["type"] == "member_joined"


def test_profile_optional_fields_are_checked() -> None:
    base = {"event_id": "p", "type": "shop_profile_changed", "ts": 1672502400000, "shop_id": "S"}
    assert parse_event(orjson.dumps({**base, "b_edition": None}))["b_edition"] is None
    assert "b_edition" in reason({**base, "b_edition": {"ordered_at": 1}})
    assert "member_pass" in reason({**base, "member_pass": "yes"})


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_invalid_event(raw: bytes) -> None:
    with contextlib.suppress(InvalidEvent):
        parse_line(raw)
