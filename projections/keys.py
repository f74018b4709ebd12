"""Redis key layout. Every key of a shop carries `{shop}` as a hash tag; partition keys `{p<n>}`."""

from __future__ import annotations

from typing import Any


class Keys:
    def __init__(self, namespace: str) -> None:
        self.ns = namespace

    # per ledger partition
    def clock(self, p: int) -> str:
        return f"{self.ns}:{{p{p}}}:clock"

    def offset(self, p: int) -> str:
        return f"{self.ns}:{{p{p}}}:offset"

    def shops(self, p: int) -> str:
        return f"{self.ns}:{{p{p}}}:shops"

    def seen(self, p: int, cycle: int) -> str:
        return f"{self.ns}:{{p{p}}}:seen:{cycle}"

    def seen_cycles(self, p: int) -> str:
        return f"{self.ns}:{{p{p}}}:seencycles"

    def deferred(self, p: int) -> str:
        return f"{self.ns}:{{p{p}}}:deferred"

    def tiers(self, p: int) -> str:
        """Read model: shops per (industry, tier) among this partition's shops."""
        return f"{self.ns}:{{p{p}}}:tiers"

    def platform_feed(self) -> str:
        return f"{self.ns}:feed"

    # per shop
    def shop(self, shop: str) -> str:
        return f"{self.ns}:{{{shop}}}:s"

    def counters(self, shop: str, cycle: int) -> str:
        return f"{self.ns}:{{{shop}}}:c:{cycle}"

    def members(self, shop: str) -> str:
        return f"{self.ns}:{{{shop}}}:m"

    def quality(self, shop: str) -> str:
        return f"{self.ns}:{{{shop}}}:q"

    def effective(self, shop: str) -> str:
        return f"{self.ns}:{{{shop}}}:e"

    def view(self, shop: str) -> str:
        """Read model of one shop (tiering.view) as JSON."""
        return f"{self.ns}:{{{shop}}}:v"

    def feed(self, shop: str) -> str:
        return f"{self.ns}:{{{shop}}}:feed"

    def pattern(self) -> str:
        return f"{self.ns}:*"


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
