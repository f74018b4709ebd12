"""The house's shape: every import runs down the layers, and no module is too big to read whole."""

from __future__ import annotations

import ast
import pathlib

import pytest

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[2]

# Lower layers first. A package may import its own modules and any package of a LOWER layer; never
# one of the same layer (siblings stand side by side) or above. docs/design-notes.md draws it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("tiering",),                                           # the rules: pure, no I/O (test_purity)
    ("plumbing", "devstack"),                               # settings, topics, clients; the local stack
    ("projections",),                                       # Redis state, key layout, read models
    ("streams", "replay", "dashboard", "simulator", "examples"),  # the rooms a user runs
    ("bench",),                                             # measurements of the rooms
    ("cli",),                                               # `tierstream`: parse and dispatch
)
LAYER = {pkg: i for i, pkgs in enumerate(LAYERS) for pkg in pkgs}
MAX_LINES = 400


def modules() -> list[pathlib.Path]:
    return sorted(p for pkg in LAYER for p in (ROOT / pkg).rglob("*.py"))


def first_party_imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):  # every import, also those inside functions and TYPE_CHECKING
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots & set(LAYER)


def test_every_product_package_has_a_layer() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(LAYER), f"packages without a layer in LAYERS: {sorted(packages - set(LAYER))}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_down_the_layers(path: pathlib.Path) -> None:
    own = path.relative_to(ROOT).parts[0]
    if path.name == "__main__.py":  # `python -m replay` is a door onto the command line, imported by no one
        own = "cli"
    upward = sorted(pkg for pkg in first_party_imports(path) - {own} if LAYER[pkg] >= LAYER[own])
    assert upward == [], f"{path.relative_to(ROOT)} (layer {LAYER[own]}) imports {upward} of the same or a higher layer"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small_and_says_its_job(path: pathlib.Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{path.relative_to(ROOT)} has {len(text.splitlines())} lines"
    if text.strip():
        doc = ast.get_docstring(ast.parse(text))
        assert doc, f"{path.relative_to(ROOT)} has no module docstring"


def test_the_image_copies_every_installed_package() -> None:
    import tomllib

    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    installed = {pattern.rstrip("*") for pattern in find["include"]}
    copied = {line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")}
    assert installed <= copied, f"the Dockerfile does not copy {sorted(installed - copied)}"
    assert installed == set(LAYER) - {"examples"}, "pyproject installs what LAYERS lists (examples are not installed)"


def test_the_layer_check_sees_an_upward_import(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text('"""x."""\nfrom streams.app import run_worker\nimport replay.file\n')
    assert first_party_imports(bad) == {"streams", "replay"}
