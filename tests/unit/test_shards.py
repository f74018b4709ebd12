"""The file form split by shop: any split gives the one-process output, byte for byte."""

from __future__ import annotations

import io
import os
import pathlib
import signal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.file import ReplayStats, replay_file
from replay.procs import ChildFailed, run_children
from replay.shards import merge_parts, run_shard, shard_of
from simulator.workload import SimConfig, Simulator
from tests.unit.test_properties import VALID_EVENTS

pytestmark = pytest.mark.unit


def one_process(lines: list[bytes]) -> tuple[bytes, ReplayStats]:
    out = io.BytesIO()
    stats = replay_file(io.BytesIO(b"".join(line + b"\n" for line in lines)), out)
    return out.getvalue(), stats


def split(lines: list[bytes], shards: int, tmp: pathlib.Path) -> tuple[bytes, ReplayStats, list[bytes]]:
    """The shards run one after another in this process (the CLI runs them at once: same code)."""
    src = tmp / "in.jsonl"
    src.write_bytes(b"".join(line + b"\n" for line in lines))
    parts = [str(tmp / f"part{k}") for k in range(shards)]
    total = ReplayStats()
    for k in range(shards):
        total.add(run_shard(k, shards, str(src), parts[k], None))
    out = io.BytesIO()
    merge_parts(parts, out)
    return out.getvalue(), total, [pathlib.Path(p).read_bytes() for p in parts]


def same_counts(a: ReplayStats, b: ReplayStats) -> None:
    assert (a.lines, a.dead_letters, a.outputs, a.by_type) == (b.lines, b.dead_letters, b.outputs, b.by_type)


@pytest.mark.parametrize("shards", [2, 3, 5])
def test_a_simulated_history_gives_the_same_bytes_split_any_way(shards: int, tmp_path: pathlib.Path) -> None:
    lines = list(Simulator(SimConfig(shops=40, days=50, seed=11, events_per_shop_day=8)).lines())
    whole, stats = one_process(lines)
    assert stats.by_type.get("tier_assessed", 0) >= 40 * 2  # boundaries closed: the order across shops matters
    got, total, parts = split(lines, shards, tmp_path)
    assert got == whole
    same_counts(total, stats)
    for k, part in enumerate(parts):  # each shard wrote only its own shops' outputs
        for rec in part.splitlines():
            shop = orjson.loads(rec.split(b"\t", 2)[1])
            assert (shard_of(shop, shards) if shop else 0) == k


LINES = st.one_of(VALID_EVENTS.map(orjson.dumps), VALID_EVENTS.map(orjson.dumps),
                  st.sampled_from([b'{"type": "order_paid"', b"[]", b'{"type":"nope","ts":1}', b"  "]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINES, max_size=30), repeats=st.lists(st.integers(0, 29), max_size=5), shards=st.integers(2, 4))
def test_any_history_split_any_way_gives_the_same_bytes(lines: list[bytes], repeats: list[int], shards: int,
                                                        tmp_path: pathlib.Path) -> None:
    """Valid events of any shops, global events, bad lines, blank lines and resent lines."""
    lines = lines + [lines[i] for i in repeats if i < len(lines)]
    whole, stats = one_process(lines)
    got, total, _parts = split(lines, shards, tmp_path)
    assert got == whole
    same_counts(total, stats)


def _fails(x: int, progress: Any) -> int:
    if x == 1:
        raise ValueError("bad shard input")
    return x


def _dies(x: int, progress: Any) -> int:
    if x == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 2


def _reports(x: int, progress: Any) -> int:
    progress(x * 10)
    return x + 1


def test_children_return_in_order_and_relay_progress() -> None:
    seen: list[tuple[int, Any]] = []
    assert run_children(_reports, [(0,), (1,), (2,)], on_progress=lambda i, p: seen.append((i, p))) == [1, 2, 3]
    assert sorted(seen) == [(0, 0), (1, 10), (2, 20)]


def test_a_child_that_raises_fails_the_run_with_its_error() -> None:
    with pytest.raises(ChildFailed, match=r"worker 1 of 2 failed: ValueError: bad shard input"):
        run_children(_fails, [(0,), (1,)])


def test_a_child_killed_fails_the_run() -> None:
    with pytest.raises(ChildFailed, match=r"worker 1 of 2 died \(killed by signal 9\)"):
        run_children(_dies, [(0,), (1,)])


def test_the_cli_says_in_one_line_what_is_wrong(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["replay", "--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o"),
                 "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tierstream replay: ") and "missing.jsonl" in err and "\n" not in err
    with pytest.raises(SystemExit):
        main(["replay", "--input", "x", "--output", "y", "--workers", "0"])
    assert "must be at least 1" in capsys.readouterr().err
