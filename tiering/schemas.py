"""JSON Schemas (draft 2020-12) of every input and output type, built from the contract's own tables.

Input schemas are generated from `tiering.contract.REQUIRED` / `PROFILE_OPTIONAL`: each check
function maps to a schema fragment, and a check without a mapping stops the build, so the
schemas cannot drift from the contract check (tests/unit/test_schemas.py also runs both on
the same random objects). Output schemas are written here from the vocabularies the rules use,
and every output of the scenarios and of simulated workloads is validated against them.

What a schema cannot say, the contract check still does: an integer field given as `1.0` (JSON
Schema counts it as an integer; the contract refuses a float), a promo window's `end` after
its `start`, and the topic a type belongs on. The files shipped in the package (`tiering/schema/`)
are these dicts; `tierstream schema --write DIR` writes them.
"""

from __future__ import annotations

from typing import Any, Final

from tiering import contract as c
from tiering.indicators import PRIVILEGES
from tiering.outputs import OUTPUT_TOPIC
from tiering.restrictions import CAP_SCOPE, NONCOMPLIANT_SCOPE, QUALITY_SCOPE, TIER_SCOPE

DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"
Schema = dict[str, Any]

TIERS: Final = ("premium", "potential", "improving", "substandard")
RQ_STATUS: Final = ("excellent", "to_improve", "substandard")
REASONS: Final = ("tier", "registration_noncompliant", "recruitment_quality", "third_party_cap")
SCOPE_MODES: Final = tuple(sorted({m for s in (*TIER_SCOPE.values(), NONCOMPLIANT_SCOPE, QUALITY_SCOPE, CAP_SCOPE)
                                   for m in s.values()}))
INDICATOR_COUNTS: Final = ("benefit_online_days", "effective_members", "quality_members", "silent_members",
                           "member_gmv_cents", "total_gmv_cents", "paying_members", "benefit_members")
INDICATOR_RATIOS: Final = ("member_gmv_share", "quality_member_ratio", "benefit_penetration")
CRITERIA: Final = ("benefit_online_days", "effective_members", "member_gmv_share", "quality_member_ratio",
                   "benefit_penetration")

ID: Final[Schema] = {"type": "string", "minLength": 1, "maxLength": c.MAX_ID}
SHOP_ID: Final[Schema] = {"type": "string", "pattern": f"^{c.SHOP_ID_PATTERN}$", "description": c.SHOP_ID_RULE}
INSTANT: Final[Schema] = {"type": "integer", "minimum": 0, "maximum": c.MAX_INSTANT - 1,
                          "description": "epoch milliseconds"}
EVENT_TS: Final[Schema] = {"type": "integer", "minimum": c.MIN_EVENT_TS, "maximum": c.MAX_INSTANT - 1,
                           "description": "epoch milliseconds, 1990-01-01 to 2099-12-31"}
COUNT: Final[Schema] = {"type": "integer", "minimum": 0}
IN_COUNT: Final[Schema] = {"type": "integer", "minimum": 0, "maximum": c.MAX_COUNT}
AMOUNT: Final[Schema] = {"type": "integer", "minimum": 0, "maximum": c.MAX_AMOUNT_CENTS}
RATIO: Final[Schema] = {"type": "number", "minimum": 0}
BOOL: Final[Schema] = {"type": "boolean"}
TEXT: Final[Schema] = {"type": "string"}
CYCLE: Final[Schema] = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-(01|16)$",
                        "description": "the cycle's first local day"}
OUTPUT_ID: Final[Schema] = {"type": "string", "pattern": "^[0-9a-f]{32}$",
                            "description": "deterministic: a redelivery or a replay carries the same id"}


def _obj(props: dict[str, Schema], required: tuple[str, ...] | list[str] | None = None, closed: bool = False,
         **extra: Any) -> Schema:
    s: Schema = {"type": "object", "required": list(props if required is None else required), "properties": props}
    if closed:
        s["additionalProperties"] = False
    s.update(extra)
    return s


def _enum(values: tuple[str, ...] | frozenset[str], nullable: bool = False) -> Schema:
    vals: list[Any] = sorted(values)
    return {"enum": [*vals, None] if nullable else vals}


def _nullable(s: Schema) -> Schema:
    return {"anyOf": [s, {"type": "null"}]}


def _fragment(check: c.Check) -> Schema:
    """The schema of one contract check. A check this does not know is a build error, never a guess."""
    allowed = getattr(check, "allowed", None)
    if allowed is not None:
        return _enum(allowed)
    known: dict[Any, Schema] = {
        c._is_id: ID, c._is_industry: ID, c._is_instant: INSTANT, c._is_count: IN_COUNT, c._is_ratio: RATIO,
        c.is_shop_id: SHOP_ID, c._is_amount: AMOUNT,
        c._is_bool: BOOL,
        c._is_b_edition: _nullable(_obj({"ordered_at": INSTANT, "expires_at": INSTANT})),
        c._is_third_party: _obj({"opened_before_2021": BOOL, "baseline_15d": IN_COUNT}),
        c._is_standard: _obj({f: IN_COUNT if f == "min_effective_members" else RATIO for f in c.STANDARD_FIELDS}),
    }
    if check not in known:
        raise KeyError(f"no JSON Schema for the contract check {check!r}: add it to tiering/schemas.py")
    return known[check]


def _base(etype: str, topic: str, kind: str) -> Schema:
    return {"$schema": DRAFT, "$id": f"urn:tierstream:schema:{etype}", "title": etype,
            "description": f"tierstream {kind} event `{etype}` on topic `{topic}` (shared/spec/events.md)"}


def input_schema(etype: str) -> Schema:
    """The schema of an input event type, from the contract check's table. Unknown fields are allowed
    (the contract ignores them)."""
    fields = c.REQUIRED[etype]
    props: dict[str, Schema] = {"event_id": ID, "type": {"const": etype}, "ts": EVENT_TS}
    props.update({name: _fragment(check) for name, check in fields.items()})
    required = list(props)
    if etype == "shop_profile_changed":
        props.update({name: _fragment(check) for name, check in c.PROFILE_OPTIONAL.items()})
    s = {**_base(etype, c.TOPIC_OF_TYPE[etype], "input"), **_obj(props, required)}
    if etype == "promo_window_declared":
        s["$comment"] = "`end` must be after `start`: checked by the contract, not expressible here"
    return s


def _indicators(closed: bool) -> Schema:
    return _obj({**{k: COUNT for k in INDICATOR_COUNTS}, **{k: RATIO for k in INDICATOR_RATIOS}}, closed=closed)


def _shop_fields(etype: str) -> dict[str, Schema]:
    return {"type": {"const": etype}, "event_id": OUTPUT_ID, "shop_id": SHOP_ID, "effective_at": INSTANT}


def _output_props(etype: str, closed: bool) -> tuple[dict[str, Schema], list[str] | None]:
    """The properties of an output type and, where some are optional, the required ones."""
    tier, privileges = _enum(TIERS), {"type": "array", "items": _enum(tuple(PRIVILEGES["premium"]))}
    criteria = _obj(dict.fromkeys(CRITERIA, BOOL), closed=closed)
    scope = {"type": "object", "propertyNames": _enum(c.CHANNELS), "additionalProperties": _enum(SCOPE_MODES)}
    shop = _shop_fields(etype)
    if etype == "tier_assessed":
        standard = _obj({"industry": ID, **{f: COUNT if f == "min_effective_members" else RATIO
                                            for f in c.STANDARD_FIELDS}}, closed=closed)
        return {**shop, "cycle": CYCLE, "tier": tier, "raw_tier": tier, "indicators": _indicators(closed),
                "standard": standard, "criteria": criteria}, None
    if etype == "tier_changed":
        return {**shop, "cycle": CYCLE, "from_tier": _enum(TIERS, nullable=True), "to_tier": tier,
                "indicators": _indicators(closed), "criteria": criteria, "privileges_granted": privileges,
                "privileges_revoked": privileges}, None
    if etype == "registration_join_changed":
        return {**shop, "status": _enum(("granted", "buffer", "revoked")), "buffer_until": INSTANT,
                "grace_deadline": INSTANT}, [*shop, "status"]
    if etype == "recruitment_restricted":
        return {**shop, "reason": _enum(REASONS), "scope": scope, "effective_until": _nullable(INSTANT)}, None
    if etype == "recruitment_restored":
        return {**shop, "reason": _enum(REASONS)}, None
    if etype == "recruitment_quality_assessed":
        return {**shop, "cycle": CYCLE, "cohort": COUNT, "converted": COUNT, "conversion_rate": RATIO,
                "standard": RATIO, "met": BOOL, "status": _enum(RQ_STATUS)}, None
    if etype == "member_protection_changed":
        return {**shop, "user_id": ID, "protected": BOOL}, None
    if etype == "dead_letter":
        source = _obj({"topic": _nullable(TEXT), "partition": COUNT, "offset": COUNT, "line": COUNT}, ["topic"],
                      closed=closed)
        return {"type": {"const": etype}, "event_id": OUTPUT_ID, "reason": TEXT, "raw": TEXT, "source": source,
                "shop_id": SHOP_ID, "raw_base64": {"type": "string", "contentEncoding": "base64"},
                "truncated": {"const": True}, "raw_size": COUNT}, ["type", "event_id", "reason", "raw", "source"]
    if etype == "late_event":
        event = _obj({"event_id": ID, "type": _enum(tuple(c.REQUIRED)), "ts": EVENT_TS})
        return {"type": {"const": etype}, "event_id": OUTPUT_ID, "reason": TEXT, "event": event,
                "closed_boundary": INSTANT, "shop_id": SHOP_ID, "effective_at": INSTANT}, \
            ["type", "event_id", "reason", "event", "closed_boundary"]
    if etype == "shop_state":
        restriction = _obj({"scope": scope, "since": INSTANT, "effective_until": _nullable(INSTANT)}, closed=closed)
        return {"type": {"const": etype}, "event_id": OUTPUT_ID, "shop_id": SHOP_ID,
                "tier": _enum(TIERS, nullable=True), "raw_tier": _enum(TIERS, nullable=True),
                "cycle": _nullable(CYCLE), "assessed_at": _nullable(INSTANT),
                "registration_join": _obj({"status": _enum(("none", "granted", "buffer", "revoked")),
                                           "buffer_until": _nullable(INSTANT)}, closed=closed),
                "restrictions": {"type": "object", "propertyNames": _enum(REASONS),
                                 "additionalProperties": restriction},
                "recruitment_quality": _obj({"status": _enum(RQ_STATUS, nullable=True),
                                             "cycle": _nullable(CYCLE)}, closed=closed),
                "ledger": _obj({"partition": COUNT, "offset": COUNT}, closed=closed)}, None
    raise KeyError(f"unknown output type {etype!r}")


def output_schema(etype: str, closed: bool = False) -> Schema:
    """The schema of an output type. Published open (a consumer must accept fields added later);
    `closed` refuses unknown fields, which the tests use to find an output that grew a field."""
    props, required = _output_props(etype, closed)
    s = {**_base(etype, OUTPUT_TOPIC[etype], "output"), **_obj(props, required, closed=closed)}
    if etype == "shop_state":
        s["description"] = ("tierstream `shop_state` record on topic `shop-state`: not an event but a shop's present "
                            "as of a ledger position, keyed by shop on a compacted topic (README, 'For downstream "
                            "consumers')")
    return s


INPUT_TYPES: Final = tuple(c.REQUIRED)
OUTPUT_TYPES: Final = tuple(OUTPUT_TOPIC)
ALL_TYPES: Final = (*INPUT_TYPES, *OUTPUT_TYPES)


def schema(etype: str) -> Schema:
    """The published schema of any input or output type."""
    if etype in c.REQUIRED:
        return input_schema(etype)
    if etype in OUTPUT_TOPIC:
        return output_schema(etype)
    raise KeyError(etype)
