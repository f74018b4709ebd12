"""One typed, frozen settings object, read from the environment once (interfaces.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


class Secret(str):
    """A string that never shows itself in repr or logs."""

    def __repr__(self) -> str:
        return "Secret('***')"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        partitions = e.get("TIERSTREAM_PARTITIONS", "8")
        if not partitions.isdigit() or int(partitions) < 1:
            raise ValueError(f"TIERSTREAM_PARTITIONS must be a positive integer, got {partitions!r}")
        feed_ms = e.get("TIERSTREAM_FEED_INTERVAL_MS", str(cls.feed_interval_ms))
        if not feed_ms.isdigit():
            raise ValueError(f"TIERSTREAM_FEED_INTERVAL_MS must be a non-negative integer, got {feed_ms!r}")
        replication = e.get("TIERSTREAM_REPLICATION", "auto")
        if not (replication == "auto" or (replication.isdigit() and int(replication) >= 1)):
            raise ValueError(f"TIERSTREAM_REPLICATION must be 'auto' or a positive integer, got {replication!r}")
        roles = frozenset(r.strip() for r in e.get("TIERSTREAM_ROLES", "ingest,clock,evaluate").split(",") if r.strip())
        unknown = roles - {"ingest", "clock", "evaluate"}
        if unknown or not roles:
            raise ValueError(f"TIERSTREAM_ROLES takes ingest, clock, evaluate; got {sorted(unknown) or 'none'}")
        return cls(
            kafka=e.get("TIERSTREAM_KAFKA", cls.kafka),
            redis=Secret(e.get("TIERSTREAM_REDIS", str(cls.redis))),
            topic_prefix=e.get("TIERSTREAM_TOPIC_PREFIX", ""),
            namespace=e.get("TIERSTREAM_NAMESPACE", cls.namespace),
            partitions=int(partitions),
            roles=roles,
            feed_interval_ms=int(feed_ms),
            replication=0 if replication == "auto" else int(replication),
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def __repr__(self) -> str:
        return (f"Settings(kafka={self.kafka!r}, redis={redact_url(str(self.redis))!r}, "
                f"topic_prefix={self.topic_prefix!r}, namespace={self.namespace!r}, "
                f"partitions={self.partitions})")
