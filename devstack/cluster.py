"""A Redis Cluster on loopback for the devstack: 3 masters (and a replica each) from the OS redis-server.

Each node runs detached with AOF on, a pid file and a log in `<home>/cluster/<port>/`; the
cluster is made with `redis-cli --cluster create` and is ready when every node says
`cluster_state:ok` (and every replica's link to its master is up). A node timeout of 2 s
makes a failover take a few seconds, so tests can wait for one. `down` stops only the nodes
`up` started; the data stays, so the next `up` brings back the same cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.procs import running_pid as _pid

MASTERS = 3
NODE_TIMEOUT_MS = 2000


class ClusterError(RuntimeError):
    """A cluster step failed; the message says what and where to look."""


@dataclass(frozen=True)
class ClusterConfig:
    home: Path  # the devstack's home; the cluster lives in home/cluster
    base_port: int = 17100
    replicas: int = 0

    @classmethod
    def from_env(cls, home: Path, replicas: int | None = None) -> ClusterConfig:
        raw = os.environ.get("TIERSTREAM_DEVSTACK_CLUSTER_PORT", "17100")
        if not raw.isdigit():
            raise ClusterError(f"TIERSTREAM_DEVSTACK_CLUSTER_PORT must be a port number, got {raw!r}")
        layout = _read_layout(home / "cluster")
        if replicas is None:
            replicas = int(layout["replicas"]) if layout else 0
        return cls(home, int(raw), replicas)

    @property
    def dir(self) -> Path:
        return self.home / "cluster"

    @property
    def ports(self) -> list[int]:
        return [self.base_port + i for i in range(MASTERS * (1 + self.replicas))]

    @property
    def url(self) -> str:
        """TIERSTREAM_REDIS for this cluster (plumbing/redis_clients.py): its masters as seeds."""
        return "redis-cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:MASTERS])

    def pidfile(self, port: int) -> Path:
        return self.dir / str(port) / "redis.pid"

    def log(self, port: int) -> Path:
        return self.dir / str(port) / "redis.log"


def _read_layout(d: Path) -> dict[str, Any] | None:
    try:
        layout: dict[str, Any] = json.loads((d / "layout.json").read_text())
        return layout
    except (OSError, ValueError):
        return None


def _client(port: int) -> Any:
    import redis
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=1)


def node_info(port: int, section: str = "cluster") -> dict[str, str]:
    """`CLUSTER INFO` (or `INFO <section>` for another section) of one node, as text fields."""
    import redis
    try:
        c = _client(port)
        try:
            raw = c.execute_command("CLUSTER", "INFO") if section == "cluster" else c.execute_command("INFO", section)
        finally:
            c.close()
    except redis.RedisError:
        return {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def running(cfg: ClusterConfig) -> list[int]:
    """The ports of the cluster's nodes whose process is alive."""
    return [p for p in cfg.ports if _pid(cfg.pidfile(p))]


def healthy(cfg: ClusterConfig) -> bool:
    """Every node up and `cluster_state:ok`, every replica linked to its master."""
    if len(running(cfg)) != len(cfg.ports):
        return False
    for port in cfg.ports:
        if node_info(port).get("cluster_state") != "ok":
            return False
        repl = node_info(port, "replication")
        if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
            return False
    return True


def start_node(cfg: ClusterConfig, port: int) -> None:
    """Start one node (again, after a kill: it rejoins from its nodes.conf and AOF)."""
    from devstack.stack import _redis_binary

    d = cfg.dir / str(port)
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run([_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--appendonly", "yes",
                    "--appendfsync", "everysec", "--daemonize", "yes", "--pidfile", str(cfg.pidfile(port)),
                    "--logfile", str(cfg.log(port)), "--save", ""], check=True)


def _wait(what: str, ready: Any, timeout: float, cfg: ClusterConfig) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    logs = "\n".join(f"{cfg.log(p)}: {_last_line(cfg.log(p))}" for p in cfg.ports)
    raise ClusterError(f"{what} within {timeout:.0f}s; last log lines:\n{logs}")


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
        return lines[-1] if lines else "(empty)"
    except OSError:
        return "(no log)"


def up(cfg: ClusterConfig, timeout: float = 60.0) -> str:
    """Start the nodes and create the cluster (or bring the one made before back); wait until ok."""
    layout = _read_layout(cfg.dir)
    if layout is not None and (layout["base_port"], layout["replicas"]) != (cfg.base_port, cfg.replicas):
        if running(ClusterConfig(cfg.home, int(layout["base_port"]), int(layout["replicas"]))):
            raise ClusterError(f"a cluster with base port {layout['base_port']} and {layout['replicas']} replica(s) "
                               "per master is running: `tierstream devstack down` first")
        shutil.rmtree(cfg.dir)  # another layout, stopped: start afresh
        layout = None
    if healthy(cfg):
        return f"redis cluster already running on {cfg.url}"
    cfg.dir.mkdir(parents=True, exist_ok=True)
    for port in cfg.ports:
        if not _pid(cfg.pidfile(port)):
            start_node(cfg, port)
    _wait("not every cluster node answered PING", lambda: all(node_info(p) for p in cfg.ports), 20, cfg)
    if layout is None:
        cmd = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in cfg.ports),
               "--cluster-replicas", str(cfg.replicas), "--cluster-yes"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
        (cfg.dir / "layout.json").write_text(json.dumps({"base_port": cfg.base_port, "replicas": cfg.replicas}))
    _wait("the cluster did not reach cluster_state:ok", lambda: healthy(cfg), timeout, cfg)
    return (f"redis cluster started on {cfg.url} ({MASTERS} masters, {cfg.replicas} replica(s) each, "
            f"AOF in {cfg.dir})")


def down(cfg: ClusterConfig) -> str:
    from devstack.stack import _stop

    if _read_layout(cfg.dir) is None:
        return "redis cluster not created"
    stopped = [_stop(cfg.pidfile(p), f"redis {p}") for p in cfg.ports]
    n = sum(1 for line in stopped if "stopped" in line)
    return f"redis cluster stopped ({n} node(s))"


def status_line(cfg: ClusterConfig) -> tuple[bool, str] | None:
    """(healthy, a line) when a cluster was created here; None when none was."""
    if _read_layout(cfg.dir) is None:
        return None
    ok = healthy(cfg)
    alive = running(cfg)
    return ok, (f"redis cluster: {'running' if ok else 'not ok'} ({len(alive)}/{len(cfg.ports)} nodes up, "
                f"{cfg.replicas} replica(s) per master) on {cfg.url}")


def masters(cfg: ClusterConfig) -> Iterator[tuple[int, int | None]]:
    """(port, pid) of each node that is a master now."""
    for port in cfg.ports:
        if node_info(port, "replication").get("role") == "master":
            yield port, _pid(cfg.pidfile(port))


def delete_keys(cfg: ClusterConfig, pattern: str) -> int:
    """Delete every key, on every master, whose name matches `pattern` (a regex); return how many."""
    import re

    rx = re.compile(pattern.encode())
    n = 0
    for port, _ in list(masters(cfg)):
        c = _client(port)
        try:
            pipe = c.pipeline(transaction=False)
            for k in c.scan_iter(count=5000):
                if rx.match(k):
                    pipe.unlink(k)  # one key a command: a node refuses keys of several slots in one
            n += sum(pipe.execute())
        finally:
            c.close()
    return n


def ensure(home: Path) -> ClusterConfig:
    """The devstack's cluster, started (without replicas, unless one was made with them) if not running."""
    cfg = ClusterConfig.from_env(home)
    if not healthy(cfg):
        print(up(cfg), flush=True)
    return cfg
