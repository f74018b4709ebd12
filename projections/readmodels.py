"""Dashboard read models and feeds, written by the evaluate step in its partition's commit.

After a batch is folded, every shop it touched gets its read model (tiering.view) rewritten
at `{ns}:{shop}:v`, the partition's platform summary `{ns}:{p<n>}:tiers` (shops per
industry and tier, zero counts removed) moves by the shops whose class changed, and both go into the same
fenced commit as the fold state and the ledger offset (projections/commit.py): a dashboard never
sees a read model ahead of or behind the state it was computed from.

Feeds: a changed read model is announced on the shop's stream `{ns}:{shop}:feed` (the whole view, in
the commit) and on the platform stream `{ns}:feed` (a summary line, right after the commit: that key
lies in no partition's slot), both trimmed to a bound. A shop is announced at most once per
`min_interval_s`; a change inside that interval waits (`pending`) and goes out with the first batch
committed after its interval passed (whichever shops that batch touched), or with `flush` when no
batch comes, so the last change always arrives. Feeds are presentation: their timing reads the wall
clock, the read models never do.

A shop's feed keeps only its last few views (the dashboard follows it from `$` and shows the
newest): a longer bound made the feeds most of Redis's memory, and so of every AOF rewrite.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from projections.commit import embed
from projections.keys import Keys
from projections.redis_store import RedisStore
from projections.scripts import queue_script
from tiering.close import Closer
from tiering.state import Clock
from tiering.view import shop_view, tier_class, view_instant

SHOP_FEED_MAXLEN = 10
PLATFORM_FEED_MAXLEN = 20_000
# KEYS: announced shops' feeds; ARGV: the bound, then each shop's view. Runs inside the partition's
# commit (one slot); the platform feed, a namespace-wide key, gets its lines once that committed.
SHOP_FEEDS_LUA = embed("shop_feeds", """
for i = 1, #KEYS do
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], '*', 'view', ARGV[i + 1])
end
return #KEYS
""")
# KEYS[1]: the platform feed; ARGV: the bound, then one summary line per announced shop, in order.
PLATFORM_FEED_LUA = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'summary', ARGV[i])
end
return #ARGV - 1
"""


@dataclass
class Prepared:
    """What one batch adds to its transaction."""

    views: dict[str, bytes] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    class_moves: dict[tuple[str, str], int] = field(default_factory=dict)
    class_counts: dict[str, int] = field(default_factory=dict)  # industry|tier -> count after the batch
    announce: list[tuple[str, bytes, dict[str, Any]]] = field(default_factory=list)  # shop, view, summary


class ReadModels:
    """Read models and feeds of one ledger partition (one per PartitionProcessor)."""

    def __init__(self, closer: Closer, keys: Keys, partition: int, feeds: bool = True,
                 min_interval_s: float = 0.25) -> None:
        self.closer, self.keys, self.p = closer, keys, partition
        self.feeds, self.min_interval_s = feeds, min_interval_s
        self._announced: dict[str, bytes] = {}  # shop -> last view put on its feed
        self._last_at: dict[str, float] = {}  # shop -> monotonic time of that
        self._pending: dict[str, tuple[bytes, dict[str, Any]]] = {}

    def prepare(self, store: RedisStore) -> Prepared:
        """Compute the read models of the shops the batch touched (reads Redis, writes nothing)."""
        prep = Prepared()
        clock = store.clock
        at = view_instant(clock, self.closer)
        if at is None or clock.last_closed is None:
            return prep
        w, closed, open_b = store.loaded_marks
        if view_instant(Clock(watermark=w, last_closed=closed, open_boundary=open_b), self.closer) != at:
            shops = store.shop_ids()  # the partition's day (or cycle) moved on: every read model with it
        else:
            shops = store.touched_shops()
        if not shops:
            return prep
        store.load_shops(shops, clock.last_closed)
        store.fetch_counts_at({sid: at for sid in shops})
        for sid in shops:
            st = store.shop(sid)
            if st is None:
                continue
            view = shop_view(self.closer, store, st)
            if view is None:
                continue
            prep.views[sid] = orjson.dumps({**view, "partition": self.p})
            before, after = store.original_class(sid), tier_class(st)
            if before != after:
                if before is not None:
                    prep.class_moves[before] = prep.class_moves.get(before, 0) - 1
                prep.class_moves[after] = prep.class_moves.get(after, 0) + 1
            if not self.feeds:
                continue  # a rebuild: nobody follows its feeds
            prep.summaries[sid] = {"shop_id": sid, "partition": self.p, "industry": view["industry"],
                                   "tier": view["tier"], "projected_tier": view["projected_tier"],
                                   "as_of": view["as_of"], "cycle": view["cycle"]["id"],
                                   "effective_members": view["indicators"]["effective_members"]["value"],
                                   "total_gmv_cents": view["indicators"]["member_gmv_share"]["denominator"]}
        if any(prep.class_moves.values()):  # absolute counts, so a rebuild writes the same hash
            stored = store.r.hgetall(self.keys.tiers(self.p))
            counts = {k.decode(): int(v) for k, v in stored.items()}
            for (industry, tier), n in prep.class_moves.items():
                name = f"{industry}|{tier}"
                counts[name] = counts.get(name, 0) + n
            prep.class_counts = counts
        if self.feeds:
            self.throttle(prep, time.monotonic())
        return prep

    def throttle(self, prep: Prepared, now: float) -> None:
        """Announce the batch's changed views whose shop's interval passed, hold back the others,
        and announce, with this batch, the held-back views of other shops that are now due."""
        interval = self.min_interval_s
        for sid, raw in prep.views.items():
            if self._announced.get(sid) == raw:
                self._pending.pop(sid, None)
            elif now - self._last_at.get(sid, -1e9) >= interval:
                prep.announce.append((sid, raw, prep.summaries[sid]))
            else:
                self._pending[sid] = (raw, prep.summaries[sid])
        prep.announce += [(sid, *self._pending[sid]) for sid in self.due(now) if sid not in prep.views]

    def write(self, pipe: Any, prep: Prepared) -> None:
        """Add the batch's read-model writes, and its shops' feeds, to the partition's commit."""
        k = self.keys
        if prep.views:
            pipe.mset({k.view(sid): raw for sid, raw in prep.views.items()})
        if prep.class_counts:
            gone = sorted(name for name, n in prep.class_counts.items() if n == 0)
            if gone:
                pipe.hdel(k.tiers(self.p), *gone)
            kept = {name: n for name, n in sorted(prep.class_counts.items()) if n != 0}
            if kept:
                pipe.hset(k.tiers(self.p), mapping=kept)
        self._shop_feeds(pipe, prep.announce)

    def after_commit(self, pipe: Any, prep: Prepared) -> None:
        """The partition committed: its announcements on the platform feed (queued on `pipe`)."""
        self._platform_feed(pipe, prep.announce)
        self.committed(prep)

    def committed(self, prep: Prepared, now: float | None = None) -> None:
        """The transaction went through: remember what the feeds announced."""
        now = time.monotonic() if now is None else now
        for sid, raw, _summary in prep.announce:
            self._announced[sid] = raw
            self._last_at[sid] = now
            self._pending.pop(sid, None)

    def due(self, now: float, force: bool = False) -> list[str]:
        """The held-back shops whose interval has passed at `now` (all of them with `force`).

        Safe to call while a pass's thread changes the throttle (the feed timer asks before it
        takes the evaluate lock): the held-back shops are copied in one C call first."""
        held = list(self._pending)
        return sorted(sid for sid in held if force or now - self._last_at.get(sid, -1e9) >= self.min_interval_s)

    def flush(self, client: Any, force: bool = False) -> int:
        """Announce pending changes whose interval has passed (all of them with `force`)."""
        now = time.monotonic()
        due = self.due(now, force)
        if not due:
            return 0
        pipe = client.pipeline(transaction=False)
        items = [(sid, *self._pending[sid]) for sid in due]
        self._shop_feeds(pipe, items)
        self._platform_feed(pipe, items)
        pipe.execute()
        for sid in due:
            self._announced[sid] = self._pending.pop(sid)[0]
            self._last_at[sid] = now
        return len(due)

    def _shop_feeds(self, pipe: Any, items: list[tuple[str, bytes, dict[str, Any]]]) -> None:
        """Announce (shop, view, summary)s on their shops' feeds (one script on the partition's slot)."""
        if items:
            queue_script(pipe, SHOP_FEEDS_LUA, [self.keys.feed(sid) for sid, _v, _s in items],
                         [SHOP_FEED_MAXLEN, *(raw for _sid, raw, _s in items)])

    def _platform_feed(self, pipe: Any, items: list[tuple[str, bytes, dict[str, Any]]]) -> None:
        """Their summary lines on the platform feed, in order."""
        if items:
            queue_script(pipe, PLATFORM_FEED_LUA, [self.keys.platform_feed()],
                         [PLATFORM_FEED_MAXLEN, *(orjson.dumps(summary) for _sid, _v, summary in items)])
