"""The clock: the watermark of everything ingested, and markers appended to every ledger partition.

Ingest raises a shared maximum event timestamp in Redis after its ledger writes are
acknowledged. Every worker's clock task reads it, and when the watermark (max − lateness)
crosses a tick of event time, claims that watermark with an atomic compare-and-set; only
the claimant appends `{"type": "watermark", "watermark": W}` to every partition. A marker
is a fact ("the watermark reached W"), so markers cannot conflict: the fold keeps the
largest. Idle partitions advance because every partition gets every marker.
"""

from __future__ import annotations

from typing import Any, Final

RAISE_MAX: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
local new = tonumber(ARGV[1])
if new > cur then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
"""


class ClockKeys:
    def __init__(self, topic_prefix: str) -> None:
        base = f"tierstream:{{clock:{topic_prefix}}}"
        self.max_ts = f"{base}:max_ts"
        self.sent = f"{base}:sent"


def marker(watermark: int) -> dict[str, Any]:
    return {"type": "watermark", "watermark": watermark}


def due_tick(max_ts: int | None, sent: int | None, lateness_ms: int, tick_ms: int) -> int | None:
    """The watermark to announce now, if it crossed a tick since the last marker; else None."""
    if max_ts is None:
        return None
    w = max_ts - lateness_ms
    if sent is not None and w // tick_ms <= sent // tick_ms:
        return None
    return w
