"""A shop's present read off the fold state equals the fold of its outputs, after every record."""

from __future__ import annotations

import pathlib
import random
from collections import Counter
from typing import Any

import pytest

from simulator.workload import SimConfig, Simulator
from tests.paths import PUBLIC_FOLDERS
from tiering.contract import InvalidEvent, parse_line
from tiering.fold import Folder
from tiering.outputs import OUTPUT_TOPIC, Output
from tiering.params import RuleParams
from tiering.shopstate import PRESENT_TYPES, Present, Snapshots, blocked_channels, present, present_of

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = PUBLIC_FOLDERS  # the public scenarios, from the repository's copy


def sim_lines(seed: int) -> list[bytes]:
    return list(Simulator(SimConfig(shops=25, days=100, seed=seed, events_per_shop_day=30)).lines())


def fold_checking(lines: list[bytes]) -> tuple[list[Output], Counter[str]]:
    """Fold line by line; after each line whose outputs moved a shop, compare both presents."""
    folder = Folder(RuleParams())
    store = folder.new_store()
    folded: dict[str, Present] = {}
    outputs: list[Output] = []
    snap = Snapshots(folder.cal, 0)
    for n, line in enumerate(lines):
        try:
            event = parse_line(line)
        except InvalidEvent:
            continue
        outs = folder.fold(store, event)
        outputs += outs
        for o in outs:
            if o["type"] in PRESENT_TYPES:
                folded.setdefault(o["shop_id"], Present(o["shop_id"])).apply(o)
        for rec in snap(store, outs, n):
            assert present_of(rec) == folded[rec["shop_id"]].p, f"line {n}: {rec['shop_id']}"
    for sid, fp in folded.items():
        shop = store.shop(sid)
        assert shop is not None
        assert present(folder.cal, shop) == fp.p
    return outputs, Counter(o["type"] for o in outputs)


def test_the_scenarios_are_here() -> None:
    assert len(SCENARIOS) >= 5


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_present_equals_the_fold_of_outputs_in_every_scenario(folder: pathlib.Path) -> None:
    _outputs, types = fold_checking((folder / "input.jsonl").read_bytes().splitlines())
    assert types["tier_assessed"] > 0


def test_present_equals_the_fold_of_outputs_in_simulated_workloads() -> None:
    seen: Counter[str] = Counter()
    for seed in (1, 2, 3):
        seen += fold_checking(sim_lines(seed))[1]
    # the workloads must reach every transition, or the equality says little
    assert all(seen[t] > 0 for t in PRESENT_TYPES), seen


def by_topic(outputs: list[Output]) -> dict[str, list[Output]]:
    topics: dict[str, list[Output]] = {}
    for o in outputs:
        if o["type"] in PRESENT_TYPES:
            topics.setdefault(OUTPUT_TOPIC[o["type"]], []).append(o)
    return topics


def fold_interleaved(outputs: list[Output], rng: random.Random, redeliver: float = 0.0) -> dict[str, Any]:
    """Fold the topics as a consumer does: each in order, their records interleaved at random, some
    records delivered twice in a row."""
    queues = [list(q) for q in by_topic(outputs).values()]
    presents: dict[str, Present] = {}
    while any(queues):
        q = rng.choice([q for q in queues if q])
        o = q.pop(0)
        fp = presents.setdefault(o["shop_id"], Present(o["shop_id"]))
        fp.apply(o)
        if rng.random() < redeliver:
            assert not fp.apply(o), "a redelivered output changed the present"
    return {sid: fp.p for sid, fp in sorted(presents.items())}


def test_the_topics_may_interleave_in_any_order_and_redeliver() -> None:
    outputs, _types = fold_checking(sim_lines(4))
    in_order = fold_interleaved(outputs, random.Random(0), 0.0)
    for seed in range(5):
        assert fold_interleaved(outputs, random.Random(seed), redeliver=0.2) == in_order


def test_blocked_channels_merge_the_active_scopes() -> None:
    p = Present("s")
    p.apply({"type": "recruitment_restricted", "shop_id": "s", "effective_at": 5, "reason": "tier",
             "scope": {"live": "no_recruitment", "other": "no_recruitment"}, "effective_until": None})
    p.apply({"type": "recruitment_restricted", "shop_id": "s", "effective_at": 6, "reason": "third_party_cap",
             "scope": {"third_party": "closed"}, "effective_until": 9})
    p.apply({"type": "recruitment_restricted", "shop_id": "s", "effective_at": 7, "reason": "recruitment_quality",
             "scope": {"live": "no_host_invite"}, "effective_until": None})
    assert blocked_channels(p.p) == {"live": ["no_host_invite", "no_recruitment"], "other": ["no_recruitment"],
                                     "third_party": ["closed"]}
    assert p.apply({"type": "recruitment_restored", "shop_id": "s", "effective_at": 8, "reason": "tier"})
    assert blocked_channels(p.p) == {"live": ["no_host_invite"], "third_party": ["closed"]}
    # a re-issue with the same scope keeps the restriction's `since`
    p.apply({"type": "recruitment_restricted", "shop_id": "s", "effective_at": 10, "reason": "third_party_cap",
             "scope": {"third_party": "closed"}, "effective_until": 12})
    assert p.p["restrictions"]["third_party_cap"] == {"scope": {"third_party": "closed"}, "since": 6,
                                                      "effective_until": 12}
