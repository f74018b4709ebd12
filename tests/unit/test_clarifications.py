"""The rulebook's clarifications of 2026-12-01 (docs/rules.md), one kind of case at a time.

Each test states a rule, not an example of it: where the rule says "whatever the order", the same
events are folded in each order (or with the close of B placed before and after the events with
ts >= B) and the outputs compared as sets of (id, payload)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.builders import (
    DAY,
    HOUR,
    Run,
    at,
    benefit,
    clock,
    close_through,
    ev,
    join,
    join_setting,
    keep_premium,
    leave,
    order,
    premium_shop,
    profile,
    standard,
)
from tests.unit.test_throttles import CAL_NEXT, quality_fail_cycles

pytestmark = pytest.mark.unit

DEC16, JAN1, JAN16, FEB1, FEB16, MAR1 = (at(2022, 12, 16), at(2023, 1, 1), at(2023, 1, 16), at(2023, 2, 1),
                                         at(2023, 2, 16), at(2023, 3, 1))
CAL_NEXT.setdefault(MAR1, at(2023, 3, 16))


def output_set(run: Run) -> set[bytes]:
    return {orjson.dumps(o, option=orjson.OPT_SORT_KEYS) for o in run.outputs}


def assert_same_outputs(new_run: Callable[..., Run], *histories: list[dict[str, Any]]) -> Run:
    """Fold each history into a fresh run; all give the same set of outputs. Returns the first run."""
    runs = [new_run().feed(*h) for h in histories]
    first = output_set(runs[0])
    for r in runs[1:]:
        assert output_set(r) == first
    return runs[0]


def restricted_from_feb1(shop: str, baseline: int, *config: dict[str, Any]) -> list[dict[str, Any]]:
    """A premium shop whose recruitment quality failed twice: restricted during [FEB1, FEB16)."""
    return [standard(), *config, *premium_shop(shop, DEC16),
            profile(shop, DEC16, third_party={"opened_before_2021": True, "baseline_15d": baseline}),
            close_through(JAN1), *quality_fail_cycles(shop, [JAN1]), *keep_premium(shop, JAN16),
            join(shop, f"{shop}-n{JAN16}", JAN16 + 2 * HOUR), clock(FEB1 - 13 * HOUR)]


# -- 1. §9: an event reported late is remembered; its resend is a duplicate ------------------------

def test_a_late_event_resent_is_a_duplicate_not_a_second_late_event(new_run: Any) -> None:
    late = order("S", "x", JAN16 - HOUR, cents=100)
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), close_through(JAN16), late, dict(late))
    assert len(run.of("late_event")) == 1
    assert run.store.clock.stats["duplicates"] == 1


def test_a_late_event_whose_cycle_is_no_longer_remembered_is_judged_afresh(new_run: Any) -> None:
    """Ids of the cycle of JAN1 are remembered until the second boundary after its end (FEB16) closes."""
    late = order("S", "x", JAN1 + DAY, cents=100)
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), close_through(FEB16), late, dict(late))
    assert len(run.of("late_event")) == 2
    assert run.store.clock.stats.get("duplicates", 0) == 0


# -- 2. §7: a join with ts >= B folded before B closes starts the cap restriction at its ts --------

def test_join_ahead_of_the_close_that_reaches_the_cap_starts_it_at_its_own_ts(new_run: Any) -> None:
    tp = join("Q", "t1", FEB1 + HOUR, channel="third_party")
    run = assert_same_outputs(new_run, [*restricted_from_feb1("Q", 1), tp, close_through(FEB1)],
                              [*restricted_from_feb1("Q", 1), close_through(FEB1), tp])
    [cap] = run.of("recruitment_restricted", "Q", reason="third_party_cap")
    assert (cap["effective_at"], cap["effective_until"]) == (FEB1 + HOUR, FEB16)


# -- 3. §6: the join setting at a revocation instant R is the latest change with ts < R ------------

def pass_removed_at(t: int, setting_before: str, setting_at_t: str) -> list[dict[str, Any]]:
    return [standard(), profile("M", JAN1, industry="test", member_pass=True),
            join_setting("M", JAN1, setting_before), close_through(JAN16),
            profile("M", t, member_pass=False), join_setting("M", t, setting_at_t), clock(t + DAY + 13 * HOUR)]


def test_a_setting_changed_at_the_revocation_instant_is_a_change_within_the_grace_period(new_run: Any) -> None:
    t = JAN16 + 3 * DAY
    run = new_run().feed(*pass_removed_at(t, "registration", "purchase"))
    [revoked] = run.of("registration_join_changed", "M", status="revoked")
    assert (revoked["effective_at"], revoked["grace_deadline"]) == (t, t + DAY)
    assert run.of("recruitment_restricted", "M", reason="registration_noncompliant") == []


def test_a_switch_to_registration_at_the_revocation_instant_sets_no_deadline(new_run: Any) -> None:
    t = JAN16 + 3 * DAY
    run = new_run().feed(*pass_removed_at(t, "purchase", "registration"))
    [revoked] = run.of("registration_join_changed", "M", status="revoked")
    assert "grace_deadline" not in revoked
    assert run.of("recruitment_restricted", "M", reason="registration_noncompliant") == []


# -- 4. §2: leaving is not activity ---------------------------------------------------------------

def test_a_protected_member_who_leaves_emits_nothing_and_a_rejoin_wakes_it(new_run: Any) -> None:
    joined = JAN1 - 180 * DAY + 3 * DAY  # falls silent inside [JAN1, JAN16)
    run = new_run().feed(standard(), profile("S", joined, industry="test"), join("S", "z", joined),
                         close_through(JAN16), leave("S", "z", JAN16 + DAY), close_through(FEB1))
    assert [(p["protected"], p["effective_at"]) for p in run.of("member_protection_changed", "S")] == [
        (True, JAN16)]
    run.feed(join("S", "z", FEB1 + DAY))
    assert [(p["protected"], p["effective_at"]) for p in run.of("member_protection_changed", "S")] == [
        (True, JAN16), (False, FEB1 + DAY)]


def test_a_leave_after_b_folded_before_the_close_wakes_nobody(new_run: Any) -> None:
    joined = JAN1 - 180 * DAY + 3 * DAY
    head = [standard(), profile("S", joined, industry="test"), join("S", "z", joined), clock(JAN16 - 13 * HOUR)]
    gone = leave("S", "z", JAN16 + HOUR)
    run = assert_same_outputs(new_run, [*head, gone, close_through(JAN16)], [*head, close_through(JAN16), gone])
    assert [p["protected"] for p in run.of("member_protection_changed", "S")] == [True]


# -- 5. §7: a cap of 0 closes third-party recruitment from the restriction's start -----------------

def test_a_cap_of_zero_is_reached_at_the_restrictions_start_whatever_was_folded_first(new_run: Any) -> None:
    ahead = order("Q", "Q-p1", FEB1 + HOUR)  # an event of the new cycle, folded before its start closes
    run = assert_same_outputs(new_run, [*restricted_from_feb1("Q", 0), close_through(FEB1)],
                              [*restricted_from_feb1("Q", 0), ahead, close_through(FEB1)],
                              [*restricted_from_feb1("Q", 0), close_through(FEB1), ahead])
    [cap] = run.of("recruitment_restricted", "Q", reason="third_party_cap")
    assert (cap["effective_at"], cap["effective_until"]) == (FEB1, FEB16)


def test_a_cap_reached_again_at_its_effective_until_is_reissued_without_a_restore(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("Q", DEC16),
                         profile("Q", DEC16, third_party={"opened_before_2021": True, "baseline_15d": 0}),
                         close_through(JAN1), *quality_fail_cycles("Q", [JAN1, JAN16, FEB1]))
    caps = [(r["effective_at"], r["effective_until"]) for r in run.of("recruitment_restricted", "Q",
                                                                      reason="third_party_cap")]
    assert caps == [(FEB1, FEB16), (FEB16, MAR1)]
    assert run.of("recruitment_restored", "Q", reason="third_party_cap") == []


# -- 6. §2: membership at T is the latest join or leave with ts < T, whatever the fold order --------

@pytest.mark.parametrize("first", ["join", "leave"])
def test_membership_at_b_follows_timestamps_not_fold_order(first: str, new_run: Any) -> None:
    head = [standard(), profile("S", JAN1, industry="test"), join("S", "a", JAN1), order("S", "a", JAN1)]
    j, lv = join("S", "u", JAN1 + DAY), leave("S", "u", JAN1 + 2 * DAY)
    pair = [j, lv] if first == "join" else [lv, j]
    run = new_run().feed(*head, *pair, close_through(JAN16))
    [a] = run.of("tier_assessed", "S", cycle="2023-01-01")
    assert a["indicators"]["effective_members"] == 1 and a["indicators"]["silent_members"] == 0


def test_a_tie_in_membership_goes_to_the_later_in_the_ledger(new_run: Any) -> None:
    t = JAN1 + DAY
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), leave("S", "u", t), join("S", "u", t),
                         join("S", "v", t), leave("S", "v", t), close_through(JAN16))
    [a] = run.of("tier_assessed", "S", cycle="2023-01-01")
    assert a["indicators"]["effective_members"] == 1  # u joined last; v left last


# -- 7. §6: a change at T is in force when a loss of eligibility at T is judged -------------------

def test_b_edition_expiring_at_b_while_member_pass_switches_on_at_b_loses_nothing(new_run: Any) -> None:
    edition = {"ordered_at": at(2021, 5, 1), "expires_at": FEB1}
    head = [standard(), profile("E", JAN1, industry="test", b_edition=edition), join_setting("E", JAN1, "registration"),
            close_through(JAN16), clock(FEB1 - 13 * HOUR)]
    switch = profile("E", FEB1, member_pass=True)
    run = new_run().feed(*head, switch, close_through(FEB1), clock(FEB16 - 13 * HOUR))
    assert [r["status"] for r in run.of("registration_join_changed", "E")] == ["granted"]


def test_b_edition_expiring_at_b_alone_revokes_at_b(new_run: Any) -> None:
    edition = {"ordered_at": at(2021, 5, 1), "expires_at": FEB1}
    run = new_run().feed(standard(), profile("E", JAN1, industry="test", b_edition=edition),
                         close_through(JAN16), close_through(FEB1))
    assert [(r["status"], r["effective_at"]) for r in run.of("registration_join_changed", "E")] == [
        ("granted", JAN16), ("revoked", FEB1)]


def test_a_shop_in_buffer_keeps_it_when_eligibility_ends_between_boundaries(new_run: Any) -> None:
    t = FEB1 + 3 * DAY
    run = new_run().feed(standard(), *premium_shop("B", JAN1), profile("B", JAN1, member_pass=False),
                         close_through(JAN16), *[order("B", "B-p1", JAN16 + DAY)],
                         close_through(FEB1), profile("B", t, member_pass=False), clock(t + 13 * HOUR))
    assert [r["status"] for r in run.of("registration_join_changed", "B")] == ["granted", "buffer"]


# -- 8. §8: several new memberships of a user in a cycle count once; any of them converts ----------

def test_conversion_after_a_rejoin_looks_at_every_join_of_the_cycle(new_run: Any) -> None:
    t = JAN1 + HOUR
    run = new_run().feed(standard(), *premium_shop("Q", DEC16), close_through(JAN1), *keep_premium("Q", JAN1),
                         join("Q", "n", t), leave("Q", "n", t + HOUR), join("Q", "n", t + 3 * DAY),
                         order("Q", "n", t + DAY),  # folded after both joins; within 15 days of the first
                         close_through(JAN16))
    [r] = run.of("recruitment_quality_assessed", "Q")
    assert (r["cohort"], r["converted"]) == (1, 1)


# -- 9. §7: after a promo window, a join ahead of the window's end starts the cap at its own ts -----

def test_join_ahead_of_a_promo_windows_end_starts_the_cap_at_its_own_ts(new_run: Any) -> None:
    p_start, p_end = FEB1 + 3 * DAY, FEB1 + 5 * DAY
    head = [*restricted_from_feb1("Q", 1, ev("promo_window_declared", DEC16, name="618", start=p_start, end=p_end)),
            close_through(FEB1), clock(p_end - 13 * HOUR)]
    tp = join("Q", "t1", p_end + HOUR, channel="third_party")
    run = assert_same_outputs(new_run, [*head, tp, clock(p_end + 12 * HOUR)], [*head, clock(p_end + 12 * HOUR), tp])
    [cap] = run.of("recruitment_restricted", "Q", reason="third_party_cap")
    assert cap["effective_at"] == p_end + HOUR


def test_joins_inside_a_promo_window_that_reach_the_cap_restrict_from_the_windows_end(new_run: Any) -> None:
    p_start, p_end = FEB1 + 3 * DAY, FEB1 + 5 * DAY
    run = new_run().feed(*restricted_from_feb1("Q", 1, ev("promo_window_declared", DEC16, name="618",
                                                                              start=p_start, end=p_end)),
                         close_through(FEB1), clock(p_start + 12 * HOUR),
                         join("Q", "t1", p_start + HOUR, channel="third_party"), clock(p_end + 12 * HOUR))
    starts = [r["effective_at"] for r in run.of("recruitment_restricted", "Q", reason="third_party_cap")]
    assert starts == [p_end]


# -- the clarified sentences where tierstream's reading was kept -----------------------------------

def test_orders_before_joining_count_for_the_members_layer(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), order("S", "u", JAN1 + HOUR),
                         join("S", "u", JAN1 + DAY), close_through(JAN16))
    [a] = run.of("tier_assessed", "S", cycle="2023-01-01")
    assert (a["indicators"]["quality_members"], a["indicators"]["effective_members"]) == (1, 1)
    assert a["indicators"]["member_gmv_cents"] == 0  # not a member when paying: not member GMV


@pytest.mark.parametrize(("industry", "expected"), [("fmcg", ("fmcg", 200)), ("spaceships", ("*", 7)),
                                                     (None, ("*", 7))])
def test_a_configured_star_reaches_only_industries_without_a_row(industry: str | None, expected: tuple[str, int],
                                                                new_run: Any) -> None:
    """Default rows are standards in force from the beginning; a shop that never set its industry is in `*`."""
    shop = profile("S", JAN1, industry=industry) if industry else benefit("S", JAN1)
    run = new_run().feed(standard(industry="*", min_effective_members=7), shop, close_through(JAN16))
    [a] = run.of("tier_assessed", "S", cycle="2023-01-01")
    assert (a["standard"]["industry"], a["standard"]["min_effective_members"]) == expected


def test_only_joins_that_start_a_membership_count_toward_the_cap(new_run: Any) -> None:
    run = new_run().feed(*restricted_from_feb1("Q", 2), close_through(FEB1),
                         join("Q", "t1", FEB1 + DAY, channel="third_party"),
                         join("Q", "t1", FEB1 + 2 * DAY, channel="third_party"),  # already a member
                         join("Q", "Q-p1", FEB1 + 3 * DAY, channel="third_party"),  # a member since December
                         clock(FEB16 - 13 * HOUR))
    assert run.of("recruitment_restricted", "Q", reason="third_party_cap") == []
    run.feed(join("Q", "t2", FEB1 + 4 * DAY, channel="third_party"))
    [cap] = run.of("recruitment_restricted", "Q", reason="third_party_cap")
    assert cap["effective_at"] == FEB1 + 4 * DAY


def test_a_lowered_baseline_takes_effect_at_the_next_join(new_run: Any) -> None:
    run = new_run().feed(*restricted_from_feb1("Q", 5), close_through(FEB1),
                         join("Q", "t1", FEB1 + DAY, channel="third_party"),
                         join("Q", "t2", FEB1 + DAY, channel="third_party"),
                         profile("Q", FEB1 + 2 * DAY, third_party={"opened_before_2021": True, "baseline_15d": 2}),
                         clock(FEB1 + 4 * DAY))
    assert run.of("recruitment_restricted", "Q", reason="third_party_cap") == []  # no check yet
    run.feed(join("Q", "t3", FEB1 + 5 * DAY, channel="third_party"))
    [cap] = run.of("recruitment_restricted", "Q", reason="third_party_cap")
    assert cap["effective_at"] == FEB1 + 5 * DAY


def test_clock_advanced_is_never_late(new_run: Any) -> None:
    run = new_run().feed(standard(), profile("S", JAN1, industry="test"), close_through(JAN16),
                         clock(JAN1 + DAY), close_through(FEB1))
    assert run.of("late_event") == [] and "late" not in run.store.clock.stats
