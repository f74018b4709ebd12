"""The input event contract (shared/spec/events.md): parse and validate one message.

`parse_event` never raises anything but `InvalidEvent`, whose message is the
dead-letter reason. Validated events are plain dicts holding only contract fields.
"""

from __future__ import annotations

import json
import re
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
# A shop id is the one id that becomes part of Redis key names, URL paths and Kafka keys. The
# contract (events.md) makes ids any non-empty string of at most 128 characters; of those, a shop
# id may not hold what could escape the key layout or a log line: `{`, `}` (cluster hash tags),
# `:` (the layout's separator) or a control character (C0, DEL, C1, U+2028/2029: line breaks).
# Any other character (any script, spaces, punctuation) is a shop id's. projections.keys builds
# no shop key from anything else. docs/hostile-input.md says why this and no narrower set.
SHOP_ID_PATTERN: Final = rf"[^{{}}:\x00-\x1f\x7f-\x9f\u2028\u2029]{{1,{MAX_ID}}}"
SHOP_ID_RULE: Final = (f"1 to {MAX_ID} characters, none of them {{, }}, : or a control character")
_SHOP_ID_MATCH: Final = re.compile(SHOP_ID_PATTERN).fullmatch
# Counts are integers any JSON reader holds exactly (2^53 - 1: a browser's Number); an amount is at
# most ten billion in currency units, so a shop's cycle GMV stays within 64 bits (the state's
# JSON) unless one cycle holds over 9 million orders of that size.
MAX_COUNT: Final = 2**53 - 1
MAX_AMOUNT_CENTS: Final = 10**12
MAX_DEPTH: Final = 32  # arrays and objects nested deeper make a message a dead letter (events need 2)
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


def is_shop_id(v: Any) -> bool:
    """A shop id as the contract accepts it (SHOP_ID_PATTERN)."""
    return type(v) is str and _SHOP_ID_MATCH(v) is not None


def _is_count(v: Any) -> bool:
    return type(v) is int and 0 <= v <= MAX_COUNT


def _is_amount(v: Any) -> bool:
    return type(v) is int and 0 <= v <= MAX_AMOUNT_CENTS


def _is_ratio(v: Any) -> bool:
    return type(v) in (int, float) and 0 <= v < float("inf")


class _OneOf:
    """A closed vocabulary check (its `allowed` set is inlined by the validator)."""

    def __init__(self, values: tuple[str, ...]) -> None:
        self.allowed = frozenset(values)

    def __call__(self, v: Any) -> bool:
        return type(v) is str and v in self.allowed


def _one_of(values: tuple[str, ...]) -> Check:
    return _OneOf(values)


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


_SHOP: dict[str, Check] = {"shop_id": is_shop_id}
REQUIRED: Final[dict[str, dict[str, Check]]] = {
    "member_joined": {**_SHOP, "user_id": _is_id, "channel": _one_of(CHANNELS),
                      "join_type": _one_of(JOIN_TYPES)},
    "member_left": {**_SHOP, "user_id": _is_id},
    "order_paid": {**_SHOP, "order_id": _is_id, "user_id": _is_id, "amount_cents": _is_amount},
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
    try:
        text = orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode() if v is not None else "null"
    except orjson.JSONEncodeError:  # too deep or an int past 64 bits (validate given a Python object)
        text = f"<{type(v).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


_MISSING = object()
_ID, _SHOP_ID, _COUNT, _ENUM, _OTHER = range(5)


def _compile(check: Check) -> tuple[int, Any]:
    """Inline the hot checks (ids, instants, counts, enums); call the rest."""
    if check is _is_id or check is _is_industry:
        return _ID, None
    if check is is_shop_id:
        return _SHOP_ID, None
    if check is _is_count or check is _is_amount:
        return _COUNT, MAX_COUNT if check is _is_count else MAX_AMOUNT_CENTS
    allowed = getattr(check, "allowed", None)
    if allowed is not None:
        return _ENUM, allowed
    return _OTHER, check


_SPECS: Final = {
    etype: tuple((name, *_compile(check)) for name, check in (("event_id", _is_id), *fields.items()))
    for etype, fields in REQUIRED.items()
}


def _fast_checker(etype: str, spec: tuple[tuple[str, int, Any], ...]) -> Callable[[dict[str, Any]], Any]:
    """One function per event type with every check inlined: the valid event in one step, or
    None (then the general loop below finds the field and words the reason). Same checks,
    same field order as that loop; a fifth of its cost per event."""
    env: dict[str, Any] = {"MIN_TS": MIN_EVENT_TS, "MAX_TS": MAX_INSTANT, "SHOP": _SHOP_ID_MATCH}
    body = ["        ts = obj['ts']"]
    conds = ["type(ts) is int", "MIN_TS <= ts < MAX_TS"]
    fields = [f"'type': {etype!r}", "'ts': ts"]
    for i, (name, kind, arg) in enumerate(spec):
        v = f"v{i}"
        body.append(f"        {v} = obj[{name!r}]")
        if kind == _ID:
            conds.append(f"type({v}) is str and 0 < len({v}) <= {MAX_ID}")
        elif kind == _SHOP_ID:
            conds.append(f"type({v}) is str and SHOP({v}) is not None")
        elif kind == _ENUM:
            env[f"a{i}"] = arg
            conds.append(f"type({v}) is str and {v} in a{i}")
        elif kind == _COUNT:
            conds.append(f"type({v}) is int and 0 <= {v} <= {arg}")
        else:
            env[f"a{i}"] = arg
            conds.append(f"a{i}({v})")
        fields.append(f"{name!r}: {v}")
    src = ("def check(obj):\n    try:\n" + "\n".join(body)  # a missing field: KeyError
           + "\n    except KeyError:\n        return None\n    if " + " and ".join(f"({c})" for c in conds)
           + ":\n        return {" + ", ".join(fields) + "}\n    return None\n")
    exec(compile(src, f"<contract check {etype}>", "exec"), env)  # the source is built above from the spec
    return env["check"]  # type: ignore[no-any-return]


# the two types with a further rule beyond their fields take the general path
_FAST: Final = {etype: _fast_checker(etype, spec) for etype, spec in _SPECS.items()
                if etype not in ("shop_profile_changed", "promo_window_declared")}


def validate(obj: Any, topic: str | None = None) -> dict[str, Any]:
    """Check a decoded message against the contract; return only its contract fields.

    `topic` is the input topic the message came from (unprefixed), when known."""
    if type(obj) is not dict:
        raise InvalidEvent(f"not a JSON object ({type(obj).__name__})")
    raw_type: Any = obj.get("type")
    fast = _FAST.get(raw_type) if type(raw_type) is str else None
    if fast is not None and (topic is None or TOPIC_OF_TYPE.get(raw_type) == topic):
        valid = fast(obj)
        if valid is not None:
            return valid  # type: ignore[no-any-return]
    spec = _SPECS.get(raw_type) if type(raw_type) is str else None
    if spec is None:
        raise InvalidEvent(f"unknown type {_describe(raw_type)}" if "type" in obj else "missing field 'type'",
                           _shop_of(obj))
    etype = str(raw_type)
    if topic is not None and TOPIC_OF_TYPE[etype] != topic:
        raise InvalidEvent(f"{etype} does not belong on topic {_describe(topic)}", _shop_of(obj))
    ts = obj.get("ts", _MISSING)
    if type(ts) is not int or not MIN_EVENT_TS <= ts < MAX_INSTANT:
        _fail(obj, etype, "ts", ts)
    out: dict[str, Any] = {"type": etype, "ts": ts}
    for name, kind, arg in spec:
        v = obj.get(name, _MISSING)
        tv = type(v)
        if kind == _ID:
            ok = tv is str and 0 < len(v) <= MAX_ID
        elif kind == _SHOP_ID:
            ok = is_shop_id(v)
        elif kind == _ENUM:
            ok = tv is str and v in arg
        elif kind == _COUNT:
            ok = tv is int and 0 <= v <= arg
        else:
            ok = v is not _MISSING and arg(v)
        if not ok:
            _fail(obj, etype, name, v)
        out[name] = v
    if etype == "shop_profile_changed":
        _copy_profile(obj, out, _shop_of(obj))
    elif etype == "promo_window_declared" and out["end"] <= out["start"]:
        raise InvalidEvent("promo_window_declared: 'end' must be after 'start'", None)
    return out


def _shop_of(obj: dict[str, Any]) -> str | None:
    shop = obj.get("shop_id")
    return shop if is_shop_id(shop) else None


def _fail(obj: dict[str, Any], etype: str, name: str, value: Any) -> None:
    if value is _MISSING:
        raise InvalidEvent(f"{etype}: missing field '{name}'", _shop_of(obj))
    raise InvalidEvent(f"{etype}: invalid '{name}': {_describe(value)}", _shop_of(obj))


def _copy_profile(obj: dict[str, Any], out: dict[str, Any], shop: str | None) -> None:
    for name, check in PROFILE_OPTIONAL.items():
        if name in obj:
            if not check(obj[name]):
                raise InvalidEvent(f"shop_profile_changed: invalid '{name}': {_describe(obj[name])}", shop)
            out[name] = obj[name]


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return {}  # only the check matters


def _shape(obj: Any) -> tuple[int, int]:
    """Nesting depth and number of object keys of a decoded value (iterative: any depth)."""
    depth = keys = 0
    stack = [(obj, 1)]
    while stack:
        v, d = stack.pop()
        depth = max(depth, d)
        if type(v) is dict:
            keys += len(v)
            v = v.values()
        stack.extend((c, d + 1) for c in v if type(c) is dict or type(c) is list)
    return depth, keys


def _plain(raw: bytes | str, obj: Any) -> bool:
    """Whether a decoded object needs no closer look. Every key has its `:` after it, so as many
    `:` as top-level keys means no nested key and no key twice; without a `[` as well, nothing is
    nested deeper than an empty `{}`. Every ordinary event passes: one count and one search."""
    return type(raw) is bytes and raw.count(b":") == len(obj) and b"[" not in raw


def _check_shape(raw: bytes | str, obj: dict[str, Any]) -> None:
    """Refuse an object nested deeper than MAX_DEPTH or holding a key twice (orjson keeps the last
    value silently; another reader may keep the first, so the event would mean two things)."""
    depth, keys = _shape(obj)
    if depth > MAX_DEPTH:
        raise InvalidEvent(f"nested deeper than {MAX_DEPTH} levels ({depth})", None)
    if (raw.count(b":") if isinstance(raw, bytes) else raw.count(":")) == keys:
        return  # a key repeated would need a `:` more than the keys read
    try:  # some `:` sit inside strings, or a key repeats: only a full parse tells
        json.loads(raw, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as exc:
        key = str(exc.args[0])
        raise InvalidEvent(f"duplicate key {_describe(key)}", None if key == "shop_id" else _shop_of(obj)) from None
    except ValueError as exc:  # orjson read it, so not expected: still a dead letter, never a crash
        raise InvalidEvent(f"not valid JSON: {exc}") from None


def _decode(raw: bytes | str) -> Any:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None
    if type(obj) is dict and not _plain(raw, obj):
        _check_shape(raw, obj)
    return obj


def parse_event(raw: bytes | str, topic: str | None = None) -> dict[str, Any]:
    """Decode and validate one message (bytes or text) from `topic`, when known."""
    try:  # _decode inlined: this is ingest's hot path
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None
    if type(obj) is dict and not (type(raw) is bytes and raw.count(b":") == len(obj) and b"[" not in raw):
        _check_shape(raw, obj)  # the test of _plain, inlined
    return validate(obj, topic)


def parse_line(raw: bytes) -> dict[str, Any]:
    """One line of the file form: the topic, if any, is named in a `topic` field."""
    obj = _decode(raw)
    topic = obj.get("topic") if type(obj) is dict else None
    if topic is not None and (type(topic) is not str or topic not in INPUT_TOPICS):  # a list is unhashable
        raise InvalidEvent(f"unknown input topic {_describe(topic)}", None)
    return validate(obj, topic)


def topic_of(event: dict[str, Any]) -> str:
    return TOPIC_OF_TYPE[event["type"]]
