"""The dashboard's read model of one shop: a pure function of the fold state.

`shop_view` describes the shop's oldest open cycle [A, B) as of the end of the local day its
partition's event time is in (B once event time reaches B): the five indicators so far with numerators and
denominators beside the standard that applies, the tier it would get if the cycle
closed now, the current tier, active restrictions, the registration-join state and the
tier history. It reads the same `Closer.measure` the boundary close uses, so the
projection at B is exactly the assessment.

The view depends only on the shop's state and its partition's clock (through that day),
never on when or in which batch it is computed: the Redis store rewrites every read model
of a partition when its day moves on, so a replay writes the same views as the live run.
The status (`computing` once event time passes B) is added by the reader from the
partition's clock: `status_of`.
"""

from __future__ import annotations

import bisect
from typing import Any

from tiering.close import Closer
from tiering.outputs import publish_ratio
from tiering.state import Clock, ShopState, StateStore

INDICATORS = ("benefit_online_days", "effective_members", "member_gmv_share", "quality_member_ratio",
              "benefit_penetration")


def shop_view(closer: Closer, store: StateStore, shop: ShopState) -> dict[str, Any] | None:
    """The read model of `shop`, or None before its partition has a clock."""
    clock = store.clock
    cal = closer.cal
    as_of = view_instant(clock, closer)
    if as_of is None or clock.last_closed is None:
        return None
    a, b = clock.last_closed, clock.open_boundary
    m = closer.measure(store, shop, a, b, as_of)
    ind, std = m.indicators, m.standard.to_json()
    days = len(cal.day_starts(a, b))
    indicators: dict[str, dict[str, Any]] = {
        "benefit_online_days": {"value": ind.benefit_online_days, "numerator": ind.benefit_online_days,
                                "denominator": days, "standard": closer.p.online_days_threshold + 1},
        "effective_members": {"value": ind.effective_members, "numerator": ind.effective_members,
                              "denominator": ind.members, "standard": std["min_effective_members"]},
        "member_gmv_share": {"value": publish_ratio(ind.member_gmv_cents, ind.total_gmv_cents),
                             "numerator": ind.member_gmv_cents, "denominator": ind.total_gmv_cents,
                             "standard": std["min_member_gmv_share"]},
        "quality_member_ratio": {"value": publish_ratio(ind.quality_members, ind.effective_members),
                                 "numerator": ind.quality_members, "denominator": ind.effective_members,
                                 "standard": std["min_quality_member_ratio"]},
        "benefit_penetration": {"value": publish_ratio(ind.benefit_members, ind.paying_members),
                                "numerator": ind.benefit_members, "denominator": ind.paying_members,
                                "standard": std["min_benefit_penetration"]},
    }
    for name in INDICATORS:
        indicators[name]["met"] = m.met[name]
    restrictions = [{"reason": reason, **r} for reason, r in sorted(shop.restrictions.items())]
    return {
        "shop_id": shop.shop_id,
        "industry": industry_of(shop),
        "cycle": {"id": cal.cycle_id(a), "start": a, "end": b},
        "as_of": as_of,
        "days_in_cycle": days,
        "indicators": indicators,
        "standard": {"industry": m.industry, **std},
        "projected_tier": m.tier,
        "projected_raw_tier": m.raw_tier,
        "tier": shop.tier,
        "raw_tier": shop.raw_tier,
        "restrictions": restrictions,
        "registration_join": {"state": shop.reg_state, "grace_deadline": shop.grace_deadline,
                              "blocked": shop.blocked},
        "recruitment_quality": {"status": shop.rq_status, "streak": shop.rq_streak},
        "history": shop.history[::-1],
    }


def view_instant(clock: Clock, closer: Closer) -> int | None:
    """The instant a partition's read models describe: the end of the local day its event time
    (watermark + lateness) is in, within the oldest open cycle; B once event time reaches B."""
    if clock.last_closed is None or clock.watermark is None:
        return None
    a, b = clock.last_closed, clock.open_boundary
    event_time = clock.watermark + closer.p.lateness_ms
    days = closer.cal.day_starts(a, b)
    i = bisect.bisect_right(days, event_time)
    return days[i] if i < len(days) else b


def industry_of(shop: ShopState) -> str:
    """The shop's latest declared industry (`*` if none)."""
    tl = shop.attrs.get("industry")
    return str(tl[-1][2]) if tl else "*"


def status_of(view: dict[str, Any], event_time: int | None) -> str:
    """`computing` between the cycle's end B and its close (rules.md §9); `open` before B."""
    return "computing" if event_time is not None and event_time >= view["cycle"]["end"] else "open"


def tier_class(shop: ShopState) -> tuple[str, str]:
    """(industry, tier) the platform summary counts the shop under; `unassessed` before its first close."""
    return industry_of(shop), shop.tier or "unassessed"
