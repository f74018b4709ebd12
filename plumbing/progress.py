"""A one-line progress report on stderr (bar, count, rate, ETA) for replay, export, produce and simulate."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Redrawn in place (`\\r`) at most every `every_s`; off when the stream is not a terminal, so
    logs and pipes get only the commands' one-line summaries. `total` and `done` are in the same
    unit (records, or bytes of the input file); `count` is what the line reports (lines written,
    records folded). Reads the monotonic clock only to pace the drawing and report a rate."""

    WIDTH = 30

    def __init__(self, label: str, total: int, unit: str = "records", stream: TextIO | None = None,
                 enabled: bool | None = None, start: int = 0, every_s: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.unit, self.start = label, total, unit, start
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.every_s, self.clock = every_s, clock
        self.t0 = clock()
        self._drawn_at: float | None = None
        self._shown = 0

    def line(self, done: int, count: int | None = None, now: float | None = None) -> str:
        """The report at `done` of `total` (`count` of `unit` done, default `done`)."""
        elapsed = max((self.clock() if now is None else now) - self.t0, 1e-9)
        speed = (done - self.start) / elapsed  # in `total`'s unit, since this run started (not what it resumed)
        shown, rate = (done, speed) if count is None else (count, count / elapsed)
        eta = f"{(self.total - done) / speed:,.0f}s" if speed > 0 else "?"
        filled = min(self.WIDTH, int(self.WIDTH * done / self.total)) if self.total else self.WIDTH
        amount = (f"{shown:,}/{self.total:,} {self.unit}" if count is None
                  else f"{shown:,} {self.unit} ({100 * done / max(self.total, 1):.0f}%)")
        return f"{self.label}: [{'#' * filled}{'.' * (self.WIDTH - filled)}] {amount} {rate:,.0f}/s eta {eta}"

    def update(self, done: int, count: int | None = None) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self._drawn_at is not None and now - self._drawn_at < self.every_s and done < self.total:
            return
        self._drawn_at = now
        text = self.line(done, count, now)
        self._shown, pad = len(text), " " * max(0, self._shown - len(text))  # blank what a longer line left
        print("\r" + text + pad, end="", file=self.stream, flush=True)

    def close(self) -> None:
        """End the line (if one was drawn): what follows starts on its own."""
        if self.enabled and self._drawn_at is not None:
            print(file=self.stream, flush=True)
