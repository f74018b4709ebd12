"""A shop's present (the `shop-state` topic): one projection of the fold state, one fold of the outputs.

Two ways to the same record, kept equal by the tests (tests/unit/test_shopstate.py):

- `present(cal, shop)` reads it off the fold's `ShopState`; the worker and a rebuild publish it
  (`Snapshots`) after every ledger record whose fold emitted a shop-level output, so a
  snapshot is a function of the ledger position alone: live and rebuilt ones are byte-identical;
- `Present.apply(output)` folds the published outputs into it; a downstream consumer that reads
  `tier-assessments`, `tier-changes` and `recruitment-throttles` (each in order, the topics in any
  interleaving) gets the same record, and `examples/enforcer.py` follows the topics with it.

Only what both can say is in the record: the grace deadline of a revocation is not (the fold
drops it silently when the join mode changed before it), nor a restriction's reason text.
"""

from __future__ import annotations

from typing import Any, Final

from tiering.calendar import Calendar
from tiering.outputs import Output, event_id
from tiering.state import ShopState, StateStore

# the outputs that move a shop's present; the others (protection, dead and late events) do not
PRESENT_TYPES: Final = frozenset({"tier_assessed", "tier_changed", "registration_join_changed",
                                  "recruitment_restricted", "recruitment_restored",
                                  "recruitment_quality_assessed"})


def empty(shop_id: str) -> dict[str, Any]:
    """The present of a shop no output has spoken about yet."""
    return {"shop_id": shop_id, "tier": None, "raw_tier": None, "cycle": None, "assessed_at": None,
            "registration_join": {"status": "none", "buffer_until": None},
            "restrictions": {},
            "recruitment_quality": {"status": None, "cycle": None}}


def present(cal: Calendar, shop: ShopState) -> dict[str, Any]:
    """The shop's present, read off its fold state."""
    last = shop.history[-1] if shop.history else None
    p = empty(shop.shop_id)
    if last is not None:
        p.update(tier=shop.tier, raw_tier=shop.raw_tier, cycle=last["cycle"], assessed_at=last["effective_at"])
        # decided at every close: assessed while premium, reset to none otherwise
        p["recruitment_quality"] = {"status": shop.rq_status, "cycle": last["cycle"]}
    buffer_until = cal.next_boundary(last["effective_at"]) if shop.reg_state == "buffer" and last else None
    p["registration_join"] = {"status": shop.reg_state, "buffer_until": buffer_until}
    p["restrictions"] = {reason: {"scope": dict(r["scope"]), "since": r["since"], "effective_until": r["until"]}
                         for reason, r in sorted(shop.restrictions.items())}
    return p


def blocked_channels(p: dict[str, Any]) -> dict[str, list[str]]:
    """Per channel, the modes the active restrictions put on it (sorted): what an enforcer applies."""
    out: dict[str, list[str]] = {}
    for r in p["restrictions"].values():
        for channel, mode in r["scope"].items():
            out.setdefault(channel, []).append(mode)
    return {ch: sorted(set(modes)) for ch, modes in sorted(out.items())}


class Present:
    """A shop's present folded from its outputs. Each topic must come in order (per shop it does:
    outputs are keyed by shop); the topics may interleave in any way: the only fact that crosses
    topics, the recruitment-quality status, is ordered by its cycle."""

    def __init__(self, shop_id: str, start: dict[str, Any] | None = None) -> None:
        self.p = _copy(start) if start is not None else empty(shop_id)
        self._prev_tier = self.p["tier"]  # the tier of tier-assessments so far, for the quality reset

    def apply(self, o: Output) -> bool:
        """Fold one output about this shop; whether the present changed. Applying the same output
        twice in a row changes nothing the second time (a redelivery)."""
        before = _copy(self.p)
        handler = _HANDLERS.get(o["type"])
        if handler is not None:
            handler(self, o)
        return self.p != before

    def _assessed(self, o: Output) -> None:
        if self.p["cycle"] is not None and o["cycle"] <= self.p["cycle"]:
            return  # already folded (a redelivery, or a snapshot that reflects it)
        if self._prev_tier != "premium":  # assessed while not premium: recruitment quality resets
            self._quality(o["cycle"], None)
        self._prev_tier = o["tier"]
        self.p.update(tier=o["tier"], raw_tier=o["raw_tier"], cycle=o["cycle"], assessed_at=o["effective_at"])

    def _changed(self, o: Output) -> None:
        if self.p["cycle"] is None or o["cycle"] >= self.p["cycle"]:
            self.p["tier"] = o["to_tier"]

    def _registration(self, o: Output) -> None:
        self.p["registration_join"] = {"status": o["status"], "buffer_until": o.get("buffer_until")}

    def _restricted(self, o: Output) -> None:
        rs = self.p["restrictions"]
        current = rs.get(o["reason"])
        since = current["since"] if current is not None and current["scope"] == o["scope"] else o["effective_at"]
        rs[o["reason"]] = {"scope": dict(o["scope"]), "since": since, "effective_until": o["effective_until"]}
        self.p["restrictions"] = dict(sorted(rs.items()))

    def _restored(self, o: Output) -> None:
        self.p["restrictions"].pop(o["reason"], None)

    def _quality_assessed(self, o: Output) -> None:
        self._quality(o["cycle"], o["status"])

    def _quality(self, cycle: str, status: str | None) -> None:
        rq = self.p["recruitment_quality"]
        if rq["cycle"] is None or cycle >= rq["cycle"]:  # cycle ids are ISO dates: text order is time order
            self.p["recruitment_quality"] = {"status": status, "cycle": cycle}


_HANDLERS: Final = {
    "tier_assessed": Present._assessed, "tier_changed": Present._changed,
    "registration_join_changed": Present._registration, "recruitment_restricted": Present._restricted,
    "recruitment_restored": Present._restored, "recruitment_quality_assessed": Present._quality_assessed,
}


def _copy(p: dict[str, Any]) -> dict[str, Any]:
    return {**p, "registration_join": dict(p["registration_join"]),
            "restrictions": {k: {**v, "scope": dict(v["scope"])} for k, v in p["restrictions"].items()},
            "recruitment_quality": dict(p["recruitment_quality"])}


def record(p: dict[str, Any], partition: int, offset: int) -> Output:
    """The `shop_state` record of a present as of a ledger position; its id names that position."""
    return {"type": "shop_state", "event_id": event_id("shop_state", p["shop_id"], partition, offset),
            **p, "ledger": {"partition": partition, "offset": offset}}


def present_of(rec: Output) -> dict[str, Any]:
    """A `shop_state` record without its envelope (type, id, ledger position): the present."""
    return {k: v for k, v in rec.items() if k not in ("type", "event_id", "ledger")}


class Snapshots:
    """The `shop_state` records of one ledger record: one per shop its outputs moved."""

    def __init__(self, cal: Calendar, partition: int) -> None:
        self.cal, self.partition = cal, partition

    def __call__(self, store: StateStore, outputs: list[Output], offset: int) -> list[Output]:
        shops = sorted({o["shop_id"] for o in outputs if o["type"] in PRESENT_TYPES})
        out = []
        for sid in shops:
            shop = store.shop(sid)
            if shop is not None:
                out.append(record(present(self.cal, shop), self.partition, offset))
        return out
