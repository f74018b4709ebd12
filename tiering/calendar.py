"""Cycle calendar (考核周期): boundaries at 00:00 local on the 1st and the 16th."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000
_SLOT_MS = 900_000
# a year before the contract's earliest event ts (1990-01-01, tiering.contract): in every time zone
# each event then has a boundary at or before it and, for any lateness under about a year, before its
# watermark too (a longer one starts at the first boundary: Closer.start)
_FIRST_YEAR = 1989
# the contract's instants end at 2100-01-01 and the rules' windows are at most ten years
# (RuleParams), so every instant the rules look up, an event's until instants included, is inside
_LAST_YEAR = 2111


def _epoch_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True)
class Calendar:
    """Boundaries and local days of one business time zone, precomputed for lookups."""

    tz_name: str = "Asia/Shanghai"
    _boundaries: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _last: list[int] = field(init=False, repr=False, compare=False)  # index's cache: [lo, hi, index]
    _start: list[int] = field(init=False, repr=False, compare=False)  # cycle_start's cache: [lo, hi]
    _slots: dict[int, int] = field(init=False, repr=False, compare=False)  # quarter-hour slot -> index
    _days: dict[tuple[int, int], list[int]] = field(init=False, repr=False, compare=False)  # day_starts cache
    _ids: dict[int, str] = field(init=False, repr=False, compare=False)  # cycle_id cache

    def __post_init__(self) -> None:
        tz = ZoneInfo(self.tz_name)
        marks = [
            _epoch_ms(datetime(y, m, d, tzinfo=tz))
            for y in range(_FIRST_YEAR, _LAST_YEAR + 1)
            for m in range(1, 13)
            for d in (1, 16)
        ]
        object.__setattr__(self, "_boundaries", tuple(marks))
        object.__setattr__(self, "_last", [0, 0, -1])
        object.__setattr__(self, "_start", [0, 0])
        object.__setattr__(self, "_slots", {})
        object.__setattr__(self, "_days", {})
        object.__setattr__(self, "_ids", {})

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)

    def index(self, ts: int) -> int:
        """Index of the cycle holding instant ts (the boundary at or before ts)."""
        lo, hi, i = self._last
        if lo <= ts < hi:
            return i
        # every zone's midnights fall on a quarter hour, so a quarter-hour slot lies in one cycle
        slot = ts // _SLOT_MS
        cached = self._slots.get(slot)
        if cached is not None:
            return cached
        i = bisect.bisect_right(self._boundaries, ts) - 1
        if i < 0 or i >= len(self._boundaries) - 1:
            raise ValueError(f"instant {ts} is outside the supported years {_FIRST_YEAR}-{_LAST_YEAR}")
        self._last[:] = (self._boundaries[i], self._boundaries[i + 1], i)
        if len(self._slots) > 200_000:
            self._slots.clear()
        self._slots[slot] = i
        return i

    @property
    def boundaries(self) -> tuple[int, ...]:
        """Every boundary of the supported years, in order: cycle i is [b[i], b[i + 1])."""
        return self._boundaries

    def boundary(self, index: int) -> int:
        """Start instant of cycle `index`."""
        return self._boundaries[index]

    def cycle_start(self, ts: int) -> int:
        """Start of the cycle holding ts. The fold asks this for every event's ts, which stay in
        one cycle for long runs, while `index` also serves the member index's until instants
        (later cycles): each keeps its own last range, so neither evicts the other's."""
        lo, hi = self._start
        if lo <= ts < hi:
            return lo
        i = self.index(ts)
        b = self._boundaries
        self._start[:] = (b[i], b[i + 1])
        return b[i]

    def next_boundary(self, ts: int) -> int:
        """The first boundary strictly after ts."""
        return self._boundaries[bisect.bisect_right(self._boundaries, ts)]

    def last_boundary_at_or_before(self, ts: int) -> int | None:
        i = bisect.bisect_right(self._boundaries, ts) - 1
        return self._boundaries[i] if i >= 0 else None

    def cycle_id(self, start: int) -> str:
        """Cycle id: the local date of its start, e.g. `2023-01-16`."""
        cid = self._ids.get(start)
        if cid is None:
            if len(self._ids) > 10_000:
                self._ids.clear()
            cid = self._ids[start] = self.local_date(start).isoformat()
        return cid

    def local_date(self, ts: int) -> date:
        return datetime.fromtimestamp(ts / 1000, self.tz).date()

    def day_starts(self, start: int, end: int) -> list[int]:
        """Local midnights d with start <= d < end (start is a boundary, so a midnight)."""
        cached = self._days.get((start, end))
        if cached is None:
            if len(self._days) > 10_000:
                self._days.clear()
            cached = self._days[(start, end)] = self._day_starts(start, end)
        return cached

    def _day_starts(self, start: int, end: int) -> list[int]:
        tz = self.tz
        out: list[int] = []
        day = self.local_date(start)
        while True:
            t = _epoch_ms(datetime(day.year, day.month, day.day, tzinfo=tz))
            if t >= end:
                return out
            out.append(t)
            day += timedelta(days=1)
