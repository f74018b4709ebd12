"""State the fold reads and writes, and the store interface with its in-memory implementation.

The fold never holds state between records: it asks a `StateStore` for what the
rule needs. The memory store keeps Python objects; the Redis store (projections/)
implements the same interface and turns the writes of a batch into one atomic step.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tiering.contract import MIN_EVENT_TS

Timeline = list[tuple[int, int, Any]]  # (ts, ledger seq, value), sorted
Fact = tuple[int, int, str, str, str]  # a deferred member fact: (ts, seq, shop_id, user_id, kind)


def timeline_at(tl: Timeline, instant: int, inclusive: bool = False) -> Any:
    """Value of the latest change before `instant` (at it, if inclusive); ties go to the later seq."""
    best = None
    for ts, _seq, value in tl:
        if ts < instant or (inclusive and ts == instant):
            best = value
        else:
            break
    return best


def timeline_add(tl: Timeline, ts: int, seq: int, value: Any) -> None:
    in_order = not tl or (tl[-1][0], tl[-1][1]) <= (ts, seq)
    tl.append((ts, seq, value))
    if not in_order:
        tl.sort(key=lambda e: (e[0], e[1]))


def timeline_prune(tl: Timeline, before: int) -> None:
    """Drop changes that no query at or after `before` can see (keep the last one before it)."""
    keep_from = 0
    for i, (ts, _s, _v) in enumerate(tl):
        if ts < before:
            keep_from = i
    if keep_from:
        del tl[:keep_from]


@dataclass(slots=True)
class Member:
    """One user at one shop. `member` is membership in ledger order; the rest is the
    counted view (events with ts before the oldest open boundary), which sets layers."""

    member: bool = False
    counted: bool = False
    last_paid: int | None = None
    last_activity: int | None = None
    protected: bool = False
    # the (ts, ledger seq) of the join or leave that decided `counted`: membership at an instant is
    # the latest of them by timestamp, whatever order they were folded in (rules §2)
    membership_ts: int | None = None
    membership_seq: int = 0
    # BucketedMembers' own bookkeeping (the buckets it counts this member in), kept here so an
    # update needs no second map lookup; not state: no store persists it, equality ignores it
    buckets: tuple[int | None, int | None] | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class CycleCounters:
    """What one shop accumulates for one cycle [A, B)."""

    total_gmv: int = 0
    member_gmv: int = 0
    payers: set[str] = field(default_factory=set)
    benefit_users: set[str] = field(default_factory=set)
    cohort: dict[str, list[int]] = field(default_factory=dict)  # user -> join ts of each new membership
    converted: set[str] = field(default_factory=set)
    third_party_joins: int = 0  # counted toward the cap: third-party joins that start a new membership
    third_party_reached: int | None = None  # ts of the first of them whose check found the cap reached
    # ts of those folded while a promo window's end P with ts >= P had not fired yet: the check at P
    # counts only the joins before P (rules §7), as if P had fired first
    third_party_ahead: list[int] = field(default_factory=list)


@dataclass(slots=True)
class ShopState:
    """Per-shop facts other than members."""

    shop_id: str
    known_since: int
    attrs: dict[str, Timeline] = field(default_factory=dict)  # industry, b_edition, ...
    benefits: dict[str, Timeline] = field(default_factory=dict)  # benefit_id -> online bool
    tier: str | None = None
    raw_tier: str | None = None
    reg_state: str = "none"
    grace_deadline: int | None = None
    blocked: bool = False
    rq_streak: int = 0
    rq_status: str | None = None
    cap_cycle: int | None = None  # start of the cycle whose third-party cap was reached
    restrictions: dict[str, Any] = field(default_factory=dict)  # reason -> scope (active ones)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Clock:
    """Partition-wide state: watermark, closed boundaries, timers, global config, dedupe."""

    watermark: int | None = None
    last_closed: int | None = None
    open_boundary: int = 0  # the first boundary after last_closed (the oldest still open)
    seq: int = 0
    timers: list[tuple[int, int, str, str, Any]] = field(default_factory=list)  # heap
    standards: dict[str, Timeline] = field(default_factory=dict)  # industry -> effective_from timeline
    promos: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, name)
    stats: dict[str, int] = field(default_factory=dict)

    def push_timer(self, instant: int, kind: str, shop_id: str, payload: Any = None) -> None:
        """A timer fires when the watermark reaches `instant`. Events may name instants from 0 on
        (promo edges, B-edition expiry), but none is older than the earliest event ts (1990), and
        the rules look a timer's instant up in the calendar: an older one fires as at that ts."""
        self.seq += 1
        heapq.heappush(self.timers, (max(instant, MIN_EVENT_TS), self.seq, kind, shop_id, payload))

    def bump(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n


class MemberIndex(Protocol):
    """Members of one shop, with the counts a boundary close needs (never a full scan)."""

    def get(self, user_id: str) -> Member | None: ...
    def update(self, user_id: str, m: Member, quality_until: int | None, effective_until: int | None) -> None: ...
    def count_after(self, boundary: int) -> tuple[int, int, int]: ...
    def fell_silent(self, start: int, end: int) -> list[str]: ...


class StateStore(Protocol):
    """What the fold reads and writes."""

    clock: Clock

    def is_duplicate(self, event_id: str) -> bool: ...
    def remember(self, cycle_start: int, event_id: str) -> None: ...
    def forget_before(self, cycle_start: int) -> None: ...
    def defer(self, fact: Fact) -> None: ...
    def take_due(self, horizon: int) -> list[Fact]: ...
    def prepare_close(self, start: int, end: int) -> None: ...

    def shop(self, shop_id: str) -> ShopState | None: ...
    def add_shop(self, shop_id: str, ts: int) -> ShopState: ...
    def shop_ids(self) -> Iterable[str]: ...
    def touch(self, shop: ShopState) -> None: ...
    def touch_all(self) -> None: ...
    def members(self, shop_id: str) -> MemberIndex: ...
    def counters(self, shop_id: str, cycle_start: int, create: bool = True) -> CycleCounters | None: ...
    def drop_counters(self, shop_id: str, cycle_start: int) -> None: ...


class BucketedMembers:
    """Memory MemberIndex: counted members bucketed by the cycle their `until` instants
    fall in, so counts at a boundary sum a few buckets (the memory twin of Redis ZCOUNT).

    Bucket k holds the instants (B[k], B[k+1]] of the boundaries B: `bucket_of(t)` is the
    index of the cycle holding t - 1. A member's untils move with each event but seldom
    leave their buckets, so `update` first checks the old buckets' bounds (no calendar call)."""

    __slots__ = ("_bounds", "_bucket_of", "_by_user", "_e_sets", "_hi", "_q_counts", "total")

    def __init__(self, bucket_of: Any, bounds: tuple[int, ...]) -> None:
        self._by_user: dict[str, Member] = {}  # a counted member's buckets are on it (Member.buckets)
        self._q_counts: dict[int, int] = {}
        self._e_sets: dict[int, set[str]] = {}
        self._bucket_of = bucket_of  # instant -> cycle index of (instant - 1)
        self._bounds = bounds  # the calendar's boundaries, by cycle index
        self._hi = -1
        self.total = 0

    def get(self, user_id: str) -> Member | None:
        return self._by_user.get(user_id)

    def update(self, user_id: str, m: Member, quality_until: int | None, effective_until: int | None) -> None:
        old = m.buckets
        if old is None:
            self._by_user[user_id] = m  # maybe a new user
            if not m.counted:
                return  # neither counted before nor now
        elif m.counted:
            oq, oe = old
            b = self._bounds
            if (oe is not None and effective_until is not None and b[oe] < effective_until <= b[oe + 1]
                    and (quality_until is None if oq is None
                         else quality_until is not None and b[oq] < quality_until <= b[oq + 1])):
                return  # still counted in the same buckets: the common case
        qb = self._bucket_of(quality_until) if quality_until is not None else None
        eb = self._bucket_of(effective_until) if effective_until is not None else None
        if old is not None:
            m.buckets = None
            self.total -= 1
            if old[0] is not None:
                self._q_counts[old[0]] -= 1
            if old[1] is not None:
                self._e_sets[old[1]].discard(user_id)
        if not m.counted:
            return
        m.buckets = (qb, eb)
        self.total += 1
        if qb is not None:
            self._q_counts[qb] = self._q_counts.get(qb, 0) + 1
        if eb is not None:
            self._e_sets.setdefault(eb, set()).add(user_id)
            self._hi = max(self._hi, eb)

    def count_after(self, boundary: int) -> tuple[int, int, int]:
        """(members, quality, effective) counted at `boundary`: until > boundary."""
        keys = range(self._bucket_of(boundary + 1), self._hi + 1)  # quality <= effective
        quality = sum(self._q_counts.get(k, 0) for k in keys)
        effective = sum(len(self._e_sets.get(k, ())) for k in keys)
        return self.total, quality, effective

    def fell_silent(self, start: int, end: int) -> list[str]:
        """Counted members whose effective_until is in (start, end] (one cycle's bucket)."""
        return sorted(self._e_sets.get(self._bucket_of(end), ()))


class MemoryStore:
    """The in-memory StateStore: the file form and unit tests use it."""

    def __init__(self, bucket_of: Any, bounds: tuple[int, ...]) -> None:
        self.clock = Clock()
        self._seen: dict[str, int] = {}  # event id -> start of the cycle it was folded in
        self._deferred: list[Fact] = []
        self._shops: dict[str, ShopState] = {}
        self._members: dict[str, BucketedMembers] = {}
        self._counters: dict[tuple[str, int], CycleCounters] = {}
        self._bucket_of = bucket_of
        self._bounds = bounds

    def is_duplicate(self, event_id: str) -> bool:
        return event_id in self._seen

    def remember(self, cycle_start: int, event_id: str) -> None:
        self._seen[event_id] = cycle_start

    def forget_before(self, cycle_start: int) -> None:
        """Once per closed cycle: keep the ids of cycles from `cycle_start` on."""
        if any(start < cycle_start for start in self._seen.values()):
            self._seen = {eid: start for eid, start in self._seen.items() if start >= cycle_start}

    def defer(self, fact: Fact) -> None:
        self._deferred.append(fact)

    def take_due(self, horizon: int) -> list[Fact]:
        due = [f for f in self._deferred if f[0] < horizon]
        if due:
            self._deferred = [f for f in self._deferred if f[0] >= horizon]
        return due

    def prepare_close(self, start: int, end: int) -> None:
        """A hint that a boundary close reads every shop; memory needs no prefetch."""

    def shop(self, shop_id: str) -> ShopState | None:
        return self._shops.get(shop_id)

    def add_shop(self, shop_id: str, ts: int) -> ShopState:
        s = self._shops[shop_id] = ShopState(shop_id, ts)
        self._members[shop_id] = BucketedMembers(self._bucket_of, self._bounds)
        return s

    def shop_ids(self) -> Iterable[str]:
        return sorted(self._shops)

    def touch(self, shop: ShopState) -> None:
        """Memory needs no write-back; the Redis store marks the shop dirty here."""

    def touch_all(self) -> None:
        """Partition-wide config changed (a standard): every shop's read model is stale."""

    def members(self, shop_id: str) -> BucketedMembers:
        return self._members[shop_id]

    def counters(self, shop_id: str, cycle_start: int, create: bool = True) -> CycleCounters | None:
        key = (shop_id, cycle_start)
        c = self._counters.get(key)
        if c is None and create:
            c = self._counters[key] = CycleCounters()
        return c

    def drop_counters(self, shop_id: str, cycle_start: int) -> None:
        self._counters.pop((shop_id, cycle_start), None)
