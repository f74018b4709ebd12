"""Benchmark the live path on the devstack: throughput per worker and end-to-end latency.

    python -m bench.live_bench [--shops 1000] [--rate 5000] [--seconds 20] [--backlog 200000]

1. throughput: `--backlog` order events wait in the input topics; one worker starts and
   folds them all (ingest -> ledger -> evaluate -> Redis); events/s from its first to its
   last commit, and the worker processes' CPU time over that span per event (user + system,
   from /proc: steadier than events/s on a shared machine). Beside it, in the same run, raw
   aiokafka consumption of the same input topics (no processing): the baseline and the ratio.
2. latency at a fixed offered rate (`--rate` events/s for `--seconds`), measured twice:
   - effect in Redis: with the feed throttle off, every batch commit announces each shop it
     changed; latency = commit instant (the Redis stream entry id) - produce instant.
   - dashboard feed: with the default throttle (one announcement per shop per 250 ms).
   An event is matched by its shop's total GMV: every order is 1 cent, so the k-th order of
   a shop has arrived when an announcement of the shop reads total_gmv_cents >= k.
Both clocks are this machine's (Redis and this process), so the latencies are comparable.

`--split` runs the worker's roles in two processes (`TIERSTREAM_ROLES=ingest,clock` and
`TIERSTREAM_ROLES=evaluate`, the deployment README describes) instead of one: each role
then has a core of its own instead of sharing one interpreter lock. `--evaluate-workers N`
(and `--ingest-workers M`) run one deployment of that many evaluate (ingest) processes sharing
the namespace; the figures are the deployment's aggregate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from devstack import cluster, stack
from plumbing.redis_clients import sync_redis
from plumbing.settings import Secret, Settings
from plumbing.topics import ensure_topics
from projections.keys import Keys
from streams.ledger_writer import LedgerWriter

ROOT = Path(__file__).resolve().parents[1]
BASE_TS = 1_672_588_800_000  # 2023-01-02 00:00 Asia/Shanghai: the middle of a cycle


def order(i: int, shops: int, ts: int) -> tuple[bytes, bytes]:
    shop = f"shop-{i % shops:05d}"
    return shop.encode(), orjson.dumps({"event_id": f"o{i}", "type": "order_paid", "ts": ts, "shop_id": shop,
                                        "order_id": f"o{i}", "user_id": f"u{i % 7919}", "amount_cents": 1})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ROLES = {False: ["ingest,clock,evaluate"], True: ["ingest,clock", "evaluate"]}  # by --split


def deployment(split: bool, ingest_workers: int | None, evaluate_workers: int | None) -> list[str]:
    """TIERSTREAM_ROLES of each worker process: `--split`, or ingest and evaluate processes counted
    (the first ingest process also runs the clock; one clock is enough)."""
    if ingest_workers is None and evaluate_workers is None:
        return ROLES[split]
    return ["ingest,clock"] + ["ingest"] * ((ingest_workers or 1) - 1) + ["evaluate"] * (evaluate_workers or 1)


def start_worker(s: Settings, log: Path, feed_interval_ms: int, port: int = 0,
                 roles: str = "ingest,clock,evaluate") -> subprocess.Popen[bytes]:
    env = {**os.environ, "TIERSTREAM_KAFKA": s.kafka, "TIERSTREAM_REDIS": str(s.redis),
           "TIERSTREAM_TOPIC_PREFIX": s.topic_prefix, "TIERSTREAM_NAMESPACE": s.namespace,
           "TIERSTREAM_FEED_INTERVAL_MS": str(feed_interval_ms), "TIERSTREAM_WEB_PORT": str(port or free_port()),
           "TIERSTREAM_ROLES": roles}
    with open(log, "ab") as f:
        return subprocess.Popen([sys.executable, "-m", "cli.main", "worker"], env=env, cwd=ROOT, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)


Workers = list[tuple[subprocess.Popen[bytes], int]]  # each process and its web port


def start_workers(s: Settings, log: Path, feed_interval_ms: int, deploy: list[str]) -> Workers:
    """One worker process per entry of `deploy` (its TIERSTREAM_ROLES)."""
    out: Workers = []
    for roles in deploy:
        port = free_port()
        out.append((start_worker(s, log, feed_interval_ms, port, roles), port))
    return out


def stage_latencies(ports: list[int]) -> dict[str, Any]:
    """The workers' own latency windows and counters (/health): where the time of the end-to-end
    figure goes, and how many records a pass folded on average."""
    out: dict[str, Any] = {}
    counters: dict[str, int] = {}
    for i, port in enumerate(ports):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                health = orjson.loads(resp.read())
        except OSError as exc:
            out[f"error_{port}"] = str(exc)
            continue
        for k, v in health.items():
            if k.endswith("_ms") and v.get("n"):
                out[k if k not in out else f"{k}_w{i}"] = v  # two processes: both gc_* windows
        for k, n in health.get("counters", {}).items():
            counters[k] = counters.get(k, 0) + n
    if counters.get("batches"):
        out["records_per_pass"] = round(counters.get("ledger_folded", 0) / counters["batches"])
    return out


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


PRODUCE_TICK_S = 0.002  # a paced producer hands over what is due this often
PRODUCE_CHUNK = 5000  # records per hand-over at most


async def produce(s: Settings, n: int, shops: int, rate: float | None, start: int = 0) -> list[float]:
    """Send orders start..start+n (`rate` events/s, else at once); return each one's send instant (epoch ms).

    Records go to the broker as produce batches per partition (streams.ledger_writer, keyed as the
    default partitioner does): the benchmark's producer shares the cores with the worker, and a
    producer future per record cost it about half a core at 5,000 events/s."""
    writer = LedgerWriter(s.kafka, s.partitions)
    await writer.start()
    topic = s.topic("orders")
    sent: list[float] = []
    futures: list[Any] = []
    t0 = time.monotonic()
    try:
        k = 0
        while k < n:
            due = n if rate is None else min(n, int((time.monotonic() - t0) * rate) + 1)
            if due > k:
                upto = min(due, k + PRODUCE_CHUNK)
                records = [(*order(i, shops, BASE_TS + i // 5), None) for i in range(start + k, start + upto)]
                sent += [time.time() * 1000] * (upto - k)
                futures += await writer.enqueue(topic, records)
                k = upto
            if rate is not None:
                await asyncio.sleep(PRODUCE_TICK_S)
            elif len(futures) >= 64:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await writer.stop()
    return sent


async def raw_consume(s: Settings, n: int, topic: str = "orders") -> float:
    """Seconds for raw aiokafka to read n records of `topic` from the beginning: the baseline."""
    c = AIOKafkaConsumer(s.topic(topic), bootstrap_servers=s.kafka, group_id=None, auto_offset_reset="earliest",
                         enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024)
    await c.start()
    try:
        got, t0 = 0, time.perf_counter()
        while got < n:
            batch = await c.getmany(timeout_ms=1000, max_records=10_000)
            got += sum(len(v) for v in batch.values())
        return time.perf_counter() - t0
    finally:
        await c.stop()


class FeedReader(threading.Thread):
    """Follows the platform feed: (entry instant ms, shop, total_gmv_cents) for each announcement."""

    def __init__(self, s: Settings) -> None:
        super().__init__(daemon=True)
        self.r: Any = sync_redis(str(s.redis))  # bytes replies
        self.key = Keys(s.namespace).platform_feed()
        self.entries: list[tuple[int, str, int]] = []
        self.stopping = False

    def run(self) -> None:
        last = "0"
        while not self.stopping:
            got = self.r.xread({self.key: last}, count=10_000, block=200)
            for _key, items in got or []:
                for entry_id, fields in items:
                    last = entry_id.decode()
                    summary = orjson.loads(fields[b"summary"])
                    self.entries.append((int(last.split("-")[0]), summary["shop_id"], summary["total_gmv_cents"]))


def latencies(sent: list[float], shops: int, entries: list[tuple[int, str, int]]) -> list[float]:
    """Per event: first announcement of its shop showing it, minus its send instant."""
    need: dict[str, list[tuple[int, float]]] = {}
    for i, t in enumerate(sent):
        shop = f"shop-{i % shops:05d}"
        need.setdefault(shop, []).append((i // shops + 1, t))  # the shop's k-th order
    out: list[float] = []
    pos = dict.fromkeys(need, 0)
    for at, shop, gmv in sorted(entries):
        todo, p = need.get(shop), pos.get(shop, 0)
        if todo is None:
            continue
        while p < len(todo) and todo[p][0] <= gmv:
            out.append(at - todo[p][1])
            p += 1
        pos[shop] = p
    missing = len(sent) - len(out)
    if missing:
        raise RuntimeError(f"{missing} events never showed on the feed")
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc). Per event, it moves less with the
    load of a shared machine than events per second do: an A/B compares both."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def wait_offsets(r: Any, s: Settings, folded: int, timeout: float) -> float:
    """Until the namespace's ledger offsets add up to `folded` records; returns the instant."""
    keys = Keys(s.namespace)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipe = r.pipeline(transaction=False)  # one GET each: the offsets lie in different slots
        for p in range(s.partitions):
            pipe.get(keys.offset(p))
        vals = pipe.execute()
        if sum(int(v) + 1 for v in vals if v is not None) >= folded:
            return time.monotonic()
        time.sleep(0.05)
    raise RuntimeError(f"worker did not fold {folded} ledger records in {timeout}s")


def pct(xs: list[float], q: float) -> float:
    return round(statistics.quantiles(xs, n=1000)[int(q * 1000) - 1], 1) if len(xs) > 1 else xs[0]


def run_latency(cfg: stack.StackConfig, args: argparse.Namespace, interval_ms: int, logdir: Path,
                redis_url: str | None = None) -> dict[str, Any]:
    s = Settings(kafka=cfg.bootstrap, redis=Secret(redis_url or cfg.redis_url),
                 topic_prefix=f"bench{os.urandom(3).hex()}-", namespace=f"bench{os.urandom(3).hex()}")
    asyncio.run(ensure_topics(s))
    workers = start_workers(s, logdir / f"latency-{interval_ms}.log", interval_ms, args.deploy)
    reader = FeedReader(s)
    reader.start()
    try:
        time.sleep(8)  # the worker joins its group
        asyncio.run(produce(s, 2 * args.shops, args.shops, None))  # warm up: every shop known
        time.sleep(3)
        n = int(args.rate * args.seconds)
        sent = asyncio.run(produce(s, n, args.shops, args.rate, start=2 * args.shops))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until every event has shown on the feed
            try:
                _measured(sent, 2 * args.shops, args.shops, list(reader.entries))
                break
            except RuntimeError:
                time.sleep(0.5)
        stages = stage_latencies([port for _w, port in workers])
    finally:
        reader.stopping = True
        reader.join()
        for worker, _port in workers:
            stop(worker)
        cleanup(cfg, s)
    warm = 2 * args.shops
    lat = _measured(sent, warm, args.shops, reader.entries)
    return {"feed_interval_ms": interval_ms, "worker_processes": len(workers), "offered_rate": args.rate, "events": n,
            "achieved_rate": round(n / ((sent[-1] - sent[0]) / 1000), 1),
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "max_ms": round(max(lat), 1),
            "worker_stages": stages}


def cleanup(cfg: stack.StackConfig, s: Settings) -> None:
    """Delete the run's topics and Redis keys: left behind, they slow the broker's later starts."""
    stack.delete_topics(cfg, f"^{re.escape(s.topic_prefix)}")
    pattern = f"^({re.escape(s.namespace)}:|.*{re.escape(s.topic_prefix)})"
    if str(s.redis) == cfg.redis_url:
        stack.delete_keys(cfg, pattern)
    else:
        cluster.delete_keys(cluster.ClusterConfig.from_env(cfg.home), pattern)


def _measured(sent: list[float], warm: int, shops: int, entries: list[tuple[int, str, int]]) -> list[float]:
    """Latencies of the paced events only (the warm-up orders are counted, not timed)."""
    times = [float("nan")] * warm + sent
    lat = latencies(times, shops, entries)
    return [x for x in lat if x == x]  # drop NaN (warm-up)


def run_throughput(cfg: stack.StackConfig, args: argparse.Namespace, logdir: Path,
                   redis_url: str | None = None) -> dict[str, Any]:
    s = Settings(kafka=cfg.bootstrap, redis=Secret(redis_url or cfg.redis_url),
                 topic_prefix=f"bench{os.urandom(3).hex()}-", namespace=f"bench{os.urandom(3).hex()}")
    asyncio.run(ensure_topics(s))
    n = args.backlog
    asyncio.run(produce(s, n, args.shops, None))
    raw_s = asyncio.run(raw_consume(s, n))
    r = sync_redis(str(s.redis))
    workers = start_workers(s, logdir / "throughput.log", 250, args.deploy)
    try:
        first = wait_offsets(r, s, 1, 120)
        cpu_first = sum(cpu_seconds(w.pid) for w, _port in workers)
        last = wait_offsets(r, s, n, 600)
        cpu_last = sum(cpu_seconds(w.pid) for w, _port in workers)
        stages = stage_latencies([port for _w, port in workers])
    finally:
        for worker, _port in workers:
            stop(worker)
        r.close()
        cleanup(cfg, s)
    if last - first < 1.0:  # offsets are polled every 50 ms: a shorter span cannot be timed
        raise SystemExit(f"live_bench: the worker folded the backlog in {last - first:.2f} s, too short "
                         "to time; use a larger --backlog (100000 is the reference)")
    rate = n / (last - first)
    return {"events": n, "worker_processes": len(workers), "roles": args.deploy, "worker_events_per_s": round(rate),
            "worker_cpu_us_per_event": round((cpu_last - cpu_first) * 1e6 / n, 1),
            "raw_consume_events_per_s": round(n / raw_s),
            "ratio_to_raw": round(rate / (n / raw_s), 3), "stages": stages}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shops", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--backlog", type=int, default=200_000)
    ap.add_argument("--only", choices=["throughput", "latency"], help="run one part")
    ap.add_argument("--redis-cluster", action="store_true",
                    help="then the same on the devstack's Redis Cluster (started if needed)")
    ap.add_argument("--split", action="store_true",
                    help="run ingest+clock and evaluate as two worker processes (default: one with every role)")
    ap.add_argument("--evaluate-workers", type=int, metavar="N",
                    help="N evaluate processes beside the ingest one(s): one deployment, aggregate figures")
    ap.add_argument("--ingest-workers", type=int, metavar="M", help="M ingest processes (the first runs the clock)")
    args = ap.parse_args(argv)
    args.deploy = deployment(args.split, args.ingest_workers, args.evaluate_workers)
    cfg = stack.StackConfig.from_env()
    for line in stack.up(cfg):
        print(line, file=sys.stderr)
    logdir = ROOT / "artifacts" / "bench"
    logdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if args.only in (None, "throughput"):
        results["throughput"] = run_throughput(cfg, args, logdir)
        print(json.dumps(results["throughput"]), file=sys.stderr, flush=True)
    if args.only in (None, "latency"):
        results["latency_redis"] = run_latency(cfg, args, 0, logdir)
        print(json.dumps(results["latency_redis"]), file=sys.stderr, flush=True)
        results["latency_feed"] = run_latency(cfg, args, 250, logdir)
    if args.redis_cluster:  # the same on the devstack's Redis Cluster, in the same run
        url = cluster.ensure(cfg.home).url
        if args.only in (None, "throughput"):
            results["cluster_throughput"] = run_throughput(cfg, args, logdir, url)
            print(json.dumps(results["cluster_throughput"]), file=sys.stderr, flush=True)
        if args.only in (None, "latency"):
            results["cluster_latency_redis"] = run_latency(cfg, args, 0, logdir, url)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
