"""One fault test's run: a worker folding a simulated workload while a fault strikes, then the end conditions.

The end conditions are those of the crash tests (tests/integration/test_live.py), plus one: every
valid input event is in the ledger exactly once (once per partition for a fanned-out global event).
The stage latencies the worker reports in /health are sampled while the fault lasts and written,
with the retries it reported, to artifacts/faults/<name>.json (and summed up at the session's end)."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from plumbing.settings import Settings
from plumbing.topics import LEDGER
from replay.export import read_to_end
from simulator.workload import SimConfig, Simulator
from tests.integration.live import (
    ROOT,
    Worker,
    consume_all,
    delete_namespace,
    produce_lines,
    state_dump,
    wait_caught_up,
)
from tests.integration.test_live import assert_same_meaning, rebuilt, valid_event_ids

STAGES = ("input_to_ledger_ms", "ledger_to_commit_ms", "commit_ms")
REPORTS = ROOT / "artifacts" / "faults"


def workload(shops: int = 60, days: int = 20, seed: int = 5) -> bytes:
    return b"\n".join(Simulator(SimConfig(shops=shops, days=days, seed=seed, events_per_shop_day=3)).lines()) + b"\n"


def ledger_copies(s: Settings) -> collections.Counter[tuple[str, int]]:
    """(event id, ledger partition) -> how many records carry it (watermark markers left out)."""
    records = asyncio.run(read_to_end(s, [s.topic(LEDGER)], lambda r: True))
    copies: collections.Counter[tuple[str, int]] = collections.Counter()
    for r in records:
        event = orjson.loads(r.value)
        if event.get("type") != "watermark":
            copies[event["event_id"], r.partition] += 1
    return copies


class Sampler(threading.Thread):
    """Reads the worker's /health every half second while the fault lasts."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(daemon=True)
        self.worker, self.stopping = worker, False
        self.samples: list[tuple[float, dict[str, Any]]] = []

    def run(self) -> None:
        while not self.stopping:
            h = self.worker.health()
            if h is not None:
                self.samples.append((time.monotonic(), h))
            time.sleep(0.5)


def wait_in_ledger(s: Settings, wanted: set[str], timeout: float = 180) -> None:
    deadline, missing = time.monotonic() + timeout, len(wanted)
    while time.monotonic() < deadline:
        missing = len(wanted - {eid for eid, _p in ledger_copies(s)})
        if not missing:
            return
        time.sleep(1)
    raise AssertionError(f"{missing} valid input events never reached the ledger in {timeout}s")


@dataclasses.dataclass
class FaultRun:
    """`s`: how the test reaches Kafka and Redis (directly); `worker_s`: how the worker does (maybe through proxies)."""

    name: str
    s: Settings
    worker_s: Settings
    log_dir: Path
    lines: bytes = dataclasses.field(default_factory=workload)
    report: dict[str, Any] = dataclasses.field(default_factory=dict)

    def run(self, fault: Callable[[Worker], dict[str, Any] | None], mid_stream_batches: int = 5) -> dict[str, Any]:
        """Start the worker, feed the workload, strike with `fault` once it is folding, check the end conditions."""
        w = Worker(self.worker_s, self.log_dir, self.name).start().wait_ready(timeout=90)
        sampler = Sampler(w)
        try:
            producer = threading.Thread(target=produce_lines, args=(self.s, self.lines), daemon=True)
            producer.start()
            w.wait_batches(mid_stream_batches, timeout=90)  # folding, mid-stream
            assert producer.is_alive(), "input should still be arriving when the fault strikes"
            sampler.start()
            t0 = time.monotonic()
            detail = fault(w) or {}
            fault_s = time.monotonic() - t0
            producer.join(timeout=300)
            assert not producer.is_alive(), "the producer did not finish"
            wait_in_ledger(self.s, valid_event_ids(self.lines))
            wait_caught_up(self.s, timeout=180)
            recovered_s = time.monotonic() - t0
            sampler.stopping = True
            assert w.proc is not None and w.proc.poll() is None, f"the worker should have survived\n{w.tail()}"
            self.check_end_conditions()
            health = w.health() or {}
            self.report = {"fault": self.name, **detail, "fault_s": round(fault_s, 1),
                           "caught_up_after_s": round(recovered_s, 1), "events": len(self.lines.splitlines()),
                           "worst_p99_during_ms": self.worst_p99(sampler.samples),
                           "retries": health.get("retries", {}),
                           "counters": {k: v for k, v in health.get("counters", {}).items()
                                        if k.endswith(("_restarts", "_errors", "_failed", "_partial_writes"))
                                        or k == "fenced"}}
            REPORTS.mkdir(parents=True, exist_ok=True)
            (REPORTS / f"{self.name}.json").write_text(json.dumps(self.report, indent=1, sort_keys=True))
            return self.report
        finally:
            sampler.stopping = True
            w.stop()
            delete_namespace(str(self.s.redis), self.s.namespace)

    def check_end_conditions(self) -> None:
        copies = ledger_copies(self.s)
        twice = {k: n for k, n in copies.items() if n > 1}
        assert twice == {}, f"{len(twice)} events in the ledger more than once, e.g. {sorted(twice)[:5]}"
        in_ledger = {eid for eid, _p in copies}
        valid = valid_event_ids(self.lines)
        assert valid == in_ledger, (f"missing {len(valid - in_ledger)}, "
                                    f"unexpected {len(in_ledger - valid)}")
        outputs, state = consume_all(self.s), state_dump(str(self.s.redis), self.s.namespace)
        assert len(state) > 100, "the workload should have built state"
        assert_same_meaning(outputs)
        replay_outputs, replay_state = rebuilt(self.s, f"{self.s.namespace}-rebuild")
        assert replay_state == state
        assert set(replay_outputs) <= set(outputs)

    @staticmethod
    def worst_p99(samples: list[tuple[float, dict[str, Any]]]) -> dict[str, float]:
        """The largest p99 of each stage /health showed while the fault lasted and the worker caught up."""
        worst: dict[str, float] = {}
        for _t, h in samples:
            for stage in STAGES:
                if stage in h:
                    worst[stage] = max(worst.get(stage, 0.0), float(h[stage]["p99"]))
        return worst
