"""The batch reads of the Redis store: what a batch or a close will read, fetched in one round trip."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from projections import codec
from projections.keys import Keys
from projections.members import RedisMembers
from projections.scripts import COUNTS_CHUNK, MGET_CHUNK, queue_mget
from tiering.calendar import Calendar
from tiering.state import CycleCounters, ShopState
from tiering.view import tier_class

if TYPE_CHECKING:
    from projections.redis_store import RedisStore


class StoreReads:
    """RedisStore's prefetches and counts (a part of RedisStore, apart for its size: see redis_store.py)."""

    r: Any
    keys: Keys
    p: int
    cal: Calendar
    _shops: dict[str, ShopState | None]
    _members: dict[str, RedisMembers]
    _counters: dict[tuple[str, int], CycleCounters | None]
    _seen_cycles: set[int]
    _seen_hits: dict[str, int]
    _counts_script: Any
    _stored_shops: dict[str, bytes]
    _orig_class: dict[str, tuple[str, str]]

    def members(self, shop_id: str) -> RedisMembers:
        idx = self._members.get(shop_id)
        if idx is None:
            idx = self._members[shop_id] = RedisMembers(cast("RedisStore", self), shop_id)
        return idx

    def _loaded_shop(self, shop_id: str, raw: bytes | None) -> ShopState | None:
        state = self._shops[shop_id] = codec.decode_shop(raw) if raw is not None else None
        if raw is not None:
            self._stored_shops[shop_id] = raw
        if state is not None:
            self._orig_class[shop_id] = tier_class(state)
        return state

    def prefetch(self, records: Sequence[dict[str, Any]]) -> None:
        """Fetch, in one round trip, what folding these records will read."""
        pipe = self.r.pipeline(transaction=False)
        apply = self.queue_prefetch(pipe, records)
        apply(iter(pipe.execute()))

    def queue_prefetch(self, pipe: Any, records: Sequence[dict[str, Any]]) -> Callable[[Iterator[Any]], None]:
        """`prefetch`'s reads, queued on a shared pipeline; returns what takes their results."""
        shops: dict[str, set[str]] = {}
        counters: set[tuple[str, int]] = set()
        ids: list[str] = []
        for rec in records:
            if "event_id" in rec:
                ids.append(rec["event_id"])
            shop = rec.get("shop_id")
            if shop is None:
                continue
            users = shops.setdefault(shop, set())
            if "user_id" in rec:
                users.add(rec["user_id"])
            counters.add((shop, self.cal.cycle_start(rec["ts"])))
        cached_shops, cached_members, cached_counters = self._shops, self._members, self._counters
        shop_list = sorted(s for s in shops if s not in cached_shops)
        for shop in shop_list:
            pipe.get(self.keys.shop(shop))
        user_lists = []
        for shop in sorted(shops):
            idx = cached_members.get(shop)
            wanted = sorted(shops[shop] if idx is None else (u for u in shops[shop] if u not in idx.cache))
            if wanted:
                user_lists.append((shop, wanted))
        for shop, user_ids in user_lists:
            pipe.hmget(self.keys.members(shop), user_ids)
        counter_list = sorted(c for c in counters if c not in cached_counters)
        for shop, cycle in counter_list:
            pipe.get(self.keys.counters(shop, cycle))
        cycles = sorted(self._seen_cycles) if ids else []
        for cycle in cycles:
            pipe.smismember(self.keys.seen(self.p, cycle), ids)

        def apply(res: Iterator[Any]) -> None:
            for shop in shop_list:
                self._loaded_shop(shop, next(res))
            for shop, user_ids in user_lists:
                idx = self.members(shop)
                for user, raw in zip(user_ids, next(res), strict=True):
                    idx.loaded(user, raw)
            for key in counter_list:
                raw = next(res)
                self._counters[key] = codec.decode_counters(raw) if raw is not None else None
            for cycle in cycles:
                self._seen_hits.update((i, cycle) for i, hit in zip(ids, next(res), strict=True) if hit)
        return apply

    def load_shops(self, shops: Sequence[str], *cycles: int) -> None:
        """Fetch, in one round trip, the states of shops not read yet and their counters of `cycles`."""
        missing = [s for s in shops if s not in self._shops]
        need = [(s, c) for c in cycles for s in shops if (s, c) not in self._counters]
        if not missing and not need:
            return
        pipe = self.r.pipeline(transaction=False)
        for i in range(0, len(missing), MGET_CHUNK):
            queue_mget(pipe, [self.keys.shop(s) for s in missing[i:i + MGET_CHUNK]])
        for i in range(0, len(need), MGET_CHUNK):
            queue_mget(pipe, [self.keys.counters(s, c) for s, c in need[i:i + MGET_CHUNK]])
        res = iter(raw for chunk in pipe.execute() for raw in chunk)
        for s in missing:
            self._loaded_shop(s, next(res))
        for key in need:
            raw = next(res)
            self._counters[key] = codec.decode_counters(raw) if raw is not None else None

    def _counts(self, shops: Sequence[str], boundaries: Sequence[int], start: int | None = None) -> list[Any]:
        """One script call: per shop (members, quality, effective) at its boundary [, who fell silent]."""
        keys = [k for s in shops for k in (self.keys.effective(s), self.keys.quality(s))]
        out: list[Any] = []
        for i in range(0, len(shops), COUNTS_CHUNK):
            part = slice(i, i + COUNTS_CHUNK)
            out += self._counts_script(keys=keys[2 * i:2 * (i + COUNTS_CHUNK)],
                                       args=[-1 if start is None else start, *boundaries[part]])
        return out

    def fetch_counts_at(self, instants: dict[str, int]) -> None:
        """Member counts of several shops, each at its own instant, in one round trip."""
        todo = [(s, t) for s, t in sorted(instants.items()) if t not in self.members(s).base_counts]
        if not todo:
            return
        for (s, t), (total, quality, effective, _silent) in zip(
                todo, self._counts([s for s, _ in todo], [t for _, t in todo]), strict=True):
            self.members(s).base_counts[t] = (total, quality, effective)

    def fetch_counts(self, shops: Iterable[str], boundary: int, start: int | None) -> None:
        """Counts at `boundary` (and who fell silent in (start, boundary]) for shops, in one script call."""
        shops = list(shops)
        for s, (total, quality, effective, silent) in zip(
                shops, self._counts(shops, [boundary] * len(shops), start), strict=True):
            idx = self.members(s)
            idx.base_counts[boundary] = (total, quality, effective)
            if start is not None:
                idx.base_silent[(start, boundary)] = [u.decode() for u in silent]
        pipe = self.r.pipeline(transaction=False)
        wanted: list[tuple[str, list[str]]] = []
        for s in shops:  # members who fell silent are read next: fetch their records together
            idx = self.members(s)
            users = [u for u in idx.base_silent.get((start, boundary), []) if u not in idx.cache] \
                if start is not None else []
            if users:
                wanted.append((s, users))
                pipe.hmget(self.keys.members(s), users)
        if wanted:
            for (s, users), raws in zip(wanted, pipe.execute(), strict=True):
                idx = self.members(s)
                for user, raw in zip(users, raws, strict=True):
                    idx.loaded(user, raw)
