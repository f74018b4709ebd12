"""What-if: re-fold the ledger with other rule parameters into a scratch namespace and report
what would change against the live namespace — shops per tier by industry, before and after,
and every shop-cycle whose assessed tier moves, with the indicators that decided it.

Nothing is emitted to the live topics (a rebuild never publishes), and the scratch namespace
is the caller's to keep or drop. The comparison reads the shops' tier histories (the last
`tiering.close.HISTORY_KEEP` cycles of each shop) from both namespaces.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

from plumbing.redis_clients import sync_redis
from projections import codec
from projections.keys import Keys
from projections.scripts import queue_mget
from tiering.params import Standard
from tiering.state import ShopState
from tiering.view import industry_of

INT_PARAMS = ("online_days_threshold", "lateness_ms", "quality_window_ms", "activity_window_ms",
              "conversion_window_ms", "grace_ms", "third_party_default_cap", "dedupe_cycles")
DAY_MS = 86_400_000


class WhatIfError(ValueError):
    """A what-if argument is malformed; the message says which and how."""


def parse_sets(items: list[str]) -> dict[str, int]:
    """`KEY=VALUE` rule parameters. Windows may be given in days: `quality_window_days=200`."""
    out: dict[str, int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise WhatIfError(f"--set {item!r}: expected KEY=VALUE")
        if key.endswith("_days") and f"{key[:-5]}_ms" in INT_PARAMS:
            key, factor = f"{key[:-5]}_ms", DAY_MS
        else:
            factor = 1
        if key not in INT_PARAMS:
            raise WhatIfError(f"--set {key}: not a rule parameter; known: {', '.join(INT_PARAMS)} "
                              "(windows also as *_days)")
        try:
            out[key] = int(value) * factor
        except ValueError:
            raise WhatIfError(f"--set {key}={value}: not an integer") from None
    return out


def load_standards(path: str | Path) -> dict[str, Standard]:
    """Industry standards as JSON: {"industry" or "*": {the five min_* fields}}."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WhatIfError(f"--standards {path}: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise WhatIfError(f"--standards {path}: expected an object of industry -> standard")
    out: dict[str, Standard] = {}
    for industry, std in raw.items():
        try:
            out[industry] = Standard.from_json(std)
        except (KeyError, TypeError, ValueError) as exc:
            raise WhatIfError(f"--standards {path}: industry {industry!r}: missing or bad field {exc}") from None
        for f in ("min_member_gmv_share", "min_quality_member_ratio", "min_benefit_penetration",
                  "min_new_member_conversion"):
            if not Fraction(0) <= getattr(out[industry], f) <= Fraction(1):
                raise WhatIfError(f"--standards {path}: {industry}.{f} must be within [0, 1]")
    return out


def shop_states(client: Any, namespace: str, partitions: int) -> dict[str, ShopState]:
    keys = Keys(namespace)
    pipe = client.pipeline(transaction=False)
    for p in range(partitions):
        pipe.smembers(keys.shops(p))
    by_partition = [sorted(s.decode() for s in members) for members in pipe.execute()]
    pipe = client.pipeline(transaction=False)  # one MGET per partition: its shops share its slot
    for p, shops in enumerate(by_partition):
        if shops:
            queue_mget(pipe, [Keys(namespace, home=p).shop(s) for s in shops])
    values = iter(pipe.execute())
    states = {s: v for shops in by_partition if shops for s, v in zip(shops, next(values), strict=True)}
    return {s: codec.decode_shop(v) for s, v in sorted(states.items()) if v is not None}


def compare(before: dict[str, ShopState], after: dict[str, ShopState]) -> dict[str, Any]:
    def per_tier(states: dict[str, ShopState]) -> dict[str, dict[str, int]]:
        c: Counter[tuple[str, str]] = Counter((industry_of(s), s.tier or "unassessed") for s in states.values())
        out: dict[str, dict[str, int]] = {}
        for (industry, tier), n in sorted(c.items()):
            out.setdefault(industry, {})[tier] = n
        return out

    moves = []
    for sid in sorted(before.keys() | after.keys()):
        b = {h["cycle"]: h for h in (before[sid].history if sid in before else [])}
        a = {h["cycle"]: h for h in (after[sid].history if sid in after else [])}
        for cycle in sorted(a.keys() | b.keys()):
            hb, ha = b.get(cycle), a.get(cycle)
            tb, ta = (hb or {}).get("tier"), (ha or {}).get("tier")
            if tb == ta:
                continue
            cb, ca = (hb or {}).get("criteria", {}), (ha or {}).get("criteria", {})
            moves.append({"shop_id": sid, "industry": industry_of(after.get(sid) or before[sid]), "cycle": cycle,
                          "before": tb, "after": ta, "indicators": (ha or hb or {}).get("indicators", {}),
                          "decided_by": sorted(k for k in cb.keys() | ca.keys() if cb.get(k) != ca.get(k))})
    return {"shops": len(before.keys() | after.keys()), "tiers_before": per_tier(before),
            "tiers_after": per_tier(after), "moves": moves}


def report_namespaces(redis_url: str, before_ns: str, after_ns: str, partitions: int) -> dict[str, Any]:
    client = sync_redis(redis_url)
    try:
        return compare(shop_states(client, before_ns, partitions), shop_states(client, after_ns, partitions))
    finally:
        client.close()


def table(report: dict[str, Any]) -> str:
    """The report for a person: tier counts before → after by industry, then the moves; columns
    as wide as their widest cell, two spaces apart."""
    lines = [f"what-if over {report['shops']} shops: {len(report['moves'])} shop-cycle tier move(s)", ""]
    tiers = ("premium", "potential", "improving", "substandard", "unassessed")
    counts = [["industry", *tiers]]
    for industry in sorted(report["tiers_before"].keys() | report["tiers_after"].keys()):
        b, a = report["tiers_before"].get(industry, {}), report["tiers_after"].get(industry, {})
        counts.append([industry, *(f"{b.get(t, 0)} -> {a.get(t, 0)}" for t in tiers)])
    lines += grid(counts, right=range(1, len(tiers) + 1))
    if report["moves"]:
        moves = [["shop", "cycle", "before", "after", "decided by"]]
        moves += [[m["shop_id"], m["cycle"], m["before"] or "-", m["after"] or "-", ", ".join(m["decided_by"])]
                  for m in report["moves"]]
        lines += ["", *grid(moves)]
    return "\n".join(lines)


def grid(rows: list[list[str]], right: Iterable[int] = ()) -> list[str]:
    """Rows of cells as aligned text: each column as wide as its widest cell, two spaces between
    columns, the columns numbered in `right` right-aligned; no trailing spaces."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    flush_right = set(right)
    return ["  ".join(cell.rjust(w) if i in flush_right else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip() for row in rows]
