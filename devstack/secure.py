"""The secure devstack (`devstack up --secure`): Kafka over SASL_SSL with SCRAM users, Redis over TLS with ACL users.

It runs beside the plain stack, under `$TIERSTREAM_DEVSTACK_HOME/secure/` (mode 0700: the keys,
the generated passwords and the broker's JAAS line live there), with ports of its own:
`TIERSTREAM_DEVSTACK_SECURE_KAFKA_PORT` (default: the Kafka port + 2), `_SECURE_CONTROLLER_PORT`
(+ 3) and `_SECURE_REDIS_PORT` (the Redis port + 1). A CA and one server certificate (for
127.0.0.1 and localhost) are made with openssl on the first `up`; the SCRAM users `admin` (the
broker's own inter-broker login) and `worker` are written at storage format time
(`kafka-storage format --add-scram`); Redis serves TLS only and knows the users `admin`, `worker`
and `dashboard` (the default user is off). Users' Redis rules come from the caller
(projections/acl.py): the devstack imports nothing of the project.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack import stack
from devstack.procs import port_open, running_pid

MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
KAFKA_USERS = ("admin", "worker")
REDIS_USERS = ("admin", "worker", "dashboard")


@dataclass(frozen=True)
class SecureConfig:
    home: Path
    kafka_port: int
    controller_port: int
    redis_port: int

    @classmethod
    def from_env(cls, base: stack.StackConfig) -> SecureConfig:
        e = os.environ
        return cls(base.home / "secure",
                   int(e.get("TIERSTREAM_DEVSTACK_SECURE_KAFKA_PORT", base.kafka_port + 2)),
                   int(e.get("TIERSTREAM_DEVSTACK_SECURE_CONTROLLER_PORT", base.kafka_port + 3)),
                   int(e.get("TIERSTREAM_DEVSTACK_SECURE_REDIS_PORT", base.redis_port + 1)))

    @property
    def kafka(self) -> stack.StackConfig:
        """The broker's StackConfig: stack.kafka_up runs it, with the settings made here."""
        return stack.StackConfig(self.home, self.kafka_port, self.controller_port, self.redis_port)

    @property
    def ca(self) -> Path:
        return self.home / "tls" / "ca.pem"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def redis_url(self, user: str, password: str) -> str:
        return f"rediss://{user}:{password}@127.0.0.1:{self.redis_port}/0?ssl_ca_certs={self.ca}"


def _run(*cmd: str, cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise stack.DevstackError(f"{' '.join(cmd[:3])} failed: {(proc.stdout + proc.stderr)[-1500:]}")


def certificates(cfg: SecureConfig) -> Path:
    """A CA and a server certificate for 127.0.0.1 and localhost (made once, with openssl)."""
    tls = cfg.home / "tls"
    if (tls / "server.pem").exists():
        return tls
    stack._require("openssl")
    tls.mkdir(parents=True, exist_ok=True)
    (tls / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run("openssl", "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "825", "-subj", "/CN=tierstream devstack CA", cwd=tls)
    _run("openssl", "req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost", cwd=tls)
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.pem", "-days", "825", "-extfile", "san.cnf", cwd=tls)
    # Kafka's PEM key store: the (PKCS#8, unencrypted) key, then the certificate chain
    (tls / "kafka-keystore.pem").write_text((tls / "server.key").read_text() + (tls / "server.pem").read_text())
    return tls


def passwords(cfg: SecureConfig) -> dict[str, str]:
    """The users' passwords, made at the first `up` and kept (the SCRAM users live in the formatted storage)."""
    path = cfg.home / "secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    made = {f"kafka.{u}": secrets.token_urlsafe(18) for u in KAFKA_USERS}
    made |= {f"redis.{u}": secrets.token_urlsafe(18) for u in REDIS_USERS}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(made, f)
    return made


def client_kwargs(cfg: SecureConfig, user: str, password: str) -> dict[str, Any]:
    """aiokafka keyword arguments for `user` over SASL_SSL (the devstack's own probes)."""
    from aiokafka.helpers import create_ssl_context

    return {"security_protocol": "SASL_SSL", "ssl_context": create_ssl_context(cafile=str(cfg.ca)),
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user, "sasl_plain_password": password}


def broker_settings(cfg: SecureConfig, pw: Mapping[str, str]) -> dict[str, str]:
    """The plain devstack's broker settings, its listener replaced by SASL_SSL (inter-broker too, as admin)."""
    tls = cfg.home / "tls"
    props = stack.broker_settings(cfg.kafka)
    listener = f"SASL_SSL://127.0.0.1:{cfg.kafka_port}"
    jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" '
            f'password="{pw["kafka.admin"]}";')
    props.update({
        "listeners": f"{listener},CONTROLLER://127.0.0.1:{cfg.controller_port}",
        "advertised.listeners": listener,
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        **{f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config": jaas for m in MECHANISMS},
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(tls / "kafka-keystore.pem"),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(tls / "ca.pem"),
        "ssl.endpoint.identification.algorithm": "https",
    })
    return props


def _scram_args(pw: Mapping[str, str]) -> list[str]:
    return [arg for u in KAFKA_USERS for m in MECHANISMS
            for arg in ("--add-scram", f"{m}=[name={u},password={pw[f'kafka.{u}']}]")]


# -- Redis --------------------------------------------------------------------------------------

def redis_conf(cfg: SecureConfig, pw: Mapping[str, str], rules: Mapping[str, str]) -> str:
    """redis.conf: TLS only on loopback, AOF on, the default user off, an ACL user per `rules` entry."""
    tls, data = cfg.home / "tls", cfg.home / "redis-data"
    lines = [
        "port 0", f"tls-port {cfg.redis_port}", "bind 127.0.0.1",
        f"tls-cert-file {tls / 'server.pem'}", f"tls-key-file {tls / 'server.key'}",
        f"tls-ca-cert-file {tls / 'ca.pem'}", "tls-auth-clients no",  # users log in with passwords
        f"dir {data}", "appendonly yes", "appendfsync everysec", 'save ""', "daemonize yes",
        f"pidfile {cfg.home / 'redis.pid'}", f"logfile {cfg.home / 'redis.log'}",
        "user default off",
        f"user admin on >{pw['redis.admin']} ~* &* +@all",
        *(f"user {u} on >{pw[f'redis.{u}']} {r}" for u, r in rules.items()),
    ]
    return "".join(f"{line}\n" for line in lines)


def _redis(cfg: SecureConfig, pw: Mapping[str, str]) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=cfg.redis_port, ssl=True, ssl_ca_certs=str(cfg.ca),
                       username="admin", password=pw["redis.admin"], socket_timeout=2, socket_connect_timeout=1)


def _redis_ready(cfg: SecureConfig, pw: Mapping[str, str]) -> bool:
    import redis

    if not port_open(cfg.redis_port):
        return False
    try:
        return bool(_redis(cfg, pw).ping())
    except redis.RedisError:
        return False


def redis_up(cfg: SecureConfig, pw: Mapping[str, str], rules: Mapping[str, str], timeout: float = 20.0) -> str:
    pidfile, log = cfg.home / "redis.pid", cfg.home / "redis.log"
    where = f"rediss://127.0.0.1:{cfg.redis_port}"
    running = stack._already_up("redis (TLS)", pidfile, cfg.redis_port, bool(running_pid(pidfile))
                                and _redis_ready(cfg, pw), where, "TIERSTREAM_DEVSTACK_SECURE_REDIS_PORT")
    if running:
        return running
    binary = stack._redis_binary()
    (cfg.home / "redis-data").mkdir(exist_ok=True)
    conf = cfg.home / "redis.conf"
    conf.write_text(redis_conf(cfg, pw, rules))
    conf.chmod(0o600)
    proc = subprocess.run([binary, str(conf)], capture_output=True, text=True, check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _redis_ready(cfg, pw):
            return f"redis (TLS, ACL users {', '.join(REDIS_USERS)}) started (pid {running_pid(pidfile)}) on {where}"
        time.sleep(0.2)
    tail = stack._tail(log)
    if "TLS" in tail and "not" in tail.lower():
        raise stack.DevstackError(f"this redis-server has no TLS support (built without BUILD_TLS): {tail}")
    raise stack.DevstackError(f"Redis (TLS) did not answer PING within {timeout:.0f}s "
                              f"(redis-server said: {(proc.stdout + proc.stderr).strip()[-500:]}); "
                              f"last lines of {log}:\n{tail}")


# -- the secure stack ---------------------------------------------------------------------------

def prepare(cfg: SecureConfig) -> dict[str, str]:
    cfg.home.mkdir(parents=True, exist_ok=True)
    cfg.home.chmod(0o700)  # keys, passwords, server.properties' JAAS line: the owner's only
    certificates(cfg)
    return passwords(cfg)


def up(cfg: SecureConfig, rules: Mapping[str, str]) -> list[str]:
    """Kafka over SASL_SSL and Redis over TLS with ACL users (`rules`: user -> ACL rules, worker and dashboard)."""
    pw = prepare(cfg)
    kafka = stack.kafka_up(cfg.kafka, settings=broker_settings(cfg, pw), format_args=_scram_args(pw),
                           client=client_kwargs(cfg, "admin", pw["kafka.admin"]))
    return [redis_up(cfg, pw, rules), kafka.replace("kafka started", "kafka (SASL_SSL, SCRAM) started")]


def down(cfg: SecureConfig) -> list[str]:
    if not cfg.home.exists():
        return []
    return [stack._stop(cfg.home / "kafka.pid", "kafka (secure)"), stack._stop(cfg.home / "redis.pid", "redis (TLS)")]


def status(cfg: SecureConfig) -> tuple[bool, list[str]]:
    if not (cfg.home / "secrets.json").exists():
        return False, ["secure: never started (`tierstream devstack up --secure`)"]
    pw = passwords(cfg)
    k_ok = bool(running_pid(cfg.home / "kafka.pid")) and stack._kafka_ready(
        cfg.kafka, client_kwargs(cfg, "admin", pw["kafka.admin"]))
    r_ok = bool(running_pid(cfg.home / "redis.pid")) and _redis_ready(cfg, pw)
    return k_ok and r_ok, [f"kafka (SASL_SSL): {'running on ' + cfg.bootstrap if k_ok else 'not running'}",
                           f"redis (TLS): {f'running on 127.0.0.1:{cfg.redis_port}' if r_ok else 'not running'}"]


def env(cfg: SecureConfig, user: str = "worker") -> dict[str, str]:
    """The variables that point a command at the secure stack as `user` (worker or dashboard in Redis)."""
    pw = passwords(cfg)
    return {
        "TIERSTREAM_KAFKA": cfg.bootstrap,
        "TIERSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "TIERSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "TIERSTREAM_KAFKA_SASL_USERNAME": "worker",
        "TIERSTREAM_KAFKA_SASL_PASSWORD": pw["kafka.worker"],
        "TIERSTREAM_KAFKA_SSL_CAFILE": str(cfg.ca),
        "TIERSTREAM_REDIS": cfg.redis_url(user, pw[f"redis.{user}"]),
    }


def env_lines(cfg: SecureConfig) -> list[str]:
    import shlex

    if not (cfg.home / "secrets.json").exists():
        raise stack.DevstackError("the secure devstack was never started: `tierstream devstack up --secure`")
    return [f"export {k}={shlex.quote(v)}" for k, v in env(cfg).items()]


def delete_test_data(cfg: SecureConfig, topics: str, keys: str) -> tuple[int, int]:
    """Delete the topics and Redis keys matching the regexes `topics` and `keys`; how many of each."""
    import re

    pw = passwords(cfg)
    n_topics = stack.delete_topics(cfg.kafka, topics, client_kwargs(cfg, "admin", pw["kafka.admin"]))
    client, rx = _redis(cfg, pw), re.compile(keys.encode())
    try:
        doomed = [k for k in client.scan_iter(count=5000) if rx.match(k)]
        for i in range(0, len(doomed), 5000):
            client.unlink(*doomed[i:i + 5000])
    finally:
        client.close()
    return n_topics, len(doomed)


def set_user(cfg: SecureConfig, user: str, password: str, rules: str) -> None:
    """Create or replace a Redis ACL user (tests give each namespace a least-privilege user of its own)."""
    client = _redis(cfg, passwords(cfg))
    try:
        client.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}", *rules.split())
    finally:
        client.close()
