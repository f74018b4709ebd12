"""Where the tests find the repository and its copy of the public scenarios (never ../shared)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT / "tests" / "scenarios" / "public"  # a copy of ../shared/scenarios (test_scenario_copy.py)
PUBLIC_FOLDERS = sorted(p for p in PUBLIC.glob("*") if (p / "input.jsonl").exists())
assert len(PUBLIC_FOLDERS) >= 5, f"expected the public scenarios under {PUBLIC}, found {len(PUBLIC_FOLDERS)}"
