"""What SASL_SSL and TLS cost: one worker folds the same backlog on the plain and on the secure devstack, in turns.

    python -m bench.secure_bench [--backlog 100000] [--shops 1000] [--rounds 3]

Each round runs both, in alternating order: the backlog of order events waits in the input topics,
one worker (every role) folds it; events/s from its first to its last commit and its CPU time per
event, and raw aiokafka consumption of the same topic as the baseline. On the secure devstack the
worker logs into Kafka as `worker` (SCRAM-SHA-512 over TLS) and into Redis over TLS as a user with
the worker's least-privilege ACL rules for the run's namespace. Medians over the rounds, and the
secure/plain ratios. Needs `tierstream devstack up` and `tierstream devstack up --secure`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.live_bench import cpu_seconds, produce, raw_consume, start_workers, stop, wait_offsets
from devstack import secure, stack
from plumbing.redis_clients import sync_redis
from plumbing.settings import Secret, Settings
from plumbing.topics import ensure_topics
from projections.acl import worker_rules


def settings(kind: str, cfg: stack.StackConfig) -> Settings:
    tag = f"sb{os.urandom(3).hex()}"
    if kind == "plain":
        return Settings(kafka=cfg.bootstrap, redis=Secret(cfg.redis_url), topic_prefix=f"{tag}-", namespace=tag)
    scfg = secure.SecureConfig.from_env(cfg)
    user, password = f"w-{tag}", uuid.uuid4().hex
    secure.set_user(scfg, user, password, worker_rules(tag, f"{tag}-"))
    return Settings.from_env({**secure.env(scfg), "TIERSTREAM_REDIS": scfg.redis_url(user, password),
                              "TIERSTREAM_TOPIC_PREFIX": f"{tag}-", "TIERSTREAM_NAMESPACE": tag})


def cleanup(kind: str, cfg: stack.StackConfig, s: Settings) -> None:
    topics, keys = f"^{s.topic_prefix}", f"^({s.namespace}:|.*{s.topic_prefix})"
    if kind == "plain":
        stack.delete_topics(cfg, topics)
        stack.delete_keys(cfg, keys)
    else:
        secure.delete_test_data(secure.SecureConfig.from_env(cfg), topics, keys)


def one(kind: str, cfg: stack.StackConfig, backlog: int, shops: int, logdir: Path) -> dict[str, float]:
    s = settings(kind, cfg)
    try:
        asyncio.run(ensure_topics(s))
        asyncio.run(produce(s, backlog, shops, None))
        raw_s = asyncio.run(raw_consume(s, backlog))
        r = sync_redis(str(s.redis))
        workers = start_workers(s, logdir / f"{kind}.log", 250, ["ingest,clock,evaluate"])
        try:
            first = wait_offsets(r, s, 1, 120)
            cpu_first = sum(cpu_seconds(w.pid) for w, _port in workers)
            last = wait_offsets(r, s, backlog, 600)
            cpu_last = sum(cpu_seconds(w.pid) for w, _port in workers)
        finally:
            for w, _port in workers:
                stop(w)
            r.close()
    finally:
        cleanup(kind, cfg, s)
    if last - first < 1.0:  # offsets are polled every 50 ms: a shorter span cannot be timed
        raise SystemExit(f"secure_bench: {kind} folded the backlog in {last - first:.2f} s, too short to time; "
                         "use a larger --backlog")
    return {"worker_events_per_s": backlog / (last - first), "cpu_us_per_event": (cpu_last - cpu_first) * 1e6 / backlog,
            "raw_consume_events_per_s": backlog / raw_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backlog", type=int, default=100_000)
    ap.add_argument("--shops", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    cfg = stack.StackConfig.from_env()
    if not stack.status(cfg)[0] or not secure.status(secure.SecureConfig.from_env(cfg))[0]:
        print("secure_bench: needs `tierstream devstack up` and `tierstream devstack up --secure`")
        return 1
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "secure": []}
    with tempfile.TemporaryDirectory() as logdir:
        for i in range(args.rounds):
            for kind in (("plain", "secure") if i % 2 == 0 else ("secure", "plain")):
                runs[kind].append(one(kind, cfg, args.backlog, args.shops, Path(logdir)))
                print(f"round {i + 1} {kind}: {json.dumps({k: round(v, 1) for k, v in runs[kind][-1].items()})}",
                      flush=True)
    med: dict[str, Any] = {kind: {k: round(statistics.median(r[k] for r in rs), 1) for k in rs[0]}
                           for kind, rs in runs.items()}
    med["secure_over_plain"] = {k: round(med["secure"][k] / med["plain"][k], 3) for k in med["plain"]}
    print(json.dumps({"backlog": args.backlog, "rounds": args.rounds, "median": med}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
