"""docker-compose.yml read as Docker would: variables interpolated, Kafka's environment made properties."""

from __future__ import annotations

import pathlib
import re
from collections.abc import Mapping
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"

# apache/kafka's image (docker/resources/common-scripts/kafka-propertiesSpec.json): these KAFKA_*
# variables are for its scripts, not server.properties
IMAGE_EXCLUDES = frozenset({"KAFKA_VERSION", "KAFKA_HEAP_OPT", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS",
                            "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL",
                            "KAFKA_LOG4J_LOGGERS", "KAFKA_TOOLS_LOG4J_LOGLEVEL"})
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `$$`."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, default = m.group(1), m.group(2), m.group(3) or ""
        if name in env and not (op == ":-" and env[name] == ""):
            return env[name]
        return default if op else ""
    return _VAR.sub(sub, value)


def _walk(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _walk(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, env) for v in node]
    return interpolate(node, env) if isinstance(node, str) else node


def load(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The file with YAML anchors merged and variables set from `env` (default: none, so defaults)."""
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return dict(_walk(doc, {} if env is None else env))


def image_key(variable: str) -> str:
    """The image's ConvertKey: `_` -> `.`, `__` -> `_`, `___` -> `-`, lower case (KAFKA_ removed first)."""
    key = re.sub(r"[^_]_[^_]", lambda m: m.group(0).replace("_", "."), variable[len("KAFKA_"):])
    return key.replace("___", "-").replace("__", "_").lower()


def kafka_properties(service: Mapping[str, Any]) -> dict[str, str]:
    """What apache/kafka writes into server.properties from the service's environment."""
    env = service["environment"]
    return {image_key(k): _compose_str(v) for k, v in env.items()
            if k.startswith("KAFKA_") and k not in IMAGE_EXCLUDES}


def _compose_str(value: Any) -> str:
    """An environment value as the container sees it (YAML `false` is the string "false")."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` -> {NAME: (host, port)}; an empty host means every interface."""
    out = {}
    for item in value.split(","):
        name, rest = item.split("://")
        host, port = rest.rsplit(":", 1)
        out[name] = (host, int(port))
    return out


def published(service: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """`ip:host_port:container_port` entries -> (ip, host port, container port)."""
    out = []
    for entry in service.get("ports", []):
        ip, host_port, container_port = str(entry).split(":")
        out.append((ip, int(host_port), int(container_port)))
    return out
