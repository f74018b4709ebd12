"""The five indicators of a cycle (rules.md §3) and the tier they earn (§5)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, Literal

from tiering.calendar import Calendar
from tiering.outputs import publish_ratio, ratio, ratio_at_least
from tiering.params import Standard
from tiering.state import CycleCounters, Timeline

Tier = Literal["premium", "potential", "improving", "substandard"]

PRIVILEGES: Final[dict[str, tuple[str, ...]]] = {
    "substandard": (),
    "improving": ("benefit_tools", "member_reach"),
    "potential": ("benefit_tools", "member_reach", "shop_member_tab", "live_member_ops",
                  "group_member_ops"),
    "premium": ("benefit_tools", "member_reach", "shop_member_tab", "live_member_ops",
                "group_member_ops", "member_open", "public_exposure", "private_traffic_pack",
                "search_recommend_exposure", "private_traffic_incentive"),
}


@dataclass(frozen=True, slots=True)
class Indicators:
    """One shop's cycle [A, B): counts at B and sums over the cycle."""

    benefit_online_days: int
    members: int
    quality_members: int
    effective_members: int
    member_gmv_cents: int
    total_gmv_cents: int
    paying_members: int
    benefit_members: int

    @classmethod
    def of(cls, online_days: int, counts: tuple[int, int, int], c: CycleCounters) -> Indicators:
        members, quality, effective = counts
        return cls(online_days, members, quality, effective, c.member_gmv, c.total_gmv,
                   len(c.payers), len(c.benefit_users))

    @property
    def member_gmv_share(self) -> Fraction:
        """会员成交渗透"""
        return ratio(self.member_gmv_cents, self.total_gmv_cents)

    @property
    def quality_member_ratio(self) -> Fraction:
        """优质关系占比"""
        return ratio(self.quality_members, self.effective_members)

    @property
    def benefit_penetration(self) -> Fraction:
        """会员权益渗透"""
        return ratio(self.benefit_members, self.paying_members)

    def to_json(self) -> dict[str, Any]:
        return {
            "benefit_online_days": self.benefit_online_days,
            "effective_members": self.effective_members,
            "member_gmv_share": publish_ratio(self.member_gmv_cents, self.total_gmv_cents),
            "quality_member_ratio": publish_ratio(self.quality_members, self.effective_members),
            "benefit_penetration": publish_ratio(self.benefit_members, self.paying_members),
            "quality_members": self.quality_members,
            "silent_members": self.members - self.effective_members,
            "member_gmv_cents": self.member_gmv_cents,
            "total_gmv_cents": self.total_gmv_cents,
            "paying_members": self.paying_members,
            "benefit_members": self.benefit_members,
        }


def criteria(ind: Indicators, std: Standard, online_threshold: int) -> dict[str, bool]:
    """Indicator -> met; a value meets its standard when value >= min (exact fractions)."""
    return {
        "benefit_online_days": ind.benefit_online_days > online_threshold,
        "effective_members": ind.effective_members >= std.min_effective_members,
        "member_gmv_share": ratio_at_least(ind.member_gmv_cents, ind.total_gmv_cents, std.min_member_gmv_share),
        "quality_member_ratio": ratio_at_least(ind.quality_members, ind.effective_members,
                                               std.min_quality_member_ratio),
        "benefit_penetration": ratio_at_least(ind.benefit_members, ind.paying_members,
                                              std.min_benefit_penetration),
    }


def raw_tier(met: dict[str, bool]) -> Tier:
    core = (met["member_gmv_share"], met["quality_member_ratio"], met["benefit_penetration"])
    if met["benefit_online_days"] and met["effective_members"] and all(core):
        return "premium"
    if met["benefit_online_days"] and any(core):
        return "potential"
    return "improving"


def final_tier(raw: Tier, previous_raw: str | None) -> Tier:
    """Two improving assessments in a row make a shop substandard (不达标)."""
    return "substandard" if raw == "improving" and previous_raw == "improving" else raw


def privilege_diff(from_tier: str | None, to_tier: str) -> tuple[list[str], list[str]]:
    before = PRIVILEGES[from_tier] if from_tier else ()
    after = PRIVILEGES[to_tier]
    return [p for p in after if p not in before], [p for p in before if p not in after]


def online_intervals(tl: Timeline, start: int, end: int) -> list[tuple[int, int]]:
    """Online intervals [on, off) of one benefit, clipped to [start, end)."""
    out: list[tuple[int, int]] = []
    on: int | None = None
    for ts, _seq, online in tl:
        at = max(ts, start)
        if at >= end:
            break
        if online and on is None:
            on = at
        elif not online and on is not None:
            if at > on:
                out.append((on, at))
            on = None
    if on is not None and end > on:
        out.append((on, end))
    return out


def benefit_online_days(benefits: dict[str, Timeline], start: int, end: int, cal: Calendar) -> int:
    """权益在线天数: local days of [start, end) overlapped by some online interval."""
    days = cal.day_starts(start, end)
    hit: set[int] = set()
    for tl in benefits.values():
        for on, off in online_intervals(tl, start, end):
            first = bisect.bisect_right(days, on) - 1
            last = bisect.bisect_left(days, off) - 1  # last day starting before off
            hit.update(range(max(first, 0), last + 1))
    return len(hit)
