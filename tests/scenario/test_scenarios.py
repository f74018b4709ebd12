"""Every scenario folder (tests/scenarios: the public ones and the project's own) through
`tierstream replay` and check.py."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import Any

import orjson
import pytest

from replay.file import replay_lines

pytestmark = pytest.mark.scenario
ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "scenarios" / "public"  # a copy of ../shared/scenarios (test_scenario_copy.py)
RULES = ROOT / "tests" / "scenarios" / "rules"  # the project's own, one rule each (docs/rules.md)
PUBLIC_FOLDERS = sorted(p for p in SCENARIOS.glob("*") if (p / "input.jsonl").exists())
FOLDERS = PUBLIC_FOLDERS + sorted(p for p in RULES.glob("*") if (p / "input.jsonl").exists())


def test_scenarios_are_present() -> None:
    assert len(PUBLIC_FOLDERS) >= 5, f"expected the public scenarios under {SCENARIOS}"
    assert len(FOLDERS) > len(PUBLIC_FOLDERS), f"expected the rule scenarios under {RULES}"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scenario_passes_check(folder: pathlib.Path, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "out.jsonl"
    subprocess.run([sys.executable, "-m", "replay", "--input", str(folder / "input.jsonl"), "--output", str(out)],
                   check=True, cwd=ROOT)
    check = subprocess.run([sys.executable, str(SCENARIOS / "check.py"), str(folder / "expected.jsonl"), str(out)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scenario_output_is_byte_identical_across_runs(folder: pathlib.Path, tmp_path: pathlib.Path) -> None:
    outs = []
    for i in range(2):
        out = tmp_path / f"out{i}.jsonl"
        subprocess.run([sys.executable, "-m", "replay", "--input", str(folder / "input.jsonl"),
                        "--output", str(out)], check=True, cwd=ROOT)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scenario_passes_on_each_state_store(folder: pathlib.Path, tmp_path: pathlib.Path, new_run: Any) -> None:
    """The same scenario through the memory store and through Redis (one batch per record)."""
    run = new_run()
    out = tmp_path / "out.jsonl"
    with open(folder / "input.jsonl", "rb") as src, open(out, "wb") as dst:
        for o in replay_lines(src, fold=lambda e: _drain(run.feed(e))):
            dst.write(orjson.dumps(o) + b"\n")
    check = subprocess.run([sys.executable, str(SCENARIOS / "check.py"), str(folder / "expected.jsonl"), str(out)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def _drain(run: Any) -> list[dict[str, Any]]:
    outs, run.outputs = run.outputs, []
    return list(outs)
