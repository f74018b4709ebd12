"""The fold: `fold(store, record) -> outputs`, one ledger record at a time.

A ledger record is a validated input event (tiering.contract) or a watermark
marker `{"type": "watermark", "watermark": T}` from the clock. Events are folded
in ledger order; facts about instants use timestamps (rules.md §9).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiering import close
from tiering.outputs import Output, late_event, shop_output
from tiering.params import RuleParams, Standard
from tiering.state import Member, MemberIndex, MemoryStore, ShopState, StateStore, timeline_add

MARKER = "watermark"


class Folder:
    """Holds the rule parameters and dispatches records; all state lives in the store."""

    def __init__(self, params: RuleParams) -> None:
        self.params = params
        self.cal = params.calendar
        self.closer = close.Closer(params)
        self._handlers: dict[str, Callable[[StateStore, ShopState, dict[str, Any], int, list[Output]], None]] = {
            "member_joined": self._joined, "member_left": self._left, "order_paid": self._paid,
            "benefit_redeemed": self._redeemed, "benefit_config_changed": self._benefit_config,
            "join_setting_changed": self._join_setting, "shop_profile_changed": self._profile,
        }

    def new_store(self) -> MemoryStore:
        cal = self.cal
        return MemoryStore(lambda instant: cal.index(instant - 1), cal.boundaries)

    def fold(self, store: StateStore, record: dict[str, Any], own: bool = True) -> list[Output]:
        """`own=False` folds only what every shard shares (replay/shards.py): the event still
        moves the watermark, the dedupe ids and the ledger seq, but its shop is another
        shard's, so no handler runs and a late or duplicate event is left to that shard."""
        out: list[Output] = []
        if record["type"] == MARKER:
            self.closer.advance(store, record["watermark"], out)
        else:
            self._event(store, record, out, own)
        return out

    def _event(self, store: StateStore, e: dict[str, Any], out: list[Output], own: bool = True) -> None:
        clock = store.clock
        ts = e["ts"]
        if clock.watermark is None:
            self.closer.start(store, ts - self.params.lateness_ms)
        eid = e["event_id"]
        if store.is_duplicate(eid):
            if own:
                clock.bump("duplicates")
            return
        etype = e["type"]
        closed = clock.last_closed
        cycle = self.cal.cycle_start(ts)  # the calendar keeps the last cycle's range: no search per event
        if closed is not None and ts < closed:
            # ids are remembered by the cycle of their ts while that cycle is in the dedupe window,
            # late events too, so a resent late event is a duplicate, not a second late_event (§9)
            if cycle >= self.closer.dedupe_floor(closed):
                store.remember(cycle, eid)
            if etype != "clock_advanced":
                if own:
                    clock.bump("late")
                    out.append(late_event(e, closed))
                return
        else:
            store.remember(cycle, eid)
        clock.seq += 1
        handler = self._handlers.get(etype)
        if handler is not None:
            if not own:
                self.closer.advance(store, ts - self.params.lateness_ms, out)
                return
            shop = store.shop(e["shop_id"])
            if shop is None:
                shop = store.add_shop(e["shop_id"], ts)
            elif ts < shop.known_since:
                shop.known_since = ts
            handler(store, shop, e, cycle, out)
            store.touch(shop)
        elif etype == "clock_advanced":
            pass
        elif etype == "industry_standard_changed":
            timeline_add(clock.standards.setdefault(e["industry"], []), e["effective_from"],
                         clock.seq, Standard.from_json(e["standard"]))
            store.touch_all()
        elif etype == "promo_window_declared":
            clock.promos.append((e["start"], e["end"], e["name"]))
            clock.push_timer(e["start"], "promo_start", "", e["name"])
            clock.push_timer(e["end"], "promo_end", "", e["name"])
        self.closer.advance(store, ts - self.params.lateness_ms, out)

    # -- member facts -------------------------------------------------------------------------
    # Each handler gets the event's shop and the start of the cycle holding its ts.

    def _activity(self, store: StateStore, members: MemberIndex, shop: ShopState, user: str, m: Member,
                  ts: int, kind: str, out: list[Output]) -> None:
        """Wake a protected member (leaving is not activity), then apply (or defer) the fact to the
        counted view."""
        if m.protected and kind != "leave":
            m.protected = False
            out.append(shop_output("member_protection_changed", shop.shop_id, ts,
                                   (user, False, ts), user_id=user, protected=False))
        clock = store.clock
        if ts >= clock.open_boundary:
            members.update(user, m, *close.untils(m, self.params))
            store.defer((ts, clock.seq, shop.shop_id, user, kind))
        else:
            self.closer.apply_fact(members, user, m, ts, clock.seq, kind)

    def _joined(self, store: StateStore, shop: ShopState, e: dict[str, Any], cycle: int,
                out: list[Output]) -> None:
        user, ts = e["user_id"], e["ts"]
        members = store.members(shop.shop_id)
        m = members.get(user) or Member()
        if not m.member:
            m.member = True
            c = store.counters(shop.shop_id, cycle)
            assert c is not None
            c.cohort.setdefault(user, []).append(ts)
            if e["channel"] == "third_party":
                self.closer.count_third_party(store, shop, c, ts, out)
        self._activity(store, members, shop, user, m, ts, "join", out)

    def _left(self, store: StateStore, shop: ShopState, e: dict[str, Any], cycle: int,
              out: list[Output]) -> None:
        user = e["user_id"]
        members = store.members(shop.shop_id)
        m = members.get(user) or Member()
        m.member = False
        self._activity(store, members, shop, user, m, e["ts"], "leave", out)

    def _paid(self, store: StateStore, shop: ShopState, e: dict[str, Any], cycle: int,
              out: list[Output]) -> None:
        user, ts, amount = e["user_id"], e["ts"], e["amount_cents"]
        members = store.members(shop.shop_id)
        m = members.get(user) or Member()
        c = store.counters(shop.shop_id, cycle)
        assert c is not None
        c.total_gmv += amount
        if m.member:
            c.member_gmv += amount
            c.payers.add(user)
        joins = c.cohort.get(user)
        if joins is not None and user not in c.converted:  # any of the user's new memberships (§8)
            window = self.params.conversion_window_ms
            if any(joined <= ts < joined + window for joined in joins):
                c.converted.add(user)
        self._activity(store, members, shop, user, m, ts, "paid", out)

    def _redeemed(self, store: StateStore, shop: ShopState, e: dict[str, Any], cycle: int,
                  out: list[Output]) -> None:
        user, ts = e["user_id"], e["ts"]
        members = store.members(shop.shop_id)
        m = members.get(user) or Member()
        if m.member and (e["benefit_type"] != "points_exchange" or e["stage"] == "used"):
            c = store.counters(shop.shop_id, cycle)
            assert c is not None
            c.benefit_users.add(user)
        self._activity(store, members, shop, user, m, ts, "redeem", out)

    # -- configuration --------------------------------------------------------------------------

    def _benefit_config(self, store: StateStore, shop: ShopState, e: dict[str, Any], cycle: int,
                        out: list[Output]) -> None:
        timeline_add(shop.benefits.setdefault(e["benefit_id"], []), e["ts"], store.clock.seq,
                     e["status"] == "online")

    def _join_setting(self, store: StateStore, shop: ShopState, e: dict[str, Any], cycle: int,
                      out: list[Output]) -> None:
        timeline_add(shop.attrs.setdefault("join_mode", []), e["ts"], store.clock.seq, e["mode"])

    def _profile(self, store: StateStore, shop: ShopState, e: dict[str, Any], cycle: int,
                 out: list[Output]) -> None:
        clock = store.clock
        for name in ("industry", "b_edition", "member_pass", "third_party"):
            if name in e:
                timeline_add(shop.attrs.setdefault(name, []), e["ts"], clock.seq, e[name])
        if "b_edition" in e or "member_pass" in e:
            clock.push_timer(e["ts"], "eligibility", shop.shop_id)
            if e.get("b_edition"):
                clock.push_timer(e["b_edition"]["expires_at"], "eligibility", shop.shop_id)


def fold(folder: Folder, store: StateStore, record: dict[str, Any]) -> list[Output]:
    """The pure step of design.md: read `store`, apply the record's changes, return outputs."""
    return folder.fold(store, record)
