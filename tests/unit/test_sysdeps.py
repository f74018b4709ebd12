"""The one table of OS packages: what each command needs, how a missing one is reported."""

from __future__ import annotations

import pathlib

import pytest

from devstack import sysdeps
from devstack.sysdeps import Need

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("printed", "major"), [
    ('openjdk version "17.0.15" 2025-04-15', 17),
    ('openjdk version "21" 2023-09-19', 21),
    ('java version "1.8.0_402"', 8),
    ('openjdk version "11.0.22" 2024-01-16 LTS', 11),
    ("Error: could not find libjava.so", None),
])
def test_java_major_reads_both_version_schemes(printed: str, major: int | None) -> None:
    assert sysdeps.java_major(printed) == major


def test_each_make_target_needs_the_broker_redis_and_a_virtualenv() -> None:
    for purpose in ("demo", "test"):
        packages = {n.package for n in sysdeps.needs_for(purpose)}
        assert {"openjdk-17-jre-headless", "maven", "redis-server", "python3-venv"} <= packages
    assert {"chromium", "openssl", "redis-tools"} <= {n.package for n in sysdeps.needs_for("test")}
    assert "chromium" not in {n.package for n in sysdeps.needs_for("devstack")}
    with pytest.raises(ValueError, match="unknown purpose 'tests'"):
        sysdeps.needs_for("tests")


def test_the_devstack_finds_its_needs_by_command() -> None:
    assert [n.package for n in sysdeps.by_command("java", "mvn", "redis-server")] == [
        "openjdk-17-jre-headless", "maven", "redis-server"]


def _need(package: str, present: bool, optional: bool = False) -> Need:
    return Need(package, f"{package}-cmd", f"{package} is used", frozenset({"test"}),
                lambda: (present, "/usr/bin/x" if present else "not on PATH"), optional)


def test_a_missing_package_is_one_line_naming_the_command_that_installs_it() -> None:
    needs = [_need("alpha", False), _need("beta", True), _need("gamma", False)]
    with pytest.raises(sysdeps.Missing) as caught:
        sysdeps.ensure(needs, installer=None)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("missing alpha-cmd (alpha is used; not on PATH): ")
    assert lines[0].endswith("apt-get install -y alpha") and lines[1].endswith("apt-get install -y gamma")


def test_without_apt_the_line_names_the_debian_package() -> None:
    [line] = sysdeps.missing_lines([(_need("alpha", False), "not on PATH")], as_root=False, has_apt=False)
    assert line.endswith("install it with your OS's packages (Debian: alpha)")
    [line] = sysdeps.missing_lines([(_need("alpha", False), "not on PATH")], as_root=False, has_apt=True)
    assert line.endswith(": sudo apt-get install -y alpha")


def test_an_optional_package_is_a_note_not_a_stop() -> None:
    notes = sysdeps.ensure([_need("alpha", True), _need("prom", False, optional=True)], installer=None)
    assert notes == ["note: optional prom-cmd absent (prom is used): sudo apt-get install -y prom"]


def test_the_readme_names_every_package_of_the_table() -> None:
    """The README's "The two commands" says what a fresh machine gets installed: all of it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    for need in sysdeps.NEEDS:
        assert f"`{need.package}`" in section, need.package


def test_apt_runs_only_for_a_required_package() -> None:
    """A root machine lacking only an optional package gets a note, not an apt-get run every time."""
    never = sysdeps.Apt("/nonexistent/apt-get")  # would raise FileNotFoundError if it were run
    notes = sysdeps.ensure([_need("alpha", True), _need("prom", False, optional=True)], installer=never)
    assert len(notes) == 1 and "prom-cmd" in notes[0]
