"""The JSON Schemas: shipped as built from the contract, valid draft 2020-12, agreeing with the contract
check on random objects, and every input and output of the scenarios and simulated workloads validates."""

from __future__ import annotations

import fnmatch
import pathlib
import subprocess
import sys
import tomllib
from collections import Counter
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.schema import render, shipped
from simulator.workload import SimConfig, Simulator
from tests.paths import PUBLIC_FOLDERS
from tiering import schemas
from tiering.contract import (
    CHANNELS,
    MAX_INSTANT,
    MIN_EVENT_TS,
    PROFILE_OPTIONAL,
    REQUIRED,
    STANDARD_FIELDS,
    InvalidEvent,
    parse_line,
    validate,
)
from tiering.fold import Folder
from tiering.outputs import Output
from tiering.params import RuleParams
from tiering.shopstate import Snapshots

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = PUBLIC_FOLDERS  # the public scenarios, from the repository's copy
Validator = jsonschema.Draft202012Validator


def validators(closed: bool) -> dict[str, Any]:
    out = {t: Validator(schemas.input_schema(t)) for t in schemas.INPUT_TYPES}
    out.update({t: Validator(schemas.output_schema(t, closed=closed)) for t in schemas.OUTPUT_TYPES})
    return out


PUBLISHED = {t: Validator(orjson.loads(shipped(t))) for t in schemas.ALL_TYPES}
CLOSED = validators(closed=True)


def assert_valid(obj: dict[str, Any]) -> None:
    for vs in (PUBLISHED, CLOSED):
        errors = sorted(vs[obj["type"]].iter_errors(obj), key=str)
        assert not errors, f"{obj['type']}: {errors[0].message} at {list(errors[0].absolute_path)}\n{obj}"


def test_every_type_is_shipped_exactly_as_built_from_the_contract() -> None:
    assert set(schemas.ALL_TYPES) == set(REQUIRED) | {"tier_assessed", "tier_changed", "registration_join_changed",
                                                      "recruitment_restricted", "recruitment_restored",
                                                      "recruitment_quality_assessed", "member_protection_changed",
                                                      "dead_letter", "late_event", "shop_state"}
    files = {p.stem for p in (ROOT / "tiering" / "schema").glob("*.json")}
    assert files == set(schemas.ALL_TYPES)
    for t in schemas.ALL_TYPES:
        assert shipped(t) == render(schemas.schema(t)), f"{t}: run `tierstream schema --write tiering/schema`"
        Validator.check_schema(orjson.loads(shipped(t)))
        assert orjson.loads(shipped(t))["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_package_ships_the_schema_files() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert any(fnmatch.fnmatch("tiering", pat) for pat in config["packages"]["find"]["include"])
    patterns = config["package-data"]["tiering"]
    for p in (ROOT / "tiering" / "schema").glob("*.json"):
        assert any(fnmatch.fnmatch(str(p.relative_to(ROOT / "tiering")), pat) for pat in patterns), p


def test_a_contract_check_without_a_schema_stops_the_build() -> None:
    with pytest.raises(KeyError, match="no JSON Schema"):
        schemas._fragment(lambda v: True)


def test_the_cli_prints_a_schema_and_refuses_an_unknown_type() -> None:
    got = subprocess.run([sys.executable, "-m", "cli.main", "schema", "tier_changed"], capture_output=True,
                         cwd=ROOT, check=True)
    assert got.stdout == shipped("tier_changed")
    bad = subprocess.run([sys.executable, "-m", "cli.main", "schema", "tier_change"], capture_output=True,
                         text=True, cwd=ROOT)
    assert bad.returncode == 2 and "unknown type 'tier_change'" in bad.stderr and bad.stdout == ""


def fold_all(lines: list[bytes]) -> tuple[list[dict[str, Any]], list[Output]]:
    """Every valid input event and every output, shop_state records included (one per moved shop
    after each record, as the worker publishes them)."""
    folder = Folder(RuleParams())
    store = folder.new_store()
    snap = Snapshots(folder.cal, 0)
    events: list[dict[str, Any]] = []
    outputs: list[Output] = []
    from replay.file import replay_lines

    def step(event: dict[str, Any]) -> list[Output]:
        events.append(event)
        outs = folder.fold(store, event)
        return outs + snap(store, outs, len(events)) if outs else outs

    outputs = list(replay_lines(lines, fold=step))
    return events, outputs


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_every_input_and_output_of_a_scenario_validates(folder: pathlib.Path) -> None:
    lines = (folder / "input.jsonl").read_bytes().splitlines()
    events, outputs = fold_all(lines)
    for line in lines:  # the raw lines: what a producer sends, unknown fields and all
        try:
            parse_line(line)
        except InvalidEvent:
            continue
        assert_valid(orjson.loads(line))
    for o in [*events, *outputs]:
        assert_valid(o)
    assert any(o["type"] == "shop_state" for o in outputs)


def test_every_input_and_output_of_simulated_workloads_validates() -> None:
    seen: Counter[str] = Counter()
    for seed in (1, 2):
        lines = list(Simulator(SimConfig(shops=25, days=100, seed=seed, events_per_shop_day=30)).lines())
        events, outputs = fold_all(lines)
        for o in [*events, *outputs]:
            assert_valid(o)
            seen[o["type"]] += 1
    missing = set(schemas.OUTPUT_TYPES) - set(seen) - {"late_event", "member_protection_changed"}
    assert not missing, f"the workloads never produced {missing}: the check says nothing about them"


def test_a_member_protection_change_validates() -> None:
    """The simulated workloads are too short for a member to fall silent (180 days)."""
    from tests.builders import DAY, at, close_through, join, profile, redeem, standard

    jan1, jan16 = at(2023, 1, 1), at(2023, 1, 16)
    joined = jan1 - 180 * DAY + 3 * DAY
    lines = [orjson.dumps(e) for e in (standard(), profile("S", joined, industry="test"), join("S", "z", joined),
                                      close_through(jan16), redeem("S", "z", jan16 + DAY))]
    _events, outputs = fold_all(lines)
    protection = [o for o in outputs if o["type"] == "member_protection_changed"]
    assert [o["protected"] for o in protection] == [True, False]
    for o in outputs:
        assert_valid(o)


# -- the contract check and the input schemas on the same random objects -------------------------------

def _no_integral_floats(v: Any) -> Any:
    """JSON Schema counts 1.0 as an integer, the contract does not (the one documented difference)."""
    if isinstance(v, float) and v.is_integer():
        return v + 0.5 if abs(v) < 2**52 else 0.5  # from 2**52 on, v + 0.5 rounds back to an integral float
    if isinstance(v, list):
        return [_no_integral_floats(x) for x in v]
    if isinstance(v, dict):
        return {k: _no_integral_floats(x) for k, x in v.items()}
    return v


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3) | st.text(min_size=127, max_size=130, alphabet="ab"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
).map(_no_integral_floats)
NAMES = sorted({"event_id", "ts", *(f for fields in REQUIRED.values() for f in fields), *PROFILE_OPTIONAL})
VALUES = st.one_of(
    JSON, st.integers(MIN_EVENT_TS - 2, MIN_EVENT_TS + 2), st.integers(MAX_INSTANT - 2, MAX_INSTANT + 2),
    st.sampled_from([*CHANNELS, "registration", "purchase", "used", "online", "member_coupon"]),
    st.fixed_dictionaries({"ordered_at": st.integers(-1, 3), "expires_at": st.integers(-1, 3)}),
    st.fixed_dictionaries({"opened_before_2021": st.booleans() | st.integers(0, 1),
                           "baseline_15d": st.integers(-1, 3)}),
    st.fixed_dictionaries({f: st.integers(-1, 2) | st.floats(0, 1).map(_no_integral_floats) for f in STANDARD_FIELDS}),
)


def _accepts(obj: dict[str, Any]) -> bool:
    try:
        validate(obj)
    except InvalidEvent:
        return False
    return True


@given(st.sampled_from(schemas.INPUT_TYPES), st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=12),
       st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=4))
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_the_contract_check_and_the_input_schema_agree(etype: str, fields: dict[str, Any],
                                                       extra: dict[str, Any]) -> None:
    # mostly-valid objects: a valid base (when the draw gives one) with a few fields redrawn
    obj = {**fields, "type": etype, **extra}
    if etype == "promo_window_declared" and all(isinstance(obj.get(k), int) for k in ("start", "end")):
        obj["end"] = obj["start"] + 1  # `end > start` is the contract's, not the schema's
    assert _accepts(obj) == CLOSED[etype].is_valid(obj), obj


VALID_BASES = {
    "member_joined": {"shop_id": "s", "user_id": "u", "channel": "live", "join_type": "purchase"},
    "order_paid": {"shop_id": "s", "order_id": "o", "user_id": "u", "amount_cents": 5},
    "industry_standard_changed": {"industry": "*", "effective_from": 0,
                                  "standard": {f: 1 for f in STANDARD_FIELDS}},
    "shop_profile_changed": {"shop_id": "s", "b_edition": None, "member_pass": True,
                             "third_party": {"opened_before_2021": False, "baseline_15d": 3}},
}


@given(st.sampled_from(sorted(VALID_BASES)), st.sampled_from(NAMES), VALUES)
@settings(max_examples=400, deadline=None)
def test_one_field_changed_in_a_valid_event_moves_both_checks_alike(etype: str, name: str, value: Any) -> None:
    base = {"event_id": "e", "type": etype, "ts": MIN_EVENT_TS, **VALID_BASES[etype]}
    assert _accepts(base) and CLOSED[etype].is_valid(base)
    obj = {**base, name: value}
    assert _accepts(obj) == CLOSED[etype].is_valid(obj), obj
