"""Security on the secure devstack: refused credentials and permissions fail fast in one line; secrets never show."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from projections.acl import worker_rules
from streams.settings import Settings
from tests.integration.live import ROOT, Worker, env_for, secure_settings

pytestmark = pytest.mark.integration
SCENARIO = ROOT / "tests" / "scenarios" / "public" / "seed000_example_a" / "input.jsonl"
CLI_TIMEOUT_S = 120  # a run that hangs instead of failing fails the test here


def tierstream(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)


def last_line(p: subprocess.CompletedProcess[str]) -> str:
    return (p.stderr.strip().splitlines() or [""])[-1]


def test_a_wrong_kafka_password_or_an_untrusted_certificate_fails_fast_in_one_line(secure_devstack: Any,
                                                                                   unique: str) -> None:
    s, _ = secure_settings(secure_devstack, unique)
    wrong = env_for(s, TIERSTREAM_KAFKA_SASL_PASSWORD=f"wrong-{uuid.uuid4().hex}")
    for args in (["worker"], ["produce", "--input", str(SCENARIO)], ["consume", "--output", "/dev/null"]):
        p = tierstream(args, wrong)
        assert p.returncode == 1, (args, p.stderr)
        assert last_line(p) == (f"tierstream {args[0]}: Kafka at {s.kafka} (SASL_SSL as 'worker' (SCRAM-SHA-512)) "
                                "refused the credentials of user 'worker': check TIERSTREAM_KAFKA_SASL_USERNAME, "
                                "TIERSTREAM_KAFKA_SASL_PASSWORD and TIERSTREAM_KAFKA_SASL_MECHANISM"), args
        assert "Traceback" not in p.stderr
    p = tierstream(["produce", "--input", str(SCENARIO)], env_for(s, TIERSTREAM_KAFKA_SSL_CAFILE=""))
    assert p.returncode == 1
    assert "its TLS certificate is not trusted" in last_line(p) and "TIERSTREAM_KAFKA_SSL_CAFILE" in last_line(p)


def test_a_wrong_redis_password_fails_fast_in_one_line(secure_devstack: Any, unique: str, tmp_path: Path) -> None:
    s, _ = secure_settings(secure_devstack, unique)
    url = secure_devstack.redis_url(f"w-{unique}", "not-the-password")
    p = tierstream(["replay", "drop", f"{unique}-old"], env_for(s, TIERSTREAM_REDIS=url))
    assert p.returncode == 1
    assert last_line(p).startswith(f"tierstream replay: Redis at rediss://w-{unique}:***@127.0.0.1:"
                                   f"{secure_devstack.redis_port}/0?ssl_ca_certs=")
    assert "refused the user and password of TIERSTREAM_REDIS" in last_line(p)
    w = Worker(Settings.from_env({**env_for(s), "TIERSTREAM_REDIS": url}), tmp_path).start()
    assert w.proc is not None
    assert w.proc.wait(timeout=CLI_TIMEOUT_S) == 1, w.tail()
    # the worker's stderr goes to its log through Faust's logging, which prefixes it
    assert "tierstream worker: Redis at" in w.tail(3) and "refused the user and password" in w.tail(3), w.tail()


def test_a_missing_acl_permission_stops_the_command_in_one_line(secure_devstack: Any, unique: str,
                                                                tmp_path: Path) -> None:
    # the worker's user, but for another namespace: the worker's first look at its pointer is refused
    s, _ = secure_settings(secure_devstack, unique, rules=worker_rules("elsewhere", f"{unique}-"))
    w = Worker(s, tmp_path).start()
    assert w.proc is not None
    assert w.proc.wait(timeout=CLI_TIMEOUT_S) == 1, w.tail()
    line = [ln for ln in w.tail(5).splitlines() if "tierstream worker:" in ln]
    assert line and "Redis refused a command (ACL)" in line[0] and f"~{unique}:*" in line[0], w.tail()
    # a command the worker's user may not run at all: `replay drop` scans the namespace
    s, _ = secure_settings(secure_devstack, unique)
    p = tierstream(["replay", "drop", f"{unique}-old"], env_for(s))
    assert p.returncode == 1
    assert re.fullmatch(r"tierstream replay: Redis refused a command \(ACL\): .*'scan' command.*", last_line(p)), \
        p.stderr
    assert "Traceback" not in p.stderr
