"""Properties of the file form: determinism, robustness, independence of shops."""

from __future__ import annotations

import io
import random
from fractions import Fraction

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.simulate import SimConfig, Simulator
from replay.file import replay_file, replay_lines
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
