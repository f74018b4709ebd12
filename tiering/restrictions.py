"""Recruitment restrictions (招募限制, rules.md §7): reasons, scopes, and their transitions."""

from __future__ import annotations

from typing import Any, Final

from tiering.contract import CHANNELS
from tiering.outputs import Output, restored, restricted
from tiering.state import ShopState

TIER_SCOPE: Final[dict[str, dict[str, str]]] = {
    "improving": {ch: "no_recruitment" for ch in CHANNELS},
    "substandard": {ch: "member_ops_closed" for ch in CHANNELS},
}
NONCOMPLIANT_SCOPE: Final = {ch: "blocked" for ch in CHANNELS}
QUALITY_SCOPE: Final = {"tmall_u_first": "targeted_only", "live": "no_host_invite",
                        "storefront": "members_only_popup", "third_party": "capped"}
CAP_SCOPE: Final = {"third_party": "closed"}


def set_restriction(shop: ShopState, reason: str, scope: dict[str, str] | None, at: int,
                    out: list[Output], until: int | None = None) -> None:
    """Make `reason` active with `scope` (or end it, with None), emitting only on a change."""
    current: dict[str, Any] | None = shop.restrictions.get(reason)
    if scope is None:
        if current is not None:
            del shop.restrictions[reason]
            out.append(restored(shop.shop_id, at, reason))
        return
    if current is None or current["scope"] != scope or current["until"] != until:
        since = current["since"] if current is not None and current["scope"] == scope else at
        shop.restrictions[reason] = {"scope": scope, "since": since, "until": until}
        out.append(restricted(shop.shop_id, at, reason, scope, until))


def active_since(shop: ShopState, reason: str) -> int | None:
    r = shop.restrictions.get(reason)
    return r["since"] if r is not None else None
