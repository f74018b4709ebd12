"""The worker's /metrics scraped for real: Prometheus text (parsed by prometheus_client's own
parser) with the names and types the ops files use, and consumer lag that rises and drains."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plumbing.kafka import produce
from plumbing.settings import Settings
from simulator.workload import SimConfig, Simulator
from streams.prom import parse
from tests.integration.live import ROOT, Worker, delete_namespace, env_for, settings_for
from tests.ops_names import declared, ops_metric_names

pytestmark = pytest.mark.integration


class RoleWorker(Worker):
    """A worker doing only some of the work (TIERSTREAM_ROLES), so each reader's lag is seen alone."""

    def __init__(self, settings: Settings, log_dir: Path, roles: str) -> None:
        super().__init__(settings, log_dir, roles.replace(",", "-"))
        self.roles = roles

    def start(self) -> RoleWorker:
        env = env_for(self.settings, TIERSTREAM_WEB_PORT=str(self.port), TIERSTREAM_ROLES=self.roles)
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=env, cwd=ROOT,
                                         stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def scrape(self) -> tuple[str, dict[str, Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = r.read().decode()
        return text, parse(text)


def _lag(families: dict[str, Any], reader: str) -> int | None:
    """Summed over partitions; None while the reader holds no partition yet."""
    samples = [s for s in families["tierstream_consumer_lag_records"].samples if s.labels["reader"] == reader]
    return int(sum(s.value for s in samples)) if samples else None


def _value(families: dict[str, Any], name: str, **labels: str) -> float:
    """A counter's or gauge's value, summed over the series with these labels."""
    return float(sum(s.value for s in families[name].samples
                     if s.name in (name, f"{name}_total") and all(s.labels.get(k) == v for k, v in labels.items())))


def _watch(worker: RoleWorker, reader: str, done: Any, timeout: float = 240) -> tuple[list[int], dict[str, Any], str]:
    """Scrape until `done(families)`; the reader's lag at every scrape that had one."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text, fam = worker.scrape()
        lag = _lag(fam, reader)
        if lag is not None:
            seen.append(lag)
            if done(fam) and lag == 0:
                return seen, fam, text
        time.sleep(0.05)
    raise AssertionError(f"{reader} did not drain in {timeout}s; lag seen {seen[-20:]}\n{worker.tail()}")


@pytest.fixture
def backlog(kafka_bootstrap: str, redis_url: str, unique: str) -> Iterator[tuple[Settings, int]]:
    """Input topics holding a simulated workload before any worker runs (a backlog to drain)."""
    s = settings_for(kafka_bootstrap, redis_url, unique)
    lines = b"\n".join(Simulator(SimConfig(shops=60, days=20, seed=7)).lines()) + b"\n"
    n = asyncio.run(produce(s, io.BytesIO(lines), in_order=False))
    yield s, n
    delete_namespace(redis_url, s.namespace)


def test_metrics_are_prometheus_text_with_a_lag_that_moves(backlog: tuple[Settings, int], tmp_path: Path) -> None:
    settings, n = backlog
    ingest = RoleWorker(settings, tmp_path, "ingest,clock").start().wait_ready()
    evaluate: RoleWorker | None = None
    try:
        ingest_lags, fam_in, text_in = _watch(ingest, "ingest", lambda f: _value(f, "tierstream_events_in") >= n)
        assert max(ingest_lags) > 0 and ingest_lags[-1] == 0, ingest_lags  # the backlog was seen, then drained
        assert _value(fam_in, "tierstream_events_in") >= n  # global events count once per partition
        assert _value(fam_in, "tierstream_dead_letters", reason="malformed_json") > 0  # the simulator's broken lines
        appended = _value(fam_in, "tierstream_ledger_appended")
        assert appended > 0 and appended == _value(fam_in, "tierstream_events_in") - _value(
            fam_in, "tierstream_dead_letters") - _value(fam_in, "tierstream_duplicates")  # every message accounted for

        # the ledger now holds what ingest appended; an evaluate-only worker starts with all of it to fold
        evaluate = RoleWorker(settings, tmp_path, "evaluate").start().wait_ready()
        eval_lags, fam_ev, text_ev = _watch(evaluate, "evaluate", lambda f: _value(f, "tierstream_folded") > 0)
        assert max(eval_lags) > 0 and eval_lags[-1] == 0, eval_lags
        assert _value(fam_ev, "tierstream_folded") >= appended  # plus the clock's watermark markers
        assert _value(fam_ev, "tierstream_outputs", type="tier_assessed") > 0
        assert _value(fam_ev, "tierstream_evaluate_passes") > 0
        fold_dups = {s.labels["partition"] for s in fam_ev["tierstream_fold_duplicates"].samples}
        assert fold_dups == {str(p) for p in range(settings.partitions)}  # ingest dropped them all: 0 each
        assert _value(fam_ev, "tierstream_fold_duplicates") == 0

        types = {name: fam.type for name, fam in {**fam_in, **fam_ev}.items()}
        assert types["tierstream_events_in"] == "counter" and types["tierstream_dead_letters"] == "counter"
        assert types["tierstream_consumer_lag_records"] == "gauge"
        assert types["tierstream_stage_latency_seconds"] == "histogram"
        assert types["tierstream_watermark_seconds"] == types["tierstream_event_time_lag_seconds"] == "gauge"
        stages = {s.labels["stage"] for s in fam_ev["tierstream_stage_latency_seconds"].samples}
        assert {"fold_batch", "commit", "ledger_to_commit"} <= stages
        marks = {s.labels["partition"]: s.value for s in fam_ev["tierstream_watermark_seconds"].samples}
        assert len(marks) == settings.partitions and all(1.67e9 < w < 1.68e9 for w in marks.values())  # 2023
        lag_et = [s.value for s in fam_ev["tierstream_event_time_lag_seconds"].samples]
        assert all(lag > 86_400 * 365 for lag in lag_et)  # simulated 2023 events, scraped years later
        assert _value(fam_in, "tierstream_clock_watermark_seconds") > 1.67e9

        # every metric the Grafana board and the alert rules name is in these real scrapes
        scraped = {s.name for fam in (*fam_in.values(), *fam_ev.values()) for s in fam.samples}
        missing = ops_metric_names() - scraped - declared(text_in) - declared(text_ev)
        assert not missing, missing
        assert "tierstream_stage_latency_seconds_bucket" in text_ev
        health = evaluate.health()
        assert health is not None and health["status"] == "ok"  # the JSON stays at /health
        assert health["counters"]["ledger_folded"] == _value(fam_ev, "tierstream_folded")
    finally:
        if evaluate is not None:
            evaluate.stop()
        ingest.stop()
