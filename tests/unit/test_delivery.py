"""The delivery contract's timing (README, "For downstream consumers"): when a decision appears
against its `effective_at`."""

from __future__ import annotations

import pathlib

import pytest

from simulator.workload import SimConfig, Simulator
from tests.paths import PUBLIC_FOLDERS
from tiering.contract import InvalidEvent, parse_line
from tiering.fold import Folder
from tiering.params import RuleParams

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = PUBLIC_FOLDERS  # the public scenarios, from the repository's copy
AT_A_CLOSE = ("tier_assessed", "tier_changed", "recruitment_quality_assessed")


def check_timing(lines: list[bytes]) -> int:
    """Fold `lines`; every decision's effective_at is at or before the event time it was emitted at
    (the largest ts folded so far), and a close's records come once event time is past B + lateness."""
    params = RuleParams()
    folder = Folder(params)
    store = folder.new_store()
    event_time, checked = 0, 0
    for line in lines:
        try:
            event = parse_line(line)
        except InvalidEvent:
            continue
        event_time = max(event_time, event["ts"])
        for o in folder.fold(store, event):
            if o["type"] in ("late_event", "dead_letter"):
                continue
            assert o["effective_at"] <= event_time, o
            if o["type"] in AT_A_CLOSE:
                assert event_time >= o["effective_at"] + params.lateness_ms, o
            checked += 1
    return checked


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_a_decision_appears_at_or_after_it_takes_effect_in_the_scenarios(folder: pathlib.Path) -> None:
    assert check_timing((folder / "input.jsonl").read_bytes().splitlines()) > 0


def test_a_decision_appears_at_or_after_it_takes_effect_in_a_simulated_workload() -> None:
    lines = list(Simulator(SimConfig(shops=25, days=100, seed=1, events_per_shop_day=30)).lines())
    assert check_timing(lines) > 100
