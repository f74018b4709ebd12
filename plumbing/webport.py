"""The web port of a worker or dashboard: read once, and refused in one line when another process holds it."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping

DEFAULT_WORKER_PORT = 6066


def worker_port(env: Mapping[str, str] | None = None) -> int:
    """TIERSTREAM_WEB_PORT (default 6066); ValueError with the reason if it is not a port number."""
    raw = (os.environ if env is None else env).get("TIERSTREAM_WEB_PORT", str(DEFAULT_WORKER_PORT))
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"TIERSTREAM_WEB_PORT must be a port number from 1 to 65535, not {raw!r}")
    return int(raw)


def worker_bind(env: Mapping[str, str] | None = None) -> str:
    """TIERSTREAM_WEB_BIND: the address the worker's /health and /metrics listen on (default loopback;
    `0.0.0.0` for a Prometheus on another host or container)."""
    return (os.environ if env is None else env).get("TIERSTREAM_WEB_BIND", "127.0.0.1").strip() or "127.0.0.1"


def port_problem(host: str, port: int, hint: str) -> str | None:
    """Why a server could not listen on host:port now (one line, ending in `hint`); None if it can.

    Binds and releases the address as the server will (SO_REUSEADDR, like aiohttp: a port whose
    old connections linger in TIME_WAIT is free). A process that takes the port in between still
    wins the race; this catches the usual case, a second worker or dashboard on the same port."""
    if not 1 <= port <= 65535:
        return f"port must be from 1 to 65535, not {port}; {hint}"
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror}; {hint}"
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use (another worker or dashboard?); {hint}"
            return f"cannot listen on {host}:{port}: {exc.strerror}; {hint}"
    return None
