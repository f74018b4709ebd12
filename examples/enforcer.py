"""An example downstream service: which recruitment channels each shop has blocked, from tierstream's topics.

    eval "$(tierstream devstack env)"; python -m examples.enforcer [--idle-seconds N]

It bootstraps from the compacted `shop-state` topic (each shop's present, no history needed),
then follows `tier-changes` and `recruitment-throttles` and keeps, per shop, the channels its
active restrictions block. It is idempotent under redelivery: an output seen again (same
`event_id`, same payload) since the bootstrap is dropped, and applying any output twice in a row
changes nothing.

Where to start following: a `shop-state` record is published only after the outputs it reflects
were acknowledged, but the record of an output acknowledged just before the bootstrap may not be
on `shop-state` yet. So the follow starts `margin_s` (default 60 s, far more than one worker pass)
before the bootstrap, by record timestamp; the outputs of that window that a snapshot already
reflects are applied again, and since every output sets what it speaks of (a tier, a restriction,
a status) rather than adding to it, the table ends as it would have. Changes are reported
(`on_change`) only once the follow has caught up with where it stood at the bootstrap, so
re-applying that window never flaps a channel.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from plumbing.settings import Settings
from plumbing.topics import SHOP_STATE, started
from tiering.shopstate import Present, blocked_channels, present_of

FOLLOWED = ("tier-changes", "recruitment-throttles")
SEEN_IDS = 200_000  # output ids remembered for dedupe; a redelivery comes soon after the original
Blocked = dict[str, dict[str, list[str]]]  # shop -> channel -> modes


class Table:
    """The enforcer's state, no I/O: each shop's present and the channels blocked."""

    def __init__(self) -> None:
        self.shops: dict[str, Present] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0

    def bootstrap(self, record: dict[str, Any]) -> None:
        """A `shop_state` record: the shop's present, as it stands."""
        self.shops[record["shop_id"]] = Present(record["shop_id"], present_of(record))

    def apply(self, output: dict[str, Any]) -> bool:
        """A followed output; whether the shop's blocked channels changed."""
        eid = output["event_id"]
        if eid in self._seen:
            self.duplicates += 1
            return False
        self._seen[eid] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        sid = output["shop_id"]
        shop = self.shops.setdefault(sid, Present(sid))
        before = blocked_channels(shop.p)
        shop.apply(output)
        return blocked_channels(shop.p) != before

    def blocked(self) -> Blocked:
        """Every shop with at least one blocked channel."""
        return {sid: b for sid, p in sorted(self.shops.items()) if (b := blocked_channels(p.p))}

    def tiers(self) -> dict[str, str | None]:
        return {sid: p.p["tier"] for sid, p in sorted(self.shops.items())}


async def _read_to_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                       handle: Callable[[Any], None]) -> None:
    """Read the assigned partitions `tps` from their positions to the end offsets they have now."""
    ends = await consumer.end_offsets(tps)
    while any([await consumer.position(tp) < ends[tp] for tp in tps]):
        for tp, records in (await consumer.getmany(*tps, timeout_ms=1000)).items():
            for r in records:
                if r.offset < ends[tp]:
                    handle(r)


async def run(settings: Settings, idle_seconds: float | None = None, margin_s: float = 60.0,
              on_change: Callable[[str, dict[str, list[str]]], None] | None = None,
              table: Table | None = None) -> Table:
    """Bootstrap, then follow until `idle_seconds` pass with nothing new (None: until cancelled)."""
    table = table if table is not None else Table()
    consumer = await started(AIOKafkaConsumer(bootstrap_servers=settings.kafka, group_id=None,
                                              enable_auto_commit=False, auto_offset_reset="earliest"))
    try:
        parts = range(settings.partitions)
        followed = [TopicPartition(settings.topic(t), p) for t in FOLLOWED for p in parts]
        states = [TopicPartition(settings.topic(SHOP_STATE), p) for p in parts]
        # 1. where to follow from: `margin_s` before now (the end, where nothing is that old)
        since = int((time.time() - margin_s) * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(followed, since))
        caught_up_at = await consumer.end_offsets(followed)
        start = {tp: found[tp].offset if found.get(tp) is not None else caught_up_at[tp] for tp in followed}
        # 2. the present of every shop, from the compacted topic
        consumer.assign(states)
        await consumer.seek_to_beginning(*states)
        await _read_to_end(consumer, states, lambda r: table.bootstrap(orjson.loads(r.value)))
        # 3. follow; report changes once past where the follow stood at the bootstrap
        consumer.assign(followed)
        for tp in followed:
            consumer.seek(tp, start[tp])
        await _follow(consumer, table, caught_up_at, idle_seconds, on_change)
    finally:
        await consumer.stop()
    return table


async def _follow(consumer: AIOKafkaConsumer, table: Table, caught_up_at: dict[TopicPartition, int],
                  idle_seconds: float | None, on_change: Callable[[str, dict[str, list[str]]], None] | None) -> None:
    idle_since = time.monotonic()
    while idle_seconds is None or time.monotonic() - idle_since < idle_seconds:
        batch = await consumer.getmany(timeout_ms=500)
        for tp, records in batch.items():
            for r in records:
                o = orjson.loads(r.value)
                if table.apply(o) and on_change is not None and r.offset >= caught_up_at[tp]:
                    on_change(o["shop_id"], blocked_channels(table.shops[o["shop_id"]].p))
        if any(batch.values()):
            idle_since = time.monotonic()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m examples.enforcer", description=__doc__.splitlines()[0])
    ap.add_argument("--idle-seconds", type=float, help="stop after this long with nothing new (default: run on)")
    ap.add_argument("--margin-seconds", type=float, default=60.0, help="follow from this long before the bootstrap")
    args = ap.parse_args(argv)

    def report(shop: str, blocked: dict[str, list[str]]) -> None:
        print(orjson.dumps({"shop_id": shop, "blocked": blocked}).decode(), flush=True)

    try:
        table = asyncio.run(run(Settings.from_env(), args.idle_seconds, args.margin_seconds, report))
    except KeyboardInterrupt:
        return 130
    print(f"enforcer: {len(table.shops)} shops, {len(table.blocked())} with blocked channels, "
          f"{table.duplicates} redelivered outputs dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
