"""Edge-heavy random histories around one boundary B, for the rule properties (docs/rules.md §9).

A history is a fixed-shape prefix that puts shops where the clarified rules bite (shop `a` under a
recruitment_quality restriction from B, with a third-party cap of 0, 1 or 2 and maybe a promo
window around B; shop `b` granted registration join by a B edition that may expire at B, with a
member who falls silent just before B), then random events with ts within the lateness on either
side of B (joins on every channel, leaves, orders, redemptions, benefit, join-setting and profile
changes), then the clock_advanced that closes B, late events, and a clock that closes the next
boundary. The close can be placed anywhere after the window's last event with ts < B.

Left out on purpose: events with ts >= B that declare an instant before B (a standard's
effective_from, a promo edge, a B-edition expiry) and B-edition or member_pass changes stamped
exactly B: they change B's assessment only if folded before B closes, a limit docs/rules.md states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.builders import (
    DAY,
    HOUR,
    at,
    benefit,
    clock,
    ev,
    join,
    join_setting,
    keep_premium,
    leave,
    order,
    premium_shop,
    profile,
    redeem,
    standard,
)

DEC16, JAN1, JAN16, B, FEB16 = at(2022, 12, 16), at(2023, 1, 1), at(2023, 1, 16), at(2023, 2, 1), at(2023, 2, 16)
LATENESS = 12 * HOUR
CLOSE_B = B + LATENESS
USERS = ("u", "v", "z", "a-p1", "b-p1")
CHANNELS = ("third_party", "third_party", "storefront", "live")
EDGES = (-LATENESS, -HOUR, -1, 0, 1, HOUR, 3 * HOUR, 6 * HOUR, LATENESS - 1)


@dataclass(frozen=True)
class History:
    prefix: list[dict[str, Any]]
    window: list[dict[str, Any]]  # ts within the lateness of B, in ledger order
    late: list[dict[str, Any]]  # ts in the cycle before B: late once B has closed

    def earliest_close(self) -> int:
        """The first place the close of B can take in the window: after its last event with ts < B."""
        return max((i + 1 for i, e in enumerate(self.window) if e["ts"] < B), default=0)

    def events(self, close_at: int) -> list[dict[str, Any]]:
        """The whole history with the close of B placed before window[close_at]."""
        w = self.window
        return [*self.prefix, *w[:close_at], ev("clock_advanced", CLOSE_B, event_id="close-b"), *w[close_at:],
                *self.late, ev("clock_advanced", FEB16 + LATENESS, event_id="close-next")]


def _setup(cap: int, promo: tuple[int, int] | None, expiry: int, mode: str, member_pass: bool) -> list[dict[str, Any]]:
    config = [ev("promo_window_declared", DEC16, name="p", start=promo[0], end=promo[1])] if promo else []
    edition = {"ordered_at": at(2021, 5, 1), "expires_at": expiry}
    return [standard(), *config,
            join("b", "z", B - 180 * DAY - HOUR),  # falls silent at B - 1h: protected at B
            *premium_shop("a", DEC16),
            profile("a", DEC16, third_party={"opened_before_2021": True, "baseline_15d": cap}),
            profile("b", DEC16, industry="test", b_edition=edition, member_pass=member_pass),
            join_setting("b", DEC16, mode), clock(JAN1 + LATENESS),
            *keep_premium("a", JAN1), join("a", "a-n1", JAN1 + 2 * HOUR), clock(JAN16 + LATENESS),
            *keep_premium("a", JAN16), join("a", "a-n2", JAN16 + 2 * HOUR), clock(B - LATENESS - HOUR)]


@st.composite
def window_event(draw: st.DrawFn) -> dict[str, Any]:
    ts = B + draw(st.sampled_from(EDGES) | st.integers(-LATENESS, LATENESS - 1))
    shop = draw(st.sampled_from(("a", "b")))
    user = draw(st.sampled_from(USERS))
    kind = draw(st.sampled_from(("join", "join", "leave", "order", "redeem", "benefit", "setting", "profile")))
    if kind == "join":
        return join(shop, user, ts, channel=draw(st.sampled_from(CHANNELS)))
    if kind == "leave":
        return leave(shop, user, ts)
    if kind == "order":
        return order(shop, user, ts, cents=draw(st.sampled_from((0, 100, 10_000))))
    if kind == "redeem":
        return redeem(shop, user, ts)
    if kind == "benefit":
        return benefit(shop, ts, status=draw(st.sampled_from(("online", "offline"))))
    if kind == "setting":
        return join_setting(shop, ts, draw(st.sampled_from(("registration", "purchase"))))
    fields: dict[str, Any] = draw(st.sampled_from((
        {"third_party": {"opened_before_2021": True, "baseline_15d": draw(st.integers(0, 3))}},
        {"industry": draw(st.sampled_from(("test", "fmcg")))},
        {"member_pass": draw(st.booleans())},
        {"b_edition": {"ordered_at": at(2021, 5, 1), "expires_at": ts + draw(st.sampled_from((1, HOUR, DAY)))}},
    )))
    if ("member_pass" in fields or "b_edition" in fields) and ts == B:
        ts += 1  # see the module docstring
    return profile(shop, ts, **fields)


@st.composite
def histories(draw: st.DrawFn) -> History:
    promo = draw(st.sampled_from((None, (B - 6 * HOUR, B + 3 * HOUR), (B + HOUR, B + 6 * HOUR),
                                  (JAN16 + 3 * DAY, B + 6 * HOUR))))
    prefix = _setup(draw(st.sampled_from((0, 1, 2))), promo, draw(st.sampled_from((B, B + 3 * HOUR, FEB16 + DAY))),
                    draw(st.sampled_from(("registration", "purchase"))), draw(st.booleans()))
    window = draw(st.lists(window_event(), max_size=14))
    late = [order("a", draw(st.sampled_from(USERS)), JAN16 + draw(st.integers(0, 14 * DAY)))
            for _ in range(draw(st.integers(0, 2)))]
    h = History(prefix, window, late)
    for i, e in enumerate([*h.prefix, *h.window, *h.late]):
        e["event_id"] = f"e{i}"  # the builders' ids come from a global counter: fix them per history
    return h


def with_resends(draw: Callable[..., Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`events` with one to four of them sent again (same id) somewhere after themselves and before
    the last close: any event with ts in the cycle before B or later, whose id is remembered until
    the second boundary after its cycle's end, past the history's last close; late ones included."""
    resendable = [i for i, e in enumerate(events[:-1]) if e["ts"] >= JAN16]
    picks = draw(st.lists(st.sampled_from(resendable), min_size=1, max_size=4), label="resent")
    resent = list(events)
    for i in sorted(picks, reverse=True):  # later copies first, so the earlier picks' indexes hold
        where = draw(st.integers(i + 1, len(events) - 1), label=f"copy of {i} placed before")
        resent.insert(where, dict(events[i]))
    return resent
