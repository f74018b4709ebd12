"""The rulebook, rule by rule, through the fold with the memory store."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    DAY,
    HOUR,
    Run,
    at,
    benefit,
    clock,
    close_through,
    join,
    leave,
    order,
    premium_shop,
    profile,
    redeem,
    standard,
)
from tiering.params import RuleParams

pytestmark = pytest.mark.unit

JAN1, JAN16, FEB1, FEB16 = at(2023, 1, 1), at(2023, 1, 16), at(2023, 2, 1), at(2023, 2, 16)


def assessed(run: Run, shop: str, cycle: str) -> dict:
    [a] = run.of("tier_assessed", shop, cycle=cycle)
    return a


# -- closing and lateness ---------------------------------------------------------------------------

def test_boundary_closes_exactly_when_watermark_reaches_it(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"))
    run.feed(clock(JAN16 + 12 * HOUR - 1))
    assert run.of("tier_assessed") == []
    run.feed(clock(JAN16 + 12 * HOUR))
    assert [a["cycle"] for a in run.of("tier_assessed")] == ["2023-01-01"]


def test_event_at_boundary_instant_belongs_to_the_new_cycle(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"),
                     order("S", "x", JAN16 - 1, cents=100), order("S", "x", JAN16, cents=7),
                     close_through(FEB1))
    assert assessed(run, "S", "2023-01-01")["indicators"]["total_gmv_cents"] == 100
    assert assessed(run, "S", "2023-01-16")["indicators"]["total_gmv_cents"] == 7


def test_out_of_order_within_lateness_still_counts_for_the_old_cycle(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"),
                     order("S", "x", JAN16 + 6 * HOUR, cents=5),   # new cycle, watermark JAN16-6h
                     order("S", "x", JAN16 - HOUR, cents=100),     # old cycle, not late yet
                     close_through(FEB1))
    assert assessed(run, "S", "2023-01-01")["indicators"]["total_gmv_cents"] == 100
    assert run.of("late_event") == []


def test_event_before_closed_boundary_is_late_and_not_folded(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), close_through(JAN16))
    run.feed(order("S", "x", JAN16 - HOUR, cents=100), close_through(FEB1))
    [late] = run.of("late_event")
    assert late["closed_boundary"] == JAN16 and late["shop_id"] == "S"
    assert assessed(run, "S", "2023-01-16")["indicators"]["total_gmv_cents"] == 0


def test_duplicate_event_id_is_dropped_and_counted(new_run: Any) -> None:
    o = order("S", "x", JAN1 + DAY, cents=100)
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), o, dict(o), close_through(JAN16))
    assert assessed(run, "S", "2023-01-01")["indicators"]["total_gmv_cents"] == 100
    assert run.store.clock.stats["duplicates"] == 1


def test_shop_is_assessed_only_at_boundaries_after_its_first_event(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN16 + HOUR, industry="test"), close_through(FEB16))
    assert [a["cycle"] for a in run.of("tier_assessed", "S")] == ["2023-01-16", "2023-02-01"]


def test_boundaries_before_the_first_event_assess_nobody(new_run: Any) -> None:
    run = new_run().feed(clock(FEB16), profile("S", FEB16, industry="test"))
    assert run.of("tier_assessed") == []


# -- indicators --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("days_online", "online"), [(5, False), (6, True)])
def test_more_than_five_online_days_is_required(days_online: int, online: bool, new_run: Any) -> None:
    on = JAN16 - days_online * DAY + 1  # overlaps `days_online` local days
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), benefit("S", on), close_through(JAN16))
    a = assessed(run, "S", "2023-01-01")
    assert a["indicators"]["benefit_online_days"] == days_online
    assert a["criteria"]["benefit_online_days"] is online


def test_online_days_count_partial_days_and_clip_to_cycle(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1 - 20 * DAY, industry="test"),
                     benefit("S", JAN1 - 10 * DAY),                       # online before A: from A
                     benefit("S", JAN1 + 2 * DAY + HOUR, status="offline"),  # part of day 3
                     benefit("S", JAN1 + 9 * DAY + 23 * HOUR),               # last hour of day 10
                     benefit("S", JAN1 + 10 * DAY, status="offline"),
                     close_through(JAN16))
    assert assessed(run, "S", "2023-01-01")["indicators"]["benefit_online_days"] == 4


def test_zero_divisors_give_zero_ratios(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), close_through(JAN16))
    ind = assessed(run, "S", "2023-01-01")["indicators"]
    assert (ind["member_gmv_share"], ind["quality_member_ratio"], ind["benefit_penetration"]) == (0, 0, 0)


def test_buyer_counts_as_member_only_if_join_was_folded_first(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"),
                     order("S", "u", JAN1 + 2 * DAY, cents=100), join("S", "u", JAN1 + DAY),
                     order("S", "u", JAN1 + 3 * DAY, cents=300), close_through(JAN16))
    ind = assessed(run, "S", "2023-01-01")["indicators"]
    assert (ind["member_gmv_cents"], ind["total_gmv_cents"], ind["member_gmv_share"]) == (300, 400, 0.75)


def test_points_claim_is_not_use_but_points_used_is(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), join("S", "a", JAN1), join("S", "b", JAN1),
                     order("S", "a", JAN1 + DAY), order("S", "b", JAN1 + DAY),
                     redeem("S", "a", JAN1 + DAY, "points_exchange", "claimed"),
                     redeem("S", "b", JAN1 + DAY, "points_exchange", "used"), close_through(JAN16))
    assert assessed(run, "S", "2023-01-01")["indicators"]["benefit_penetration"] == 0.5


def test_member_layers_use_365_and_180_day_windows(new_run: Any) -> None:
    t = at(2022, 1, 20)
    run = new_run().feed(standard(), profile("S", t, industry="test"),
                     join("S", "q", t), order("S", "q", t + DAY),               # quality until t+366d
                     join("S", "p", t), join("S", "s", t),                      # s: silent since t+180d
                     redeem("S", "p", JAN1 - 100 * DAY),                        # p: potential
                     close_through(JAN16))
    ind = assessed(run, "S", "2023-01-01")["indicators"]
    assert (ind["quality_members"], ind["effective_members"], ind["silent_members"]) == (1, 2, 1)


def test_layer_counts_at_B_ignore_events_after_B_folded_before_close(new_run: Any) -> None:
    old = JAN16 - 366 * DAY
    run = new_run().feed(standard(), profile("S", old, industry="test"), join("S", "m", old), order("S", "m", old),
                     clock(JAN16 - 13 * HOUR),
                     order("S", "m", JAN16 + HOUR),   # after B: must not make m quality at B
                     close_through(JAN16))
    ind = assessed(run, "S", "2023-01-01")["indicators"]
    assert (ind["quality_members"], ind["effective_members"]) == (0, 0)
    run.feed(close_through(FEB1))
    assert assessed(run, "S", "2023-01-16")["indicators"]["quality_members"] == 1


def test_leaving_removes_a_member_from_the_counts(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), join("S", "a", JAN1), join("S", "b", JAN1),
                     leave("S", "b", JAN1 + DAY), close_through(JAN16))
    ind = assessed(run, "S", "2023-01-01")["indicators"]
    assert ind["effective_members"] == 1 and ind["silent_members"] == 0


# -- standards and tiers -----------------------------------------------------------------------------

def test_premium_then_changed_with_privileges(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("S", JAN1), close_through(JAN16))
    [c] = run.of("tier_changed", "S")
    assert (c["from_tier"], c["to_tier"]) == (None, "premium")
    assert "member_open" in c["privileges_granted"] and c["privileges_revoked"] == []


def test_standard_changing_mid_history_applies_from_its_effective_instant(new_run: Any) -> None:
    run = new_run().feed(standard(), standard(industry="test", effective_from=JAN16 + 1, min_effective_members=3),
                     *premium_shop("S", JAN1), order("S", "S-p1", JAN16 + DAY), redeem("S", "S-p1", JAN16 + DAY),
                     close_through(FEB1))
    assert assessed(run, "S", "2023-01-01")["tier"] == "premium"
    assert assessed(run, "S", "2023-01-01")["standard"]["min_effective_members"] == 2
    assert assessed(run, "S", "2023-01-16")["standard"]["min_effective_members"] == 3
    assert assessed(run, "S", "2023-01-16")["tier"] == "potential"


def test_standard_effective_exactly_at_B_applies_and_later_in_log_wins_a_tie(new_run: Any) -> None:
    run = new_run().feed(standard(industry="test", effective_from=JAN16, min_effective_members=7),
                     standard(industry="test", effective_from=JAN16, min_effective_members=9),
                     profile("S", JAN1, industry="test"), close_through(JAN16))
    assert assessed(run, "S", "2023-01-01")["standard"]["min_effective_members"] == 9


def test_unknown_industry_falls_back_to_star_defaults(new_run: Any) -> None:
    run = new_run().feed(profile("S", JAN1, industry="spaceships"), close_through(JAN16))
    std = assessed(run, "S", "2023-01-01")["standard"]
    assert std["industry"] == "*" and std["min_effective_members"] == 200


def test_two_improving_in_a_row_is_substandard_and_tier_restriction_scope_changes(new_run: Any) -> None:
    run = new_run().feed(profile("S", JAN1, industry="test"), standard(), close_through(FEB1))
    assert [a["tier"] for a in run.of("tier_assessed", "S")] == ["improving", "substandard"]
    scopes = [r["scope"]["live"] for r in run.of("recruitment_restricted", "S", reason="tier")]
    assert scopes == ["no_recruitment", "member_ops_closed"]


def test_custom_online_threshold_via_params(new_run: Any) -> None:
    params = RuleParams().with_overrides(online_days_threshold=20)
    run = new_run(params).feed(standard(), *premium_shop("S", JAN1), close_through(JAN16))
    assert assessed(run, "S", "2023-01-01")["tier"] == "improving"
    with pytest.raises(ValueError, match="unknown rule parameter"):
        RuleParams().with_overrides(nonsense=1)


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("lateness_ms", -1, "from 0 to"), ("quality_window_ms", 11 * 366 * DAY, "ten years"),
    ("grace_ms", "24h", "an integer"), ("dedupe_cycles", 0, "at least 1"),
    ("third_party_default_cap", -5, "at least 0"),
])
def test_rule_parameters_out_of_range_are_refused_by_name(name: str, value: Any, reason: str) -> None:
    """A what-if's `--set` reaches here: a window the calendar cannot hold, or a negative one, is a
    clear error before any replay, not a failure halfway through one."""
    with pytest.raises(ValueError, match=f"{name} must be .*{reason}"):
        RuleParams().with_overrides(**{name: value})
    RuleParams().with_overrides(**{name: 1})  # in range
