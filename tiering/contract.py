"""The input event contract (shared/spec/events.md): parse and validate one message.

`parse_event` never raises anything but `InvalidEvent`, whose message is the
dead-letter reason. Validated events are plain dicts holding only contract fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

CHANNELS: Final = ("tmall_u_first", "live", "third_party", "storefront", "other")
JOIN_TYPES: Final = ("registration", "purchase")
BENEFIT_TYPES: Final = (
    "new_member_gift", "member_coupon", "member_discount", "member_gift_with_purchase",
    "points_exchange", "priority_purchase", "member_price",
)
STANDARD_FIELDS: Final = (
    "min_effective_members", "min_member_gmv_share", "min_quality_member_ratio",
    "min_benefit_penetration", "min_new_member_conversion",
)
TOPIC_OF_TYPE: Final = {
    "member_joined": "member-joins", "member_left": "member-joins",
    "order_paid": "orders", "benefit_redeemed": "benefit-redemptions",
    "benefit_config_changed": "config-changes", "join_setting_changed": "config-changes",
    "shop_profile_changed": "config-changes", "industry_standard_changed": "config-changes",
    "promo_window_declared": "config-changes", "clock_advanced": "config-changes",
}
INPUT_TOPICS: Final = frozenset(TOPIC_OF_TYPE.values())
GLOBAL_TYPES: Final = frozenset({"industry_standard_changed", "promo_window_declared", "clock_advanced"})
MAX_ID = 128
MAX_INSTANT = 4_102_444_800_000  # 2100-01-01: the calendar's range
MIN_EVENT_TS = 631_152_000_000  # 1990-01-01: the calendar's range


class InvalidEvent(ValueError):
    """A message that breaks the contract; str(exc) is the dead-letter reason."""

    def __init__(self, reason: str, shop_id: str | None = None) -> None:
        super().__init__(reason)
        self.shop_id = shop_id


Check = Callable[[Any], bool]


def _is_id(v: Any) -> bool:
    return type(v) is str and 0 < len(v) <= MAX_ID


def _is_instant(v: Any) -> bool:
    return type(v) is int and 0 <= v < MAX_INSTANT


def _is_event_ts(v: Any) -> bool:
    return type(v) is int and MIN_EVENT_TS <= v < MAX_INSTANT


def _is_count(v: Any) -> bool:
    return type(v) is int and v >= 0


def _is_ratio(v: Any) -> bool:
    return type(v) in (int, float) and 0 <= v < float("inf")


def _one_of(values: tuple[str, ...]) -> Check:
    allowed = frozenset(values)
    return lambda v: type(v) is str and v in allowed


def _is_bool(v: Any) -> bool:
    return type(v) is bool


def _is_industry(v: Any) -> bool:
    return _is_id(v)


def _is_b_edition(v: Any) -> bool:
    return v is None or (
        type(v) is dict and _is_instant(v.get("ordered_at")) and _is_instant(v.get("expires_at"))
    )


def _is_third_party(v: Any) -> bool:
    return (type(v) is dict and _is_bool(v.get("opened_before_2021"))
            and _is_count(v.get("baseline_15d")))


def _is_standard(v: Any) -> bool:
    return type(v) is dict and all(
        (_is_count if f == "min_effective_members" else _is_ratio)(v.get(f)) for f in STANDARD_FIELDS)


_SHOP: dict[str, Check] = {"shop_id": _is_id}
REQUIRED: Final[dict[str, dict[str, Check]]] = {
    "member_joined": {**_SHOP, "user_id": _is_id, "channel": _one_of(CHANNELS),
                      "join_type": _one_of(JOIN_TYPES)},
    "member_left": {**_SHOP, "user_id": _is_id},
    "order_paid": {**_SHOP, "order_id": _is_id, "user_id": _is_id, "amount_cents": _is_count},
    "benefit_redeemed": {**_SHOP, "user_id": _is_id, "benefit_id": _is_id,
                         "benefit_type": _one_of(BENEFIT_TYPES), "stage": _one_of(("claimed", "used"))},
    "benefit_config_changed": {**_SHOP, "benefit_id": _is_id, "benefit_type": _one_of(BENEFIT_TYPES),
                               "status": _one_of(("online", "offline"))},
    "join_setting_changed": {**_SHOP, "mode": _one_of(JOIN_TYPES)},
    "shop_profile_changed": dict(_SHOP),
    "industry_standard_changed": {"industry": _is_industry, "effective_from": _is_instant,
                                  "standard": _is_standard},
    "promo_window_declared": {"name": _is_id, "start": _is_instant, "end": _is_instant},
    "clock_advanced": {},
}
PROFILE_OPTIONAL: Final[dict[str, Check]] = {
    "industry": _is_industry, "b_edition": _is_b_edition, "member_pass": _is_bool,
    "third_party": _is_third_party,
}


def _describe(v: Any) -> str:
    text = orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode() if v is not None else "null"
    return text if len(text) <= 60 else text[:57] + "..."


def validate(obj: Any, topic: str | None = None) -> dict[str, Any]:
    """Check a decoded message against the contract; return only its contract fields.

    `topic` is the input topic the message came from (unprefixed), when known."""
    if type(obj) is not dict:
        raise InvalidEvent(f"not a JSON object ({type(obj).__name__})")
    shop = obj.get("shop_id") if _is_id(obj.get("shop_id")) else None
    etype = obj.get("type")
    fields = REQUIRED.get(etype) if isinstance(etype, str) else None
    if fields is None or not isinstance(etype, str):
        raise InvalidEvent(f"unknown type {_describe(etype)}" if "type" in obj else "missing field 'type'", shop)
    if topic is not None and TOPIC_OF_TYPE[etype] != topic:
        raise InvalidEvent(f"{etype} does not belong on topic {_describe(topic)}", shop)
    out: dict[str, Any] = {"type": etype}
    for name, check in (("event_id", _is_id), ("ts", _is_event_ts), *fields.items()):
        if name not in obj:
            raise InvalidEvent(f"{etype}: missing field '{name}'", shop)
        value = obj[name]
        if not check(value):
            raise InvalidEvent(f"{etype}: invalid '{name}': {_describe(value)}", shop)
        out[name] = value
    if etype == "shop_profile_changed":
        _copy_profile(obj, out, shop)
    elif etype == "promo_window_declared" and out["end"] <= out["start"]:
        raise InvalidEvent("promo_window_declared: 'end' must be after 'start'", shop)
    return out


def _copy_profile(obj: dict[str, Any], out: dict[str, Any], shop: str | None) -> None:
    for name, check in PROFILE_OPTIONAL.items():
        if name in obj:
            if not check(obj[name]):
                raise InvalidEvent(f"shop_profile_changed: invalid '{name}': {_describe(obj[name])}", shop)
            out[name] = obj[name]


def parse_event(raw: bytes | str, topic: str | None = None) -> dict[str, Any]:
    """Decode and validate one message (bytes or text) from `topic`, when known."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None
    return validate(obj, topic)


def parse_line(raw: bytes) -> dict[str, Any]:
    """One line of the file form: the topic, if any, is named in a `topic` field."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None
    topic = obj.get("topic") if type(obj) is dict else None
    if topic is not None and topic not in INPUT_TOPICS:
        raise InvalidEvent(f"unknown input topic {_describe(topic)}", None)
    return validate(obj, topic)


def topic_of(event: dict[str, Any]) -> str:
    return TOPIC_OF_TYPE[event["type"]]
