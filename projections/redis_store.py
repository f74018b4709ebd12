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

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import redis

from projections import codec
from projections.commit import FencedOut, commit_many, embed

__all__ = ["FencedOut", "RedisStore", "commit_many", "queue_mget", "queue_script"]
from projections.keys import Keys
from tiering.close import untils
from tiering.params import RuleParams
from tiering.state import Clock, CycleCounters, Fact, Member, ShopState
from tiering.view import tier_class


def queue_script(pipe: Any, script: str, keys: Sequence[Any], args: Sequence[Any]) -> None:
    """Queue a Lua script on a pipeline or transaction (sync or asyncio) as EVAL of its text.

    redis-py's registered Script, queued on a pipeline, makes the pipeline ask SCRIPT EXISTS
    before every execute: one more round trip per commit and per ingest flush. EVAL sends the
    text (Redis finds the compiled script in its cache by its SHA1) and, unlike EVALSHA, cannot
    fail inside a MULTI for a script cache a Redis restart emptied. (As a command: redis-py's
    cluster pipeline has no `eval` method for it.)"""
    pipe.execute_command("EVAL", script, len(keys), *keys, *args)


def queue_mget(pipe: Any, keys: Sequence[Any]) -> None:
    """Queue an MGET of keys of one slot (a partition's) on a pipeline. redis-py's cluster pipeline
    refuses its `mget` method, keys of many slots or not; the command itself is routed by slot."""
    pipe.execute_command("MGET", *keys)


MGET_CHUNK = 1000  # keys per MGET
MEMBER_CACHE = 200_000  # member records one partition's store keeps between batches
COUNTS_CHUNK = 1000  # shops per counts script call
# Per shop (KEYS: its effective and quality zsets), at its boundary b (ARGV[1 + i]): members (ZCARD),
# quality and effective members (until > b), and, when ARGV[1] (the cycle start) is not -1, who
# fell silent in (start, b]. One call for a thousand shops instead of four commands per shop.
COUNTS_LUA = """
local start = ARGV[1]
local out = {}
for i = 1, #KEYS / 2 do
  local eff, q, b = KEYS[2 * i - 1], KEYS[2 * i], ARGV[i + 1]
  local silent = {}
  if start ~= '-1' then silent = redis.call('ZRANGEBYSCORE', eff, '(' .. start, b) end
  out[i] = {redis.call('ZCARD', eff), redis.call('ZCOUNT', q, '(' .. b, '+inf'),
            redis.call('ZCOUNT', eff, '(' .. b, '+inf'), silent}
end
return out
"""

# KEYS: per shop its member hash, effective and quality zsets; ARGV: per shop the number of
# members it changed, then per member: user id, record, and for the effective and the quality
# zset a new score, '-' (leaves it) or '' (unchanged there). One call per partition and batch
# instead of up to five commands per shop (their client-side cost was most of a commit at a
# thousand shops a batch).
MEMBERS_LUA = embed("members", """
local a, STEP = 1, 2000
local function call_chunked(cmd, key, items)
  for i = 1, #items, STEP do
    redis.call(cmd, key, unpack(items, i, math.min(i + STEP - 1, #items)))
  end
end
for s = 1, #KEYS / 3 do
  local h, e, q = KEYS[3 * s - 2], KEYS[3 * s - 1], KEYS[3 * s]
  local n = tonumber(ARGV[a]); a = a + 1
  local records, eadd, qadd, erem, qrem = {}, {}, {}, {}, {}
  for _ = 1, n do
    local u, eu, qu = ARGV[a], ARGV[a + 2], ARGV[a + 3]
    records[#records + 1] = u; records[#records + 1] = ARGV[a + 1]
    if eu == '-' then erem[#erem + 1] = u elseif eu ~= '' then eadd[#eadd + 1] = eu; eadd[#eadd + 1] = u end
    if qu == '-' then qrem[#qrem + 1] = u elseif qu ~= '' then qadd[#qadd + 1] = qu; qadd[#qadd + 1] = u end
    a = a + 4
  end
  call_chunked('HSET', h, records)
  call_chunked('ZADD', e, eadd)
  call_chunked('ZADD', q, qadd)
  call_chunked('ZREM', e, erem)
  call_chunked('ZREM', q, qrem)
end
return 0
""")

Index = tuple[bool, int | None, int | None]  # (counted, quality_until, effective_until)
_ABSENT: Index = (False, None, None)


class RedisMembers:
    """MemberIndex over Redis with an overlay of this batch's changes (read-your-writes)."""

    def __init__(self, store: RedisStore, shop_id: str) -> None:
        self.store, self.shop_id = store, shop_id
        self.cache: dict[str, Member | None] = {}
        self.orig: dict[str, Index] = {}
        self.dirty: dict[str, Index] = {}
        self.base_counts: dict[int, tuple[int, int, int]] = {}
        self.base_silent: dict[tuple[int, int], list[str]] = {}

    def loaded(self, user: str, raw: bytes | None) -> None:
        m = codec.decode_member(raw) if raw is not None else None
        if user not in self.cache:
            self.store.cached_members += 1
        self.cache[user] = m
        self.orig[user] = (m.counted, *untils(m, self.store.params)) if m is not None else _ABSENT

    def get(self, user_id: str) -> Member | None:
        if user_id not in self.cache:
            self.loaded(user_id, self.store.r.hget(self.store.keys.members(self.shop_id), user_id))
        return self.cache[user_id]

    def update(self, user_id: str, m: Member, quality_until: int | None, effective_until: int | None) -> None:
        if user_id not in self.orig:
            self.get(user_id)
        if not self.dirty:
            self.store._changed_members.append(self)
        self.cache[user_id] = m
        self.dirty[user_id] = (m.counted, quality_until, effective_until)

    def count_after(self, boundary: int) -> tuple[int, int, int]:
        if boundary not in self.base_counts:
            self.store.fetch_counts([self.shop_id], boundary, None)
        total, quality, effective = self.base_counts[boundary]
        orig = self.orig
        for user, (c1, q1, e1) in self.dirty.items():  # each changed member: out as stored, in as now
            c0, q0, e0 = orig[user]
            if c0:
                total -= 1
                quality -= q0 is not None and q0 > boundary
                effective -= e0 is not None and e0 > boundary
            if c1:
                total += 1
                quality += q1 is not None and q1 > boundary
                effective += e1 is not None and e1 > boundary
        return total, quality, effective

    def fell_silent(self, start: int, end: int) -> list[str]:
        if (start, end) not in self.base_silent:
            self.store.fetch_counts([self.shop_id], end, start)
        users = set(self.base_silent[(start, end)])
        for user, (counted, _q, e) in self.dirty.items():
            if counted and e is not None and start < e <= end:
                users.add(user)
            else:
                users.discard(user)
        return sorted(users)

    def settle(self, floor: int | None) -> None:
        """The batch committed: its changes are what Redis holds. Counts at instants before
        `floor` (the oldest open cycle's start) are never asked again."""
        if self.dirty:
            for b in self.base_counts:
                self.base_counts[b] = self.count_after(b)
            self.orig.update(self.dirty)
            self.dirty.clear()
        if floor is not None:
            for b in [b for b in self.base_counts if b < floor]:
                del self.base_counts[b]
        self.base_silent.clear()

    def changes(self, keys: list[str], args: list[Any]) -> None:
        """Add the batch's member changes to the arguments of MEMBERS_LUA."""
        k, shop = self.store.keys, self.shop_id
        keys += (k.members(shop), k.effective(shop), k.quality(shop))
        args.append(len(self.dirty))
        cache, orig, encode = self.cache, self.orig, codec.encode_member
        for user, (counted, q, e) in sorted(self.dirty.items()):
            m = cache[user]
            assert m is not None
            was_counted, q0, e0 = orig[user]
            args += (user, encode(m), _zset_op(was_counted, e0, counted, e), _zset_op(was_counted, q0, counted, q))


def _zset_op(was_counted: bool, before: int | None, counted: bool, now: int | None) -> int | str:
    """A member's change in one of its shop's zsets (MEMBERS_LUA): its new score, '-' or ''."""
    was_in = was_counted and before is not None
    if counted and now is not None:
        return now if not was_in or now != before else ""
    return "-" if was_in else ""


class RedisStore:
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

    def _loaded_shop(self, shop_id: str, raw: bytes | None) -> ShopState | None:
        state = self._shops[shop_id] = codec.decode_shop(raw) if raw is not None else None
        if raw is not None:
            self._stored_shops[shop_id] = raw
        if state is not None:
            self._orig_class[shop_id] = tier_class(state)
        return state

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

    def touched_shops(self) -> list[str]:
        """Shops whose state this batch wrote (all of them after a partition-wide change)."""
        return self.shop_ids() if self._touch_all else sorted(self._touched)

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

    def members(self, shop_id: str) -> RedisMembers:
        idx = self._members.get(shop_id)
        if idx is None:
            idx = self._members[shop_id] = RedisMembers(self, shop_id)
        return idx

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
