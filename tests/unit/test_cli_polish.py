"""What a person at the command line sees: --version, every command's examples, progress only on
a terminal, and a what-if table whose columns line up."""

from __future__ import annotations

import io
import os
import pathlib
import sys

import pytest

from cli.help import EXAMPLES
from cli.main import build_parser, main
from plumbing.progress import Progress
from replay.whatif import grid, table
from tests.ptyrun import run_on_terminal

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"tierstream {version('tierstream')} (Python ")


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_with_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert command in EXAMPLES, f"add an example for `tierstream {command}` to cli/help.py"
    assert "\nexample" in out and f"tierstream {command}" in out.split("\nexample", 1)[1]
    summary = out.split("\n\n")[1]  # the command's one-line summary under its usage
    assert summary.strip() and not summary.startswith(("positional", "options")), out


def test_main_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--version" in out and "examples:\n  tierstream devstack up" in out


def test_progress_line_and_pacing() -> None:
    now = [100.0]
    out = io.StringIO()
    bar = Progress("replay", 1000, stream=out, enabled=True, start=200, clock=lambda: now[0])
    now[0] = 102.0
    assert bar.line(600) == "replay: [##################............] 600/1,000 records 200/s eta 2s"
    bar.update(600)
    now[0] = 102.1
    bar.update(700)  # within 0.2 s of the last drawing: not drawn
    bar.update(1000)  # the end is always drawn
    bar.close()
    assert out.getvalue().count("\r") == 2 and out.getvalue().endswith("1,000/1,000 records 381/s eta 0s\n")
    lines = Progress("produce", 4096, unit="lines", stream=out, enabled=True, clock=lambda: now[0])
    now[0] = 104.1
    assert lines.line(1024, 50) == "produce: [#######.......................] 50 lines (25%) 25/s eta 6s"


def test_progress_is_off_when_not_a_terminal() -> None:
    out = io.StringIO()  # not a tty
    bar = Progress("x", 10, stream=out)
    bar.update(5)
    bar.close()
    assert out.getvalue() == ""


def test_simulate_shows_progress_on_a_terminal_only(tmp_path: pathlib.Path, capfd: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--shops", "40", "--days", "6", "--output", str(tmp_path / "s.jsonl")]
    code, seen = run_on_terminal([sys.executable, "-m", "cli.main", *argv], os.environ, ROOT)
    assert code == 0
    text = seen.decode()
    assert "\rsimulate: [" in text and "lines (100%)" in text and "simulate: wrote" in text
    assert main(argv) == 0  # stderr captured: not a terminal
    err = capfd.readouterr().err
    assert "\r" not in err and err.startswith("simulate: wrote ") and err.count("\n") == 1


def test_whatif_table_columns_line_up() -> None:
    report = {"shops": 2, "tiers_before": {"electronics": {"premium": 12}, "food": {"substandard": 1000}},
              "tiers_after": {"electronics": {"premium": 11, "potential": 1}},
              "moves": [{"shop_id": "shop-00042", "cycle": "2023-01-16", "before": "potential", "after": "improving",
                         "decided_by": ["member_gmv_share", "effective_members"]},
                        {"shop_id": "a-shop-id-of-a-length-beyond-any-fixed-width", "cycle": "2023-02-01",
                         "before": None, "after": "premium", "decided_by": []}]}
    text = table(report)
    assert "2023-01-16potential" not in text and "2023-01-16  potential  improving  member_gmv_share" in text
    counts, moves = text.split("\n\n")[1], text.split("\n\n")[2]
    header, *rows = moves.splitlines()
    for column in ("cycle", "before", "after", "decided by"):
        at = header.index(column)
        assert all(row[at - 2:at] == "  " and row[at] != " " for row in rows if len(row) > at), (column, moves)
    count_lines = counts.splitlines()
    assert len({len(line) for line in count_lines}) == 1  # right-aligned numbers end together
    assert count_lines[2].startswith("food") and count_lines[2].endswith("0 -> 0") and "1000 -> 0" in count_lines[2]
    assert all(line == line.rstrip() for line in text.splitlines())


def test_grid_aligns_left_and_right() -> None:
    assert grid([["a", "bb", "1"], ["ccc", "d", "100"]], right=[2]) == ["a    bb    1", "ccc  d   100"]
