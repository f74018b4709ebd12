"""The system packages tierstream needs, in one table: checked, and installed with apt when root."""

# Runs before the virtualenv exists (`python3 -m devstack.sysdeps test` from the Makefile), so it
# imports only the standard library and stays readable by an older python3, whose version it
# reports instead of failing on syntax.
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

JAVA_MIN = 17
PYTHON_MIN = (3, 11)
PURPOSES = ("demo", "test", "devstack")
INSTALL_VAR = "TIERSTREAM_SYSDEPS_INSTALL"  # auto (default: apt-get when root) | never


@dataclass(frozen=True)
class Need:
    """One Debian package and how to tell it is there."""

    package: str  # what `apt-get install` takes
    what: str  # what the user is told is missing
    why: str
    uses: frozenset[str]  # the purposes it serves: make demo, make test, the devstack itself
    probe: Callable[[], tuple[bool, str]]  # (present, version or path | what is wrong)
    optional: bool = False  # installed when root; otherwise its absence is a note, not a stop


def on_path(*names: str) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        for name in names:
            found = shutil.which(name)
            if found:
                return True, found
        return False, "not on PATH"
    return probe


def java_major(version_output: str) -> int | None:
    """17 from `openjdk version "17.0.15"`, 8 from `java version "1.8.0_402"`; None if unreadable."""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if m is None:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def probe_java() -> tuple[bool, str]:
    found = shutil.which("java")
    if found is None:
        return False, "not on PATH"
    try:
        out = subprocess.run([found, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{found} does not run ({exc})"
    major = java_major(out.stderr + out.stdout)
    if major is None:
        return False, f"{found} -version printed no version"
    if major < JAVA_MIN:
        return False, f"{found} is Java {major}; the broker needs {JAVA_MIN}+ (update-alternatives --config java)"
    return True, f"java {major}"


def probe_venv() -> tuple[bool, str]:
    # Debian ships ensurepip, which `python3 -m venv` needs, in python3-venv, not with python3
    import importlib.util

    if importlib.util.find_spec("ensurepip") is None:
        return False, f"{sys.executable} has no ensurepip: `python3 -m venv` would fail"
    return True, "venv"


ALL = frozenset(PURPOSES)
MAKE = frozenset({"demo", "test"})
NEEDS: tuple[Need, ...] = (
    Need("openjdk-17-jre-headless", f"java {JAVA_MIN}+", "runs the Kafka broker", ALL, probe_java),
    Need("maven", "mvn", "fetches Apache Kafka's jars from Maven Central, once", ALL, on_path("mvn")),
    Need("redis-server", "redis-server", "the devstack's Redis", ALL, on_path("redis-server")),
    Need("redis-tools", "redis-cli", "the devstack's Redis Cluster is created with it",
         frozenset({"test", "devstack"}), on_path("redis-cli")),
    Need("python3-venv", "python3 -m venv", "creates .venv", MAKE, probe_venv),
    Need("curl", "curl", "make demo waits for the worker and the dashboard with it", frozenset({"demo"}),
         on_path("curl")),
    Need("chromium", "chromium", "the dashboard's browser test drives it", frozenset({"test"}),
         on_path("chromium", "chromium-browser")),
    Need("openssl", "openssl", "makes the test certificates", frozenset({"test"}), on_path("openssl")),
    Need("prometheus", "promtool", "checks the Prometheus alert rules", frozenset({"test"}), on_path("promtool"),
         optional=True),
)


class Missing(RuntimeError):
    """Packages are missing and were not installed; the message has one line per package."""

    def __init__(self, message: str, packages: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.packages = list(packages)


def needs_for(purpose: str) -> list[Need]:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}: one of {', '.join(PURPOSES)}")
    return [n for n in NEEDS if purpose in n.uses]


def by_command(*whats: str) -> list[Need]:
    """The needs named by what they provide ("mvn", "redis-server", "java 17+")."""
    table = {n.what.split()[0]: n for n in NEEDS}
    return [table[w] for w in whats]


def absent(needs: Iterable[Need]) -> list[tuple[Need, str]]:
    return [(n, reason) for n in needs for ok, reason in [n.probe()] if not ok]


def install_line(packages: Sequence[str], *, as_root: bool) -> str:
    sudo = "" if as_root else "sudo "
    return f"{sudo}apt-get install -y {' '.join(packages)}"


def missing_lines(missing: Sequence[tuple[Need, str]], *, as_root: bool, has_apt: bool) -> list[str]:
    """One line per package: what is missing, why it is needed, and the command that installs it."""
    lines = []
    for need, reason in missing:
        how = (install_line([need.package], as_root=as_root) if has_apt
               else f"install it with your OS's packages (Debian: {need.package})")
        lines.append(f"missing {need.what} ({need.why}; {reason}): {how}")
    return lines


@dataclass(frozen=True)
class Apt:
    """Installs with apt-get; `apt_get` is the program to run (a test passes a stand-in)."""

    apt_get: str
    out: Callable[[str], None] = lambda line: print(line, flush=True)  # before apt's own lines, not after

    def install(self, packages: Sequence[str]) -> None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        started = time.monotonic()
        self.out(f"sysdeps: installing {' '.join(packages)} with apt-get (root; {INSTALL_VAR}=never to stop this) ...")
        update = subprocess.run([self.apt_get, "update", "-qq"], capture_output=True, text=True, env=env, check=False)
        if update.returncode != 0:
            tail = (update.stdout + update.stderr).strip().splitlines()[-15:]
            raise Missing("\n".join([f"apt-get update failed (exit {update.returncode}):", *tail]))
        # apt's own lines (Get:, Unpacking ...) are the progress of what can take minutes (chromium, a JDK)
        install = subprocess.run([self.apt_get, "install", "-y", "-q", "--no-install-recommends", *packages],
                                 env=env, check=False)
        if install.returncode != 0:
            raise Missing(f"apt-get install {' '.join(packages)} failed (exit {install.returncode}), output above")
        self.out(f"sysdeps: installed in {time.monotonic() - started:.0f} s")


def installer_here() -> Apt | None:
    """apt-get when running as root on a Debian-like system and not told otherwise."""
    apt_get = shutil.which("apt-get")
    if os.environ.get(INSTALL_VAR, "auto") == "never" or os.geteuid() != 0 or apt_get is None:
        return None
    return Apt(apt_get)


def ensure(needs: Sequence[Need], installer: Apt | None) -> list[str]:
    """Install what is missing (when there is an installer), or raise Missing with one line each.

    Returns notes on the optional packages that are still absent. Optional ones are installed only
    along with a required one, so a machine lacking only those does not run apt on every call."""
    missing = absent(needs)
    wanted = [n.package for n, _ in missing]
    if installer is not None and any(not n.optional for n, _ in missing):
        installer.install(wanted)
        missing = absent(needs)
    stop = [(n, r) for n, r in missing if not n.optional]
    if stop:
        as_root = os.geteuid() == 0
        has_apt = shutil.which("apt-get") is not None
        raise Missing("\n".join(missing_lines(stop, as_root=as_root, has_apt=has_apt)), [n.package for n, _ in stop])
    return [f"note: optional {n.what} absent ({n.why}): {install_line([n.package], as_root=False)}"
            for n, _ in missing]


def check_python() -> str | None:
    if sys.version_info < PYTHON_MIN:
        have = ".".join(map(str, sys.version_info[:3]))
        want = ".".join(map(str, PYTHON_MIN))
        return f"{sys.executable} is Python {have}; tierstream needs {want}+ (make PY=python3.11 ...)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in PURPOSES:
        print(f"usage: python3 -m devstack.sysdeps {{{','.join(PURPOSES)}}}", file=sys.stderr)
        return 2
    purpose = args[0]
    too_old = check_python()
    if too_old:
        print(f"sysdeps: {too_old}", file=sys.stderr)
        return 1
    needs = needs_for(purpose)
    try:
        notes = ensure(needs, installer_here())
    except Missing as exc:
        for line in str(exc).splitlines():
            print(f"sysdeps: {line}", file=sys.stderr)
        as_root = os.geteuid() == 0
        how = (f"all at once: {install_line(exc.packages, as_root=as_root)}" if len(exc.packages) > 1
               else "install it as above")
        hint = (f"{how}, or run this as root to have it done" if not as_root
                else f"{how} (not installed: {INSTALL_VAR}=never is set, or apt-get failed)")
        print(f"sysdeps: stopping before any download ({purpose}): {hint}", file=sys.stderr)
        return 1
    present = ", ".join(n.what for n in needs if not any(n.what in note for note in notes))
    print(f"sysdeps: {purpose} has {present}" + "".join(f"; {note}" for note in notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
