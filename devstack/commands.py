"""`tierstream devstack up | down | status | env`, given the parsed arguments."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack import stack


def devstack(args: argparse.Namespace) -> int:
    from devstack import cluster, stack

    cfg = stack.StackConfig.from_env()
    try:
        if _cluster(cfg, args):
            return 0 if args.action != "status" or args.cluster_ok else 1
        if args.action == "up":
            lines = stack.up(cfg, args.redis_cluster, args.replicas)
        elif args.action == "down":
            lines = stack.down(cfg)
        elif args.action == "env":
            lines = stack.env_lines(cfg)
        else:
            ok, lines = stack.status(cfg)
            print("\n".join(lines))
            return 0 if ok else 1
    except (stack.DevstackError, cluster.ClusterError) as exc:
        print(f"devstack {args.action}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _cluster(cfg: stack.StackConfig, args: argparse.Namespace) -> bool:
    """`--brokers N` (N > 1, or the cluster the last `up` started): the cluster takes the one broker's place."""
    from devstack import brokers

    cc = brokers.for_stack(cfg.home, cfg.kafka_port, args.brokers)
    if cc is None:
        return False
    args.cluster_ok, lines = brokers.stack_action(cfg, cc, args.action)
    print("\n".join(lines))
    return True
