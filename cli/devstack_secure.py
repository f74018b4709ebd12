"""`tierstream devstack up|down|status|env --secure`: the secure devstack with the project's ACL users."""

from __future__ import annotations

import os
import sys

from devstack import secure, stack
from projections.acl import dashboard_rules, worker_rules


def devstack_rules(namespace: str, topic_prefix: str) -> dict[str, str]:
    """The Redis users the secure devstack creates: `worker` and `dashboard`, for this namespace."""
    return {"worker": worker_rules(namespace, topic_prefix), "dashboard": dashboard_rules(namespace)}


def devstack_secure(cfg: stack.StackConfig, action: str) -> int:
    scfg = secure.SecureConfig.from_env(cfg)
    try:
        if action == "up":
            rules = devstack_rules(os.environ.get("TIERSTREAM_NAMESPACE", "live"),
                                   os.environ.get("TIERSTREAM_TOPIC_PREFIX", ""))
            lines = secure.up(scfg, rules)
        elif action == "down":
            lines = secure.down(scfg) or ["secure devstack: not running"]
        elif action == "env":
            lines = secure.env_lines(scfg)
        else:
            ok, lines = secure.status(scfg)
            print("\n".join(lines))
            return 0 if ok else 1
    except stack.DevstackError as exc:
        print(f"devstack {action} --secure: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
