"""Run a command with its stderr on a pseudo-terminal, as a person at a terminal would see it."""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_on_terminal(argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = 300) -> tuple[int, bytes]:
    """(exit code, everything written to the terminal); stdout goes there too."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=follower,
                                stderr=follower)
        os.close(follower)
        out = bytearray()
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other end closed
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(timeout=timeout), bytes(out)
    finally:
        os.close(leader)
