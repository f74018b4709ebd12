"""The public scenarios are kept in the repository (tests/scenarios/public); this holds the copy
to ../shared/scenarios when that folder is beside the checkout, and to its own format always."""

from __future__ import annotations

import json
import pathlib
import warnings

import pytest

pytestmark = pytest.mark.scenario
ROOT = pathlib.Path(__file__).resolve().parents[2]
COPY = ROOT / "tests" / "scenarios" / "public"
SHARED = ROOT.parent / "shared" / "scenarios"
EXPECTATION_KEYS = ({"absent"}, {"count"})


def files(root: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_copy_is_complete_and_well_formed() -> None:
    """What the scenario tests rely on, checked whether or not ../shared is there."""
    copied = files(COPY)
    assert "check.py" in copied and "README.md" in copied
    folders = sorted({name.split("/")[0] for name in copied if "/" in name})
    assert len(folders) >= 5, folders
    for folder in folders:
        assert copied.get(f"{folder}/input.jsonl", b"").strip(), f"{folder}: no input"
        expected = [json.loads(line) for line in copied[f"{folder}/expected.jsonl"].splitlines() if line.strip()]
        assert expected, f"{folder}: no expectations"
        for want in expected:  # check.py's three forms: a partial record, {"absent": ...}, {"count": ...}
            assert isinstance(want, dict) and ("type" in want or set(want) in EXPECTATION_KEYS), (folder, want)


def test_the_copy_equals_the_shared_scenarios() -> None:
    """Byte for byte, file for file, so the copy cannot drift from the published scenarios."""
    if not SHARED.is_dir():
        warnings.warn(f"{SHARED} is absent: the copy in {COPY} was checked for form only, not against it",
                      stacklevel=1)
        assert files(COPY), f"{COPY} is empty"
        return
    shared, copied = files(SHARED), files(COPY)
    assert sorted(copied) == sorted(shared), "files differ: copy the folder again (cp -r ../shared/scenarios ...)"
    changed = [name for name in shared if copied[name] != shared[name]]
    assert not changed, f"the copy differs from {SHARED} in {changed}"
