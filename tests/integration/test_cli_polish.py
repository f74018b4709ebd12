"""The commands that serve or send, run for real: a web port already taken is one line, and
`produce` reports progress on a terminal only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.workload import SimConfig, write_simulation
from tests.integration.live import ROOT, env_for, settings_for
from tests.ptyrun import run_on_terminal

pytestmark = pytest.mark.integration


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another process (this one) listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *argv], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["worker"], {"TIERSTREAM_WEB_PORT": "{port}"},
     "tierstream worker: port {port} on 127.0.0.1 is already in use (another worker or dashboard?); "
     "set TIERSTREAM_WEB_PORT to a free port"),
    (["dashboard", "--port", "{port}"], {},
     "tierstream dashboard: port {port} on 127.0.0.1 is already in use (another worker or dashboard?); "
     "pick another with --port"),
    (["worker"], {"TIERSTREAM_WEB_PORT": "web"},
     "tierstream worker: TIERSTREAM_WEB_PORT must be a port number from 1 to 65535, not 'web'"),
])
def test_a_taken_or_bad_web_port_is_one_line(argv: list[str], env: dict[str, str], message: str,
                                             taken_port: int) -> None:
    """Refused before anything connects (the broker and Redis here are nowhere)."""
    fill = {k: v.replace("{port}", str(taken_port)) for k, v in env.items()}
    done = _run([a.replace("{port}", str(taken_port)) for a in argv],
                {**os.environ, "TIERSTREAM_KAFKA": "127.0.0.1:1", "TIERSTREAM_REDIS": "redis://127.0.0.1:1/0", **fill})
    assert done.returncode == 1
    assert done.stderr == message.replace("{port}", str(taken_port)) + "\n"


def test_produce_shows_progress_on_a_terminal_only(kafka_bootstrap: str, redis_url: str, unique: str,
                                                   tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    n = write_simulation(SimConfig(shops=5, days=2, seed=3), str(events))
    env = env_for(settings_for(kafka_bootstrap, redis_url, unique))
    code, seen = run_on_terminal([sys.executable, "-m", "cli.main", "produce", "--input", str(events)], env, ROOT)
    text = seen.decode()
    assert code == 0, text
    assert "\rproduce: [##############################]" in text and "lines (100%)" in text
    assert f"produce: sent {n} lines to the input topics" in text
    done = _run(["produce", "--input", str(events)], env)  # stderr a pipe: only the summary
    assert done.returncode == 0 and done.stderr == f"produce: sent {n} lines to the input topics\n"
