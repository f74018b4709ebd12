"""Redis memory per member, per shop and per cycle counter, from MEMORY USAGE sampling.

    python -m bench.memory_bench [--shops 300] [--days 40] [--seed 7] [--sample 100] [--redis-cluster]

A simulated workload is written to a fresh ledger (as bench.rebuild_bench does) and rebuilt into
a fresh namespace; then `--sample` shops, drawn with a fixed seed, have each of their keys measured
with `MEMORY USAGE <key> SAMPLES 0` (every element counted):
- per member: the sampled shops' member records (`:m`) and member sorted sets (`:q`, `:e`),
  divided by their members (HLEN of `:m`) — weighted by members, so large shops (hash tables and
  skip lists, not the compact listpacks of small ones) count as they weigh at scale; beside it
  the mean of each shop's own ratio;
- per shop: its state (`:s`), read model (`:v`) and feed (`:feed`);
- per cycle counter: each of its `:c:<cycle>` blobs.
Reported in bytes, with the sample's member counts and member-hash encodings; with
`--redis-cluster`, the same into the devstack's Redis Cluster in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
from typing import Any

from bench.rebuild_bench import redis_targets, write_ledger
from devstack import cluster, stack
from plumbing.redis_clients import sync_redis
from plumbing.settings import Secret, Settings
from plumbing.topics import ensure_topics
from projections.keys import Keys
from replay.ledger import rebuild
from simulator.workload import SimConfig


def sample(client: Any, s: Settings, n: int, seed: int) -> dict[str, Any]:
    """Mean bytes per member, per shop and per cycle counter over `n` shops drawn with `seed`."""
    keys = Keys(s.namespace, s.partitions)
    shops = sorted(x.decode() for p in range(s.partitions) for x in client.smembers(keys.shops(p)))
    chosen = random.Random(seed).sample(shops, min(n, len(shops)))
    per_member, per_shop, per_counter, sizes, member_bytes = [], [], [], [], []
    encodings: dict[str, int] = {}
    for shop in chosen:
        usage = {k: client.memory_usage(k, samples=0) or 0 for k in
                 (keys.members(shop), keys.quality(shop), keys.effective(shop), keys.shop(shop), keys.view(shop),
                  keys.feed(shop))}
        members = client.hlen(keys.members(shop))
        sizes.append(members)
        member_bytes.append(sum(usage[k] for k in (keys.members(shop), keys.quality(shop), keys.effective(shop))))
        if members:  # small hashes are listpacks (compact); past 128 fields Redis makes them hash tables
            raw = client.object("encoding", keys.members(shop))
            enc = raw.decode() if isinstance(raw, bytes) else str(raw)
            encodings[enc] = encodings.get(enc, 0) + 1
            per_member.append(sum(usage[k] for k in (keys.members(shop), keys.quality(shop),
                                                     keys.effective(shop))) / members)
        per_shop.append(sum(usage[k] for k in (keys.shop(shop), keys.view(shop), keys.feed(shop))))
        prefix = keys.counters(shop, 0)[:-1]
        for k in client.scan_iter(f"{prefix}*", count=1000):
            per_counter.append(client.memory_usage(k, samples=0) or 0)
    return {"shops": len(shops), "sampled_shops": len(chosen),
            "bytes_per_member": round(sum(member_bytes) / sum(sizes)) if sum(sizes) else None,
            "bytes_per_member_mean_over_shops": round(statistics.fmean(per_member)) if per_member else None,
            "bytes_per_shop": round(statistics.fmean(per_shop)) if per_shop else None,
            "bytes_per_cycle_counter": round(statistics.fmean(per_counter)) if per_counter else None,
            "cycle_counters_sampled": len(per_counter),
            "members_per_shop_mean": round(statistics.fmean(sizes), 1) if sizes else None,
            "members_per_shop_max": max(sizes, default=None), "member_hash_encodings": encodings}


def run(cfg: stack.StackConfig, args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    tag = os.urandom(3).hex()
    s = Settings(kafka=cfg.bootstrap, redis=Secret(redis_url), topic_prefix=f"mbench{tag}-", namespace=f"mbench{tag}")
    asyncio.run(ensure_topics(s))
    client = sync_redis(redis_url)
    try:
        records = asyncio.run(write_ledger(s, SimConfig(shops=args.shops, days=args.days, seed=args.seed)))
        asyncio.run(rebuild(s, s.namespace, keep_outputs=False))
        out = {"ledger_records": records, **sample(client, s, args.sample, args.seed)}
        print(json.dumps(out), flush=True)
        return out
    finally:
        client.close()
        stack.delete_topics(cfg, f"^mbench{tag}-")
        if redis_url == cfg.redis_url:
            stack.delete_keys(cfg, f"^mbench{tag}:")
        else:
            cluster.delete_keys(cluster.ClusterConfig.from_env(cfg.home), f"^mbench{tag}:")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shops", type=int, default=300)
    ap.add_argument("--days", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sample", type=int, default=100, help="shops measured")
    ap.add_argument("--redis-cluster", action="store_true", help="also into the devstack's Redis Cluster")
    args = ap.parse_args()
    cfg = stack.StackConfig.from_env()
    urls = redis_targets(cfg, args.redis_cluster)
    print(json.dumps({name: run(cfg, args, url) for name, url in urls.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
