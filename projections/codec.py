"""Encode and decode fold state for Redis: compact, deterministic JSON (sets as sorted lists)."""

from __future__ import annotations

from typing import Any

import orjson

from tiering.params import Standard
from tiering.state import Clock, CycleCounters, Fact, Member, ShopState


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def encode_clock(c: Clock) -> bytes:
    standards = {ind: [[ts, seq, std.to_json()] for ts, seq, std in tl] for ind, tl in c.standards.items()}
    return dumps({"watermark": c.watermark, "last_closed": c.last_closed,
                  "open_boundary": c.open_boundary, "seq": c.seq, "timers": c.timers, "standards": standards,
                  "promos": c.promos, "stats": c.stats})


def decode_clock(raw: bytes | None) -> Clock:
    if raw is None:
        return Clock()
    d = orjson.loads(raw)
    standards = {ind: [(ts, seq, Standard.from_json(s)) for ts, seq, s in tl] for ind, tl in d["standards"].items()}
    return Clock(watermark=d["watermark"], last_closed=d["last_closed"],
                 open_boundary=d["open_boundary"], seq=d["seq"], timers=[tuple(t) for t in d["timers"]],
                 standards=standards, promos=[tuple(p) for p in d["promos"]], stats=d["stats"])


def encode_shop(s: ShopState) -> bytes:
    return dumps(s)  # orjson serialises (slotted) dataclasses field by field, in order


def decode_shop(raw: bytes) -> ShopState:
    return ShopState(**orjson.loads(raw))


def encode_counters(c: CycleCounters) -> bytes:
    return dumps([c.total_gmv, c.member_gmv, sorted(c.payers), sorted(c.benefit_users), c.cohort,
                  sorted(c.converted), c.third_party_joins, c.third_party_reached, c.third_party_ahead])


def decode_counters(raw: bytes) -> CycleCounters:
    """Also reads the seven-field form written before 2026-12-01 (one join ts per cohort user)."""
    t, m, payers, benefit, cohort, converted, tp, *rest = orjson.loads(raw)
    reached, ahead = rest if rest else (None, [])
    cohort = {u: j if isinstance(j, list) else [j] for u, j in cohort.items()}
    return CycleCounters(t, m, set(payers), set(benefit), cohort, set(converted), tp, reached, ahead)


def decode_fact(raw: bytes) -> Fact:
    ts, seq, shop, user, kind = orjson.loads(raw)
    return (ts, seq, shop, user, kind)


def encode_member(m: Member) -> bytes:
    return dumps([m.member, m.counted, m.last_paid, m.last_activity, m.protected, m.membership_ts,
                  m.membership_seq])


def decode_member(raw: bytes) -> Member:
    return Member(*orjson.loads(raw))  # a five-field record (before 2026-12-01) takes the defaults
