"""tiering/ is the pure domain: it imports no I/O library and reads no clock."""

import ast
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit
TIERING = pathlib.Path(__file__).resolve().parents[2] / "tiering"
FORBIDDEN = {"faust", "aiokafka", "redis", "mode", "aiohttp", "socket", "asyncio", "kafka", "requests"}


def imported_roots(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(TIERING.glob("*.py")), ids=lambda p: p.name)
def test_module_imports_no_io_library(path: pathlib.Path) -> None:
    assert imported_roots(path) & FORBIDDEN == set()


def test_importing_tiering_loads_no_io_library() -> None:
    code = ("import sys, tiering.fold, tiering.close, tiering.contract; "
            f"print(sorted(set({sorted(FORBIDDEN)!r}) & set(m.split('.')[0] for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_wall_clock_in_tiering() -> None:
    for path in TIERING.glob("*.py"):
        text = path.read_text()
        for call in ("time.time(", "datetime.now(", "datetime.utcnow(", "date.today(", "time.monotonic("):
            assert call not in text, f"{path.name} reads the wall clock: {call}"
