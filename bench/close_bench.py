"""Benchmark a boundary close with many known shops, into Redis.

    python -m bench.close_bench [--shops 100000] [--partitions 8]

Every shop gets a profile, a join setting, a benefit online, a member and an order in the
first days of a cycle, folded into a fresh Redis namespace with the worker's processor and
store (no Kafka: the close is what is measured). Then one watermark marker past the cycle's
end goes to every partition: each partition closes all its shops (assessments, tier changes,
registration join, recruitment quality, protection) and commits the state, read models and
offset. Reported: the seconds from the first partition's close to the last commit, all
partitions one after another (one worker holding every partition: the worst case), and the
outputs the close produced.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zlib

from devstack import stack
from plumbing.redis_clients import sync_redis
from projections.processor import PartitionProcessor
from projections.redis_store import RedisStore
from tiering.fold import Folder
from tiering.params import RuleParams

T0 = 1_672_502_400_000  # 2023-01-01 00:00 Asia/Shanghai
DAY = 86_400_000


def shop_events(i: int) -> list[dict[str, object]]:
    sid, ts = f"shop-{i:06d}", T0 + (i % 1000) * 1000
    e = f"c{i}-"
    return [
        {"event_id": e + "p", "type": "shop_profile_changed", "ts": ts, "shop_id": sid, "industry": "food"},
        {"event_id": e + "j", "type": "join_setting_changed", "ts": ts, "shop_id": sid, "mode": "registration"},
        {"event_id": e + "b", "type": "benefit_config_changed", "ts": ts, "shop_id": sid, "benefit_id": "b0",
         "benefit_type": "coupon", "status": "online"},
        {"event_id": e + "m", "type": "member_joined", "ts": ts + DAY, "shop_id": sid, "user_id": f"u{i}",
         "channel": "shop_page", "join_type": "registration"},
        {"event_id": e + "o", "type": "order_paid", "ts": ts + 2 * DAY, "shop_id": sid, "order_id": f"o{i}",
         "user_id": f"u{i}", "amount_cents": 1000},
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shops", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=8)
    args = ap.parse_args()
    cfg = stack.StackConfig.from_env()
    for line in stack.up(cfg):
        print(line)
    ns = f"cbench{os.urandom(3).hex()}"
    client = sync_redis(cfg.redis_url)
    params = RuleParams()
    folder = Folder(params)
    procs = [PartitionProcessor(folder, RedisStore(client, ns, p, params)) for p in range(args.partitions)]
    offsets = [0] * args.partitions
    try:
        batches: list[list[tuple[int, dict[str, object]]]] = [[] for _ in procs]
        t_load = time.perf_counter()
        for i in range(args.shops):
            p = zlib.crc32(f"shop-{i:06d}".encode()) % args.partitions
            for ev in shop_events(i):
                batches[p].append((offsets[p], ev))
                offsets[p] += 1
            if len(batches[p]) >= 5000:
                _fold(procs[p], batches[p])
                batches[p] = []
        for p, b in enumerate(batches):
            if b:
                _fold(procs[p], b)
        load_s = time.perf_counter() - t_load
        marker = {"type": "watermark", "watermark": T0 + 16 * DAY}  # past the 2023-01-16 boundary
        t0 = time.perf_counter()
        outputs = 0
        for p, proc in enumerate(procs):
            outputs += _fold(proc, [(offsets[p], marker)])
        close_s = time.perf_counter() - t0
        print(json.dumps({"shops": args.shops, "partitions": args.partitions, "load_seconds": round(load_s, 1),
                          "close_seconds": round(close_s, 2), "close_outputs": outputs}, indent=2))
    finally:
        stack.delete_keys(cfg, f"^{ns}:")
        client.close()
    return 0


def _fold(proc: PartitionProcessor, batch: list[tuple[int, dict[str, object]]]) -> int:
    outputs, last = proc.fold_batch(batch)
    if last is not None:
        proc.commit(last)
    return len(outputs)


if __name__ == "__main__":
    raise SystemExit(main())
