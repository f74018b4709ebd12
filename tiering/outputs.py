"""Output events (events.md, output topics) with deterministic ids.

An id is a hash of what identifies the decision (type, shop, cycle or instant,
reason, ...), never of when it was computed, so a replay re-emits the same ids.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
from fractions import Fraction
from typing import Any, Final

import orjson

OUTPUT_TOPIC: Final = {
    "tier_assessed": "tier-assessments",
    "tier_changed": "tier-changes",
    "registration_join_changed": "recruitment-throttles",
    "recruitment_restricted": "recruitment-throttles",
    "recruitment_restored": "recruitment-throttles",
    "recruitment_quality_assessed": "recruitment-throttles",
    "member_protection_changed": "member-protection",
    "dead_letter": "dead-letters",
    "late_event": "late-events",
    "shop_state": "shop-state",  # not an event: a shop's present, compacted (tiering/shopstate.py)
}

Output = dict[str, Any]


def event_id(*identity: Any) -> str:
    return hashlib.blake2b(orjson.dumps(identity), digest_size=16).hexdigest()


def ratio(num: int, den: int) -> Fraction:
    return Fraction(num, den) if den else Fraction(0)


def publish(x: Fraction) -> float:
    """Ratios are compared exactly and published rounded to 6 decimals."""
    return round(float(x), 6)


def publish_ratio(num: int, den: int) -> float:
    """`publish(ratio(num, den))` without building the fraction (int / int is correctly rounded,
    as float(Fraction) is: the same float)."""
    return round(num / den, 6) if den else 0.0


def ratio_at_least(num: int, den: int, minimum: Fraction) -> bool:
    """`ratio(num, den) >= minimum`, exactly, in integers (den >= 0; a zero divisor is a 0 ratio)."""
    if not den:
        return minimum <= 0
    return num * minimum.denominator >= minimum.numerator * den


def shop_output(type_: str, shop_id: str, effective_at: int, ident: tuple[Any, ...],
                **fields: Any) -> Output:
    out: Output = {"type": type_, "event_id": event_id(type_, shop_id, *ident),
                   "shop_id": shop_id, "effective_at": effective_at}
    out.update(fields)
    return out


def restricted(shop_id: str, at: int, reason: str, scope: dict[str, str],
               until: int | None) -> Output:
    return shop_output("recruitment_restricted", shop_id, at, (reason, at, scope),
                       reason=reason, scope=scope, effective_until=until)


def restored(shop_id: str, at: int, reason: str) -> Output:
    return shop_output("recruitment_restored", shop_id, at, (reason, at), reason=reason)


# A dead letter keeps the first DEAD_RAW_MAX bytes of the message. Even a message of control
# characters, each escaped to six bytes of JSON, then stays well under the broker's 1 MiB.
DEAD_RAW_MAX: Final = 64 * 1024


def _raw_fields(data: bytes) -> dict[str, Any]:
    """`raw` as text; above DEAD_RAW_MAX bytes cut there (at a character's start) and marked
    `truncated` with the full `raw_size`; bytes that are not UTF-8 also exactly, as `raw_base64`."""
    kept = data[:DEAD_RAW_MAX]
    cut = len(data) > DEAD_RAW_MAX
    fields: dict[str, Any] = {}
    try:  # incremental: a character cut in two at the end is dropped, not an error
        fields["raw"] = codecs.getincrementaldecoder("utf-8")().decode(kept, final=not cut)
    except UnicodeDecodeError:
        fields["raw"] = kept.decode("utf-8", "replace")
        fields["raw_base64"] = base64.b64encode(kept).decode("ascii")
    if cut:
        fields.update(truncated=True, raw_size=len(data))
    return fields


def dead_letter(reason: str, raw: bytes | str, source: dict[str, Any], shop_id: str | None) -> Output:
    fields = _raw_fields(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"))
    out: Output = {"type": "dead_letter",
                   "event_id": event_id("dead_letter", source, fields["raw"]), "reason": reason,
                   "raw": fields.pop("raw"), "source": source, **fields}
    if shop_id is not None:
        out["shop_id"] = shop_id
    return out


def late_event(event: dict[str, Any], closed_boundary: int) -> Output:
    out: Output = {"type": "late_event", "event_id": event_id("late_event", event["event_id"]),
                   "reason": f"ts {event['ts']} is before the closed boundary {closed_boundary}",
                   "event": event, "closed_boundary": closed_boundary}
    if "shop_id" in event:
        out["shop_id"] = event["shop_id"]
        out["effective_at"] = event["ts"]
    return out
