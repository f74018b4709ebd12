"""`python -m bench.soak`: a steady feed for minutes, faults on a schedule; memory, lag and latency sampled, plotted.

The worker reaches the three-broker cluster and Redis through fault proxies (devstack/faultproxy.py);
every `--fault-every` seconds the next fault of FAULTS strikes. Every `--sample-every` seconds the
worker's RSS, Redis's `used_memory`, the input lag (input end offsets minus ingest's committed
offsets), the ledger lag (ledger end offsets minus the offsets folded into Redis) and the stage
p99s of /health are sampled. At the end the feed stops and the soak waits for both lags to reach 0.
It writes the samples (JSON) and a plot (PNG, matplotlib: `pip install -e '.[bench]'`), and exits 1
when lag is left or the worker's RSS grew more than `--rss-bound` from the second third of the run
to the last (docs/reliability.md, "The soak").
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devstack import brokers, stack
from devstack.faultproxy import KAFKA_PRODUCE, FaultProxy, ProxyHost, kafka_request, redis_commit
from plumbing.kafka import produce
from plumbing.settings import Settings
from plumbing.topics import INPUT_TOPICS, LEDGER
from projections.keys import Keys
from simulator.workload import SimConfig, Simulator

ROOT = Path(__file__).resolve().parents[1]
SHOPS, EVENTS_PER_SHOP_DAY = 1000, 20.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cfg = stack.StackConfig.from_env()
        base = int(os.environ.get("TIERSTREAM_TEST_CLUSTER_PORT", str(self.cfg.kafka_port + 200)))
        self.cluster = brokers.ClusterConfig(self.cfg.home / "cluster", base)
        # not t<hex>-: a test session's clean-up deletes those topics and keys, on any run beside it
        prefix = f"soak{uuid.uuid4().hex[:8]}"
        self.s = Settings.from_env({"TIERSTREAM_KAFKA": self.cluster.bootstrap, "TIERSTREAM_REDIS": self.cfg.redis_url,
                                    "TIERSTREAM_TOPIC_PREFIX": f"{prefix}-", "TIERSTREAM_NAMESPACE": prefix})
        self.proxies = ProxyHost()
        self.samples: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self.web_port = _free_port()
        self.worker: subprocess.Popen[bytes] | None = None
        self.fed = 0
        self.feed_error: str | None = None
        self.feeding = threading.Event()  # cleared when the feed ends, however it ends: faults stop with it
        self._redis_bytes = 0

    # -- setup ---------------------------------------------------------------------------------

    def start(self) -> None:
        print(stack.redis_up(self.cfg), flush=True)
        for line in brokers.up(self.cluster):
            print(line, flush=True)
        for n in self.cluster.ids:
            cc = self.cluster
            self.proxies.add(FaultProxy(cc.proxy_port(n), cc.fault_port(n), f"kafka-{n}", kafka=True))
        redis_proxy = self.proxies.add(FaultProxy(_free_port(), self.cfg.redis_port, "redis"))
        env = {**os.environ, "TIERSTREAM_KAFKA": self.cluster.proxied_bootstrap,
               "TIERSTREAM_REDIS": f"redis://127.0.0.1:{redis_proxy.listen_port}/0",
               "TIERSTREAM_TOPIC_PREFIX": self.s.topic_prefix, "TIERSTREAM_NAMESPACE": self.s.namespace,
               "TIERSTREAM_WEB_PORT": str(self.web_port)}
        log = ROOT / "artifacts" / "soak-worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as f:
            self.worker = subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=env, cwd=ROOT,
                                           stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while self.health() is None:
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"soak: the worker did not start; see {log}")
            time.sleep(0.5)
        print(f"soak: worker pid {self.worker.pid} through the fault proxies; log {log}", flush=True)

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            self.worker.wait(timeout=60)
        self.proxies.close()
        for n in self.cluster.ids:  # a fault may have left a node down
            brokers.start_node(self.cluster, n)
        brokers.wait_ready(self.cluster)
        topics = stack.delete_topics(stack.StackConfig(self.cluster.home, self.cluster.client_port(1)),
                                     f"^{self.s.topic_prefix}")
        keys = stack.delete_keys(self.cfg, rf"^(tierstream:(\{{(dedupe|clock):|pointer:))?{self.s.namespace}[-:]")
        print(f"soak: removed {topics} topics and {keys} keys; the cluster keeps running "
              f"(`tierstream devstack down --brokers 3` with TIERSTREAM_DEVSTACK_HOME={self.cluster.home.parent})")

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=2) as r:
                return dict(json.loads(r.read()))
        except OSError:
            return None

    # -- the feed --------------------------------------------------------------------------------

    def lines(self, until: float) -> Iterator[bytes]:
        total = int(self.args.rate * self.args.minutes * 60)
        days = total // int(SHOPS * EVENTS_PER_SHOP_DAY) + 2
        sim = Simulator(SimConfig(shops=SHOPS, days=days, seed=7, events_per_shop_day=EVENTS_PER_SHOP_DAY))
        return itertools.takewhile(lambda _l: time.monotonic() < until, sim.lines())

    def feed(self, until: float) -> None:
        self.feeding.set()
        try:
            self.fed = asyncio.run(produce(self.s, self.lines(until), in_order=False, rate=self.args.rate))
        except Exception as exc:  # the soak fails with it, after it has sampled what it can
            self.feed_error = repr(exc)
            print(f"soak: the feed failed: {exc!r}", file=sys.stderr, flush=True)
        finally:
            self.feeding.clear()

    # -- faults ------------------------------------------------------------------------------------

    def fault_schedule(self) -> list[tuple[str, Callable[[], None]]]:
        p, cc = self.proxies, self.cluster

        def kill_broker() -> None:
            node = brokers.leaders(cc, self.s.topic(LEDGER))[0]
            brokers.kill_node(cc, node, signal.SIGKILL)
            time.sleep(5)
            brokers.start_node(cc, node)

        def half_close_redis() -> None:
            p.half_close_all("redis")

        return [
            ("SIGKILL broker", kill_broker),
            ("Redis stall 3 s", lambda: p.stall("redis", 3)),
            ("Kafka reset after produce", lambda: p.reset_after("kafka", kafka_request(KAFKA_PRODUCE))),
            ("Redis reset after EXEC", lambda: p.reset_after("redis", redis_commit)),
            ("Kafka stall 3 s", lambda: p.stall("kafka", 3)),
            ("Redis half-close", half_close_redis),
        ]

    def strike(self, until: float) -> None:
        schedule = itertools.cycle(self.fault_schedule())
        next_at = time.monotonic() + self.args.fault_every
        while time.monotonic() < until and self.feeding.is_set():
            time.sleep(0.2)
            if time.monotonic() >= next_at:
                name, fault = next(schedule)
                at = time.monotonic() - self.t0
                print(f"soak: {at:6.0f}s fault: {name}", flush=True)
                try:
                    fault()
                except Exception as exc:  # a fault that cannot strike (no connection yet) is logged, not fatal
                    name += f" (failed: {exc!r})"
                self.faults.append({"t": round(at, 1), "fault": name})
                next_at += self.args.fault_every

    # -- samples -----------------------------------------------------------------------------------

    async def lags(self) -> tuple[int, int]:
        """(input lag, ledger lag) in records."""
        inputs = [TopicPartition(self.s.topic(t), p) for t in INPUT_TOPICS for p in range(self.s.partitions)]
        ledger = [TopicPartition(self.s.topic(LEDGER), p) for p in range(self.s.partitions)]
        c = AIOKafkaConsumer(bootstrap_servers=self.cluster.bootstrap, group_id=None, request_timeout_ms=10_000)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.cluster.bootstrap, request_timeout_ms=10_000)
        await c.start()
        await admin.start()
        try:
            ends = await c.end_offsets(inputs + ledger)
            group = f"{self.s.topic_prefix}tierstream-{self.s.namespace}-ingest"
            committed = await admin.list_consumer_group_offsets(group)
        finally:
            await c.stop()
            await admin.close()
        input_lag = sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in inputs)
        r = redis.Redis(port=self.cfg.redis_port)
        try:
            keys = Keys(self.s.namespace)
            folded = [r.get(keys.offset(tp.partition)) for tp in ledger]
            info = r.info("memory")
        finally:
            r.close()
        self._redis_bytes = int(info["used_memory"])
        ledger_lag = sum(ends[tp] - 1 - (int(f) if f is not None else -1) for tp, f in zip(ledger, folded, strict=True))
        return input_lag, ledger_lag

    def sample(self) -> dict[str, Any]:
        assert self.worker is not None
        rss_kb = 0
        for line in Path(f"/proc/{self.worker.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
        try:
            input_lag, ledger_lag = asyncio.run(self.lags())
        except Exception:  # a broker is down this very moment: lag unknown, memory still sampled
            input_lag, ledger_lag = -1, -1
        h = self.health() or {}
        s = {"t": round(time.monotonic() - self.t0, 1), "rss_mb": round(rss_kb / 1024, 1),
             "redis_mb": round(self._redis_bytes / 2**20, 1), "input_lag": input_lag,
             "ledger_lag": ledger_lag, "events_in": h.get("counters", {}).get("events_in", 0),
             **{f"{k}_p99": h.get(k, {}).get("p99") for k in ("input_to_ledger_ms", "ledger_to_commit_ms")}}
        self.samples.append(s)
        return s

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        self.start()
        self.t0 = time.monotonic()
        until = self.t0 + a.minutes * 60
        feeder = threading.Thread(target=self.feed, args=(until,), daemon=True)
        striker = threading.Thread(target=self.strike, args=(until - a.fault_every / 2,), daemon=True)
        feeder.start()
        while not self.feeding.is_set() and feeder.is_alive():
            time.sleep(0.05)
        striker.start()
        while feeder.is_alive():
            s = self.sample()
            print(f"soak: {s['t']:6.0f}s rss {s['rss_mb']} MB, redis {s['redis_mb']} MB, lag in/ledger "
                  f"{s['input_lag']}/{s['ledger_lag']}, events_in {s['events_in']}", flush=True)
            time.sleep(a.sample_every)
        striker.join()
        drain_until = time.monotonic() + a.drain_s
        while True:  # the feed stopped: everything sent must be folded
            s = self.sample()
            if (s["input_lag"] == 0 and s["ledger_lag"] == 0) or time.monotonic() > drain_until:
                break
            time.sleep(a.sample_every)
        return self.verdict(s)

    def verdict(self, last: dict[str, Any]) -> int:
        a = self.args
        n = len(self.samples)
        mid = [x["rss_mb"] for x in self.samples[n // 3: 2 * n // 3]]
        end = [x["rss_mb"] for x in self.samples[2 * n // 3:]]
        growth = (max(end) - max(mid)) / max(mid) if mid and end else 0.0
        summary = {"minutes": a.minutes, "rate": a.rate, "fed": self.fed, "faults": self.faults,
                   "rss_mb_first": self.samples[0]["rss_mb"], "rss_mb_max": max(x["rss_mb"] for x in self.samples),
                   "rss_growth_last_third": round(growth, 3), "rss_bound": a.rss_bound,
                   "redis_mb_first": self.samples[0]["redis_mb"], "redis_mb_last": last["redis_mb"],
                   "lag_left": {"input": last["input_lag"], "ledger": last["ledger_lag"]},
                   "feed_error": self.feed_error}
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        data = ROOT / "artifacts" / "soak.json"
        data.write_text(json.dumps({"summary": summary, "samples": self.samples}, indent=1))
        plot(self.samples, self.faults, summary, out)
        print(json.dumps(summary, indent=1))
        print(f"soak: samples in {data}, plot in {out}")
        ok = last["input_lag"] == 0 and last["ledger_lag"] == 0 and growth <= a.rss_bound and not self.feed_error
        if not ok:
            print("soak: FAILED: " + (f"the feed failed ({self.feed_error}); " if self.feed_error else "")
                  + ("lag left at the end; " if last["input_lag"] or last["ledger_lag"] else "")
                  + (f"worker RSS grew {growth:.1%} > {a.rss_bound:.0%}" if growth > a.rss_bound else ""))
        return 0 if ok else 1


def plot(samples: list[dict[str, Any]], faults: list[dict[str, Any]], summary: dict[str, Any], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("soak: matplotlib is not installed (pip install -e '.[bench]'): no plot", file=sys.stderr)
        return
    t = [s["t"] / 60 for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    axes[0].plot(t, [s["rss_mb"] for s in samples], label="worker RSS (MB)")
    axes[0].plot(t, [s["redis_mb"] for s in samples], label="Redis used_memory (MB)")
    axes[0].set_ylabel("MB")
    for key in ("input_lag", "ledger_lag"):  # -1: a broker was down at that sample, lag unknown
        axes[1].plot(t, [s[key] if s[key] >= 0 else float("nan") for s in samples],
                     label=key.replace("_", " ") + " (records)")
    axes[1].set_ylabel("records")
    for key in ("input_to_ledger_ms_p99", "ledger_to_commit_ms_p99"):
        # a sample whose /health did not answer in time has no latency: a gap, not a zero
        axes[2].plot(t, [s[key] if s[key] is not None else float("nan") for s in samples],
                     label=key.replace("_p99", " p99"))
    axes[2].set_ylabel("ms")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("minutes")
    for ax in axes:
        for f in faults:
            ax.axvline(f["t"] / 60, color="grey", alpha=0.3, linewidth=1)
        ax.axvline(summary["minutes"], color="black", linestyle="--", linewidth=1)  # the feed stops
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"soak: {summary['minutes']:g} min at {summary['rate']:,.0f} events/s "
                 "(the feed stops at the dashed line), "
                 f"{len(faults)} faults (grey lines)\nworker RSS growth over the last third "
                 f"{summary['rss_growth_last_third']:.1%}; lag left {summary['lag_left']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=2000.0, help="input events per second")
    p.add_argument("--fault-every", type=float, default=45.0, help="seconds between faults")
    p.add_argument("--sample-every", type=float, default=2.0)
    p.add_argument("--drain-s", type=float, default=300.0, help="how long to wait for the lag to drain at the end")
    p.add_argument("--rss-bound", type=float, default=0.10,
                   help="largest allowed worker RSS growth from the second third to the last (fraction)")
    p.add_argument("--out", default=str(ROOT / "docs" / "soak.png"))
    p.add_argument("--replot", metavar="SOAK_JSON",
                   help="only draw --out again from a run's samples (artifacts/soak.json)")
    args = p.parse_args(argv)
    if args.replot:
        run = json.loads(Path(args.replot).read_text())
        plot(run["samples"], run["summary"]["faults"], run["summary"], Path(args.out))
        return 0
    if args.minutes <= 0 or args.rate <= 0:
        p.error("--minutes and --rate must be positive")
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # a killed broker's refused connections, by the dozen
    soak = Soak(args)
    try:
        return soak.run()
    finally:
        soak.stop()


if __name__ == "__main__":
    sys.exit(main())
