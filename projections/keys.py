"""Redis key layout: every key the fold of ledger partition p touches carries the tag `{ns:p<n>}`."""

from __future__ import annotations

from typing import Any

from plumbing.partitioner import partition_for
from tiering.contract import SHOP_ID_RULE, is_shop_id


class Keys:
    """The keys of one namespace.

    A shop's keys lie in its ledger partition's slot. A partition's store names it (`home`: the
    partition it folds, whatever a test feeds it); a reader finds it from the shop id with
    `partition_for` over `partitions` ledger partitions. The tag repeats the namespace, so a
    rebuild's partitions spread over a cluster's nodes apart from the live ones; the `ns:` prefix
    keeps `ns:*` naming every key of the namespace (drop, verify)."""

    def __init__(self, namespace: str, partitions: int | None = None, home: int | None = None) -> None:
        self.ns, self.partitions, self.home = namespace, partitions, home
        self._home = self._prefix(home) if home is not None else None

    def _prefix(self, p: int) -> str:
        return f"{self.ns}:{{{self.ns}:p{p}}}:"

    def partition_of(self, shop: str) -> int:
        """The ledger partition whose fold owns `shop`'s keys."""
        if self.home is not None:
            return self.home
        if self.partitions is None:
            raise ValueError("Keys needs `partitions` (or a home partition) to find a shop's keys")
        return partition_for(shop.encode(), self.partitions)

    def _shop(self, shop: str) -> str:
        """The prefix of a shop's keys, followed by the id itself: only a shop id of the
        contract (no `{`, `}`, `:`, control characters) gets one, so no id can reach into another key."""
        if not is_shop_id(shop):
            raise ValueError(f"not a shop id ({SHOP_ID_RULE}): {shop[:40]!r}")
        return self._home if self._home is not None else self._prefix(self.partition_of(shop))

    # per ledger partition
    def clock(self, p: int) -> str:
        return f"{self._prefix(p)}clock"

    def offset(self, p: int) -> str:
        return f"{self._prefix(p)}offset"

    def shops(self, p: int) -> str:
        return f"{self._prefix(p)}shops"

    def seen(self, p: int, cycle: int) -> str:
        return f"{self._prefix(p)}seen:{cycle}"

    def seen_cycles(self, p: int) -> str:
        return f"{self._prefix(p)}seencycles"

    def deferred(self, p: int) -> str:
        return f"{self._prefix(p)}deferred"

    def tiers(self, p: int) -> str:
        """Read model: shops per (industry, tier) among this partition's shops."""
        return f"{self._prefix(p)}tiers"

    # namespace-wide: single-key operations only (they lie in no partition's slot)
    def platform_feed(self) -> str:
        return f"{self.ns}:feed"

    # per shop, in its partition's slot
    def shop(self, shop: str) -> str:
        return f"{self._shop(shop)}{shop}:s"

    def counters(self, shop: str, cycle: int) -> str:
        return f"{self._shop(shop)}{shop}:c:{cycle}"

    def members(self, shop: str) -> str:
        return f"{self._shop(shop)}{shop}:m"

    def quality(self, shop: str) -> str:
        return f"{self._shop(shop)}{shop}:q"

    def effective(self, shop: str) -> str:
        return f"{self._shop(shop)}{shop}:e"

    def view(self, shop: str) -> str:
        """Read model of one shop (tiering.view) as JSON."""
        return f"{self._shop(shop)}{shop}:v"

    def feed(self, shop: str) -> str:
        return f"{self._shop(shop)}{shop}:feed"

    def pattern(self) -> str:
        return f"{self.ns}:*"

    def relative(self, key: str) -> str:
        """A key of this namespace named without it (`:{p3}:shop-1:s`), so two namespaces'
        keys compare by what they hold (verify)."""
        rest = key[len(self.ns):] if key.startswith(f"{self.ns}:") else key
        return rest.replace(f"{{{self.ns}:", "{", 1)


def pointer_key(name: str) -> str:
    """The live pointer: which namespace readers of `name` use (absent: `name` itself)."""
    return f"tierstream:pointer:{name}"


def _pointed(raw: bytes | None, name: str) -> str:
    return raw.decode() if raw is not None else name


async def resolve_namespace(client: Any, name: str) -> str:
    """The namespace readers of `name` use now (redis.asyncio client)."""
    return _pointed(await client.get(pointer_key(name)), name)


def resolve_namespace_sync(client: Any, name: str) -> str:
    """The same with a blocking client (the command line)."""
    return _pointed(client.get(pointer_key(name)), name)
