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
    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self._fold_ms: deque[float] = deque(maxlen=2048)

    def bump(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def fold_latency(self, ms: float) -> None:
        self._fold_ms.append(ms)

    def snapshot(self) -> dict[str, Any]:
        lat = sorted(self._fold_ms)
        out: dict[str, Any] = {"counters": dict(sorted(self.counters.items()))}
        if lat:
            out["fold_batch_ms"] = {"p50": round(statistics.median(lat), 3),
                                    "p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3),
                                    "n": len(lat)}
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
