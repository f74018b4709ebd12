"""Measure what the capacity model needs in one run on the devstack and print the deployment.

    python -m bench.capacity [--events-per-s 500000] [--members 1e9] [--shops 1e7]
                             [--sample-shops 200] [--days 34] [--seed 4]

One simulated workload (`--sample-shops` x `--days`) is, in order: replayed in the file form
(file fold per core); validated, routed and appended in produce batches to a topic on the devstack
(ingest per core, without its Redis dedupe round trip); written to a fresh ledger with the clock's
watermark markers, and rebuilt from that ledger into a fresh
namespace (evaluate per core: the same fold, Redis store and read models as a worker's evaluate
step, without its consumer group); then the ledger's bytes on the broker's disk and the Redis
`MEMORY USAGE` of every key of the namespace, by kind, give the bytes per event, member, shop,
cycle counter and dedupe id. The model itself is bench/capacity_model.py (docs/capacity.md).
Every rate is one process; on a shared machine it is what the load left of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bench.capacity_model import Load, Measured, plan, render
from bench.rebuild_bench import input_topic, write_ledger
from devstack import stack
from plumbing.ingest import encode, route
from plumbing.settings import Secret, Settings
from plumbing.topics import LEDGER, ensure_topics
from replay.file import replay_file
from replay.ledger import rebuild
from simulator.workload import SimConfig, Simulator
from streams.ledger_writer import LedgerWriter

MEMBER_KEYS = (":m", ":q", ":e")
SHOP_KEYS = (":s", ":v", ":feed")


def redis_usage(url: str, namespace: str) -> dict[str, float]:
    """Bytes per member, shop, cycle counter and dedupe id in `namespace` (MEMORY USAGE of each key)."""
    r: Any = redis.Redis.from_url(url)
    total = {"member": 0, "shop": 0, "counter": 0, "dedupe": 0}
    count = {"member": 0, "shop": 0, "counter": 0, "dedupe": 0}
    try:
        for raw in r.scan_iter(f"{namespace}:*", count=1000):
            key = raw.decode()
            size = int(r.memory_usage(key, samples=0) or 0)
            if key.endswith(MEMBER_KEYS):
                total["member"] += size
                count["member"] += int(r.hlen(key)) if key.endswith(":m") else 0
            elif key.endswith(SHOP_KEYS):
                total["shop"] += size
                count["shop"] += 1 if key.endswith(":s") else 0
            elif ":c:" in key:
                total["counter"] += size
                count["counter"] += 1
            elif ":seen:" in key:
                total["dedupe"] += size
                count["dedupe"] += int(r.scard(key))
    finally:
        r.close()
    return {k: total[k] / max(count[k], 1) for k in total} | {f"{k}_count": count[k] for k in count}


async def ingest_seconds(s: Settings, lines: list[bytes], chunk: int = 5000) -> float:
    """Seconds to validate, route and append `lines` as ingest does (batched per partition by
    streams.ledger_writer), to a topic of their own; without ingest's Redis dedupe round trip."""
    writer = LedgerWriter(s.kafka, s.partitions)
    await writer.start()
    futures: list[Any] = []
    topics = [input_topic(line) for line in lines]  # a real ingest knows it from the record
    try:
        t = time.perf_counter()
        batch: list[tuple[Any, bytes, int | None]] = []
        for i, line in enumerate(lines):
            r = route(line, topics[i], 0, i, s.partitions)
            if r.event is not None:
                value = encode(r.event)
                batch += [(r.key, value, p) for p in (r.partitions if r.partitions is not None else (None,))]
            if len(batch) >= chunk or i == len(lines) - 1:
                futures += await writer.enqueue(s.topic("orders"), batch)
                batch = []
        await asyncio.gather(*futures)
        return time.perf_counter() - t
    finally:
        await writer.stop()


def ledger_disk_bytes(cfg: stack.StackConfig, topic: str) -> int:
    """Bytes of the topic's log segments in the devstack's data directory (one replica)."""
    return sum(f.stat().st_size for d in (cfg.home / "kafka-data").glob(f"{topic}-*") for f in d.glob("*.log"))


def measure(cfg: stack.StackConfig, sim: SimConfig) -> tuple[Measured, dict[str, Any]]:
    tag = os.urandom(3).hex()
    s = Settings(kafka=cfg.bootstrap, redis=Secret(cfg.redis_url), topic_prefix=f"cap{tag}-", namespace=f"cap{tag}")
    asyncio.run(ensure_topics(s))
    try:
        lines = list(Simulator(sim).lines())[:-1]  # not its last line, which closes every cycle: the
        # last cycle stays open, as live, so its counters are there to measure
        t = time.process_time()
        replay_file(io.BytesIO(b"\n".join(lines) + b"\n"), io.BytesIO())
        file_rate = len(lines) / (time.process_time() - t)
        ingest_rate = len(lines) / asyncio.run(ingest_seconds(s, lines))
        records = asyncio.run(write_ledger(s, sim, lines))  # the ledger with the clock's markers, to rebuild
        result = asyncio.run(rebuild(s, s.namespace, keep_outputs=False))
        time.sleep(1)  # the broker flushes its segment files
        usage = redis_usage(cfg.redis_url, s.namespace)
        m = Measured(ingest_per_core=ingest_rate, evaluate_per_core=result.records / result.seconds,
                     file_fold_per_core=file_rate,
                     ledger_bytes_per_event=ledger_disk_bytes(cfg, s.topic(LEDGER)) / max(records, 1),
                     redis_bytes_per_member=usage["member"], redis_bytes_per_shop=usage["shop"],
                     redis_bytes_per_counter=usage["counter"], redis_bytes_per_dedupe_id=usage["dedupe"])
        counts = {k: v for k, v in usage.items() if k.endswith("_count")}
        return m, {"events": len(lines), "ledger_records": records, **counts}
    finally:
        stack.delete_topics(cfg, f"^cap{tag}-")
        stack.delete_keys(cfg, f"^cap{tag}:")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events-per-s", type=float, default=Load.events_per_s, help="peak input rate")
    ap.add_argument("--members", type=float, default=Load.members, help="member relations")
    ap.add_argument("--shops", type=float, default=Load.shops)
    ap.add_argument("--sample-shops", type=int, default=200)
    ap.add_argument("--days", type=int, default=34)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--json", type=Path, help="also write the measurements and the plan here")
    args = ap.parse_args(argv)
    cfg = stack.StackConfig.from_env()
    for line in stack.up(cfg):
        print(line, file=sys.stderr)
    m, sample = measure(cfg, SimConfig(shops=args.sample_shops, days=args.days, seed=args.seed))
    load = Load(events_per_s=args.events_per_s, members=args.members, shops=args.shops)
    p = plan(m, load)
    print(f"sample: {json.dumps(sample)}")
    print(render(m, load, p))
    if args.json:
        args.json.write_text(json.dumps({"measured": m.__dict__, "sample": sample, "plan": p.as_dict()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
