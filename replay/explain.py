"""`tierstream explain SHOP [--cycle ID]`: a shop's assessment for a cycle, told to a person.

The assessment is the `tier_assessed` output the pipeline published for the shop and cycle
(the latest cycle by default): each indicator beside its standard, met or not, and the tier.
For the open cycle (nothing published yet) it is the live read model's projection. Below it,
the events that fed the cycle, read back from the shop's ledger partition: the shop's own
events with an event time in the cycle, and the global configuration changes of the period.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson

from plumbing.partitioner import partition_for
from plumbing.redis_clients import sync_redis
from plumbing.settings import Settings
from plumbing.topics import LEDGER
from projections.keys import Keys, resolve_namespace_sync
from replay.export import read_to_end
from tiering.contract import GLOBAL_TYPES, SHOP_ID_RULE, is_shop_id
from tiering.params import RuleParams

MAX_EVENTS_SHOWN = 200
_INDICATOR_STANDARD = {
    "benefit_online_days": None,  # against the online-days threshold
    "effective_members": "min_effective_members",
    "member_gmv_share": "min_member_gmv_share",
    "quality_member_ratio": "min_quality_member_ratio",
    "benefit_penetration": "min_benefit_penetration",
}


class ExplainError(LookupError):
    """Nothing to explain (unknown shop or cycle); the message says what was looked for."""


async def _scan(settings: Settings, topic: str, partition: int, keep: Any) -> list[dict[str, Any]]:
    """The decoded records of one partition that `keep` accepts."""
    records = await read_to_end(settings, [settings.topic(topic)], lambda r: keep(orjson.loads(r.value)),
                                partitions=[partition])
    return [orjson.loads(r.value) for r in records]


def _cycle_bounds(params: RuleParams, cycle_id: str) -> tuple[int, int]:
    try:
        day = date.fromisoformat(cycle_id)
    except ValueError:
        raise ExplainError(f"--cycle {cycle_id!r}: expected the cycle's first day, e.g. 2023-01-16") from None
    cal = params.calendar
    start = cal.cycle_start(int(datetime(day.year, day.month, day.day, 12, tzinfo=cal.tz).timestamp() * 1000))
    if cal.cycle_id(start) != cycle_id:
        raise ExplainError(f"--cycle {cycle_id}: cycles start on the 1st and the 16th (did you mean "
                           f"{cal.cycle_id(start)}?)")
    return start, cal.next_boundary(start)


async def explain(settings: Settings, shop: str, cycle: str | None = None,
                  params: RuleParams | None = None) -> dict[str, Any]:
    """The assessment and the events that fed it, as data (`render` makes the text)."""
    params = params or RuleParams()
    if not is_shop_id(shop):
        raise ExplainError(f"shop {shop[:40]!r} is not a shop id ({SHOP_ID_RULE})")
    if cycle is not None:
        _cycle_bounds(params, cycle)  # a malformed cycle id is told before anything is read
    part = partition_for(shop.encode(), settings.partitions)
    assessed = await _scan(settings, "tier-assessments", part,
                           lambda o: o.get("shop_id") == shop and o.get("type") == "tier_assessed")
    r: Any = sync_redis(str(settings.redis))
    try:
        raw_view = r.get(Keys(resolve_namespace_sync(r, settings.namespace), settings.partitions).view(shop))
    finally:
        r.close()
    view = orjson.loads(raw_view) if raw_view is not None else None
    if not assessed and view is None:
        raise ExplainError(f"shop {shop!r}: no assessment published and no live read model "
                           f"(namespace {settings.namespace!r}, topic prefix {settings.topic_prefix!r})")
    chosen = None
    if cycle is None:
        chosen = assessed[-1] if assessed else None
        cycle = chosen["cycle"] if chosen else view["cycle"]["id"]  # type: ignore[index]
    else:
        found = [a for a in assessed if a.get("cycle") == cycle]
        chosen = found[-1] if found else None
        if chosen is None and (view is None or view["cycle"]["id"] != cycle):
            known = sorted({a["cycle"] for a in assessed})
            raise ExplainError(f"shop {shop!r} has no assessment for cycle {cycle}; assessed cycles: "
                               f"{', '.join(known) or 'none'}")
    assert cycle is not None
    a, b = _cycle_bounds(params, cycle)
    events = await _scan(settings, LEDGER, part, lambda o: (o.get("shop_id") == shop and a <= o.get("ts", -1) < b)
                         or (o.get("type") in GLOBAL_TYPES and o.get("ts", -1) < b))
    return {"shop_id": shop, "cycle": cycle, "start": a, "end": b, "assessment": chosen,
            "projection": view if chosen is None else None, "events": events, "tz": params.tz}


def _fmt_ts(ts: int, tz: Any) -> str:
    return datetime.fromtimestamp(ts / 1000, tz).strftime("%Y-%m-%d %H:%M:%S")


def render(x: dict[str, Any], params: RuleParams | None = None) -> str:
    params = params or RuleParams()
    tz = params.calendar.tz
    lines = [f"shop {x['shop_id']}, cycle {x['cycle']} ({_fmt_ts(x['start'], tz)} to {_fmt_ts(x['end'], tz)}, "
             f"{x['tz']})"]
    if x["assessment"] is not None:
        o = x["assessment"]
        std, ind, met = o.get("standard", {}), o.get("indicators", {}), o.get("criteria", {})
        lines.append(f"assessed: {o.get('tier')} (raw {o.get('raw_tier', o.get('tier'))}), "
                     f"standard of industry {std.get('industry', '?')}")
        for name, std_field in _INDICATOR_STANDARD.items():
            target = (f">= {params.online_days_threshold + 1} days" if std_field is None
                      else f">= {std.get(std_field, '?')}")
            mark = {True: "met", False: "NOT met"}.get(met.get(name), "")
            lines.append(f"  {name:<22} {ind.get(name)!s:<12} {target:<14} {mark}")
        extra = {k: v for k, v in ind.items() if k not in _INDICATOR_STANDARD}
        if extra:
            lines.append("  from: " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))
    else:
        v = x["projection"]
        lines.append(f"open cycle, not assessed yet: projected {v['projected_tier']} (as of "
                     f"{_fmt_ts(v['as_of'], tz)}), current tier {v['tier']}")
        for name, i in v["indicators"].items():
            lines.append(f"  {name:<22} {i['value']!s:<12} >= {i['standard']!s:<11} "
                         f"{'met' if i.get('met') else 'NOT met'}  ({i['numerator']}/{i['denominator']})")
    evs = x["events"]
    by_type: dict[str, int] = {}
    for e in evs:
        by_type[e["type"]] = by_type.get(e["type"], 0) + 1
    lines.append(f"events that fed it: {len(evs)} (" + ", ".join(f"{t} {n}" for t, n in sorted(by_type.items()))
                 + ")")
    for e in sorted(evs, key=lambda e: (e.get("ts", 0), e.get("event_id", "")))[:MAX_EVENTS_SHOWN]:
        detail = {k: v for k, v in e.items() if k not in ("type", "ts", "event_id", "shop_id")}
        lines.append(f"  {_fmt_ts(e['ts'], tz)}  {e['type']:<28} {e.get('event_id', '')}  "
                     + " ".join(f"{k}={v}" for k, v in detail.items()))
    if len(evs) > MAX_EVENTS_SHOWN:
        lines.append(f"  ... {len(evs) - MAX_EVENTS_SHOWN} more (tierstream explain --json for all)")
    return "\n".join(lines)
