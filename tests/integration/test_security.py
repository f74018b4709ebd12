"""Security on the secure devstack: refused credentials and permissions fail fast in one line; secrets never show."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from devstack import secure
from plumbing.settings import Settings
from projections.acl import dashboard_rules, worker_rules
from tests.integration.live import ROOT, Worker, env_for, free_port, secure_settings, wait_caught_up

pytestmark = pytest.mark.integration
SCENARIO = ROOT / "tests" / "scenarios" / "public" / "seed000_example_a" / "input.jsonl"
CLI_TIMEOUT_S = 120  # a run that hangs instead of failing fails the test here


def tierstream(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=cwd, capture_output=True,
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


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    """The status and body of a GET, whatever its status (an error page is output too); 0 when nothing answers."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return r.status, str(r.read().decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        return exc.code, str(exc.read().decode(errors="replace"))
    except OSError:
        return 0, ""


def _title(pid: int) -> str:
    """What `ps` shows of a process: its command line and its name."""
    proc = Path(f"/proc/{pid}")
    return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode() + " " + (proc / "comm").read_text()


def _commands() -> set[str]:
    """The commands `tierstream --help` lists."""
    out = tierstream(["--help"], dict(os.environ)).stdout
    found = re.search(r"\{([a-z,]+)\}", out)
    assert found, out
    return set(found.group(1).split(","))


def test_no_command_shows_a_secret_working_or_failing(secure_devstack: Any, unique: str, tmp_path: Path) -> None:
    """Every command runs with known secrets in its environment (the real Kafka and Redis passwords,
    a client key's password, a dashboard token), and again with wrong passwords and unreachable
    hosts; nothing they print or log, serve on /health, /metrics or the dashboard's API, nor their
    process titles or repr(Settings), contains any of them."""
    s, _ = secure_settings(secure_devstack, unique)
    redis_pw = str(s.redis).split("@")[0].rsplit(":", 1)[1]
    wrong_kafka, wrong_redis = f"wk{uuid.uuid4().hex}", f"wr{uuid.uuid4().hex}"
    extra = {"TIERSTREAM_KAFKA_SSL_KEY_PASSWORD": f"kp{uuid.uuid4().hex}",
             "TIERSTREAM_DASHBOARD_TOKEN": f"tk{uuid.uuid4().hex}"}
    secrets = {"kafka password": str(s.kafka_security.sasl_password), "redis password": redis_pw,
               "key password": extra["TIERSTREAM_KAFKA_SSL_KEY_PASSWORD"], "token": extra["TIERSTREAM_DASHBOARD_TOKEN"],
               "wrong kafka password": wrong_kafka, "wrong redis password": wrong_redis}
    env = env_for(s, **extra)
    seen: dict[str, str] = {"repr(Settings)": repr(Settings.from_env(env)),
                            "str(Settings)": str(Settings.from_env(env))}
    ran: set[str] = set()

    def run(label: str, args: list[str], e: dict[str, str] = env, ok: bool = True) -> None:
        p = tierstream(args, e, cwd=tmp_path)
        seen[label] = p.stdout + p.stderr
        ran.add(args[0])
        assert (p.returncode == 0) == ok, (label, p.stderr[-2000:])

    shop = re.search(rb'"shop_id":\s*"([^"]+)"', SCENARIO.read_bytes())
    assert shop is not None
    w = Worker(s, tmp_path, env=extra).start().wait_ready()
    try:
        run("produce", ["produce", "--input", str(SCENARIO)])
        wait_caught_up(s)
        seen |= {"/health": _get(f"http://127.0.0.1:{w.port}/health")[1],
                 "/metrics": _get(f"http://127.0.0.1:{w.port}/metrics")[1]}
        assert w.proc is not None
        seen["worker title"] = _title(w.proc.pid)
        run("consume", ["consume", "--output", str(tmp_path / "out.jsonl"), "--idle-seconds", "2"])
        run("export", ["export", "--output", str(tmp_path / "history.jsonl")])
        run("explain", ["explain", shop.group(1).decode()])
        # the worker's user may not write another namespace: a refused rebuild is a failing run to search too
        run("replay from kafka", ["replay", "--from-kafka", "--namespace", f"{unique}-r", "--workers", "1"], ok=False)
        run("replay file", ["replay", "--input", str(SCENARIO), "--output", str(tmp_path / "o.jsonl")])
        run("simulate", ["simulate", "--shops", "2", "--days", "2", "--output", str(tmp_path / "sim.jsonl")])
        run("schema", ["schema", "--list"])
        run("devstack status", ["devstack", "status", "--secure"])
        # the dashboard as its own read-only ACL user (projections/acl.py), over what the worker wrote
        dash_pw = f"dp{uuid.uuid4().hex}"
        secrets["dashboard redis password"] = dash_pw
        secure.set_user(secure_devstack, f"d-{unique}", dash_pw, dashboard_rules(unique))
        dash_env = {**env, "TIERSTREAM_REDIS": secure_devstack.redis_url(f"d-{unique}", dash_pw)}
        port, token = str(free_port()), extra["TIERSTREAM_DASHBOARD_TOKEN"]
        with open(tmp_path / "dashboard.log", "wb") as log:
            dash = subprocess.Popen([sys.executable, "-m", "cli.main", "dashboard", "--port", port], env=dash_env,
                                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not _get(f"http://127.0.0.1:{port}/health")[0] and dash.poll() is None:
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.2)
            platform = _get(f"http://127.0.0.1:{port}/api/platform", token)
            one = _get(f"http://127.0.0.1:{port}/api/shops/{shop.group(1).decode()}", token)
            assert platform[0] == 200 and '"shops":0' not in platform[1].replace(" ", ""), platform
            assert one[0] == 200, one
            seen |= {"dashboard /health": _get(f"http://127.0.0.1:{port}/health")[1],
                     "dashboard /api/platform": platform[1], "dashboard /api/shops": one[1],
                     "dashboard title": _title(dash.pid)}
            ran.add("dashboard")
        finally:
            dash.terminate()
            dash.wait(timeout=30)
        seen["dashboard log"] = (tmp_path / "dashboard.log").read_text(errors="replace")
    finally:
        w.stop()
    seen["worker log"] = w.log.read_text(errors="replace")
    ran.add("worker")
    # failing runs: a wrong password, an unreachable host, a worker at debug level that cannot log in
    run("produce, wrong password", ["produce", "--input", str(SCENARIO)],
        {**env, "TIERSTREAM_KAFKA_SASL_PASSWORD": wrong_kafka}, ok=False)
    run("consume, unreachable", ["consume", "--output", str(tmp_path / "x.jsonl")],
        {**env, "TIERSTREAM_KAFKA": "127.0.0.1:1"}, ok=False)
    run("replay promote, wrong redis password", ["replay", "promote", "x"],
        {**env, "TIERSTREAM_REDIS": secure_devstack.redis_url(f"w-{unique}", wrong_redis)}, ok=False)
    run("replay drop, unreachable redis", ["replay", "drop", "x"],
        {**env, "TIERSTREAM_REDIS": f"rediss://w:{redis_pw}@127.0.0.1:1/0"}, ok=False)
    run("worker debug, wrong password", ["worker", "--loglevel", "debug"],
        {**env, "TIERSTREAM_KAFKA_SASL_PASSWORD": wrong_kafka, "TIERSTREAM_WEB_PORT": str(free_port())}, ok=False)
    assert ran >= _commands(), f"not run: {_commands() - ran}"
    leaks = [(label, name) for label, text in seen.items() for name, secret in secrets.items() if secret in text]
    assert leaks == [], leaks
    assert all(seen.values()), [label for label, text in seen.items() if not text]  # each was really looked at
