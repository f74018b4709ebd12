"""Replay from the log on the devstack: rebuild + verify, a corruption found, what-if against the
file form, export → file form == live, explain, promote and drop (issue: replay from the log)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from plumbing.redis_clients import sync_redis
from plumbing.settings import Settings
from projections.keys import Keys, pointer_key
from replay.export import export
from replay.file import replay_file
from replay.namespaces import NamespaceError, drop
from simulator.workload import INDUSTRIES, SimConfig, Simulator
from tests.integration.live import (
    Worker,
    consume_all,
    delete_namespace,
    env_for,
    produce_lines,
    settings_for,
    wait_caught_up,
    wait_ingested,
)
from tests.integration.test_live import comparable
from tiering.params import RuleParams, Standard

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def cli(s: Settings, *args: str, namespace: str | None = None) -> subprocess.CompletedProcess[str]:
    env = env_for(s, TIERSTREAM_NAMESPACE=namespace or s.namespace)
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def processed(kafka_bootstrap: str, state_redis_url: str,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, bytes, list[bytes], Worker]]:
    """A simulated workload processed live by one worker, which keeps running."""
    lines = b"\n".join(Simulator(SimConfig(shops=60, days=34, seed=5, events_per_shop_day=3)).lines()) + b"\n"
    s = settings_for(kafka_bootstrap, state_redis_url, f"t{uuid.uuid4().hex[:8]}")
    w = Worker(s, tmp_path_factory.mktemp("replayops")).start().wait_ready()
    try:
        wait_ingested([w], produce_lines(s, lines))
        wait_caught_up(s)
        yield s, lines, consume_all(s), w
    finally:
        w.stop()
        delete_namespace(state_redis_url, s.namespace)


def test_rebuild_verifies_clean_then_reports_exactly_a_corrupted_key(
        processed: tuple[Settings, bytes, list[bytes], Worker], unique: str) -> None:
    s, _lines, _outputs, _w = processed
    ns = f"{unique}-rebuild"
    try:
        clean = cli(s, "replay", "--from-kafka", "--namespace", ns, "--verify")
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "verify: 0 difference(s)" in clean.stdout
        r = sync_redis(str(s.redis))
        try:
            shop_keys = r.scan_iter(f"{s.namespace}:{{{s.namespace}:p*}}:shop-*:s", count=1000)
            shop_key = sorted(k.decode() for k in shop_keys)[0]
            state = orjson.loads(r.get(shop_key) or b"{}")
            original = r.get(shop_key)
            state["tier"] = "premium" if state.get("tier") != "premium" else "substandard"
            r.set(shop_key, orjson.dumps(state))
            again = cli(s, "replay", "--from-kafka", "--namespace", f"{ns}2", "--verify")
            assert again.returncode == 1
            diff_lines = [ln for ln in again.stdout.splitlines() if ln.startswith(("only in", "differs", "output"))]
            assert diff_lines == [f"differs: {Keys(s.namespace).relative(shop_key)}"], again.stdout
            assert original is not None
            r.set(shop_key, original)
        finally:
            r.close()
    finally:
        delete_namespace(str(s.redis), ns)
        delete_namespace(str(s.redis), f"{ns}2")


def file_form(lines: bytes, params: RuleParams | None = None) -> list[bytes]:
    out = io.BytesIO()
    replay_file(io.BytesIO(lines), out, params or RuleParams())
    return out.getvalue().splitlines()


def test_export_then_file_form_gives_the_live_outputs(processed: tuple[Settings, bytes, list[bytes], Worker],
                                                      tmp_path: Path) -> None:
    s, lines, outputs, _w = processed
    exported = tmp_path / "history.jsonl"
    done = cli(s, "export", "--output", str(exported))
    assert done.returncode == 0, done.stderr
    assert len(exported.read_bytes().splitlines()) == len([ln for ln in lines.splitlines() if ln.strip()])
    assert comparable(file_form(exported.read_bytes())) == comparable(outputs)


def test_export_bounds_select_records(processed: tuple[Settings, bytes, list[bytes], Worker]) -> None:
    from replay.ledger import Bound

    s, _lines, _outputs, _w = processed
    everything, first_two = io.BytesIO(), io.BytesIO()
    n_all = asyncio.run(export(s, everything))
    n_two = asyncio.run(export(s, first_two, stop=Bound(offset=1)))
    assert 0 < n_two <= 2 * 4 * s.partitions < n_all  # offsets 0 and 1 of every input partition


def stricter(industries: list[str]) -> dict[str, Any]:
    std = {"min_effective_members": 40, "min_member_gmv_share": 0.1, "min_quality_member_ratio": 0.2,
           "min_benefit_penetration": 0.1, "min_new_member_conversion": 0.15}
    return dict.fromkeys([*industries, "*"], std)


def test_what_if_with_a_stricter_standard_matches_the_file_form(
        processed: tuple[Settings, bytes, list[bytes], Worker], tmp_path: Path, unique: str) -> None:
    s, lines, _outputs, _w = processed
    industries = list(INDUSTRIES)
    standards = tmp_path / "standards.json"
    standards.write_text(json.dumps(stricter(industries)))
    report_path = tmp_path / "report.json"
    ns = f"{unique}-whatif"
    try:
        done = cli(s, "replay", "--from-kafka", "--namespace", ns, "--standards", str(standards),
                   "--report", str(report_path))
        assert done.returncode == 0, done.stderr
        report = json.loads(report_path.read_text())
        assert "shop-cycle tier move(s)" in done.stdout
    finally:
        delete_namespace(str(s.redis), ns)

    pinned = {k: Standard.from_json(v) for k, v in stricter(industries).items()}

    def tiers(params: RuleParams | None) -> dict[tuple[str, str], str]:
        return {(o["shop_id"], o["cycle"]): o["tier"] for o in map(orjson.loads, file_form(lines, params))
                if o["type"] == "tier_assessed"}

    before, after = tiers(None), tiers(RuleParams(pinned_standards=pinned))
    expected = sorted((shop, cycle, before.get((shop, cycle)), t) for (shop, cycle), t in after.items()
                      if before.get((shop, cycle)) != t)
    assert expected, "the stricter standard should move some shop"
    got = sorted((m["shop_id"], m["cycle"], m["before"], m["after"]) for m in report["moves"])
    assert got == expected
    assert all(m["decided_by"] for m in report["moves"])


def test_explain_tells_the_assessment_and_its_events(processed: tuple[Settings, bytes, list[bytes], Worker]) -> None:
    s, _lines, outputs, _w = processed
    assessed = [o for o in map(orjson.loads, outputs) if o["type"] == "tier_assessed"]
    target = assessed[-1]
    done = cli(s, "explain", target["shop_id"], "--cycle", target["cycle"])
    assert done.returncode == 0, done.stderr
    assert f"shop {target['shop_id']}, cycle {target['cycle']}" in done.stdout
    assert f"assessed: {target['tier']}" in done.stdout
    for name, met in target["criteria"].items():
        assert any(ln.strip().startswith(name) and ln.rstrip().endswith("NOT met" if not met else "met")
                   for ln in done.stdout.splitlines()), name
    as_json = json.loads(cli(s, "explain", target["shop_id"], "--cycle", target["cycle"], "--json").stdout)
    assert as_json["assessment"] == target
    assert as_json["events"] and all(e.get("shop_id") in (target["shop_id"], None) for e in as_json["events"])
    assert cli(s, "explain", "no-such-shop").returncode == 1
    bad = cli(s, "explain", target["shop_id"], "--cycle", "2023-01-05")
    assert bad.returncode == 1 and "1st and the 16th" in bad.stderr


def test_promote_switches_the_worker_and_drop_refuses_the_live_namespace(
        processed: tuple[Settings, bytes, list[bytes], Worker], unique: str) -> None:
    s, _lines, _outputs, w = processed
    ns = f"{unique}-promoted"
    r = sync_redis(str(s.redis))
    try:
        assert cli(s, "replay", "promote", ns).returncode == 1  # nothing folded there yet
        built = cli(s, "replay", "--from-kafka", "--namespace", ns)
        assert built.returncode == 0, built.stderr
        done = cli(s, "replay", "promote", ns)
        assert done.returncode == 0, done.stderr
        assert r.get(pointer_key(s.namespace)) == ns.encode()
        deadline = time.monotonic() + 30
        while (w.health() or {}).get("namespace") != ns and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (w.health() or {}).get("namespace") == ns
        before = sum(int(r.get(Keys(ns).offset(p)) or -1) for p in range(s.partitions))
        new = b"\n".join(orjson.dumps({"event_id": f"late-{i}", "type": "order_paid", "ts": 1_676_000_000_000 + i,
                                       "shop_id": "shop-00001", "order_id": f"x{i}", "user_id": "u1",
                                       "amount_cents": 100}) for i in range(5)) + b"\n"
        produce_lines(s, new)
        deadline = time.monotonic() + 30
        while sum(int(r.get(Keys(ns).offset(p)) or -1) for p in range(s.partitions)) < before + 5:
            assert time.monotonic() < deadline, "the promoted namespace did not advance"
            time.sleep(0.2)
        with pytest.raises(NamespaceError):
            drop(str(s.redis), s.namespace, ns)
        refused = cli(s, "replay", "drop", ns)
        assert refused.returncode == 1 and "is live" in refused.stderr
    finally:
        r.delete(pointer_key(s.namespace))
        r.close()
        delete_namespace(str(s.redis), ns)
