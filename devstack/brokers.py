"""A Kafka cluster of N KRaft nodes on loopback (`devstack up --brokers 3`): start, stop, kill, describe.

Each node is a combined broker + controller (`process.roles=broker,controller`): three JVMs
instead of six on a small machine, and a quorum of three voters still survives one node's loss.
Node i (0-based) listens on `base + 2i` for clients, `base + 2i + 1` for the controller quorum,
and `base + 100 + 2i` on a FAULTY listener that advertises `base + 101 + 2i`: a fault proxy
(devstack/faultproxy.py) listening there sees every byte a client that bootstrapped through it
sends to any node, because the metadata it gets back names the proxies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.procs import port_open as _port_open
from devstack.procs import running_pid as _pid
from devstack.stack import HERE, DevstackError, _tail, fetch_kafka

FAULT_OFFSET = 100  # the FAULTY listener's ports sit this far above the client ports


@dataclass(frozen=True)
class ClusterConfig:
    home: Path
    base: int  # node i: clients base+2i, controller base+2i+1, FAULTY base+100+2i, advertised base+101+2i
    nodes: int = 3
    heap_mb: int = 512

    @property
    def ids(self) -> range:
        return range(1, self.nodes + 1)

    def client_port(self, node: int) -> int:
        return self.base + 2 * (node - 1)

    def controller_port(self, node: int) -> int:
        return self.base + 2 * (node - 1) + 1

    def fault_port(self, node: int) -> int:
        """Where the node's FAULTY listener listens (a proxy forwards to it)."""
        return self.base + FAULT_OFFSET + 2 * (node - 1)

    def proxy_port(self, node: int) -> int:
        """What the FAULTY listener advertises: where a fault proxy must listen."""
        return self.base + FAULT_OFFSET + 2 * (node - 1) + 1

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.client_port(n)}" for n in self.ids)

    @property
    def proxied_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.proxy_port(n)}" for n in self.ids)

    @property
    def replication(self) -> int:
        return min(3, self.nodes)

    def node_home(self, node: int) -> Path:
        return self.home / f"kafka-{node}"

    def pidfile(self, node: int) -> Path:
        return self.home / f"kafka-{node}.pid"

    def log(self, node: int) -> Path:
        return self.node_home(node) / "kafka.log"


def _properties(cc: ClusterConfig, node: int) -> str:
    voters = ",".join(f"{n}@127.0.0.1:{cc.controller_port(n)}" for n in cc.ids)
    rf = cc.replication
    min_isr = max(1, rf - 1)
    return f"""process.roles=broker,controller
node.id={node}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{cc.client_port(node)},FAULTY://127.0.0.1:{cc.fault_port(node)},\
CONTROLLER://127.0.0.1:{cc.controller_port(node)}
advertised.listeners=PLAINTEXT://127.0.0.1:{cc.client_port(node)},FAULTY://127.0.0.1:{cc.proxy_port(node)}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,FAULTY:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={cc.node_home(node) / 'data'}
num.partitions=8
default.replication.factor={rf}
min.insync.replicas={min_isr}
unclean.leader.election.enable=false
auto.create.topics.enable=false
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=8
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min_isr}
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
replica.lag.time.max.ms=10000
log.retention.ms=-1
log.retention.bytes=-1
"""


def _java(cc: ClusterConfig, node: int, libs: Path, *args: str) -> list[str]:
    return ["java", f"-Xms{cc.heap_mb // 2}m", f"-Xmx{cc.heap_mb}m", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={cc.node_home(node) / 'logs'}", "-cp", f"{libs}/*", *args]


def _cluster_id(cc: ClusterConfig) -> str:
    """One id for every node, kept in the cluster's home (nodes formatted apart must agree)."""
    path = cc.home / "cluster.id"
    if not path.exists():
        cc.home.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
    return path.read_text().strip()


def start_node(cc: ClusterConfig, node: int) -> str:
    """Start one node (format its storage first if new); return at once: `wait_ready` waits."""
    pid = _pid(cc.pidfile(node))
    if pid:
        return f"kafka-{node} already running (pid {pid})"
    for port, what in ((cc.client_port(node), "client"), (cc.controller_port(node), "controller"),
                       (cc.fault_port(node), "FAULTY")):
        if _port_open(port):
            raise DevstackError(f"kafka-{node}: {what} port {port} is taken by another process; "
                                "set TIERSTREAM_DEVSTACK_KAFKA_PORT (or the test cluster's port) to another base")
    libs = fetch_kafka_libs()
    home = cc.node_home(node)
    home.mkdir(parents=True, exist_ok=True)
    props = home / "server.properties"
    props.write_text(_properties(cc, node))
    if not (home / "data" / "meta.properties").exists():
        fmt = subprocess.run(_java(cc, node, libs, "kafka.tools.StorageTool", "format",
                                   f"--cluster-id={_cluster_id(cc)}", "-c", str(props)),
                             capture_output=True, text=True, check=False)
        if fmt.returncode != 0:
            raise DevstackError(f"formatting kafka-{node} storage failed:\n{(fmt.stdout + fmt.stderr)[-2000:]}")
    with open(cc.log(node), "ab") as f:
        proc = subprocess.Popen(_java(cc, node, libs, "kafka.Kafka", str(props)), stdout=f,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    cc.pidfile(node).write_text(str(proc.pid))
    return f"kafka-{node} started (pid {proc.pid}) on 127.0.0.1:{cc.client_port(node)}, log {cc.log(node)}"


def fetch_kafka_libs() -> Path:
    from devstack.stack import StackConfig

    return fetch_kafka(StackConfig.from_env())


def up(cc: ClusterConfig, timeout: float = 240.0) -> list[str]:
    """Start every node that is not running and wait until the cluster has them all."""
    lines = [start_node(cc, n) for n in cc.ids]
    wait_ready(cc, timeout)
    return lines


def wait_ready(cc: ClusterConfig, timeout: float = 240.0, nodes: int | None = None) -> dict[str, Any]:
    """Until `nodes` (default: all) brokers are registered with an active controller; the description."""
    want = cc.nodes if nodes is None else nodes
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for n in cc.ids:
            pid = _pid(cc.pidfile(n))
            if pid is None and cc.pidfile(n).exists():
                raise DevstackError(f"kafka-{n} exited; last lines of {cc.log(n)}:\n{_tail(cc.log(n))}")
        seen = describe(cc)
        if len(seen.get("brokers", [])) >= want and seen.get("controller_id", -1) != -1:
            return seen
        time.sleep(0.5)
    raise DevstackError(f"the cluster did not register {want} brokers within {timeout:.0f}s (saw {seen}); "
                        f"logs in {cc.home}/kafka-*/kafka.log")


def describe(cc: ClusterConfig) -> dict[str, Any]:
    """The cluster as a metadata request sees it ({} when nobody answers)."""
    from aiokafka.admin import AIOKafkaAdminClient

    live = [f"127.0.0.1:{cc.client_port(n)}" for n in cc.ids if _port_open(cc.client_port(n))]
    if not live:  # nobody listens yet: asking would only fill the log with refused connections
        return {}

    async def run() -> dict[str, Any]:
        admin = AIOKafkaAdminClient(bootstrap_servers=",".join(live), request_timeout_ms=3000)
        try:
            await admin.start()
            return dict(await admin.describe_cluster())
        except Exception:  # nobody answers yet
            return {}
        finally:
            await admin.close()

    try:
        return asyncio.run(asyncio.wait_for(run(), 8))
    except TimeoutError:
        return {}


def kill_node(cc: ClusterConfig, node: int, sig: int = signal.SIGKILL, timeout: float = 60.0) -> str:
    """Signal one node (SIGKILL: no controlled shutdown; SIGTERM: a clean one) and wait until it is gone."""
    pid = _pid(cc.pidfile(node))
    if pid is None:
        return f"kafka-{node} not running"
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not _gone(pid):
        time.sleep(0.1)
    if not _gone(pid):
        os.kill(pid, signal.SIGKILL)
        while not _gone(pid):
            time.sleep(0.1)
    cc.pidfile(node).unlink(missing_ok=True)
    return f"kafka-{node} stopped ({signal.Signals(sig).name}, pid {pid})"


def _gone(pid: int) -> bool:
    """The process ended. A node this process started (a restart in a test or the soak) is its
    child: reap it, or it stays a zombie that `kill(pid, 0)` still finds."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    try:
        os.kill(pid, 0)
    except OSError:
        return True
    return False


def down(cc: ClusterConfig) -> list[str]:
    return [kill_node(cc, n, signal.SIGTERM) for n in cc.ids]


def leaders(cc: ClusterConfig, topic: str) -> dict[int, int]:
    """partition -> the node that leads it now."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def run() -> dict[int, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=cc.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            (t,) = await admin.describe_topics([topic])
            return {int(p["partition"]): int(p["leader"]) for p in t["partitions"]}
        finally:
            await admin.close()

    return asyncio.run(run())


def status(cc: ClusterConfig) -> tuple[bool, list[str]]:
    """One line per node: running or not, its ports, whether it is the active controller."""
    cluster = describe(cc)
    registered = {int(b["node_id"]) for b in cluster.get("brokers", [])}
    controller = int(cluster.get("controller_id", -1))
    lines, ok = [], True
    for n in cc.ids:
        pid = _pid(cc.pidfile(n))
        up_ = pid is not None and n in registered
        ok = ok and up_
        role = " [active controller]" if n == controller else ""
        lines.append(f"kafka-{n}: {'running' if up_ else 'not running'}"
                     + (f" (pid {pid}) on 127.0.0.1:{cc.client_port(n)}, controller :{cc.controller_port(n)}, "
                        f"faulty :{cc.fault_port(n)} -> proxy :{cc.proxy_port(n)}{role}" if up_ else ""))
    return ok, lines


def running(cc: ClusterConfig) -> bool:
    """Any node of this cluster has a live pid file (the stack is in cluster mode)."""
    return any(_pid(cc.pidfile(n)) for n in cc.ids)


# -- `tierstream devstack ... --brokers N` --------------------------------------------------------

def for_stack(home: Path, kafka_port: int, brokers: int | None) -> ClusterConfig | None:
    """The cluster the devstack runs in `home`: `brokers` nodes when asked (`up --brokers N`,
    TIERSTREAM_DEVSTACK_BROKERS), else as many as the last `up` started there; None for one broker."""
    if brokers is None:
        env = os.environ.get("TIERSTREAM_DEVSTACK_BROKERS")
        marker = home / "brokers"
        brokers = int(env) if env else int(marker.read_text()) if marker.exists() else 1
    if brokers < 1:
        raise DevstackError(f"--brokers takes a positive number, got {brokers}")
    return ClusterConfig(home, kafka_port, nodes=brokers) if brokers > 1 else None


def stack_action(cfg: Any, cc: ClusterConfig, action: str) -> tuple[bool, list[str]]:
    """`up`, `down`, `status` or `env` of the devstack with this cluster in place of its one broker."""
    from devstack import stack

    if action == "up":
        if _pid(cfg.home / "kafka.pid"):
            raise DevstackError("a single-broker devstack runs in this home: `tierstream devstack down` first")
        lines = [stack.redis_up(cfg), *up(cc)]
        (cc.home / "brokers").write_text(str(cc.nodes))
        return True, [*lines, f"cluster of {cc.nodes}: topics get replication {cc.replication}, "
                              f"min.insync.replicas {max(1, cc.replication - 1)}"]
    if action == "down":
        lines = [*down(cc), stack.stop_redis(cfg)]
        (cc.home / "brokers").unlink(missing_ok=True)
        return True, lines
    if action == "env":
        return True, [f"export TIERSTREAM_KAFKA={cc.bootstrap}", f"export TIERSTREAM_REDIS={cfg.redis_url}"]
    ok, lines = status(cc)
    r_ok = bool(_pid(cfg.home / "redis.pid")) and stack._redis_ready(cfg)
    lines.append(f"redis: {'running' if r_ok else 'not running'}" + (f" on {cfg.redis_url}" if r_ok else ""))
    return ok and r_ok, [*lines, f"home:  {cfg.home}"]


def wait_in_sync(cc: ClusterConfig, topic: str, timeout: float = 120.0) -> None:
    """Until every partition of `topic` has all its replicas in sync (a rolling restart waits for it
    before taking the next node down, as operators do)."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def lagging() -> list[int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=cc.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            (t,) = await admin.describe_topics([topic])
            return [p["partition"] for p in t["partitions"] if len(p["isr"]) < len(p["replicas"])]
        finally:
            await admin.close()

    deadline, behind = time.monotonic() + timeout, [-1]
    while time.monotonic() < deadline:
        try:
            behind = asyncio.run(lagging())
        except Exception:  # a node is still coming up
            behind = [-1]
        if not behind:
            return
        time.sleep(0.5)
    raise DevstackError(f"{topic}: partitions {behind} not back in sync within {timeout:.0f}s")
