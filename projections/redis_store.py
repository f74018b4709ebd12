"""The Redis StateStore: one ledger partition's fold state, read and written as a unit of work.

A batch is `load()` → `prefetch(records)` → fold → `commit(offset)`. Reads come from what was
prefetched (a miss is fetched at once); writes are buffered and applied in one script together with
the partition's ledger offset, fenced by that offset (projections/commit.py), so a batch folded from
stale state (another worker took the partition) fails to commit instead of overwriting. Every key
lies in the partition's slot. Members live in Redis: a hash of records and two sorted sets scored by
`quality_until` and `effective_until`.

What a batch read stays cached for the next one while the partition's offset fence holds:
after a commit the store holds exactly what Redis holds, so the next `load()` keeps it if
the stored offset is still the one this store committed, and drops it otherwise (another
worker wrote the partition) or when the last batch did not commit (a fence, an error). A
warm batch then reads from Redis only what it has not seen: new shops, new members, event
ids. Member records are bounded (`MEMBER_CACHE`); shop states and counters are one per shop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import redis

from projections import codec
from projections.commit import commit_many
from projections.keys import Keys
from projections.members import RedisMembers
from projections.scripts import COUNTS_LUA, MEMBER_CACHE, MEMBERS_LUA, queue_script
from projections.store_reads import StoreReads
from tiering.params import RuleParams
from tiering.state import Clock, CycleCounters, Fact, ShopState
from tiering.view import tier_class


class RedisStore(StoreReads):
    """StateStore for one ledger partition, backed by Redis (see the module docstring)."""

    def __init__(self, client: redis.Redis, namespace: str, partition: int, params: RuleParams) -> None:
        self.r: Any = client  # redis-py's return types are unions of bytes/str/awaitables; bytes here
        self.keys, self.p, self.params = Keys(namespace, home=partition), partition, params
        self.cal = params.calendar
        self.clock = Clock()
        self.offset = -1
        self.loaded_marks: tuple[int | None, int | None, int] = (None, None, 0)
        self._counts_script = client.register_script(COUNTS_LUA)
        self.forget_cache()

    def forget_cache(self) -> None:
        """Drop everything read from Redis: the next batch reads it afresh."""
        self._warm = False  # the cache is what Redis holds at `self.offset` (set by a commit)
        self._shops: dict[str, ShopState | None] = {}
        self._stored_shops: dict[str, bytes] = {}  # shop -> its state as Redis holds it
        self._members: dict[str, RedisMembers] = {}
        self.cached_members = 0
        self._counters: dict[tuple[str, int], CycleCounters | None] = {}
        self._seen_cycles: set[int] = set()
        self._shop_list: list[str] | None = None
        self._orig_class: dict[str, tuple[str, str]] = {}  # shop -> read-model class as stored
        self._batch()

    def _batch(self) -> None:
        """What one batch writes or reads for itself alone."""
        self._new_shops: set[str] = set()
        self._touched: set[str] = set()
        self._written_shops: dict[str, bytes] = {}  # shop states the batch's transaction writes
        self._accessed: set[tuple[str, int]] = set()  # counters the batch asked for
        self._changed_members: list[RedisMembers] = []  # member indexes the batch changed
        self._dropped: set[tuple[str, int]] = set()
        self._seen_hits: dict[str, int] = {}  # ids of this batch found in a stored cycle's set -> that cycle
        self._remembered: dict[int, set[str]] = {}
        self._remembered_ids: set[str] = set()  # the union of _remembered's sets
        self._forget: list[int] = []
        self._deferred_new: list[Fact] = []
        self._deferred_all: list[Fact] | None = None
        self._touch_all = False

    # -- unit of work --------------------------------------------------------------------------

    def load(self) -> int:
        """Start a batch: read the clock and the partition's offset (-1 before the first record)."""
        pipe = self.r.pipeline(transaction=False)
        self.queue_load(pipe)
        return self.apply_load(iter(pipe.execute()))

    def queue_load(self, pipe: Any) -> None:
        """`load`'s reads, queued on a pipeline shared with other partitions; then `apply_load`."""
        pipe.get(self.keys.offset(self.p))
        pipe.get(self.keys.clock(self.p))
        pipe.smembers(self.keys.seen_cycles(self.p))

    def apply_load(self, results: Iterator[Any]) -> int:
        raw_offset, raw_clock, cycles = next(results), next(results), next(results)
        offset = int(raw_offset) if raw_offset is not None else -1
        if not self._warm or offset != self.offset:  # someone else wrote, or the last batch failed
            self.forget_cache()  # (and the last batch's own sets)
            self.clock = codec.decode_clock(raw_clock)
            self._seen_cycles = {int(c) for c in cycles}
            self.offset = offset
        else:
            self._batch()
        self._warm = False  # until this batch commits
        self.loaded_marks = (self.clock.watermark, self.clock.last_closed, self.clock.open_boundary)
        return self.offset

    def committed(self, offset: int) -> None:
        """The batch's transaction went through: the cache is what Redis holds at `offset`."""
        self.offset = offset
        self._stored_shops.update(self._written_shops)
        closed = self.clock.last_closed
        moved = closed != self.loaded_marks[1]  # a boundary closed in this batch
        for idx in self._members.values() if moved else self._changed_members:
            idx.settle(closed)
        for sid in (self._shops if self._touch_all else self._touched):
            state = self._shops.get(sid)
            if state is not None:
                self._orig_class[sid] = tier_class(state)
        if moved and closed is not None:  # closed cycles' counters are never read again
            for key in [key for key in self._counters if key[1] < closed]:
                del self._counters[key]
        if self.cached_members > MEMBER_CACHE:  # clean records only: settled above, refetched on use
            for idx in self._members.values():
                idx.cache.clear()
                idx.orig.clear()
            self.cached_members = 0
        self._warm = True  # (the batch's own sets are reset by the next load)

    def original_class(self, shop_id: str) -> tuple[str, str] | None:
        """(industry, tier) of the shop as stored before this batch (None for a new shop)."""
        return self._orig_class.get(shop_id)

    def commit(self, offset: int, also: Callable[[Any], None] | None = None) -> None:
        """Write every change of the batch and the new offset in one fenced commit (projections.commit).

        `also(pipe)` adds writes of its own to the same transaction (the read models)."""
        commit_many(self.r, [(self, offset, also)])

    def offset_key(self) -> str:
        return self.keys.offset(self.p)

    def write(self, pipe: Any, offset: int) -> None:
        """Queue the batch's changes and the new offset on its commit (`commit_many`'s Recorder)."""
        k, p = self.keys, self.p
        pipe.set(k.clock(p), codec.encode_clock(self.clock))
        pipe.set(k.offset(p), offset)
        if self._new_shops:
            pipe.sadd(k.shops(p), *sorted(self._new_shops))
        values: dict[str, bytes] = {}  # one MSET and one DEL for shop states and counters
        stored, written = self._stored_shops, self._written_shops
        for shop in sorted(self._touched):
            state = self._shops.get(shop)
            if state is not None:
                raw = codec.encode_shop(state)
                if stored.get(shop) != raw:  # an order changes counters and members, rarely the shop
                    values[k.shop(shop)] = written[shop] = raw
        dropped: list[str] = []
        for shop, cycle in sorted(self._accessed | self._dropped):
            c = self._counters.get((shop, cycle))
            if (shop, cycle) in self._dropped:
                dropped.append(k.counters(shop, cycle))
            elif c is not None and shop in self._touched:
                values[k.counters(shop, cycle)] = codec.encode_counters(c)
        if values:
            pipe.mset(values)
        if dropped:
            pipe.delete(*dropped)
        if self._changed_members:
            keys: list[str] = []
            args: list[Any] = []
            for idx in sorted(self._changed_members, key=lambda idx: idx.shop_id):
                idx.changes(keys, args)
            queue_script(pipe, MEMBERS_LUA, keys, args)
        for cycle, ids in sorted(self._remembered.items()):
            pipe.sadd(k.seen(p, cycle), *sorted(ids))
            pipe.sadd(k.seen_cycles(p), cycle)
        for cycle in self._forget:
            pipe.delete(k.seen(p, cycle))
            pipe.srem(k.seen_cycles(p), cycle)
        self._write_deferred(pipe)

    def _write_deferred(self, pipe: Any) -> None:
        key = self.keys.deferred(self.p)
        if self._deferred_all is not None:  # taken from at a close: rewrite what remains
            pipe.delete(key)
            rest = self._deferred_all + self._deferred_new
            if rest:
                pipe.rpush(key, *(codec.dumps(f) for f in rest))
        elif self._deferred_new:
            pipe.rpush(key, *(codec.dumps(f) for f in self._deferred_new))

    # -- StateStore ----------------------------------------------------------------------------

    def is_duplicate(self, event_id: str) -> bool:
        return event_id in self._seen_hits or event_id in self._remembered_ids

    def remember(self, cycle_start: int, event_id: str) -> None:
        ids = self._remembered.get(cycle_start)
        if ids is None:
            ids = self._remembered[cycle_start] = set()
            self._seen_cycles.add(cycle_start)
        ids.add(event_id)
        self._remembered_ids.add(event_id)

    def forget_before(self, cycle_start: int) -> None:
        """A close in the middle of a batch forgets for the rest of it too: the batch's hits in the
        forgotten cycles' stored sets no longer count, as in the memory store."""
        for cycle in sorted(c for c in self._seen_cycles if c < cycle_start):
            self._forget.append(cycle)
            self._seen_cycles.discard(cycle)
            self._remembered_ids -= self._remembered.pop(cycle, set())
        if any(c < cycle_start for c in self._seen_hits.values()):
            self._seen_hits = {i: c for i, c in self._seen_hits.items() if c >= cycle_start}

    def defer(self, fact: Fact) -> None:
        self._deferred_new.append(fact)

    def take_due(self, horizon: int) -> list[Fact]:
        if self._deferred_all is None:
            stored = self.r.lrange(self.keys.deferred(self.p), 0, -1)
            self._deferred_all = [codec.decode_fact(x) for x in stored]
        pending = self._deferred_all + self._deferred_new
        self._deferred_new = []
        due = [f for f in pending if f[0] < horizon]
        self._deferred_all = [f for f in pending if f[0] >= horizon]
        return due

    def prepare_close(self, start: int, end: int) -> None:
        shops = self.shop_ids()
        self.load_shops(shops, start, end)  # the new cycle's counters too: the close reads them (third-party cap)
        self.fetch_counts(shops, end, start)

    def touched_shops(self) -> list[str]:
        """Shops whose state this batch wrote (all of them after a partition-wide change)."""
        return self.shop_ids() if self._touch_all else sorted(self._touched)

    def shop(self, shop_id: str) -> ShopState | None:
        if shop_id not in self._shops:
            return self._loaded_shop(shop_id, self.r.get(self.keys.shop(shop_id)))
        return self._shops[shop_id]

    def add_shop(self, shop_id: str, ts: int) -> ShopState:
        s = self._shops[shop_id] = ShopState(shop_id, ts)
        self._new_shops.add(shop_id)
        self._touched.add(shop_id)
        if self._shop_list is not None:
            self._shop_list = sorted({*self._shop_list, shop_id})
        return s

    def shop_ids(self) -> list[str]:
        if self._shop_list is None:
            stored = {s.decode() for s in self.r.smembers(self.keys.shops(self.p))}
            self._shop_list = sorted(stored | self._new_shops)
        return self._shop_list

    def touch(self, shop: ShopState) -> None:
        self._touched.add(shop.shop_id)

    def touch_all(self) -> None:
        self._touch_all = True

    def counters(self, shop_id: str, cycle_start: int, create: bool = True) -> CycleCounters | None:
        key = (shop_id, cycle_start)
        self._accessed.add(key)
        if key not in self._counters:
            raw = self.r.get(self.keys.counters(shop_id, cycle_start))
            self._counters[key] = codec.decode_counters(raw) if raw is not None else None
        c = self._counters[key]
        if c is None and create:
            c = self._counters[key] = CycleCounters()
            self._dropped.discard(key)
        return c

    def drop_counters(self, shop_id: str, cycle_start: int) -> None:
        self._counters[(shop_id, cycle_start)] = None
        self._dropped.add((shop_id, cycle_start))
