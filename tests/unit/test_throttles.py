"""Registration join (§6), recruitment quality and restrictions (§7-§8), member protection (§2)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    DAY,
    HOUR,
    Run,
    at,
    clock,
    close_through,
    ev,
    join,
    join_setting,
    keep_premium,
    order,
    premium_shop,
    profile,
    redeem,
    standard,
)

pytestmark = pytest.mark.unit

DEC16, JAN1, JAN16, FEB1, FEB16, MAR1 = (at(2022, 12, 16), at(2023, 1, 1), at(2023, 1, 16), at(2023, 2, 1),
                                         at(2023, 2, 16), at(2023, 3, 1))


def only_potential(shop: str, start: int) -> list[dict]:
    return [order(shop, f"{shop}-p1", start + DAY)]  # penetration 0: potential


# -- registration join -------------------------------------------------------------------------------

def test_buffer_then_revoked_with_deadline_judged_on_setting_at_deadline(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("A", JAN1), join_setting("A", JAN1, "registration"),
                     close_through(JAN16), *only_potential("A", JAN16), close_through(FEB1),
                     *only_potential("A", FEB1), close_through(FEB16),
                     join_setting("A", FEB16 + 23 * HOUR, "purchase"),  # before the deadline: compliant
                     close_through(MAR1))
    statuses = [(r["status"], r["effective_at"]) for r in run.of("registration_join_changed", "A")]
    assert statuses == [("granted", JAN16), ("buffer", FEB1), ("revoked", FEB16)]
    assert run.of("registration_join_changed", "A", status="revoked")[0]["grace_deadline"] == FEB16 + DAY
    assert run.of("recruitment_restricted", "A", reason="registration_noncompliant") == []


def test_deadline_missed_blocks_until_a_boundary_with_purchase_setting(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("A", JAN1), join_setting("A", JAN1, "registration"),
                     close_through(JAN16), *only_potential("A", JAN16), close_through(FEB1),
                     *only_potential("A", FEB1), close_through(FEB16), clock(FEB16 + DAY + 12 * HOUR))
    [blocked] = run.of("recruitment_restricted", "A", reason="registration_noncompliant")
    assert blocked["effective_at"] == FEB16 + DAY and blocked["effective_until"] is None
    run.feed(close_through(MAR1))
    assert run.of("recruitment_restored", "A") == []            # still registration at MAR1
    run.feed(join_setting("A", MAR1 + DAY, "purchase"), close_through(at(2023, 3, 16)))
    [back] = run.of("recruitment_restored", "A", reason="registration_noncompliant")
    assert back["effective_at"] == at(2023, 3, 16)


def test_back_to_premium_within_the_buffer_keeps_registration_join(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("B", JAN1), close_through(JAN16), *only_potential("B", JAN16),
                     close_through(FEB1), *keep_premium("B", FEB1), close_through(FEB16))
    assert [r["status"] for r in run.of("registration_join_changed", "B")] == ["granted", "buffer", "granted"]


def test_member_pass_removed_between_boundaries_revokes_at_that_instant(new_run: Any) -> None:
    t = JAN16 + 3 * DAY
    run = new_run().feed(standard(), profile("M", JAN1, industry="test", member_pass=True),
                     join_setting("M", JAN1, "registration"), close_through(JAN16),
                     profile("M", t, member_pass=False), clock(t + 13 * HOUR))
    statuses = [(r["status"], r["effective_at"]) for r in run.of("registration_join_changed", "M")]
    assert statuses == [("granted", JAN16), ("revoked", t)]
    assert run.of("registration_join_changed", "M", status="revoked")[0]["grace_deadline"] == t + DAY


def test_b_edition_ordered_before_cutoff_is_eligible_until_expiry(new_run: Any) -> None:
    expiry = JAN16 + 5 * DAY
    edition = {"ordered_at": at(2021, 5, 1), "expires_at": expiry}
    run = new_run().feed(standard(), profile("E", JAN1, industry="test", b_edition=edition),
                     join_setting("E", JAN1, "purchase"), close_through(JAN16), clock(expiry + 12 * HOUR))
    statuses = [(r["status"], r["effective_at"]) for r in run.of("registration_join_changed", "E")]
    assert statuses == [("granted", JAN16), ("revoked", expiry)]
    assert "grace_deadline" not in run.of("registration_join_changed", "E", status="revoked")[0]


def test_b_edition_ordered_after_cutoff_is_not_eligible(new_run: Any) -> None:
    edition = {"ordered_at": at(2021, 9, 10), "expires_at": at(2030, 1, 1)}
    run = new_run().feed(standard(), profile("E", JAN1, industry="test", b_edition=edition), close_through(JAN16))
    assert run.of("registration_join_changed", "E") == []


# -- recruitment quality -----------------------------------------------------------------------------

def rq(run: Run, shop: str) -> list[tuple[str, int, int, bool, str]]:
    return [(r["cycle"], r["cohort"], r["converted"], r["met"], r["status"])
            for r in run.of("recruitment_quality_assessed", shop)]


def test_empty_cohort_is_met_and_not_premium_is_not_assessed(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("Q", DEC16), close_through(JAN1), *keep_premium("Q", JAN1),
                     close_through(JAN16))
    assert rq(run, "Q") == [("2023-01-01", 0, 0, True, "excellent")]


def test_conversion_needs_order_within_15_days_and_before_B(new_run: Any) -> None:
    t = JAN16 + HOUR  # a 16-day cycle, so 15 days after joining is still before B
    run = new_run().feed(standard(), *premium_shop("Q", JAN1), close_through(JAN16), *keep_premium("Q", JAN16),
                     join("Q", "n1", t), order("Q", "n1", t + 15 * DAY - 1),     # within 15 x 24h: yes
                     join("Q", "n2", t), order("Q", "n2", t + 15 * DAY),         # exactly 15 x 24h: no
                     join("Q", "n3", t), order("Q", "n3", t - HOUR),             # before joining: no
                     join("Q", "n4", FEB1 - HOUR), order("Q", "n4", FEB1 + HOUR),  # after B: no
                     close_through(FEB1))
    assert rq(run, "Q") == [("2023-01-16", 4, 1, False, "to_improve")]


def test_rejoin_after_leaving_is_a_new_membership(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("Q", DEC16), close_through(JAN1), *keep_premium("Q", JAN1),
                     ev("member_left", JAN1 + HOUR, shop_id="Q", user_id="Q-p1"),
                     join("Q", "Q-p1", JAN1 + 2 * HOUR), order("Q", "Q-p1", JAN1 + 3 * HOUR),
                     join("Q", "Q-p2", JAN1 + 2 * HOUR),   # already a member: not a new membership
                     close_through(JAN16))
    assert rq(run, "Q")[0][1:3] == (1, 1)


def quality_fail_cycles(shop: str, starts: list[int], channel: str = "storefront") -> list[dict]:
    out: list[dict] = []
    for s in starts:
        out += [*keep_premium(shop, s), join(shop, f"{shop}-n{s}", s + 2 * HOUR, channel=channel),
                close_through(CAL_NEXT[s])]
    return out


CAL_NEXT = {DEC16: JAN1, JAN1: JAN16, JAN16: FEB1, FEB1: FEB16, FEB16: MAR1}


def test_two_failures_restrict_the_next_cycle_and_a_pass_restores(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("Q", DEC16), close_through(JAN1),
                     *quality_fail_cycles("Q", [JAN1, JAN16]), *keep_premium("Q", FEB1), close_through(FEB16))
    assert [r[4] for r in rq(run, "Q")] == ["to_improve", "substandard", "excellent"]
    [r] = run.of("recruitment_restricted", "Q", reason="recruitment_quality")
    assert r["effective_at"] == FEB1 and r["scope"]["third_party"] == "capped"
    [back] = run.of("recruitment_restored", "Q", reason="recruitment_quality")
    assert back["effective_at"] == FEB16


def test_third_party_cap_reached_during_restriction_closes_third_party(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("Q", DEC16),
                     profile("Q", DEC16, third_party={"opened_before_2021": True, "baseline_15d": 2}),
                     close_through(JAN1), *quality_fail_cycles("Q", [JAN1, JAN16]),
                     join("Q", "t1", FEB1 + DAY, channel="third_party"),
                     join("Q", "t2", FEB1 + 2 * DAY, channel="third_party"),
                     *keep_premium("Q", FEB1), close_through(FEB16))
    [cap] = run.of("recruitment_restricted", "Q", reason="third_party_cap")
    assert cap["effective_at"] == FEB1 + 2 * DAY and cap["effective_until"] == FEB16
    assert cap["scope"] == {"third_party": "closed"}
    assert run.of("recruitment_restored", "Q", reason="third_party_cap")[0]["effective_at"] == FEB16


def test_cap_reached_by_a_join_folded_before_the_restriction_starts_starts_at_that_joins_ts(new_run: Any) -> None:
    """The join (ts >= B, folded before B closed) reached the cap, not the close (rules §7)."""
    run = new_run().feed(standard(), *premium_shop("Q", DEC16),
                     profile("Q", DEC16, third_party={"opened_before_2021": True, "baseline_15d": 1}),
                     close_through(JAN1), *quality_fail_cycles("Q", [JAN1]), *keep_premium("Q", JAN16),
                     join("Q", "x", JAN16 + 2 * HOUR),
                     clock(FEB1 - 13 * HOUR), join("Q", "t1", FEB1 + HOUR, channel="third_party"),
                     close_through(FEB1))
    [cap] = run.of("recruitment_restricted", "Q", reason="third_party_cap")
    assert cap["effective_at"] == FEB1 + HOUR


def test_promo_window_suspends_quality_restriction_and_resumes_after(new_run: Any) -> None:
    p_start, p_end = FEB1 + 3 * DAY, FEB1 + 5 * DAY
    run = new_run().feed(standard(), ev("promo_window_declared", JAN1, name="618", start=p_start, end=p_end),
                     *premium_shop("Q", DEC16), close_through(JAN1),
                     *quality_fail_cycles("Q", [JAN1, JAN16]), clock(p_end + 12 * HOUR))
    restricted = [r["effective_at"] for r in run.of("recruitment_restricted", "Q", reason="recruitment_quality")]
    restored = [r["effective_at"] for r in run.of("recruitment_restored", "Q", reason="recruitment_quality")]
    assert restricted == [FEB1, p_end] and restored == [p_start]


# -- silent-member protection ------------------------------------------------------------------------

def test_member_silent_in_cycle_is_protected_and_woken_by_activity(new_run: Any) -> None:
    joined = JAN1 - 180 * DAY + 3 * DAY   # effective_until falls inside [JAN1, JAN16)
    run = new_run().feed(standard(), profile("S", joined, industry="test"), join("S", "z", joined),
                     close_through(JAN16))
    [p] = run.of("member_protection_changed", "S")
    assert (p["user_id"], p["protected"], p["effective_at"]) == ("z", True, JAN16)
    run.feed(redeem("S", "z", JAN16 + DAY))
    [_, w] = run.of("member_protection_changed", "S")
    assert (w["protected"], w["effective_at"]) == (False, JAN16 + DAY)
