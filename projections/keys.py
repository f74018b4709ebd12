"""Redis key layout. Every key of a shop carries `{shop}` as a hash tag; partition keys `{p<n>}`."""

from __future__ import annotations


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

    def pattern(self) -> str:
        return f"{self.ns}:*"
