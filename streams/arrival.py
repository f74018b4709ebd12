"""Arrival order across input partitions: a k-way merge by producer record timestamps.

Kafka orders each partition, not the interleaving of four topics, and a consumer
fetches partitions in chunks. Ingest restores the order the producers sent in by
holding records and releasing the oldest (record timestamp, then topic/partition/
offset) only when no assigned partition can still deliver an older one: it has a
buffered record, or it is caught up to its end offset. Where a partition starts (the
group's committed offset) is told with `start`; a partition nothing is known about
blocks for at most `max_hold_s` (a safety net, counted in `forced`), then counts as
caught up. Liveness only reads the monotonic clock; no decision of the fold does.

End offsets may come from fetch responses (every response carries each partition's high
watermark) rather than a ListOffsets request: then `observed` tells when a partition's
end offset was read, and an empty partition counts as caught up for a record only with an
end offset read after that record was received (`add(..., received=)`) — one fetch later,
so a record sent before it on another partition cannot be missed.

Within one partition records leave in offset order (a record's merge timestamp is at least
its predecessor's), so a consumer may commit up to the last record released.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
TP = Any  # a (topic, partition) pair, hashable and orderable


class ArrivalMerge(Generic[T]):
    def __init__(self, max_hold_s: float = 1.0) -> None:
        self.max_hold_s = max_hold_s
        self._heap: list[tuple[int, str, int, int, int, float, T]] = []
        self._last_ts: dict[TP, int] = {}
        self._buffered: dict[TP, int] = {}
        self._next: dict[TP, int] = {}  # next offset expected from each partition
        self._blocked_since: dict[TP, float] = {}
        self._n = 0
        self.forced = 0

    def knows(self, tp: TP) -> bool:
        return tp in self._next

    def start(self, tp: TP, offset: int) -> None:
        """The partition's first offset for this consumer (its committed position)."""
        self._next.setdefault(tp, offset)

    def add(self, tp: TP, timestamp: int, offset: int, item: T, received: float = 0.0) -> None:
        self.extend(tp, ((timestamp, offset, item),), received)

    def extend(self, tp: TP, entries: Iterable[tuple[int, int, T]], received: float = 0.0) -> None:
        """Hold records of one partition, (timestamp, offset, item) in offset order; the
        partition's bookkeeping is updated once for all of them."""
        heap, topic, part = self._heap, str(tp[0]), int(tp[1])
        last = self._last_ts.get(tp)
        nxt = self._next.get(tp, 0)
        n = n0 = self._n
        for timestamp, offset, item in entries:
            if last is not None and timestamp < last:
                timestamp = last  # FIFO per partition: never before the record ahead of it
            else:
                last = timestamp
            n += 1
            heapq.heappush(heap, (timestamp, topic, part, offset, n, received, item))
            if offset >= nxt:
                nxt = offset + 1
        if last is not None and n > n0:
            self._n = n
            self._last_ts[tp] = last
            self._buffered[tp] = self._buffered.get(tp, 0) + n - n0
            self._next[tp] = nxt

    def __len__(self) -> int:
        return len(self._heap)

    def held(self, tp: TP) -> int:
        """Records of `tp` held, not yet released."""
        return self._buffered.get(tp, 0)

    def waiting(self, tp: TP, end_offset: int | None) -> bool:
        """Whether records of tp are held here or not yet read (for the clock)."""
        nxt = self._next.get(tp)
        return bool(self._buffered.get(tp)) or end_offset is None or nxt is None or nxt < end_offset

    def drain(self) -> list[T]:
        """Everything held, oldest first, and forget where partitions stood (a rebalance)."""
        out = [heapq.heappop(self._heap)[-1] for _ in range(len(self._heap))]
        self._buffered.clear()
        self._next.clear()
        self._last_ts.clear()
        self._blocked_since.clear()
        return out

    def release(self, assigned: Iterable[TP], highwater: Callable[[TP], int | None], now: float,
                observed: Callable[[TP], float | None] | None = None) -> list[T]:
        """Pop every record that no assigned partition can still precede.

        With `observed`, a partition's end offset counts only if read after the record was received."""
        out: list[T] = []
        assigned = list(assigned)
        checked_for: float | None = None
        waiting: list[TP] = []
        while self._heap:
            received = self._heap[0][5]
            if received != checked_for:  # records of one fetch share the check
                checked_for = received
                waiting = [tp for tp in assigned if not self._buffered.get(tp)
                           and not self._caught_up(tp, highwater, now, observed, received)]
            if waiting:
                break
            _ts, topic, part, _off, _n, _rcv, item = heapq.heappop(self._heap)
            tp = (topic, part)
            self._buffered[tp] -= 1
            out.append(item)
            if not self._buffered[tp] and not self._caught_up(tp, highwater, now, observed, received):
                waiting.append(tp)
        return out

    def _caught_up(self, tp: TP, highwater: Callable[[TP], int | None], now: float,
                   observed: Callable[[TP], float | None] | None = None, received: float = 0.0) -> bool:
        hw = highwater(tp)
        if observed is not None and hw is not None:
            seen_at = observed(tp)
            if seen_at is None or seen_at <= received:
                hw = None  # read before the record arrived: may predate a record sent before it
        nxt = self._next.get(tp)
        if hw is not None and nxt is not None and nxt >= hw:
            self._blocked_since.pop(tp, None)
            return True
        since = self._blocked_since.setdefault(tp, now)
        if now - since >= self.max_hold_s:
            # safety net: nothing arrived for long; assume caught up at what the broker reports
            self.forced += 1
            self._next[tp] = max(nxt or 0, hw or 0)
            self._blocked_since.pop(tp, None)
            return True
        return False
