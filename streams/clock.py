"""The clock: the watermark of everything ingested, and markers appended to every ledger partition.

After its ledger writes are acknowledged, ingest records in Redis, per input partition,
the largest event timestamp it has sent and whether that partition still has records
waiting. The clock's event time is the smallest of those maxima over partitions with
records waiting (all of them when none wait): a worker that is behind holds it back, so
markers never close a boundary another worker still has on-time events for, and an idle
partition never stalls it. Every worker's clock task reads it, and when the watermark
(time − lateness) crosses a tick of event time, claims it with an atomic compare-and-set;
only the claimant appends `{"type": "watermark", "watermark": W}` to every ledger
partition. A marker is a fact ("the watermark reached W"), so markers cannot conflict:
the fold keeps the largest.
"""

from __future__ import annotations

from typing import Any, Final

RAISE_MAX: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
local new = tonumber(ARGV[1])
if new > cur then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
"""


RAISE_FIELDS: Final = """
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
"""


class ClockKeys:
    def __init__(self, topic_prefix: str) -> None:
        base = f"tierstream:{{clock:{topic_prefix}}}"
        self.max_by_tp = f"{base}:max"  # hash: "topic/partition" -> largest ts sent to the ledger
        self.pending = f"{base}:pending"  # hash: "topic/partition" -> 1 if records wait, else 0
        self.sent = f"{base}:sent"


def encode_pending(waiting: bool, now_ms: int) -> str:
    return f"{int(waiting)}:{now_ms}"


def is_waiting(raw: str | None, now_ms: int, fresh_ms: int) -> bool:
    """A partition waits if its owner says so, or if no owner has spoken lately (a rebalance, a crash)."""
    if raw is None:
        return True
    flag, _, at = raw.partition(":")
    return flag == "1" or now_ms - int(at or 0) > fresh_ms


def event_time(max_by_tp: dict[str, int], waiting: dict[str, bool]) -> int | None:
    """The clock's event time: the least maximum over partitions with records waiting, else the greatest.

    `waiting` names every input partition; one that waits with nothing sent yet holds the clock at None."""
    if not max_by_tp:
        return None
    held = [max_by_tp.get(tp) for tp, w in waiting.items() if w]
    if any(ts is None for ts in held):
        return None
    return min(t for t in held if t is not None) if held else max(max_by_tp.values())


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
