"""Hostile input at the ingest edge: each case becomes a dead letter with its reason, raw kept."""

from __future__ import annotations

import base64
import io
import unicodedata
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plumbing.ingest import reason_class, route
from projections.keys import Keys
from replay.file import replay_lines
from tiering.contract import MAX_AMOUNT_CENTS, MAX_COUNT, MAX_DEPTH, is_shop_id, parse_event, parse_line
from tiering.outputs import DEAD_RAW_MAX

pytestmark = pytest.mark.unit

ORDER = {"event_id": "e1", "type": "order_paid", "ts": 1_669_860_000_000, "shop_id": "shop-1",
         "order_id": "o1", "user_id": "u1", "amount_cents": 100}


def order(**fields: Any) -> bytes:
    return orjson.dumps({**ORDER, **fields})


def dead(raw: bytes) -> dict[str, Any]:
    """The dead letter `route` makes of `raw` on the orders topic (it must make one)."""
    r = route(raw, "orders", 0, 7, 4)
    assert r.event is None and r.dead is not None, r
    assert r.dead["source"] == {"topic": "orders", "partition": 0, "offset": 7}
    return r.dead


def test_a_valid_order_still_goes_to_the_ledger() -> None:
    r = route(order(), "orders", 0, 7, 4)
    assert r.dead is None and r.event is not None and r.key == b"shop-1"


@pytest.mark.parametrize("shop_id", ["a}b", "{x}", "a:b", "a\nb", "x" * 10_240, "x" * 129, "", "shop\x00",
                                     "a\rb", "a\tb", "a\x7fb", "a\x85b", "a\u2028b"])
def test_a_shop_id_that_could_escape_the_key_layout_is_a_dead_letter(shop_id: str) -> None:
    dl = dead(order(shop_id=shop_id))
    assert "invalid 'shop_id'" in dl["reason"] and reason_class(dl["reason"]) == "invalid_field"
    assert "shop_id" not in dl  # the bad id is not repeated as the dead letter's shop
    assert len(dl["reason"]) < 200  # the reason names the value, shortened


@pytest.mark.parametrize("shop_id", ["A", "shop-00042", "7", "a.b_c~d-e", "x" * 128, "a b", ".", "..", "-rf",
                                     "ab/cd", "sh\u00f6p", "\u5e97\u94faA", "*?[x]", "100%"])
def test_any_other_contract_id_is_a_shop_id(shop_id: str) -> None:
    """events.md: ids are non-empty strings of at most 128 characters; only what could escape the
    key layout or a log line is refused of a shop id."""
    assert parse_event(order(shop_id=shop_id))["shop_id"] == shop_id


@pytest.mark.parametrize("shop_id", ["a}b", "{x}", "a:b", "a\nb", "", "x" * 129])
def test_no_key_is_built_from_an_id_that_is_not_a_shop_id(shop_id: str) -> None:
    for keys in (Keys("ns", 4), Keys("ns", home=2)):
        for key_of in (keys.shop, keys.view, keys.feed, keys.members, keys.quality, keys.effective):
            with pytest.raises(ValueError, match="not a shop id"):
                key_of(shop_id)
        with pytest.raises(ValueError, match="not a shop id"):
            keys.counters(shop_id, 3)


@given(st.text(max_size=140))
@settings(max_examples=300, deadline=None)
def test_any_accepted_shop_id_stays_in_its_own_keys(shop_id: str) -> None:
    """Whatever text passes the contract is a key segment: no hash tag, separator or line break."""
    if not is_shop_id(shop_id):
        with pytest.raises(ValueError):
            Keys("ns", 8).view(shop_id)
        return
    key = Keys("ns", 8).view(shop_id)
    assert key.endswith(f"}}:{shop_id}:v") and key.count("{") == 1 and key.count("}") == 1
    assert key.count(":") == 4
    assert not any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in key)


def test_invalid_utf8_keeps_the_exact_bytes() -> None:
    raw = b'{"event_id": "e1", "type": "order_paid", "shop_id": "\xff\xfe"}'
    dl = dead(raw)
    assert reason_class(dl["reason"]) == "malformed_json" and "UTF-8" in dl["reason"]
    assert base64.b64decode(dl["raw_base64"]) == raw
    assert dl["raw"] == raw.decode("utf-8", "replace") and "truncated" not in dl


def test_a_huge_message_is_kept_truncated_with_a_marker() -> None:
    raw = order(note="\u00e9" * 600_000)  # 1.2 MB: a two-byte character cut at the limit
    dl = dead(raw[:-1])  # not valid JSON any more
    assert dl["truncated"] is True and dl["raw_size"] == len(raw) - 1
    assert raw.startswith(dl["raw"].encode()) and DEAD_RAW_MAX - 1 <= len(dl["raw"].encode()) <= DEAD_RAW_MAX
    assert "raw_base64" not in dl  # the cut half character is dropped, not turned into an error
    assert len(orjson.dumps(dl)) < 1_000_000  # fits the broker's default message size


def test_a_dead_letter_of_control_characters_stays_under_the_broker_limit() -> None:
    dl = dead(b"\x01" * 900_000)  # each escapes to six bytes of JSON
    assert dl["truncated"] is True and len(orjson.dumps(dl)) < 1_000_000


def test_huge_strings_in_fields() -> None:
    dl = dead(order(user_id="u" * 1_000_000))
    assert "invalid 'user_id'" in dl["reason"] and len(dl["reason"]) < 120 and dl["truncated"] is True
    assert dl["shop_id"] == "shop-1"  # the readable shop id is kept
    # an unknown field is ignored by the contract, whatever its size
    assert "note" not in parse_event(order(note="n" * 500_000))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 200, 1000, 1025])
def test_deep_nesting_is_a_dead_letter(depth: int) -> None:
    raw = order()[:-1] + b', "extra": ' + b"[" * depth + b"]" * depth + b"}"
    dl = dead(raw)
    assert reason_class(dl["reason"]) == "malformed_json"
    assert ("nested deeper" in dl["reason"]) if depth <= 1024 else ("depth limit" in dl["reason"])


def test_nesting_within_the_limit_is_an_ignored_extra_field() -> None:
    raw = order()[:-1] + b', "extra": ' + b'{"a":' * (MAX_DEPTH - 1) + b"1" + b"}" * (MAX_DEPTH - 1) + b"}"
    assert parse_event(raw)["shop_id"] == "shop-1"


def test_a_deep_value_in_a_checked_field_is_described_not_raised() -> None:
    from tiering.contract import validate

    deep: Any = []
    for _ in range(300):  # past orjson's serialiser's own depth limit
        deep = [deep]
    with pytest.raises(Exception, match="invalid 'shop_id'"):
        validate({**ORDER, "shop_id": deep})


@pytest.mark.parametrize("amount", [2**63, 2**64 - 1, MAX_AMOUNT_CENTS + 1, -1])
def test_amounts_past_the_bound_are_dead_letters(amount: int) -> None:
    assert "invalid 'amount_cents'" in dead(order(amount_cents=amount))["reason"]


def test_numbers_past_64_bits_and_at_the_bounds() -> None:
    # orjson reads an integer past 2^64 as a float: a float is no count
    assert "invalid 'amount_cents'" in dead(order()[:-1].replace(b"100", b"18446744073709551616") + b"}")["reason"]
    assert parse_event(order(amount_cents=MAX_AMOUNT_CENTS))["amount_cents"] == MAX_AMOUNT_CENTS
    third = {"event_id": "p", "type": "shop_profile_changed", "ts": ORDER["ts"], "shop_id": "s",
             "third_party": {"opened_before_2021": True, "baseline_15d": MAX_COUNT + 1}}
    with pytest.raises(Exception, match="invalid 'third_party'"):
        parse_event(orjson.dumps(third))


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
def test_nan_and_infinity_are_dead_letters(literal: bytes) -> None:
    dl = dead(order()[:-1].replace(b"100", literal) + b"}")
    assert reason_class(dl["reason"]) == "malformed_json"


@pytest.mark.parametrize("raw, shop", [
    (b'{"event_id":"e1","type":"order_paid","ts":1669860000000,"shop_id":"A","shop_id":"B",'
     b'"order_id":"o","user_id":"u","amount_cents":1}', None),
    (b'{"event_id":"e1","type":"order_paid","ts":1669860000000,"shop_id":"A","order_id":"o",'
     b'"user_id":"u","amount_cents":1,"amount_cents":100000}', "A"),
    # a colon inside a string must not hide the duplicate, nor a space before the colon
    (b'{"event_id":"e:1","type":"order_paid","ts":1669860000000,"shop_id":"A","order_id":"o:2",'
     b'"user_id":"u","amount_cents":1,"user_id" : "v"}', "A"),
    # nor a nested object's
    (b'{"event_id":"e1","type":"industry_standard_changed","ts":1669860000000,"industry":"*","effective_from":0,'
     b'"standard":{"min_effective_members":1,"min_effective_members":2,"min_member_gmv_share":0.1,'
     b'"min_quality_member_ratio":0.1,"min_benefit_penetration":0.1,"min_new_member_conversion":0.1}}', None),
])
def test_duplicate_keys_are_dead_letters(raw: bytes, shop: str | None) -> None:
    r = route(raw, "config-changes" if b"industry_standard" in raw else "orders", 0, 7, 4)
    assert r.dead is not None and "duplicate key" in r.dead["reason"]
    assert reason_class(r.dead["reason"]) == "malformed_json" and r.dead.get("shop_id") == shop


def test_colons_inside_strings_are_not_duplicates() -> None:
    raw = order(event_id="e:1:2", order_id="o:x", user_id="u:{y}")
    assert parse_event(raw)["event_id"] == "e:1:2"
    assert parse_event(raw.decode())["order_id"] == "o:x"  # text, as well as bytes


def test_the_file_form_dead_letters_the_same_cases() -> None:
    """replay (the file form) reads lines with parse_line: the same decisions, raw kept the same way."""
    lines = [order(shop_id="a:b"), b'{"a":1,"a":2}', b"\xff", b"[" * 100 + b"]" * 100, order()]
    outs = list(replay_lines(io.BytesIO(b"\n".join(lines) + b"\n")))
    dls = [o for o in outs if o["type"] == "dead_letter"]
    assert len(dls) == 4
    assert "invalid 'shop_id'" in dls[0]["reason"] and "duplicate key" in dls[1]["reason"]
    assert base64.b64decode(dls[2]["raw_base64"]) == b"\xff"
    assert "not a JSON object" in dls[3]["reason"]  # a list is no event, however deep
    with pytest.raises(Exception, match="duplicate key"):
        parse_line(b'{"topic":"orders","topic":"member-joins"}')


# objects as lists of (key, value) pairs, so a key may repeat at any level; keys and strings hold
# the characters the fast path counts (`:`, `[`, `{`, quotes)
_TEXT = st.text(alphabet='ab:[{"\\ ', max_size=4)
_PAIRS: Any = st.deferred(lambda: st.lists(st.tuples(_TEXT, _VALUE), max_size=4))
_VALUE: Any = st.one_of(st.integers(0, 9), _TEXT, st.lists(st.integers(0, 3), max_size=2), _PAIRS)


def _dumps(v: Any) -> bytes:
    if isinstance(v, list) and all(isinstance(p, tuple) for p in v) and (v or False):
        return b"{" + b",".join(orjson.dumps(k) + b" : " + _dumps(x) for k, x in v) + b"}"
    if v == []:
        return b"[]"
    return orjson.dumps(v)


def _repeats(pairs: Any) -> bool:
    keys = [k for k, _ in pairs]
    return len(keys) != len(set(keys)) or any(
        isinstance(x, list) and x and isinstance(x[0], tuple) and _repeats(x) for _, x in pairs)


@given(st.lists(st.tuples(_TEXT, _VALUE), min_size=1, max_size=5))
@settings(max_examples=400, deadline=None)
def test_a_repeated_key_is_found_at_any_level_and_only_then(pairs: Any) -> None:
    """The hot path's colon count and the full parse agree: a dead letter for a repeated key exactly
    when some object repeats one."""
    raw = _dumps(pairs)
    try:
        parse_event(raw)
    except Exception as exc:
        assert ("duplicate key" in str(exc)) == _repeats(pairs), (raw, exc)
    else:
        raise AssertionError(f"not an event, yet accepted: {raw!r}")
