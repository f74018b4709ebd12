"""Start, stop and describe the devstack: Apache Kafka 4 (KRaft) on the JDK, and redis-server.

Kafka is resolved from Maven Central with `mvn` (devstack/pom.xml) into a cache
directory; Redis comes from the OS packages. Every process is started detached,
with a pid file, and `down` stops only what `up` started.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from devstack import cluster, sysdeps
from devstack.procs import port_open as _port_open
from devstack.procs import running_pid as _pid

HERE = Path(__file__).resolve().parent
KAFKA_VERSION = "4.1.1"


class DevstackError(RuntimeError):
    """A devstack step failed; the message says what and how to look further."""


@dataclass(frozen=True)
class StackConfig:
    home: Path
    kafka_port: int = 19092
    controller_port: int = 19093
    redis_port: int = 16379

    @classmethod
    def from_env(cls) -> StackConfig:
        e = os.environ
        home = Path(e.get("TIERSTREAM_DEVSTACK_HOME", Path.home() / ".cache" / "tierstream" / "devstack"))
        return cls(home, int(e.get("TIERSTREAM_DEVSTACK_KAFKA_PORT", "19092")),
                   int(e.get("TIERSTREAM_DEVSTACK_CONTROLLER_PORT", "19093")),
                   int(e.get("TIERSTREAM_DEVSTACK_REDIS_PORT", "16379")))

    @property
    def libs(self) -> Path:
        default = Path.home() / ".cache" / "tierstream" / f"kafka-{KAFKA_VERSION}" / "libs"
        return Path(os.environ.get("TIERSTREAM_KAFKA_LIBS", default))

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _require(*commands: str) -> None:
    """The OS packages behind `commands`, from the one table of them (installed when root)."""
    try:
        sysdeps.ensure(sysdeps.by_command(*commands), sysdeps.installer_here())
    except sysdeps.Missing as exc:
        raise DevstackError(str(exc)) from None


# -- Kafka --------------------------------------------------------------------------------------

def fetch_kafka(cfg: StackConfig) -> Path:
    """Resolve the broker's jars from Maven Central once; later calls use the cache."""
    libs = cfg.libs
    if any(libs.glob("kafka_2.13-*.jar")):
        return libs
    _require("mvn")
    print(f"devstack: fetching Apache Kafka {KAFKA_VERSION} from Maven Central into {libs} ...", flush=True)
    libs.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mvn", "-B", "-q", "-f", str(HERE / "pom.xml"), f"-Dkafka.version={KAFKA_VERSION}",
         f"-DoutputDirectory={libs}", "dependency:copy-dependencies"],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        out = (proc.stdout + proc.stderr)[-3000:]
        hint = ("Maven Central could not be reached" if "resolve" in out.lower() or "transfer" in out.lower()
                else "mvn failed")
        raise DevstackError(f"{hint} while fetching Kafka (mvn exit {proc.returncode}):\n{out}")
    return libs


def broker_settings(cfg: StackConfig) -> dict[str, str]:
    """The devstack broker's server.properties (docker-compose.yml gives Kafka the same, but addresses)."""
    p = cfg.kafka_port
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cfg.controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{cfg.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(cfg.home / "kafka-data"),
        "num.partitions": "8",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.ms": "-1",
        "log.retention.bytes": "-1",
    }


def _java(cfg: StackConfig, libs: Path, *args: str) -> list[str]:
    return ["java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={cfg.home / 'kafka-logs'}", "-cp", f"{libs}/*", *args]


def _already_up(name: str, pidfile: Path, port: int, ready: bool, where: str, port_var: str) -> str | None:
    """'already running' when our process answers; an error when a stranger holds the port."""
    if _pid(pidfile) and ready:
        return f"{name} already running (pid {_pid(pidfile)}) on {where}"
    if _port_open(port) and not _pid(pidfile):
        raise DevstackError(f"port {port} is taken by another process; set {port_var} to another port")
    return None


def kafka_up(cfg: StackConfig, timeout: float = 240.0, settings: dict[str, str] | None = None,
             cluster_id: str | None = None) -> str:
    """Start the broker with `settings` (default: `broker_settings`); ready when `cfg.bootstrap` answers."""
    pidfile, log = cfg.home / "kafka.pid", cfg.home / "kafka.log"
    running = _already_up("kafka", pidfile, cfg.kafka_port, bool(_pid(pidfile)) and _kafka_ready(cfg),
                          cfg.bootstrap, "TIERSTREAM_DEVSTACK_KAFKA_PORT")
    if running:
        return running
    _require("java")
    libs = fetch_kafka(cfg)
    settings = settings or broker_settings(cfg)
    data = Path(settings["log.dirs"])
    props = cfg.home / "server.properties"
    cfg.home.mkdir(parents=True, exist_ok=True)
    props.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    if not (data / "meta.properties").exists():
        cluster = cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        fmt = subprocess.run(_java(cfg, libs, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster}",
                                   "-c", str(props)), capture_output=True, text=True, check=False)
        if fmt.returncode != 0:
            raise DevstackError(f"formatting Kafka storage failed:\n{(fmt.stdout + fmt.stderr)[-2000:]}")
    with open(log, "ab") as f:
        proc = subprocess.Popen(_java(cfg, libs, "kafka.Kafka", str(props)), stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    pidfile.write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevstackError(f"Kafka exited with code {proc.returncode}; last lines of {log}:\n{_tail(log)}")
        if _kafka_ready(cfg):
            return f"kafka started (pid {proc.pid}) on {cfg.bootstrap}, log {log}"
        time.sleep(0.5)
    partitions = sum(1 for d in data.iterdir() if d.is_dir()) if data.exists() else 0
    raise DevstackError(f"Kafka did not answer a metadata request within {timeout:.0f}s "
                        f"({partitions} partition directories in {data}: a broker loads each at start; "
                        f"`tierstream devstack down` and remove that directory for a fresh one); "
                        f"last lines of {log}:\n{_tail(log)}")


def _kafka_ready(cfg: StackConfig) -> bool:
    """A real metadata request, answered by a broker with a controller."""
    if not _port_open(cfg.kafka_port):
        return False
    from devstack.probe import kafka_metadata_ok
    return kafka_metadata_ok(cfg.bootstrap)


def delete_topics(cfg: StackConfig, pattern: str) -> int:
    """Delete every topic whose name matches `pattern` (a regex); return how many."""
    import asyncio
    import re

    from aiokafka.admin import AIOKafkaAdminClient

    async def run() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap, request_timeout_ms=60_000)
        await admin.start()
        try:
            names = sorted(t for t in await admin.list_topics() if re.match(pattern, t))
            for i in range(0, len(names), 200):
                await admin.delete_topics(names[i:i + 200], timeout_ms=60_000)
            return len(names)
        finally:
            await admin.close()

    return asyncio.run(run())


def delete_keys(cfg: StackConfig, pattern: str) -> int:
    """Delete every Redis key whose name matches `pattern` (a regex); return how many."""
    import re

    import redis

    rx = re.compile(pattern.encode())
    client = redis.Redis(port=cfg.redis_port)
    try:
        doomed = [k for k in client.scan_iter(count=5000) if rx.match(k)]
        for i in range(0, len(doomed), 5000):
            client.unlink(*doomed[i:i + 5000])
        return len(doomed)
    finally:
        client.close()


# -- Redis --------------------------------------------------------------------------------------

def _redis_binary() -> str:
    _require("redis-server")
    return str(shutil.which("redis-server"))


def redis_up(cfg: StackConfig, timeout: float = 20.0) -> str:
    pidfile, log = cfg.home / "redis.pid", cfg.home / "redis.log"
    running = _already_up("redis", pidfile, cfg.redis_port, bool(_pid(pidfile)) and _redis_ready(cfg),
                          cfg.redis_url, "TIERSTREAM_DEVSTACK_REDIS_PORT")
    if running:
        return running
    binary = _redis_binary()
    data = cfg.home / "redis-data"
    data.mkdir(parents=True, exist_ok=True)
    subprocess.run([binary, "--port", str(cfg.redis_port), "--bind", "127.0.0.1", "--dir", str(data),
                    "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "yes",
                    "--pidfile", str(pidfile), "--logfile", str(log), "--save", ""], check=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _redis_ready(cfg):
            return f"redis started (pid {_pid(pidfile)}) on {cfg.redis_url}, AOF in {data}"
        time.sleep(0.2)
    raise DevstackError(f"Redis did not answer PING within {timeout:.0f}s; last lines of {log}:\n{_tail(log)}")


def _redis_ready(cfg: StackConfig) -> bool:
    if not _port_open(cfg.redis_port):
        return False
    import redis
    try:
        return bool(redis.Redis(port=cfg.redis_port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


# -- the stack ----------------------------------------------------------------------------------

def up(cfg: StackConfig, redis_cluster: bool = False, replicas: int = 0) -> list[str]:
    """Kafka and Redis; with `redis_cluster`, a Redis Cluster beside them (devstack/cluster.py)."""
    lines = [redis_up(cfg), kafka_up(cfg)]
    if redis_cluster:
        lines.append(cluster.up(cluster.ClusterConfig.from_env(cfg.home, replicas)))
    return lines


def _stop(pidfile: Path, name: str, timeout: float = 30.0) -> str:
    pid = _pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return f"{name} not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid(pidfile):
        time.sleep(0.2)
    if _pid(pidfile):
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return f"{name} stopped (pid {pid})"


def stop_kafka(cfg: StackConfig) -> str:
    return _stop(cfg.home / "kafka.pid", "kafka")


def stop_redis(cfg: StackConfig) -> str:
    return _stop(cfg.home / "redis.pid", "redis")


def down(cfg: StackConfig) -> list[str]:
    return [stop_kafka(cfg), stop_redis(cfg), cluster.down(cluster.ClusterConfig.from_env(cfg.home))]


def status(cfg: StackConfig) -> tuple[bool, list[str]]:
    k, r = _pid(cfg.home / "kafka.pid"), _pid(cfg.home / "redis.pid")
    k_ok = bool(k) and _kafka_ready(cfg)
    r_ok = bool(r) and _redis_ready(cfg)
    lines = [
        f"kafka: {'running' if k_ok else 'not running'}" + (f" (pid {k}) on {cfg.bootstrap}" if k_ok else ""),
        f"redis: {'running' if r_ok else 'not running'}" + (f" (pid {r}) on {cfg.redis_url}" if r_ok else ""),
        f"home:  {cfg.home}",
    ]
    c = cluster.status_line(cluster.ClusterConfig.from_env(cfg.home))
    if c is not None:  # a cluster made here counts once any of its nodes runs
        lines.insert(2, c[1])
        if cluster.running(cluster.ClusterConfig.from_env(cfg.home)):
            return k_ok and r_ok and c[0], lines
    return k_ok and r_ok, lines


def env_lines(cfg: StackConfig) -> list[str]:
    """The variables that point commands at the devstack: at its Redis Cluster when one runs."""
    c = cluster.ClusterConfig.from_env(cfg.home)
    url = c.url if cluster.running(c) else cfg.redis_url
    return [f"export TIERSTREAM_KAFKA={cfg.bootstrap}", f"export TIERSTREAM_REDIS={url}"]
