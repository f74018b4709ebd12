"""Counters and a latency window for the health endpoint, and JSON log lines."""

from __future__ import annotations

import logging
import statistics
import sys
from collections import deque
from typing import Any

import orjson

log = logging.getLogger("tierstream")


class Metrics:
    """Counters, and windows of recent latencies by name (p50/p99 in /health and /metrics).

    Latencies read the wall clock: they describe the worker, no decision uses them."""

    WINDOW = 2048

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self._windows: dict[str, deque[float]] = {}

    def bump(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def observe(self, name: str, ms: float) -> None:
        window = self._windows.get(name)
        if window is None:
            window = self._windows[name] = deque(maxlen=self.WINDOW)
        window.append(ms)

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"counters": dict(sorted(self.counters.items()))}
        for name, window in sorted(self._windows.items()):
            lat = sorted(window)
            if lat:
                out[name] = {"p50": round(statistics.median(lat), 3),
                             "p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3), "n": len(lat)}
        return out


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
