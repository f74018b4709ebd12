"""The example enforcer's table (examples/enforcer.py) on the file form's outputs: redelivery, bootstrap."""

from __future__ import annotations

import pathlib
import random
from typing import Any

import pytest

from examples.enforcer import FOLLOWED, Table
from simulator.workload import SimConfig, Simulator
from tests.unit.test_schemas import fold_all
from tiering.outputs import OUTPUT_TOPIC
from tiering.shopstate import Present, blocked_channels

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[2]


def workload() -> list[Any]:
    _events, outputs = fold_all(list(Simulator(SimConfig(shops=20, days=65, seed=2, events_per_shop_day=10)).lines()))
    return outputs


def expected(outputs: list[Any]) -> dict[str, dict[str, list[str]]]:
    presents: dict[str, Present] = {}
    for o in outputs:
        if o["type"] != "shop_state" and o["type"] in ("tier_assessed", *[t for t, topic in OUTPUT_TOPIC.items()
                                                                           if topic in FOLLOWED]):
            presents.setdefault(o["shop_id"], Present(o["shop_id"])).apply(o)
    return {sid: b for sid, p in sorted(presents.items()) if (b := blocked_channels(p.p))}


def followed(outputs: list[Any]) -> list[Any]:
    return [o for o in outputs if OUTPUT_TOPIC[o["type"]] in FOLLOWED]


def test_redelivered_outputs_change_nothing() -> None:
    outputs = workload()
    want = expected(outputs)
    assert want, "the workload must block some channel, or the comparison says little"
    rng = random.Random(7)
    table = Table()
    for o in followed(outputs):
        table.apply(o)
        if rng.random() < 0.3:
            assert not table.apply(dict(o))
    assert table.blocked() == want and table.duplicates > 0


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_bootstrap_from_shop_state_then_an_overlapping_follow_ends_as_a_full_follow(cut: float) -> None:
    """Snapshots up to a point, then the followed topics from an earlier point (the margin)."""
    outputs = workload()
    at = int(len(outputs) * cut)
    margin = int(len(outputs) * 0.1)
    table = Table()
    for o in outputs[:at]:
        if o["type"] == "shop_state":
            table.bootstrap(o)
    for o in followed(outputs[at - margin:]):
        table.apply(o)
    full = Table()
    for o in followed(outputs):
        full.apply(o)
    assert table.blocked() == full.blocked() == expected(outputs)
    assert table.tiers() == {sid: t for sid, t in full.tiers().items()}
