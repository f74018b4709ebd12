"""The worker's /metrics: its counters, latencies, lag and watermarks in the Prometheus text format."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from plumbing.metrics import LATENCY_BUCKETS_MS, Metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "tierstream_"

# plain counters of plumbing.metrics.Metrics -> (metric name without prefix and _total, help)
COUNTERS: Mapping[str, tuple[str, str]] = {
    "events_in": ("events_in", "Input messages ingest read (valid or not)."),
    "ledger_out": ("ledger_appended", "Valid input events ingest appended to the ledger."),
    "ledger_folded": ("folded", "Ledger records the evaluate step folded and committed."),
    "duplicates": ("duplicates", "Input events ingest dropped as already appended (same event_id)."),
    "fenced": ("fenced_commits", "Evaluate passes whose commit was fenced out (another worker moved an offset)."),
    "batches": ("evaluate_passes", "Evaluate passes committed."),
    "markers": ("watermark_markers", "Watermark markers this worker's clock appended."),
    "namespace_switches": ("namespace_switches", "Switches to a promoted namespace."),
    "arrival_forced": ("arrival_forced", "Records the arrival merge released before other partitions caught up."),
    "arrival_drained": ("arrival_drained", "Records sent as partitions were revoked."),
}
# counters named `<label>_<suffix>` (streams/app.py) -> (metric, label name, help)
SUFFIXED: Mapping[str, tuple[str, str, str]] = {
    "_restarts": ("restarts", "reader", "Times a reader failed and was started again."),
    "_errors": ("step_errors", "step", "Timer steps (clock, feeds, pointer) that failed a tick."),
    "_commit_failed": ("group_commit_failures", "reader", "Consumer-group offset commits refused (a rebalance)."),
}
# labelled counters -> (metric, label name, help)
LABELED: Mapping[str, tuple[str, str, str]] = {
    "dead_letters": ("dead_letters", "reason", "Input messages sent to dead-letters, by reason class."),
    "outputs": ("outputs", "type", "Output events published, by type."),
}
STAGES = {  # latency windows -> stage label of tierstream_stage_latency_seconds
    "input_to_ledger_ms": "input_to_ledger", "ledger_to_fetch_ms": "ledger_to_fetch",
    "ledger_to_commit_ms": "ledger_to_commit", "evaluate_pass_ms": "evaluate_pass",
    "fold_batch_ms": "fold_batch", "commit_ms": "commit",
}
GC = {"gc_gen1_ms": "1", "gc_gen2_ms": "2"}

Lag = Callable[[], Mapping[str, Mapping[tuple[str, int], int]]]  # reader -> (topic, partition) -> records


class WorkerCollector(Collector):
    """Reads a worker's Metrics, its readers' lag and the watermarks at each scrape: one source
    of truth for /health and /metrics, nothing counted twice."""

    def __init__(self, metrics: Metrics, lag: Lag, watermarks: Callable[[], Mapping[int, int]],
                 clock_watermark: Callable[[], int | None], lateness_ms: int,
                 info: Callable[[], Mapping[str, str]], readers: Sequence[str] = (),
                 fold_duplicates: Callable[[], Mapping[int, int]] = dict) -> None:
        self.metrics, self.lag, self.watermarks, self.clock_watermark = metrics, lag, watermarks, clock_watermark
        self.lateness_ms, self.info, self.readers = lateness_ms, info, tuple(readers)
        self.fold_duplicates = fold_duplicates

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield from self._histograms()
        yield from self._gauges()

    def _counters(self) -> Iterator[Metric]:
        counters = dict(self.metrics.counters)
        labeled = {k: dict(v) for k, v in self.metrics.labeled.items()}
        for key, (name, doc) in COUNTERS.items():
            yield CounterMetricFamily(PREFIX + name, doc, value=counters.get(key, 0))
        for suffix, (name, label, doc) in SUFFIXED.items():
            fam = CounterMetricFamily(PREFIX + name, doc, labels=[label])
            by = {k[: -len(suffix)]: n for k, n in counters.items() if k.endswith(suffix)}
            if label == "reader":  # a reader that never failed counts 0 (a graph, not "no data")
                by = {**dict.fromkeys(self.readers, 0), **by}
            for value, n in sorted(by.items()):
                fam.add_metric([value], n)
            yield fam
        for key, (name, label, doc) in LABELED.items():
            fam = CounterMetricFamily(PREFIX + name, doc, labels=[label])
            for value, n in sorted(labeled.get(key, {}).items()):
                fam.add_metric([value], n)
            yield fam
        fold = CounterMetricFamily(PREFIX + "fold_duplicates", "Duplicates the fold dropped (ids it keeps per cycle), "
                                   "per ledger partition folded here, as the partition's state counts them.",
                                   labels=["partition"])
        for p, n in sorted(self.fold_duplicates().items()):
            fold.add_metric([str(p)], n)
        yield fold
        late = labeled.get("outputs", {}).get("late_event", 0)
        yield CounterMetricFamily(PREFIX + "late_events", "Events folded after their boundary closed "
                                  "(late_event outputs).", value=late)

    def _histograms(self) -> Iterator[Metric]:
        stages = HistogramMetricFamily(PREFIX + "stage_latency_seconds", "Latency of each stage of the worker "
                                       "(wall clock; describes the worker, decides nothing).", labels=["stage"])
        gc = HistogramMetricFamily(PREFIX + "gc_pause_seconds", "Pauses of the interpreter's collector "
                                   "(generations 1 and 2; every thread stops).", labels=["generation"])
        for key, hist in sorted(self.metrics.histograms.items()):
            fam, label = (stages, STAGES[key]) if key in STAGES else (gc, GC[key]) if key in GC else (None, "")
            if fam is None:
                continue
            counts, total = list(hist.counts), hist.total_ms
            buckets, running = [], 0
            for bound, n in zip((*LATENCY_BUCKETS_MS, float("inf")), counts, strict=True):
                running += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound / 1000), running))
            fam.add_metric([label], buckets, sum_value=total / 1000)
        yield stages
        yield gc

    def _gauges(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(PREFIX + "consumer_lag_records", "Per partition a reader holds: end offset minus "
                                "the next offset it will process.", labels=["reader", "topic", "partition"])
        for reader, by_tp in sorted(self.lag().items()):
            for (topic, partition), n in sorted(by_tp.items()):
                lag.add_metric([reader, topic, str(partition)], n)
        yield lag
        now = time.time() * 1000  # describes the worker; no decision reads it
        wm = GaugeMetricFamily(PREFIX + "watermark_seconds", "Per ledger partition this worker folds, the "
                               "watermark its state reached (epoch seconds).", labels=["partition"])
        et = GaugeMetricFamily(PREFIX + "event_time_lag_seconds", "Per ledger partition folded: wall clock minus "
                               "its watermark (includes the allowed lateness).", labels=["partition"])
        for p, w in sorted(self.watermarks().items()):
            wm.add_metric([str(p)], w / 1000)
            et.add_metric([str(p)], (now - w) / 1000)
        yield wm
        yield et
        clock = GaugeMetricFamily(PREFIX + "clock_watermark_seconds", "The last watermark marker any clock "
                                  "appended, as this worker's clock read it (epoch seconds).")
        cw = self.clock_watermark()
        if cw is not None:
            clock.add_metric([], cw / 1000)
        yield clock
        yield GaugeMetricFamily(PREFIX + "lateness_seconds", "The allowed lateness (rule parameter): the "
                                "event-time lag of a worker that keeps up.", value=self.lateness_ms / 1000)
        info = self.info()
        fam = GaugeMetricFamily(PREFIX + "worker_info", "The worker's namespace and roles.", labels=sorted(info))
        fam.add_metric([info[k] for k in sorted(info)], 1)
        yield fam


def registry_for(collector: WorkerCollector) -> CollectorRegistry:
    """A registry of this app's own (not the process-global one: several apps and the tests share a
    process), with the process, platform and collector metrics prometheus_client offers."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def parse(text: str) -> dict[str, Any]:
    """Families by name from a scrape (prometheus_client's own parser): for tests and tools."""
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}
