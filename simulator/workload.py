"""A realistic, seeded workload in the input contract (`tierstream simulate`).

Shops across the industries with Pareto-skewed sizes (a few large, many small);
members who join through every channel and buy at skewed rates; orders from
non-members too; benefits going on and off; redemptions including points claims;
join-setting and profile changes; a promo window; out-of-order arrival within the
lateness; occasional duplicate deliveries and malformed lines; `clock_advanced`
so the last cycle closes. The same config and seed give the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from tiering.calendar import DAY_MS
from tiering.contract import BENEFIT_TYPES, CHANNELS

INDUSTRIES = ("fmcg", "food", "apparel", "electronics", "appliances", "other")
CHANNEL_WEIGHTS = (15, 20, 15, 40, 10)
HOUR_MS = 3_600_000
Event = dict[str, Any]


@dataclass(frozen=True)
class SimConfig:
    shops: int = 100
    days: int = 45
    seed: int = 0
    start: str = "2023-01-01"
    events_per_shop_day: float = 20.0
    duplicate_rate: float = 0.002
    malformed_rate: float = 0.0005
    jitter_ms: int = 2 * HOUR_MS


@dataclass
class _Shop:
    shop_id: str
    weight: float
    members: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)
    benefits: dict[str, bool] = field(default_factory=dict)
    mode: str = "registration"
    next_user: int = 0


class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        d = date.fromisoformat(cfg.start)
        self.t0 = int(datetime(d.year, d.month, d.day, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000)
        self.n = 0
        self.days_done = 0
        self.shops = [self._new_shop(i) for i in range(cfg.shops)]
        total = sum(s.weight for s in self.shops)
        self.per_weight = cfg.events_per_shop_day * cfg.shops / total

    def _new_shop(self, i: int) -> _Shop:
        return _Shop(f"shop-{i:05d}", min(self.rng.paretovariate(1.3), 150.0))

    def _id(self) -> str:
        self.n += 1
        return f"sim-{self.cfg.seed}-{self.n}"

    def _ev(self, etype: str, ts: int, **fields: Any) -> Event:
        return {"event_id": self._id(), "type": etype, "ts": ts, **fields}

    def setup(self) -> list[Event]:
        out = [self._ev("promo_window_declared", self.t0, name="mid-sale",
                        start=self.t0 + 10 * DAY_MS, end=self.t0 + 13 * DAY_MS),
               self._ev("industry_standard_changed", self.t0, industry="fmcg",
                        effective_from=self.t0 + 30 * DAY_MS,
                        standard={"min_effective_members": 150, "min_member_gmv_share": 0.12,
                                  "min_quality_member_ratio": 0.2, "min_benefit_penetration": 0.1,
                                  "min_new_member_conversion": 0.2})]
        for s in self.shops:
            ts = self.t0 + self.rng.randrange(HOUR_MS)
            profile: dict[str, Any] = {"industry": self.rng.choice(INDUSTRIES)}
            if self.rng.random() < 0.3:
                profile["third_party"] = {"opened_before_2021": True,
                                          "baseline_15d": self.rng.randrange(5, 200)}
            if self.rng.random() < 0.05:
                profile["member_pass"] = True
            out.append(self._ev("shop_profile_changed", ts, shop_id=s.shop_id, **profile))
            s.mode = "registration" if self.rng.random() < 0.7 else "purchase"
            out.append(self._ev("join_setting_changed", ts, shop_id=s.shop_id, mode=s.mode))
            for b in range(self.rng.randrange(0, 4)):
                bid = f"b{b}"
                s.benefits[bid] = True
                out.append(self._ev("benefit_config_changed", ts + 1, shop_id=s.shop_id, benefit_id=bid,
                                    benefit_type=self.rng.choice(BENEFIT_TYPES), status="online"))
        return out

    def day(self, d: int) -> list[Event]:
        base = self.t0 + d * DAY_MS
        out: list[Event] = []
        for s in self.shops:
            lam = s.weight * self.per_weight
            n = int(lam) + (1 if self.rng.random() < lam - int(lam) else 0)
            for _ in range(n):
                e = self._shop_event(s, base + self.rng.randrange(DAY_MS))
                if e is not None:
                    out.append(e)
        return out

    def _shop_event(self, s: _Shop, ts: int) -> Event | None:
        r = self.rng.random()
        sid = s.shop_id
        if r < 0.15 or not s.members:
            s.next_user += 1
            user = f"u{s.next_user}"
            s.members.append(user)
            s.recent = [*s.recent, user][-50:]
            channel = self.rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
            return self._ev("member_joined", ts, shop_id=sid, user_id=user, channel=channel, join_type=s.mode)
        if r < 0.17:
            user = s.members.pop(self.rng.randrange(len(s.members)))
            return self._ev("member_left", ts, shop_id=sid, user_id=user)
        if r < 0.70:
            return self._order(s, ts)
        if r < 0.96:
            user = self._active_member(s)
            btype = self.rng.choice(BENEFIT_TYPES)
            stage = self.rng.choice(("claimed", "used")) if btype == "points_exchange" else "used"
            return self._ev("benefit_redeemed", ts, shop_id=sid, user_id=user,
                            benefit_id=f"b{self.rng.randrange(4)}", benefit_type=btype, stage=stage)
        return self._config(s, ts)

    def _active_member(self, s: _Shop) -> str:
        # skewed activity: a small head of members does most of the buying
        k = len(s.members)
        return s.members[min(int(self.rng.paretovariate(1.1)) - 1, k - 1) if self.rng.random() < 0.6
                         else self.rng.randrange(k)]

    def _order(self, s: _Shop, ts: int) -> Event:
        r = self.rng.random()
        if r < 0.2:
            user = f"guest{self.rng.randrange(100_000)}"
        elif r < 0.35 and s.recent:
            user = self.rng.choice(s.recent)
        else:
            user = self._active_member(s)
        amount = int(self.rng.lognormvariate(8.5, 1.0))
        return self._ev("order_paid", ts, shop_id=s.shop_id, order_id=self._id(), user_id=user,
                        amount_cents=amount)

    def _config(self, s: _Shop, ts: int) -> Event:
        r = self.rng.random()
        if r < 0.7:
            bid = f"b{self.rng.randrange(4)}"
            s.benefits[bid] = not s.benefits.get(bid, False)
            return self._ev("benefit_config_changed", ts, shop_id=s.shop_id, benefit_id=bid,
                            benefit_type=BENEFIT_TYPES[int(bid[1:]) % len(BENEFIT_TYPES)],
                            status="online" if s.benefits[bid] else "offline")
        s.mode = "purchase" if s.mode == "registration" else "registration"
        return self._ev("join_setting_changed", ts, shop_id=s.shop_id, mode=s.mode)

    def lines(self) -> Iterator[bytes]:
        cfg, rng = self.cfg, self.rng
        yield from (orjson.dumps(e) for e in self.setup())
        for d in range(cfg.days):
            self.days_done = d  # for a progress report
            day = self.day(d)
            day.sort(key=lambda e: e["ts"] + rng.randrange(cfg.jitter_ms))
            day.append(self._ev("clock_advanced", self.t0 + (d + 1) * DAY_MS))
            for e in day:
                line = orjson.dumps(e)
                if rng.random() < cfg.malformed_rate:
                    yield line[: rng.randrange(1, len(line))]
                    continue
                yield line
                if rng.random() < cfg.duplicate_rate:
                    yield line
        yield orjson.dumps(self._ev("clock_advanced", self.t0 + (cfg.days + 16) * DAY_MS))


def write_simulation(cfg: SimConfig, path: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Write the workload as JSONL; `progress(days done, lines written)` is called as it goes."""
    n = 0
    sim = Simulator(cfg)
    with open(path, "wb") as f:
        for line in sim.lines():
            f.write(line + b"\n")
            n += 1
            if progress is not None and n % 1000 == 0:
                progress(sim.days_done, n)
    if progress is not None:
        progress(cfg.days, n)
    return n
