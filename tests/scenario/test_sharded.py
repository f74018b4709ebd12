"""Every public scenario through `tierstream replay --workers N`: the same bytes as one process."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from tests.scenario.test_scenarios import FOLDERS, ROOT

pytestmark = pytest.mark.scenario


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_scenario_output_is_the_same_on_1_2_and_3_workers(folder: pathlib.Path, tmp_path: pathlib.Path) -> None:
    outs, summaries = [], []
    for n in (1, 2, 3):
        out = tmp_path / f"out{n}.jsonl"
        res = subprocess.run([sys.executable, "-m", "replay", "--input", str(folder / "input.jsonl"),
                              "--output", str(out), "--workers", str(n)],
                             check=True, cwd=ROOT, capture_output=True, text=True)
        outs.append(out.read_bytes())
        summaries.append(res.stderr.strip().splitlines()[-1])
    assert outs[0] and outs[0] == outs[1] == outs[2]
    assert summaries[0].startswith("replay: ") and summaries[0] == summaries[1] == summaries[2]
    assert not list(tmp_path.glob(".replay-*")), "the shards' part files are removed"
