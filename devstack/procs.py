"""The local stack's process and port checks, shared by the single stack and the clusters."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def running_pid(path: Path) -> int | None:
    """The pid in a pid file, if that process is alive."""
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def port_open(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
