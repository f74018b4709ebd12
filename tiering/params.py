"""Rule parameters: every number rules.md marks *default*, in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from functools import cached_property
from typing import Any

from tiering.calendar import DAY_MS, Calendar

HOUR_MS = 3_600_000
MAX_SPAN_MS = 3653 * DAY_MS  # ten years: the longest window or lateness the calendar's range allows for
SPANS = ("lateness_ms", "quality_window_ms", "activity_window_ms", "conversion_window_ms", "grace_ms")
COUNTS = ("online_days_threshold", "third_party_default_cap")


@dataclass(frozen=True)
class Standard:
    """分行业商家指标标准: the minimums of one industry."""

    min_effective_members: int
    min_member_gmv_share: Fraction
    min_quality_member_ratio: Fraction
    min_benefit_penetration: Fraction
    min_new_member_conversion: Fraction

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Standard:
        def frac(name: str) -> Fraction:
            return Fraction(repr(d[name]))  # exact decimal, not the binary float
        return cls(int(d["min_effective_members"]), frac("min_member_gmv_share"),
                   frac("min_quality_member_ratio"), frac("min_benefit_penetration"),
                   frac("min_new_member_conversion"))

    def to_json(self) -> dict[str, Any]:
        return dict(self._json)

    @cached_property
    def _json(self) -> dict[str, Any]:  # a read model and an assessment each publish the standard
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v if isinstance(v, int) else float(v)
        return out


def _std(conversion: str) -> Standard:
    return Standard(200, Fraction("0.10"), Fraction("0.20"), Fraction("0.10"), Fraction(conversion))


DEFAULT_STANDARDS: dict[str, Standard] = {
    "*": _std("0.15"), "other": _std("0.15"), "fmcg": _std("0.20"), "food": _std("0.15"),
    "apparel": _std("0.15"), "electronics": _std("0.10"), "appliances": _std("0.15"),
}


@dataclass(frozen=True)
class RuleParams:
    """Configuration of the rules (rules.md *defaults*); what-if replays vary these."""

    tz: str = "Asia/Shanghai"
    lateness_ms: int = 12 * HOUR_MS
    online_days_threshold: int = 5
    quality_window_ms: int = 365 * DAY_MS
    activity_window_ms: int = 180 * DAY_MS
    conversion_window_ms: int = 15 * DAY_MS
    grace_ms: int = 24 * HOUR_MS
    third_party_default_cap: int = 2000
    b_edition_cutoff_ms: int = 1_631_203_200_000  # 2021-09-10 00:00 Asia/Shanghai
    dedupe_cycles: int = 2
    standards: dict[str, Standard] = field(default_factory=lambda: dict(DEFAULT_STANDARDS))
    # what-if: standards that apply whatever the history configured (industry_standard_changed)
    pinned_standards: dict[str, Standard] = field(default_factory=dict)
    calendar: Calendar = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in SPANS:
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= MAX_SPAN_MS:
                raise ValueError(f"{name} must be an integer from 0 to {MAX_SPAN_MS} (ten years), not {value!r}")
        for name in COUNTS:
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"{name} must be an integer of at least 0, not {value!r}")
        if type(self.dedupe_cycles) is not int or self.dedupe_cycles < 1:
            raise ValueError(f"dedupe_cycles must be an integer of at least 1, not {self.dedupe_cycles!r}")
        object.__setattr__(self, "calendar", Calendar(self.tz))

    def with_overrides(self, **overrides: Any) -> RuleParams:
        """A copy with some parameters replaced (unknown names are an error)."""
        known = {f.name for f in fields(self) if f.init}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown rule parameter(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(known))}")
        return replace(self, **overrides)
