"""The OS-package check as a user meets it: with `java` off the PATH, `make test` says so and stops."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from devstack import stack

pytestmark = pytest.mark.integration
ROOT = pathlib.Path(__file__).resolve().parents[2]


def path_without(tmp: pathlib.Path, *hidden: str) -> str:
    """A PATH of one directory linking every program of the real PATH but `hidden` (first one wins)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        entries = sorted(pathlib.Path(d).iterdir()) if pathlib.Path(d).is_dir() else []
        for entry in entries:
            link = bin_dir / entry.name
            if entry.name not in hidden and not link.exists() and os.access(entry, os.X_OK):
                link.symlink_to(entry)
    return str(bin_dir)


def script(path: pathlib.Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def run(args: list[str], path: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": path, **env})


def test_without_java_the_check_names_it_and_stops(tmp_path: pathlib.Path) -> None:
    proc = run([sys.executable, "-m", "devstack.sysdeps", "test"], path_without(tmp_path, "java"),
               TIERSTREAM_SYSDEPS_INSTALL="never")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    missing = [line for line in proc.stderr.splitlines() if line.startswith("sysdeps: missing ")]
    assert len(missing) == 1, proc.stderr
    assert missing[0].startswith("sysdeps: missing java 17+ (runs the Kafka broker; not on PATH): ")
    assert missing[0].endswith("apt-get install -y openjdk-17-jre-headless")
    assert proc.stderr.splitlines()[-1].startswith("sysdeps: stopping before any download (test)")


def test_make_test_without_java_stops_before_the_virtualenv(tmp_path: pathlib.Path) -> None:
    venv = tmp_path / "venv"
    proc = run(["make", "--no-print-directory", "test", f"VENV={venv}"], path_without(tmp_path, "java"),
               TIERSTREAM_SYSDEPS_INSTALL="never")
    assert proc.returncode != 0
    assert "sysdeps: missing java 17+" in proc.stderr
    assert not venv.exists(), "make test went on to build the virtualenv"
    assert "ruff" not in proc.stdout and "pytest" not in proc.stdout


def test_an_old_java_is_named_with_its_version(tmp_path: pathlib.Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    script(fake / "java", "echo 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    path = f"{fake}{os.pathsep}{path_without(tmp_path, 'java')}"
    proc = run([sys.executable, "-m", "devstack.sysdeps", "demo"], path, TIERSTREAM_SYSDEPS_INSTALL="never")
    assert proc.returncode == 1
    assert f"{fake / 'java'} is Java 11; the broker needs 17+" in proc.stderr


def test_as_root_the_check_installs_with_apt_get_and_otherwise_never_calls_it(tmp_path: pathlib.Path) -> None:
    """A stand-in apt-get that records its calls and, asked to install the JDK, puts a `java` on PATH."""
    fake = tmp_path / "fake"
    fake.mkdir()
    calls = tmp_path / "apt-calls"
    script(fake / "java-to-install", "echo 'openjdk version \"17.0.99\" 2026-01-20' >&2\n")
    script(fake / "apt-get", f"""echo "$*" >> {calls}
case "$*" in *install*openjdk-17-jre-headless*) cp {fake}/java-to-install {fake}/java;; esac
""")
    path = f"{fake}{os.pathsep}{path_without(tmp_path, 'java', 'apt-get')}"
    proc = run([sys.executable, "-m", "devstack.sysdeps", "test"], path)
    recorded = calls.read_text().splitlines() if calls.exists() else []
    if os.geteuid() != 0:
        assert proc.returncode == 1 and recorded == []
        assert "sysdeps: missing java 17+" in proc.stderr
        return
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recorded[0] == "update -qq"
    assert recorded[1].startswith("install -y -q --no-install-recommends openjdk-17-jre-headless")
    assert "sysdeps: installing openjdk-17-jre-headless" in proc.stdout
    assert "sysdeps: test has java 17+" in proc.stdout


def test_the_devstack_asks_the_same_table(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", path_without(tmp_path, "java"))
    monkeypatch.setenv("TIERSTREAM_SYSDEPS_INSTALL", "never")
    cfg = stack.StackConfig(tmp_path / "home", kafka_port=1, controller_port=2, redis_port=3)
    with pytest.raises(stack.DevstackError, match=r"missing java 17\+ .*apt-get install -y openjdk-17-jre-headless"):
        stack.kafka_up(cfg)
