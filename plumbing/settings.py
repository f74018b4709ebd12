"""One typed, frozen settings object, read from the environment once (interfaces.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final


class Secret(str):
    """A string that never shows itself in repr or logs."""

    def __repr__(self) -> str:
        return "Secret('***')"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for logs: redis://, rediss://, and the cluster
    forms whose comma-separated hosts `urlsplit` cannot take; a bare `password@` goes whole."""
    scheme, sep, rest = url.partition("://")
    head, q, query = rest.partition("?")
    auth, at, hosts = head.rpartition("@")
    if not sep or not at:
        return url
    user, colon, _password = auth.partition(":")
    return f"{scheme}://{user + ':' if colon else ''}***@{hosts}{q}{query}"


PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_MECHANISM: Final = "SCRAM-SHA-512"
_FILES: Final = {"ssl_cafile": "TIERSTREAM_KAFKA_SSL_CAFILE", "ssl_certfile": "TIERSTREAM_KAFKA_SSL_CERTFILE",
                 "ssl_keyfile": "TIERSTREAM_KAFKA_SSL_KEYFILE"}


class SettingsError(ValueError):
    """A TIERSTREAM_* variable cannot be used: the message says which and why, in one line."""


def _flag(e: Mapping[str, str], name: str, default: bool) -> bool:
    raw = e.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{name} takes true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


@dataclass(frozen=True)
class KafkaSecurity:
    """The security settings shared by every Kafka client (README, "Kafka and Redis security")."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_key_password: Secret | None = None
    ssl_check_hostname: bool = True

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @classmethod
    def from_env(cls, e: Mapping[str, str]) -> KafkaSecurity:
        protocol = e.get("TIERSTREAM_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").strip().upper() or "PLAINTEXT"
        if protocol not in PROTOCOLS:
            raise SettingsError(f"TIERSTREAM_KAFKA_SECURITY_PROTOCOL takes {', '.join(PROTOCOLS)}; got {protocol!r}")
        sasl = protocol.startswith("SASL_")
        mechanism = e.get("TIERSTREAM_KAFKA_SASL_MECHANISM", "").strip().upper() or None
        user, password = e.get("TIERSTREAM_KAFKA_SASL_USERNAME") or None, e.get("TIERSTREAM_KAFKA_SASL_PASSWORD")
        if not sasl and (mechanism or user or password):
            raise SettingsError(f"TIERSTREAM_KAFKA_SASL_* are set but TIERSTREAM_KAFKA_SECURITY_PROTOCOL={protocol} "
                                "does not use SASL (SASL_SSL or SASL_PLAINTEXT)")
        if sasl:
            mechanism = mechanism or DEFAULT_MECHANISM
            if mechanism not in MECHANISMS:
                raise SettingsError(f"TIERSTREAM_KAFKA_SASL_MECHANISM takes {', '.join(MECHANISMS)}; got {mechanism!r}")
            if not user or not password:
                raise SettingsError(f"TIERSTREAM_KAFKA_SECURITY_PROTOCOL={protocol} needs "
                                    "TIERSTREAM_KAFKA_SASL_USERNAME and TIERSTREAM_KAFKA_SASL_PASSWORD")
        files = {name: e.get(var) or None for name, var in _FILES.items()}
        tls = protocol in ("SSL", "SASL_SSL")
        given = [var for name, var in _FILES.items() if files[name]]
        if not tls and (given or e.get("TIERSTREAM_KAFKA_SSL_CHECK_HOSTNAME")):
            raise SettingsError(f"{(given or ['TIERSTREAM_KAFKA_SSL_CHECK_HOSTNAME'])[0]} is set but "
                                f"TIERSTREAM_KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS (SSL or SASL_SSL)")
        if bool(files["ssl_certfile"]) != bool(files["ssl_keyfile"]):
            raise SettingsError("TIERSTREAM_KAFKA_SSL_CERTFILE and TIERSTREAM_KAFKA_SSL_KEYFILE go together "
                                "(a client certificate and its key)")
        for name, var in _FILES.items():
            path = files[name]
            if path and not os.access(path, os.R_OK):
                raise SettingsError(f"{var}={path}: no readable file there")
        key_password = e.get("TIERSTREAM_KAFKA_SSL_KEY_PASSWORD")
        return cls(protocol=protocol, sasl_mechanism=mechanism if sasl else None,
                   sasl_username=user if sasl else None, sasl_password=Secret(password) if sasl and password else None,
                   ssl_key_password=Secret(key_password) if key_password else None,
                   ssl_check_hostname=_flag(e, "TIERSTREAM_KAFKA_SSL_CHECK_HOSTNAME", True), **files)

    def describe(self) -> str:
        """For logs and errors: the protocol and user, never a secret."""
        who = f" as {self.sasl_username!r} ({self.sasl_mechanism})" if self.sasl else ""
        return f"{self.protocol}{who}"


@dataclass(frozen=True)
class Settings:
    kafka: str = "localhost:9092"
    redis: Secret = Secret("redis://localhost:6379/0")  # noqa: RUF009 - immutable str subclass
    topic_prefix: str = ""
    namespace: str = "live"
    partitions: int = 8
    roles: frozenset[str] = frozenset({"ingest", "clock", "evaluate"})
    feed_interval_ms: int = 250  # a shop's dashboard feed announces at most one change per interval
    replication: int = 0  # topics' replication factor; 0: min(3, brokers in the cluster) (docs/reliability.md)
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        partitions = e.get("TIERSTREAM_PARTITIONS", "8")
        if not partitions.isdigit() or int(partitions) < 1:
            raise SettingsError(f"TIERSTREAM_PARTITIONS must be a positive integer, got {partitions!r}")
        feed_ms = e.get("TIERSTREAM_FEED_INTERVAL_MS", str(cls.feed_interval_ms))
        if not feed_ms.isdigit():
            raise SettingsError(f"TIERSTREAM_FEED_INTERVAL_MS must be a non-negative integer, got {feed_ms!r}")
        replication = e.get("TIERSTREAM_REPLICATION", "auto")
        if not (replication == "auto" or (replication.isdigit() and int(replication) >= 1)):
            raise SettingsError(f"TIERSTREAM_REPLICATION must be 'auto' or a positive integer, got {replication!r}")
        roles = frozenset(r.strip() for r in e.get("TIERSTREAM_ROLES", "ingest,clock,evaluate").split(",") if r.strip())
        unknown = roles - {"ingest", "clock", "evaluate"}
        if unknown or not roles:
            raise SettingsError(f"TIERSTREAM_ROLES takes ingest, clock, evaluate; got {sorted(unknown) or 'none'}")
        return cls(
            kafka=e.get("TIERSTREAM_KAFKA", cls.kafka),
            redis=Secret(e.get("TIERSTREAM_REDIS", str(cls.redis))),
            topic_prefix=e.get("TIERSTREAM_TOPIC_PREFIX", ""),
            namespace=e.get("TIERSTREAM_NAMESPACE", cls.namespace),
            partitions=int(partitions),
            roles=roles,
            feed_interval_ms=int(feed_ms),
            replication=0 if replication == "auto" else int(replication),
            kafka_security=KafkaSecurity.from_env(e),
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def __repr__(self) -> str:
        return (f"Settings(kafka={self.kafka!r}, redis={redact_url(str(self.redis))!r}, "
                f"topic_prefix={self.topic_prefix!r}, namespace={self.namespace!r}, "
                f"partitions={self.partitions}, kafka_security={self.kafka_security.describe()!r})")
