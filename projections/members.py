"""A shop's members over Redis for one batch: what was read, what the batch changed, the counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projections import codec
from tiering.close import untils
from tiering.state import Member

if TYPE_CHECKING:
    from projections.redis_store import RedisStore

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
