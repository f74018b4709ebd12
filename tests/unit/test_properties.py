"""Properties of the file form: determinism, robustness, independence of shops."""

from __future__ import annotations

import io
import random
from fractions import Fraction

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from replay.file import replay_file, replay_lines
from simulator.workload import SimConfig, Simulator
from tiering.contract import (
    BENEFIT_TYPES,
    CHANNELS,
    INPUT_TOPICS,
    JOIN_TYPES,
    MAX_AMOUNT_CENTS,
    MAX_INSTANT,
    MIN_EVENT_TS,
    PROFILE_OPTIONAL,
    REQUIRED,
    STANDARD_FIELDS,
    TOPIC_OF_TYPE,
    InvalidEvent,
    parse_event,
)
from tiering.outputs import publish, publish_ratio, ratio, ratio_at_least

pytestmark = pytest.mark.unit


def sim_lines(seed: int, shops: int = 6, days: int = 35) -> list[bytes]:
    return list(Simulator(SimConfig(shops=shops, days=days, seed=seed, events_per_shop_day=6)).lines())


def run(lines: list[bytes]) -> bytes:
    out = io.BytesIO()
    replay_file(io.BytesIO(b"\n".join(lines) + b"\n"), out)
    return out.getvalue()


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 10_000))
def test_same_input_gives_byte_identical_output(seed: int) -> None:
    lines = sim_lines(seed)
    first = run(lines)
    assert first and first == run(lines)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300).filter(lambda b: b"\n" not in b and b.strip()))
def test_any_line_of_bytes_becomes_a_dead_letter_or_an_event(raw: bytes) -> None:
    outs = list(replay_lines([raw]))
    if outs:
        assert outs[0]["type"] in {"dead_letter", "late_event"} or "shop_id" in outs[0]
    dls = [o for o in outs if o["type"] == "dead_letter"]
    for d in dls:
        assert d["reason"] and d["raw"] == raw.decode("utf-8", "replace")


# JSON objects whose keys are the contract's own field names and whose values are anything JSON
# holds, contract vocabulary included: random bytes seldom parse, these reach every check
FIELD_NAMES = sorted({f for fields in REQUIRED.values() for f in fields} | set(PROFILE_OPTIONAL)
                     | {"event_id", "ts", "type", "topic"})
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)
FIELD_VALUES = st.one_of(JSON_VALUES, st.sampled_from(sorted(TOPIC_OF_TYPE)), st.sampled_from(sorted(INPUT_TOPICS)),
                         st.integers(MIN_EVENT_TS, MAX_INSTANT))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELD_NAMES), FIELD_VALUES, max_size=10), st.sampled_from(sorted(INPUT_TOPICS)))
@example({"topic": []}, "orders")  # an unhashable topic once escaped as a TypeError
@example({"type": "order_paid", "topic": {"a": 1}}, "orders")
def test_any_json_object_is_an_event_or_a_dead_letter(obj: dict[str, object], topic: str) -> None:
    raw = orjson.dumps(obj)
    outs = list(replay_lines([raw]))  # the file form: never raises
    for o in outs:
        if o["type"] == "dead_letter":
            assert o["reason"] and o["raw"] == raw.decode()
    try:
        parse_event(raw, topic)  # the live form: the contract's error or an event
    except InvalidEvent as exc:
        assert str(exc)


_SHOPS = st.sampled_from(["a", "b", "c"])
EVENT_TS = st.one_of(st.integers(MIN_EVENT_TS, MAX_INSTANT - 1),
                    st.integers(1_672_502_400_000, 1_672_502_400_000 + 90 * 86_400_000),  # 2023, boundaries close
                    st.integers(MIN_EVENT_TS, MIN_EVENT_TS + 40 * 86_400_000),  # the edges of the contract's range
                    st.integers(MAX_INSTANT - 40 * 86_400_000, MAX_INSTANT - 1),
                    st.sampled_from([MIN_EVENT_TS, MAX_INSTANT - 1]))
_INSTANT = st.one_of(st.integers(0, MAX_INSTANT - 1), EVENT_TS)


def _event(etype: str, **fields: st.SearchStrategy[object]) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries({"type": st.just(etype), "ts": EVENT_TS,
                                  "event_id": st.text("xyz0123", min_size=1, max_size=6), **fields})


VALID_EVENTS = st.one_of(
    _event("member_joined", shop_id=_SHOPS, user_id=_SHOPS, channel=st.sampled_from(CHANNELS),
           join_type=st.sampled_from(JOIN_TYPES)),
    _event("member_left", shop_id=_SHOPS, user_id=_SHOPS),
    _event("order_paid", shop_id=_SHOPS, user_id=_SHOPS, order_id=_SHOPS,
           amount_cents=st.integers(0, MAX_AMOUNT_CENTS)),
    _event("benefit_redeemed", shop_id=_SHOPS, user_id=_SHOPS, benefit_id=_SHOPS,
           benefit_type=st.sampled_from(BENEFIT_TYPES), stage=st.sampled_from(("claimed", "used"))),
    _event("benefit_config_changed", shop_id=_SHOPS, benefit_id=_SHOPS, benefit_type=st.sampled_from(BENEFIT_TYPES),
           status=st.sampled_from(("online", "offline"))),
    _event("join_setting_changed", shop_id=_SHOPS, mode=st.sampled_from(JOIN_TYPES)),
    st.builds(lambda base, extra: {**base, **extra}, _event("shop_profile_changed", shop_id=_SHOPS),
              st.fixed_dictionaries({}, optional={
                  "industry": _SHOPS, "member_pass": st.booleans(),
                  "b_edition": st.none() | st.fixed_dictionaries({"ordered_at": _INSTANT, "expires_at": _INSTANT}),
                  "third_party": st.fixed_dictionaries({"opened_before_2021": st.booleans(),
                                                        "baseline_15d": st.integers(0, 10**9)})})),
    _event("industry_standard_changed", industry=_SHOPS, effective_from=_INSTANT,
           standard=st.fixed_dictionaries({f: st.integers(0, 10**6) if f == "min_effective_members"
                                           else st.floats(0, 1e6) for f in STANDARD_FIELDS})),
    st.builds(lambda base, edges: {**base, "start": min(edges), "end": max(edges)},
              _event("promo_window_declared", name=_SHOPS),
              st.tuples(_INSTANT, _INSTANT).filter(lambda edges: edges[0] != edges[1])),
    _event("clock_advanced"),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(VALID_EVENTS, max_size=25))
@example([  # a promo window from 0 (the contract takes instants from 0): its timer once hit the calendar's range
    {"type": "member_joined", "ts": MIN_EVENT_TS, "event_id": "0", "shop_id": "a", "user_id": "a",
     "channel": "live", "join_type": "registration"},
    {"type": "clock_advanced", "ts": MIN_EVENT_TS + 40 * 86_400_000, "event_id": "1"},
    {"type": "promo_window_declared", "ts": MIN_EVENT_TS + 41 * 86_400_000, "event_id": "2", "name": "p",
     "start": 0, "end": MIN_EVENT_TS + 50 * 86_400_000},
    {"type": "clock_advanced", "ts": MIN_EVENT_TS + 60 * 86_400_000, "event_id": "3"},
])
@example([  # an order in the contract's last fortnight: its quality-until instant is in 2100
    {"type": "member_joined", "ts": MAX_INSTANT - 15 * 86_400_000, "event_id": "1", "shop_id": "a", "user_id": "u",
     "channel": "live", "join_type": "registration"},
    {"type": "order_paid", "ts": MAX_INSTANT - 14 * 86_400_000, "event_id": "2", "shop_id": "a", "user_id": "u",
     "order_id": "o", "amount_cents": 5},
])
def test_any_sequence_of_valid_events_folds(events: list[dict[str, object]]) -> None:
    """Whatever the contract lets through, the fold takes: a bad event never stops the processor."""
    outs = list(replay_lines([orjson.dumps(e) for e in events]))
    assert not [o for o in outs if o["type"] == "dead_letter"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300).filter(lambda b: b"\n" not in b))
@example(b'{"type": "order_paid", "ts": 17')  # a JSON error's position is near the line's end
@example(b" \r")
def test_a_line_is_read_as_its_message_without_the_terminator(raw: bytes) -> None:
    """The file form parses a line with its terminator (no copy of it); what comes out, a dead
    letter's reason and raw bytes included, is the message's own."""
    assert list(replay_lines([raw + b"\n"])) == list(replay_lines([raw]))


def by_shop(output: bytes) -> dict[str, list[bytes]]:
    shops: dict[str, list[bytes]] = {}
    for line in output.splitlines():
        o = orjson.loads(line)
        if "shop_id" in o and o["type"] != "dead_letter":
            shops.setdefault(o["shop_id"], []).append(line)
    return shops


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 10_000))
def test_permuting_events_of_different_shops_changes_no_shops_outputs(seed: int) -> None:
    """Shuffle the interleaving across shops, keeping each shop's own order and the global events fixed."""
    lines = [ln for ln in sim_lines(seed % 50) if _parses(ln)]
    rng = random.Random(seed)
    per_shop: dict[str, list[bytes]] = {}
    slots: list[str | bytes] = []
    for ln in lines:
        shop = orjson.loads(ln).get("shop_id")
        if shop is None:
            slots.append(ln)
        else:
            per_shop.setdefault(shop, []).append(ln)
            slots.append(shop)
    # shuffle which shop takes each shop slot between two global events
    shuffled: list[bytes] = []
    cursor = {s: 0 for s in per_shop}
    segment: list[str] = []

    def flush() -> None:
        rng.shuffle(segment)
        for s in segment:
            shuffled.append(per_shop[s][cursor[s]])
            cursor[s] += 1
        segment.clear()

    for slot in slots:
        if isinstance(slot, bytes):
            flush()
            shuffled.append(slot)
        else:
            segment.append(slot)
    flush()
    assert sorted(shuffled) == sorted(lines)
    assert by_shop(run(lines)) == by_shop(run(shuffled))


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
        return True
    except orjson.JSONDecodeError:
        return False


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 10**12), st.integers(0, 10**12), st.fractions(min_value=0, max_value=1, max_denominator=10**6))
def test_ratios_in_integers_equal_the_exact_fractions(num: int, den: int, minimum: Fraction) -> None:
    """The read models and the close compare and publish ratios without building fractions."""
    assert ratio_at_least(num, den, minimum) == (ratio(num, den) >= minimum)
    assert publish_ratio(num, den) == publish(ratio(num, den))
