"""Event time: the watermark, boundary closes and timers (rules.md §5-§9)."""

from __future__ import annotations

import heapq
from typing import Any, NamedTuple

from tiering import indicators as ind
from tiering.outputs import Output, publish, ratio, shop_output
from tiering.params import RuleParams, Standard
from tiering.restrictions import (
    CAP_SCOPE,
    NONCOMPLIANT_SCOPE,
    QUALITY_SCOPE,
    TIER_SCOPE,
    active_since,
    set_restriction,
)
from tiering.state import CycleCounters, Member, MemberIndex, ShopState, StateStore, timeline_at, timeline_prune

RQ_STATUS = ("excellent", "to_improve", "substandard")
HISTORY_KEEP = 24  # assessments a shop's state keeps for its read model (a year of cycles)
HISTORY_INDICATORS = ("benefit_online_days", "effective_members", "member_gmv_share", "quality_member_ratio",
                      "benefit_penetration")


def untils(m: Member, p: RuleParams) -> tuple[int | None, int | None]:
    """(quality_until, effective_until) of a member (rules.md §2)."""
    q = m.last_paid + p.quality_window_ms if m.last_paid is not None else None
    e = m.last_activity + p.activity_window_ms if m.last_activity is not None else None
    if q is not None and (e is None or q > e):
        e = q
    return q, e


class Measurement(NamedTuple):
    counters: CycleCounters
    indicators: ind.Indicators
    industry: str
    standard: Standard
    met: dict[str, bool]
    raw_tier: ind.Tier
    tier: ind.Tier


class Closer:
    """Advances the watermark and fires what it reaches, in the order of their instants."""

    def __init__(self, params: RuleParams) -> None:
        self.p = params
        self.cal = params.calendar
        self._floor = (0, 0)  # dedupe_floor's last (closed boundary, floor)

    def start(self, store: StateStore, watermark: int) -> None:
        """First record: boundaries before it close with no shop to assess. A watermark before the
        calendar's first boundary (only with a lateness of over a year) starts at that boundary:
        nothing is older, and every close then has the cycle before it."""
        clock = store.clock
        watermark = max(watermark, self.cal.boundary(0))
        clock.watermark = watermark
        clock.last_closed = self.cal.last_boundary_at_or_before(watermark)
        clock.open_boundary = self.cal.next_boundary(watermark)

    def advance(self, store: StateStore, watermark: int, out: list[Output]) -> None:
        clock = store.clock
        if clock.watermark is None:
            self.start(store, watermark)
        if watermark <= clock.watermark:  # type: ignore[operator]
            return
        clock.watermark = watermark
        if watermark < clock.open_boundary and (not clock.timers or watermark < clock.timers[0][0]):
            return  # nothing due: the common case, per event
        while True:
            boundary = clock.open_boundary
            if clock.timers and clock.timers[0][0] < boundary:
                if clock.timers[0][0] > watermark:
                    return
                instant, _seq, kind, shop_id, payload = heapq.heappop(clock.timers)
                self._fire(store, instant, kind, shop_id, payload, out)
            elif boundary <= watermark:
                self.close_boundary(store, boundary, out)
            else:
                return

    # -- boundary ------------------------------------------------------------------------------

    def close_boundary(self, store: StateStore, b: int, out: list[Output]) -> None:
        clock = store.clock
        a: int = clock.last_closed  # type: ignore[assignment]
        store.prepare_close(a, b)
        for shop_id in store.shop_ids():
            shop = store.shop(shop_id)
            if shop is not None:
                if shop.known_since < b:
                    self._assess(store, shop, a, b, out)
                store.touch(shop)  # every shop's open cycle moved on: its read model too
        clock.last_closed = b
        clock.open_boundary = self.cal.next_boundary(b)
        self._apply_deferred(store, out)
        store.forget_before(self.dedupe_floor(b))

    def dedupe_floor(self, closed: int) -> int:
        """The oldest cycle whose ids are still remembered once `closed` has closed: a cycle's ids are
        kept until the `dedupe_cycles`-th boundary after its end has closed (§9)."""
        if self._floor[0] != closed:
            self._floor = (closed, self.cal.boundary(max(0, self.cal.index(closed) - self.p.dedupe_cycles)))
        return self._floor[1]

    def measure(self, store: StateStore, shop: ShopState, a: int, b: int, at: int) -> Measurement:
        """The cycle [a, b) of a shop up to `at` (= b at its close): indicators, standard, tiers.

        The boundary close and the dashboard's projection (tiering.view) share this."""
        counters = store.counters(shop.shop_id, a, create=False) or CycleCounters()
        online = ind.benefit_online_days(shop.benefits, a, at, self.cal)
        indicators = ind.Indicators.of(online, store.members(shop.shop_id).count_after(at), counters)
        industry, std = self._standard(store, shop, b)
        met = ind.criteria(indicators, std, self.p.online_days_threshold)
        raw = ind.raw_tier(met)
        return Measurement(counters, indicators, industry, std, met, raw, ind.final_tier(raw, shop.raw_tier))

    def _assess(self, store: StateStore, shop: ShopState, a: int, b: int, out: list[Output]) -> None:
        sid = shop.shop_id
        counters, indicators, industry, std, met, raw, tier = self.measure(store, shop, a, b, b)
        previous = shop.tier
        cycle = self.cal.cycle_id(a)
        std_json = {"industry": industry, **std.to_json()}
        ind_json = indicators.to_json()
        out.append(shop_output("tier_assessed", sid, b, (cycle,), cycle=cycle, tier=tier, raw_tier=raw,
                               indicators=ind_json, standard=std_json, criteria=met))
        if tier != previous:
            granted, revoked = ind.privilege_diff(previous, tier)
            out.append(shop_output("tier_changed", sid, b, (cycle,), cycle=cycle, from_tier=previous,
                                   to_tier=tier, indicators=ind_json, criteria=met,
                                   privileges_granted=granted, privileges_revoked=revoked))
        shop.tier, shop.raw_tier = tier, raw
        shop.history.append({"cycle": cycle, "tier": tier, "raw_tier": raw, "effective_at": b,
                             "indicators": {k: ind_json[k] for k in HISTORY_INDICATORS}, "criteria": met})
        del shop.history[:-HISTORY_KEEP]
        set_restriction(shop, "tier", TIER_SCOPE.get(tier), b, out)
        self._registration_at_boundary(store, shop, b, previous, out)
        self._recruitment_quality(store, shop, counters, cycle, b, previous, std, out)
        self._protect(store, shop, a, b, out)
        store.drop_counters(sid, a)
        for tl in (*shop.attrs.values(), *shop.benefits.values()):
            timeline_prune(tl, b)

    def _standard(self, store: StateStore, shop: ShopState, b: int) -> tuple[str, Standard]:
        industry = timeline_at(shop.attrs.get("industry", []), b) or "*"
        standards = store.clock.standards
        for name in (industry, "*"):
            if name in self.p.pinned_standards:
                return name, self.p.pinned_standards[name]
            configured = timeline_at(standards.get(name, []), b, inclusive=True)
            if configured is not None:
                return name, configured
            if name in self.p.standards:
                return name, self.p.standards[name]
        return "*", self.p.standards["*"]

    def _protect(self, store: StateStore, shop: ShopState, a: int, b: int, out: list[Output]) -> None:
        """沉默会员保护: members who fell silent during [a, b) are protected from b."""
        members = store.members(shop.shop_id)
        for user in members.fell_silent(a, b):
            m = members.get(user)
            if m is not None and m.counted and not m.protected:
                m.protected = True
                members.update(user, m, *untils(m, self.p))
                out.append(shop_output("member_protection_changed", shop.shop_id, b,
                                       (user, True, b), user_id=user, protected=True))

    def _apply_deferred(self, store: StateStore, out: list[Output]) -> None:
        for ts, seq, shop_id, user, kind in store.take_due(store.clock.open_boundary):
            members = store.members(shop_id)
            m = members.get(user)
            if m is None:
                continue
            if m.protected and kind != "leave":  # an activity after B wakes a member protected at B
                m.protected = False
                out.append(shop_output("member_protection_changed", shop_id, ts, (user, False, ts),
                                       user_id=user, protected=False))
            self.apply_fact(members, user, m, ts, seq, kind)

    def apply_fact(self, members: MemberIndex, user: str, m: Member, ts: int, seq: int, kind: str) -> None:
        """Apply one member fact (ledger position `seq`) to the counted view (events before the oldest
        open boundary). Membership is the latest join or leave by (ts, seq), in any fold order."""
        if kind in ("join", "leave") and (m.membership_ts is None or (ts, seq) > (m.membership_ts, m.membership_seq)):
            m.counted = kind == "join"
            m.membership_ts, m.membership_seq = ts, seq
        if kind != "leave":
            if kind == "paid" and (m.last_paid is None or ts > m.last_paid):
                m.last_paid = ts
            if m.last_activity is None or ts > m.last_activity:
                m.last_activity = ts
        members.update(user, m, *untils(m, self.p))

    # -- registration join (注册入会, §6) -----------------------------------------------------

    def _eligible(self, shop: ShopState, at: int, inclusive: bool = False) -> bool:
        if shop.tier == "premium":
            return True
        b_ed = timeline_at(shop.attrs.get("b_edition", []), at, inclusive)
        if b_ed and b_ed["ordered_at"] < self.p.b_edition_cutoff_ms and at < b_ed["expires_at"]:
            return True
        return bool(timeline_at(shop.attrs.get("member_pass", []), at, inclusive))

    def _reg_changed(self, shop: ShopState, status: str, at: int, out: list[Output], **extra: Any) -> None:
        shop.reg_state = status
        out.append(shop_output("registration_join_changed", shop.shop_id, at, (status, at),
                               status=status, **extra))

    def _registration_at_boundary(self, store: StateStore, shop: ShopState, b: int,
                                  previous: str | None, out: list[Output]) -> None:
        state = shop.reg_state
        # a change at b is in force when a loss at b is judged (a B edition expiring at b while
        # member_pass is switched on at b loses nothing); granting reads the state before b (§6)
        if self._eligible(shop, b, inclusive=state in ("granted", "buffer")):
            if state != "granted":
                self._reg_changed(shop, "granted", b, out)
            shop.grace_deadline = None
            self._unblock(shop, b, out)
        elif state == "granted" and previous == "premium":
            self._reg_changed(shop, "buffer", b, out, buffer_until=self.cal.next_boundary(b))
        elif state in ("granted", "buffer"):
            self._revoke(store, shop, b, out)
        elif shop.blocked and timeline_at(shop.attrs.get("join_mode", []), b) == "purchase":
            self._unblock(shop, b, out)

    def _revoke(self, store: StateStore, shop: ShopState, at: int, out: list[Output]) -> None:
        # the setting before `at` decides the deadline; a change at `at` is made within the grace period
        if timeline_at(shop.attrs.get("join_mode", []), at) == "registration":
            deadline = at + self.p.grace_ms
            shop.grace_deadline = deadline
            store.clock.push_timer(deadline, "grace", shop.shop_id)
            self._reg_changed(shop, "revoked", at, out, grace_deadline=deadline)
        else:
            self._reg_changed(shop, "revoked", at, out)

    def _unblock(self, shop: ShopState, at: int, out: list[Output]) -> None:
        if shop.blocked:
            shop.blocked = False
            set_restriction(shop, "registration_noncompliant", None, at, out)

    # -- timers --------------------------------------------------------------------------------

    def _fire(self, store: StateStore, instant: int, kind: str, shop_id: str, payload: Any,
              out: list[Output]) -> None:
        if kind in ("promo_start", "promo_end"):
            for sid in store.shop_ids():
                shop = store.shop(sid)
                if shop is not None and (shop.rq_status == "substandard" or shop.restrictions):
                    self.sync_quality(store, shop, instant, out)
                    store.touch(shop)
            return
        shop = store.shop(shop_id)
        if shop is None:
            return
        if kind == "grace" and shop.grace_deadline == instant and shop.reg_state == "revoked":
            shop.grace_deadline = None
            if timeline_at(shop.attrs.get("join_mode", []), instant) == "registration":
                shop.blocked = True
                set_restriction(shop, "registration_noncompliant", NONCOMPLIANT_SCOPE, instant, out)
        elif kind == "eligibility" and shop.reg_state == "granted" and shop.tier != "premium" \
                and self._eligible(shop, instant - 1, inclusive=True) \
                and not self._eligible(shop, instant, inclusive=True):
            self._revoke(store, shop, instant, out)  # lost at `instant`: eligible just before it, not at it
        store.touch(shop)

    # -- recruitment quality (招募质量, §7-§8) --------------------------------------------------

    def _recruitment_quality(self, store: StateStore, shop: ShopState, c: CycleCounters, cycle: str,
                             b: int, tier_during: str | None, std: Standard, out: list[Output]) -> None:
        if tier_during == "premium":
            cohort = len(c.cohort)
            converted = len(c.converted)
            rate = ratio(converted, cohort)
            met = cohort == 0 or rate >= std.min_new_member_conversion
            shop.rq_streak = 0 if met else shop.rq_streak + 1
            shop.rq_status = RQ_STATUS[min(shop.rq_streak, 2)]
            out.append(shop_output(
                "recruitment_quality_assessed", shop.shop_id, b, (cycle,), cycle=cycle, cohort=cohort,
                converted=converted, conversion_rate=publish(rate),
                standard=float(std.min_new_member_conversion), met=met, status=shop.rq_status))
        else:
            shop.rq_streak, shop.rq_status = 0, None
        self.sync_quality(store, shop, b, out)

    def _cap(self, shop: ShopState, at: int) -> int:
        tp = timeline_at(shop.attrs.get("third_party", []), at)
        if tp and tp["opened_before_2021"]:
            return int(tp["baseline_15d"])
        return self.p.third_party_default_cap

    def _in_promo(self, store: StateStore, at: int) -> bool:
        return any(start <= at < end for start, end, _n in store.clock.promos)

    def sync_quality(self, store: StateStore, shop: ShopState, at: int, out: list[Output]) -> None:
        """Bring the recruitment_quality and third_party_cap restrictions in line at `at`."""
        active = shop.rq_status == "substandard" and not self._in_promo(store, at)
        set_restriction(shop, "recruitment_quality", QUALITY_SCOPE if active else None, at, out)
        start = self._cap_start(store, shop, at) if active else None
        if start is not None and start > at and "third_party_cap" in shop.restrictions:
            set_restriction(shop, "third_party_cap", None, at, out)  # the last cycle's cap ends here
        if start is None:
            set_restriction(shop, "third_party_cap", None, at, out)
        else:
            set_restriction(shop, "third_party_cap", CAP_SCOPE, start, out, until=self.cal.next_boundary(start))

    def _cap_start(self, store: StateStore, shop: ShopState, at: int) -> int | None:
        """Where the cap of the cycle holding `at` closes third-party recruitment for a
        recruitment_quality restriction (re)starting at `at` (§7), or None: at `at` when the joins
        before it reach the cap as of `at` (a cap of 0 always), else at the first join whose own check
        reached it, if that join is later and outside a promo window. Joins folded before `at` was
        reached count as if `at` had come first, so the outcome does not depend on the fold order."""
        cycle = self.cal.cycle_start(at)
        c = store.counters(shop.shop_id, cycle, create=False)
        before = 0 if c is None or at == cycle else c.third_party_joins - sum(t >= at for t in c.third_party_ahead)
        if before >= self._cap(shop, at):
            return at
        if c is None or c.third_party_reached is None:
            return None
        start = max(at, c.third_party_reached)
        return None if start > at and self._in_promo(store, start) else start

    def count_third_party(self, store: StateStore, shop: ShopState, c: CycleCounters, ts: int,
                          out: list[Output]) -> None:
        """A third-party join that starts a new membership: count it and check the cap (as of `ts`);
        the join that reaches it starts the restriction at its own ts, if one is active then."""
        c.third_party_joins += 1
        clock = store.clock
        if clock.watermark is not None and any(clock.watermark < end <= ts for _s, end, _n in clock.promos):
            c.third_party_ahead.append(ts)
        if c.third_party_reached is not None or c.third_party_joins < self._cap(shop, ts):
            return
        c.third_party_reached = ts
        since = active_since(shop, "recruitment_quality")
        if since is None or "third_party_cap" in shop.restrictions or self.cal.cycle_start(ts) != clock.last_closed:
            return  # no restriction yet, or one starting at the next close: that close starts the cap
        at = max(ts, since)
        if not self._in_promo(store, at):
            set_restriction(shop, "third_party_cap", CAP_SCOPE, at, out, until=self.cal.next_boundary(at))
