"""/metrics as Prometheus text: what a worker's Metrics become, read back with prometheus_client's
parser; dead-letter reason classes; the ops files name only metrics the exposition declares."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from plumbing.ingest import route
from plumbing.metrics import Metrics
from streams.prom import WorkerCollector, exposition, parse, registry_for
from tests.ops_names import ALERTS, GRAFANA, alert_exprs, declared, grafana_exprs, ops_metric_names

pytestmark = pytest.mark.unit


def _scrape(metrics: Metrics, lag: dict[str, dict[tuple[str, int], int]] | None = None,
            marks: dict[int, int] | None = None) -> tuple[str, dict[str, object]]:
    collector = WorkerCollector(metrics, lambda: lag or {}, lambda: marks or {}, lambda: 1_676_476_800_000,
                                43_200_000, lambda: {"namespace": "live", "roles": "evaluate"}, ["evaluate"],
                                lambda: {0: 2, 5: 0})
    text = exposition(registry_for(collector)).decode()
    return text, parse(text)


def _samples(fams: dict[str, object], name: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for s in fams[name].samples]  # type: ignore[attr-defined]


def test_counters_by_label_and_derived() -> None:
    m = Metrics()
    m.bump("events_in", 7)
    m.bump("dead_letters", label="malformed_json")
    m.bump("dead_letters", 2, label="unknown_type")
    m.bump("outputs", 3, label="late_event")
    m.bump("outputs", 1, label="tier_assessed")
    m.bump("ingest_restarts")
    m.bump("clock_errors", 4)
    _text, fams = _scrape(m)
    assert _samples(fams, "tierstream_events_in") == [("tierstream_events_in_total", {}, 7.0)]
    assert {s[1]["reason"]: s[2] for s in _samples(fams, "tierstream_dead_letters")} == \
        {"malformed_json": 1.0, "unknown_type": 2.0}
    assert _samples(fams, "tierstream_late_events")[0][2] == 3.0
    assert {s[1]["type"]: s[2] for s in _samples(fams, "tierstream_outputs")} == {"late_event": 3, "tier_assessed": 1}
    # the evaluate reader never failed: a 0, not a missing series
    assert {s[1]["reader"]: s[2] for s in _samples(fams, "tierstream_restarts")} == {"ingest": 1.0, "evaluate": 0.0}
    assert _samples(fams, "tierstream_step_errors") == [("tierstream_step_errors_total", {"step": "clock"}, 4.0)]
    assert fams["tierstream_folded"].type == "counter"  # type: ignore[attr-defined]
    assert {s[1]["partition"]: s[2] for s in _samples(fams, "tierstream_fold_duplicates")} == {"0": 2.0, "5": 0.0}
    assert m.snapshot()["counters_by_label"]["dead_letters"] == {"malformed_json": 1, "unknown_type": 2}


def test_latencies_are_histograms_in_seconds_with_cumulative_buckets() -> None:
    m = Metrics()
    for ms in (0.5, 5.0, 5.01, 70.0, 99_000.0):
        m.observe("commit_ms", ms)
    m.observe("gc_gen2_ms", 80.0)
    _text, fams = _scrape(m)
    commit = {s[1]["le"]: s[2] for s in _samples(fams, "tierstream_stage_latency_seconds")
              if s[0].endswith("_bucket") and s[1]["stage"] == "commit"}
    assert commit["0.001"] == 1 and commit["0.005"] == 2 and commit["0.01"] == 3  # le: 5.0 ms is in 0.005
    assert commit["0.1"] == 4 and commit["30.0"] == 4 and commit["+Inf"] == 5
    counts = {s[0]: s[2] for s in _samples(fams, "tierstream_stage_latency_seconds") if s[1]["stage"] == "commit"}
    assert counts["tierstream_stage_latency_seconds_count"] == 5
    assert counts["tierstream_stage_latency_seconds_sum"] == pytest.approx((0.5 + 5 + 5.01 + 70 + 99_000) / 1000)
    gc = [s for s in _samples(fams, "tierstream_gc_pause_seconds") if s[0].endswith("_count")]
    assert gc == [("tierstream_gc_pause_seconds_count", {"generation": "2"}, 1.0)]


def test_lag_and_watermarks_are_gauges_per_partition() -> None:
    _text, fams = _scrape(Metrics(), lag={"ingest": {("orders", 0): 12, ("orders", 1): 0}},
                          marks={0: 1_676_476_800_000, 3: 1_676_480_400_000})
    assert fams["tierstream_consumer_lag_records"].type == "gauge"  # type: ignore[attr-defined]
    assert sorted((s[1]["topic"], s[1]["partition"], s[2]) for s in _samples(fams, "tierstream_consumer_lag_records")) \
        == [("orders", "0", 12.0), ("orders", "1", 0.0)]
    assert {s[1]["partition"]: s[2] for s in _samples(fams, "tierstream_watermark_seconds")} == \
        {"0": 1_676_476_800.0, "3": 1_676_480_400.0}
    lags = {s[1]["partition"]: s[2] for s in _samples(fams, "tierstream_event_time_lag_seconds")}
    assert lags["0"] - lags["3"] == pytest.approx(3600, abs=5)  # the wall clock moved a little between them
    assert _samples(fams, "tierstream_clock_watermark_seconds")[0][2] == 1_676_476_800.0
    assert _samples(fams, "tierstream_lateness_seconds")[0][2] == 43_200.0


def test_registries_are_per_app() -> None:
    """Two workers in one process (as in tests) do not collide, and neither touches the global registry."""
    a, b = Metrics(), Metrics()
    a.bump("events_in", 1)
    b.bump("events_in", 2)
    assert _samples(_scrape(a)[1], "tierstream_events_in")[0][2] == 1
    assert _samples(_scrape(b)[1], "tierstream_events_in")[0][2] == 2


@pytest.mark.parametrize(("raw", "topic", "cls"), [
    (b"{not json", "orders", "malformed_json"),
    (b"[1, 2]", "orders", "not_an_object"),
    (b'{"type": "order_refunded"}', "orders", "unknown_type"),
    (b'{"event_id": "e"}', "orders", "unknown_type"),
    (b'{"type": "order_paid", "event_id": "e", "ts": 1, "shop_id": "s"}', "member-events", "wrong_topic"),
    (b'{"type": "order_paid", "event_id": "e", "ts": 1676476800000, "shop_id": "s"}', "orders", "missing_field"),
    (b'{"type": "order_paid", "event_id": "e", "ts": "x", "shop_id": "s", "order_id": "o", "user_id": "u", '
     b'"amount_cents": 1}', "orders", "invalid_field"),
])
def test_dead_letter_reason_classes(raw: bytes, topic: str, cls: str) -> None:
    from plumbing.ingest import reason_class

    routed = route(raw, topic, 0, 0, 8)
    assert routed.dead is not None
    assert reason_class(routed.dead["reason"]) == cls, routed.dead["reason"]


def test_the_ops_files_name_only_declared_metrics() -> None:
    """Every metric the board and the rules query is declared by the exposition (the integration
    test checks the same against a real worker's scrape)."""
    m = Metrics()
    m.observe("commit_ms", 1.0)
    m.observe("gc_gen1_ms", 1.0)
    text, _fams = _scrape(m)
    names = ops_metric_names()
    assert {"tierstream_consumer_lag_records", "tierstream_dead_letters_total", "tierstream_restarts_total",
            "tierstream_folded_total"} <= names
    assert not names - declared(text), names - declared(text)
    board = json.loads(GRAFANA.read_text())
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for topic in ("throughput", "lag", "latency", "dead letters", "restarts"):
        assert topic in titles
    assert len(grafana_exprs()) >= 10 and len(alert_exprs()) >= 4
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_promtool_accepts_the_alert_rules_and_the_scrape_config() -> None:
    """Runs where promtool is installed (Debian: the `prometheus` package; or TIERSTREAM_PROMTOOL)."""
    promtool = os.environ.get("TIERSTREAM_PROMTOOL") or shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (apt-get install prometheus, or set TIERSTREAM_PROMTOOL)")
    done = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_exprs())} rules found" in done.stdout
    # the rules fire (and stay quiet) on synthetic series as ops/prometheus/alerts_test.yml expects
    done = subprocess.run([promtool, "test", "rules", str(ALERTS.with_name("alerts_test.yml"))], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
    config = ALERTS.with_name("prometheus.yml")  # names alerts.yml among its rule files
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"SUCCESS: {len(alert_exprs())} rules found" in done.stdout, \
        done.stdout + done.stderr
