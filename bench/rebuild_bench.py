"""Benchmark the rebuild from the log: ledger → fold → Redis, beside raw aiokafka consumption.

    python -m bench.rebuild_bench [--shops 300] [--days 40] [--seed 7]

A simulated workload is validated (as ingest does) and written straight to a fresh ledger
topic on the devstack — shop events keyed by shop, global events to every partition, and a
watermark marker on every partition each simulated 15 minutes of event time, so cycles
close as they do live. Then, in the same run:

1. raw: a plain aiokafka consumer reads the whole ledger (no decoding): the baseline;
2. rebuild: `replay.ledger.rebuild` folds it into a fresh Redis namespace (the same fold,
   Redis store and read models as the worker).

3. with `--workers N` (N > 1): the same rebuild on N processes (replay/parallel.py) into another
   namespace, after the one-process rebuild, and the ratio of the two rates. CPU time of all
   processes is reported beside each (the machine may be shared: see docs/performance.md).

Reported: records, records/s of each, and the ratio. The ledger and namespace are removed.
`--redis-cluster` then does the same into the devstack's Redis Cluster (started if needed), in
the same run, so the two topologies are measured side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaProducer

from bench.live_bench import raw_consume
from devstack import cluster, stack
from plumbing.ingest import encode, route
from plumbing.settings import Secret, Settings
from plumbing.topics import LEDGER, ensure_topics
from replay.ledger import rebuild
from replay.parallel import rebuild_parallel
from simulator.workload import SimConfig, Simulator
from streams.clock import marker
from tiering.contract import topic_of
from tiering.params import RuleParams

TICK_MS = 15 * 60_000


def input_topic(line: bytes) -> str:
    """The input topic a simulated line is produced to (its `topic` field, else its type's), so
    every event type reaches the ledger, not only the orders."""
    try:
        obj = orjson.loads(line)
        return str(obj.get("topic") or topic_of(obj))
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        return "orders"  # a bad line: ingest dead-letters it whatever its topic


async def write_ledger(s: Settings, cfg: SimConfig, lines: Iterable[bytes] | None = None) -> int:
    """Write the simulation (or `lines`) to the ledger as ingest and the clock would; records written."""
    lateness = RuleParams().lateness_ms
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka, acks=1, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    n, last_tick, max_ts = 0, None, None
    try:
        for i, line in enumerate(Simulator(cfg).lines() if lines is None else lines):
            r = route(line, input_topic(line), 0, i, s.partitions)
            if r.event is None:
                continue
            value = encode(r.event)
            for p in r.partitions if r.partitions is not None else (None,):
                await producer.send(s.topic(LEDGER), value, key=r.key, partition=p)
                n += 1
            max_ts = max(max_ts or r.event["ts"], r.event["ts"])
            tick = (max_ts - lateness) // TICK_MS
            if last_tick is None or tick > last_tick:
                last_tick = tick
                m = encode(marker(max_ts - lateness))
                for p in range(s.partitions):
                    await producer.send(s.topic(LEDGER), m, partition=p)
                    n += 1
        await producer.flush()
    finally:
        await producer.stop()
    return n


def _cpu() -> float:
    """CPU seconds of this process and its reaped children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def redis_targets(cfg: stack.StackConfig, with_cluster: bool) -> dict[str, str]:
    """Bring the devstack up; the Redis URLs a bench runs against: the single Redis (and the cluster)."""
    for line in stack.up(cfg):
        print(line)
    urls = {"single": cfg.redis_url}
    if with_cluster:
        urls["cluster"] = cluster.ensure(cfg.home).url
    return urls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shops", type=int, default=300)
    ap.add_argument("--days", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--redis-cluster", action="store_true", help="also rebuild into the devstack's Redis Cluster")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    cfg = stack.StackConfig.from_env()
    results = {name: run(cfg, args, url) for name, url in redis_targets(cfg, args.redis_cluster).items()}
    print(json.dumps(results if args.redis_cluster else results["single"], indent=2))
    return 0


def run(cfg: stack.StackConfig, args: argparse.Namespace, redis_url: str) -> dict[str, float]:
    tag = os.urandom(3).hex()
    s = Settings(kafka=cfg.bootstrap, redis=Secret(redis_url), topic_prefix=f"rbench{tag}-",
                 namespace=f"rbench{tag}")
    asyncio.run(ensure_topics(s))
    try:
        n = asyncio.run(write_ledger(s, SimConfig(shops=args.shops, days=args.days, seed=args.seed)))
        raw_s = asyncio.run(raw_consume(s, n, LEDGER))
        before = _cpu()
        result = asyncio.run(rebuild(s, s.namespace, keep_outputs=False))
        one_cpu = _cpu() - before
        out = {"ledger_records": n, "raw_records_per_s": round(n / raw_s),
               "rebuild_records_per_s": round(result.records / result.seconds),
               "ratio_to_raw": round((result.records / result.seconds) / (n / raw_s), 3),
               "rebuild_seconds": round(result.seconds, 1), "rebuild_cpu_s": round(one_cpu, 1)}
        if args.workers > 1:
            before = _cpu()
            par = rebuild_parallel(s, s.namespace + "-par", RuleParams(), args.workers, show_progress=False)
            par_rate = par.records / par.seconds
            out.update({f"rebuild_{args.workers}_workers_records_per_s": round(par_rate),
                        "ratio_workers_to_one": round(par_rate / (result.records / result.seconds), 3),
                        "workers_cpu_s": round(_cpu() - before, 1)})
        print(json.dumps(out), flush=True)
        return out
    finally:
        stack.delete_topics(cfg, f"^rbench{tag}-")
        if redis_url == cfg.redis_url:
            stack.delete_keys(cfg, f"^rbench{tag}(-par)?:")
        else:
            cluster.delete_keys(cluster.ClusterConfig.from_env(cfg.home), f"^rbench{tag}(-par)?:")


if __name__ == "__main__":
    raise SystemExit(main())
