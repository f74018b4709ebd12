"""Counters, latency windows and histograms (/health, /metrics), JSON logs, the collector's pauses."""

from __future__ import annotations

import bisect
import gc
import logging
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

log = logging.getLogger("tierstream")


LATENCY_BUCKETS_MS = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0)


class Histogram:
    """Counts of observations per latency bucket (not cumulative; the last is above every bound), and their sum."""

    __slots__ = ("counts", "total_ms")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.total_ms = 0.0

    def add(self, ms: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS_MS, ms)] += 1  # bucket i holds ms <= bound i
        self.total_ms += ms


class Metrics:
    """Counters (some also by a label: dead letters by reason class, outputs by type), and per
    latency name a window of recent values (p50/p99 in /health) and a histogram since start
    (/metrics, streams/prom.py).

    Latencies read the wall clock: they describe the worker, no decision uses them."""

    WINDOW = 2048

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.labeled: dict[str, dict[str, int]] = {}
        self.histograms: dict[str, Histogram] = {}
        self._windows: dict[str, deque[float]] = {}
        self.retries: dict[str, dict[str, Any]] = {}

    def retried(self, what: str, error: BaseException) -> None:
        """A step failed and will be tried again (a reader restarted, a timer step failed): counted
        with its last error and when (wall clock: for people reading /health, no decision uses it)."""
        entry = self.retries.setdefault(what, {"count": 0})
        entry["count"] += 1
        entry["last_error"] = repr(error)[:300]
        entry["last_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def bump(self, name: str, n: int = 1, label: str | None = None) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
        if label is not None:
            by = self.labeled.setdefault(name, {})
            by[label] = by.get(label, 0) + n

    def observe(self, name: str, ms: float) -> None:
        window = self._windows.get(name)
        if window is None:
            window = self._windows[name] = deque(maxlen=self.WINDOW)
            self.histograms[name] = Histogram()
        window.append(ms)
        self.histograms[name].add(ms)

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"counters": dict(sorted(self.counters.items())),
                               "retries": {k: dict(v) for k, v in sorted(self.retries.items())}}
        if self.labeled:
            out["counters_by_label"] = {k: dict(sorted(v.items())) for k, v in sorted(self.labeled.items())}
        for name, window in sorted(self._windows.items()):
            lat = sorted(window)
            if lat:
                out[name] = {"p50": round(statistics.median(lat), 3),
                             "p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3), "n": len(lat)}
        return out


def watch_gc(metrics: Metrics) -> Callable[[str, dict[str, int]], None]:
    """Time the interpreter's collections of generations 1 and 2 (`gc_gen1_ms`, `gc_gen2_ms`):
    such a pause stops every thread of the worker, so it shows in the stage latencies' tails."""
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if generation == 0:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            metrics.observe(f"gc_gen{generation}_ms", (time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(on_gc)
    return on_gc


GC_TENURE_EVERY_S = 5.0  # objects alive this long leave the collector's young and old generations
GC_FULL_EVERY_S = 600.0  # and everything is collected once this often


class GcTenure:
    """Keep the interpreter's full collections short.

    CPython runs a full (generation 2) collection whenever the objects that survived into it
    since the last one reach a quarter of it; a worker's or a rebuild's caches (shop states,
    member indexes) grow steadily, so under load full collections came every few seconds and
    each scanned them all: 63-89 ms with every thread stopped (`gc_gen2_ms`), a share of the
    stage latencies' tails. `tick` (a worker's timer, a rebuild's passes) freezes what is alive
    (`gc.freeze`): later collections scan only what was made since. Cyclic garbage among
    frozen objects is reclaimed by the full collection over everything once every
    `full_every_s`, or when `release` hands everything back."""

    def __init__(self, full_every_s: float = GC_FULL_EVERY_S) -> None:
        self.full_every_s = full_every_s
        self.last_full: float | None = None

    def tick(self, now: float) -> None:
        if self.last_full is None or now - self.last_full >= self.full_every_s:
            gc.unfreeze()
            gc.collect()
            self.last_full = now
        gc.freeze()

    def release(self) -> None:
        """Give everything back to the collector (the work that kept caches is over)."""
        gc.unfreeze()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            doc.update(extra)
        return orjson.dumps(doc, default=str).decode()


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def info(msg: str, **fields: Any) -> None:
    log.info(msg, extra={"fields": fields})
