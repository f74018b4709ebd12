"""Builders for input events, so tests read like the rulebook."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tiering.fold import Folder
from tiering.outputs import Output
from tiering.params import RuleParams
from tiering.state import StateStore

TZ = ZoneInfo("Asia/Shanghai")
HOUR = 3_600_000
DAY = 24 * HOUR
_ids = itertools.count(1)

TEST_STANDARD = {"min_effective_members": 2, "min_member_gmv_share": 0.5, "min_quality_member_ratio": 0.5,
                 "min_benefit_penetration": 0.5, "min_new_member_conversion": 0.5}


def at(y: int, m: int, d: int, h: int = 0, minute: int = 0) -> int:
    """Epoch ms of a local (Asia/Shanghai) time."""
    return int(datetime(y, m, d, h, minute, tzinfo=TZ).timestamp() * 1000)


def ev(etype: str, ts: int, **fields: Any) -> dict[str, Any]:
    return {"event_id": fields.pop("event_id", f"b{next(_ids)}"), "type": etype, "ts": ts, **fields}


def standard(ts: int = 1_640_966_400_000, industry: str = "test", effective_from: int = 0,
             **mins: Any) -> dict[str, Any]:
    return ev("industry_standard_changed", ts, industry=industry, effective_from=effective_from,
              standard={**TEST_STANDARD, **mins})


def profile(shop: str, ts: int, **fields: Any) -> dict[str, Any]:
    return ev("shop_profile_changed", ts, shop_id=shop, **fields)


def join(shop: str, user: str, ts: int, channel: str = "storefront",
         join_type: str = "registration") -> dict[str, Any]:
    return ev("member_joined", ts, shop_id=shop, user_id=user, channel=channel, join_type=join_type)


def leave(shop: str, user: str, ts: int) -> dict[str, Any]:
    return ev("member_left", ts, shop_id=shop, user_id=user)


def order(shop: str, user: str, ts: int, cents: int = 10_000) -> dict[str, Any]:
    return ev("order_paid", ts, shop_id=shop, order_id=f"o{next(_ids)}", user_id=user, amount_cents=cents)


def redeem(shop: str, user: str, ts: int, btype: str = "member_coupon", stage: str = "used") -> dict[str, Any]:
    return ev("benefit_redeemed", ts, shop_id=shop, user_id=user, benefit_id="b1", benefit_type=btype, stage=stage)


def benefit(shop: str, ts: int, status: str = "online", bid: str = "b1") -> dict[str, Any]:
    return ev("benefit_config_changed", ts, shop_id=shop, benefit_id=bid, benefit_type="member_coupon",
              status=status)


def join_setting(shop: str, ts: int, mode: str) -> dict[str, Any]:
    return ev("join_setting_changed", ts, shop_id=shop, mode=mode)


def clock(ts: int) -> dict[str, Any]:
    return ev("clock_advanced", ts)


def close_through(boundary: int) -> dict[str, Any]:
    """A clock_advanced that closes every boundary up to `boundary` (12 h lateness)."""
    return clock(boundary + 12 * HOUR)


def premium_shop(shop: str, start: int, industry: str = "test") -> list[dict[str, Any]]:
    """Events that make `shop` premium for the cycle starting at `start` under TEST_STANDARD."""
    return [profile(shop, start, industry=industry), benefit(shop, start + HOUR),
            join(shop, f"{shop}-p1", start + 2 * HOUR), join(shop, f"{shop}-p2", start + 2 * HOUR),
            order(shop, f"{shop}-p1", start + 3 * HOUR), order(shop, f"{shop}-p2", start + 3 * HOUR),
            redeem(shop, f"{shop}-p1", start + 4 * HOUR), redeem(shop, f"{shop}-p2", start + 4 * HOUR)]


def keep_premium(shop: str, start: int) -> list[dict[str, Any]]:
    """Activity in the cycle starting at `start` that keeps premium_shop's shop premium."""
    return [order(shop, f"{shop}-p1", start + DAY), order(shop, f"{shop}-p2", start + DAY),
            redeem(shop, f"{shop}-p1", start + DAY), redeem(shop, f"{shop}-p2", start + DAY)]


class Run:
    """Folds events through one store and keeps every output.

    With a Redis store each event is its own batch (load, prefetch, fold, commit), so the
    suite exercises the unit of work, the overlay and the offset fence on every step; the
    store forgets its cache before every third batch, so both a warm batch (state kept from
    the last commit) and a cold one (everything read back from Redis) fold every rule."""

    def __init__(self, params: RuleParams | None = None, store: StateStore | None = None,
                 redis_factory: Any = None) -> None:
        self.folder = Folder(params or RuleParams())
        self.processor = None
        if redis_factory is not None:
            from projections.processor import PartitionProcessor
            store = redis_factory(params or RuleParams())
            self.processor = PartitionProcessor(self.folder, store)
        self.store: Any = store if store is not None else self.folder.new_store()
        self.outputs: list[Output] = []
        self.offset = -1

    def feed(self, *events: dict[str, Any]) -> Run:
        for e in events:
            if self.processor is None:
                self.outputs.extend(self.folder.fold(self.store, e))
                continue
            self.offset += 1
            if self.offset % 3 == 2:
                self.processor.store.forget_cache()
            outs, last = self.processor.fold_batch([(self.offset, e)])
            assert last == self.offset
            self.processor.commit(last)
            self.outputs.extend(outs)
        return self

    def of(self, type_: str, shop: str | None = None, **match: Any) -> list[Output]:
        return [o for o in self.outputs if o["type"] == type_ and (shop is None or o.get("shop_id") == shop)
                and all(o.get(k) == v for k, v in match.items())]
