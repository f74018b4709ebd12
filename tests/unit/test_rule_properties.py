"""Properties of the rules over random edge-heavy histories (tests/histories.py): the outputs do not
depend on where the close of B falls among the events with ts >= B, and a resent event changes
no output.

Examples per property: TIERSTREAM_PROPERTY_EXAMPLES (default 60, a few seconds); a deeper run,
e.g. `TIERSTREAM_PROPERTY_EXAMPLES=1500 pytest tests/unit/test_rule_properties.py`, is in the README."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import Run
from tests.histories import History, histories, with_resends

pytestmark = pytest.mark.unit

EXAMPLES = int(os.environ.get("TIERSTREAM_PROPERTY_EXAMPLES", "60"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def emitted(events: list[dict[str, Any]], run: Run | None = None) -> Counter[bytes]:
    """What folding `events` in a fresh run emits: each output (id and payload) and how often."""
    r = (run or Run()).feed(*[dict(e) for e in events])
    return Counter(orjson.dumps(o, option=orjson.OPT_SORT_KEYS) for o in r.outputs)


def outputs(events: list[dict[str, Any]], run: Run | None = None) -> set[bytes]:
    """The set of outputs (ids and payloads) of folding `events` in a fresh run."""
    return set(emitted(events, run))


def differences(a: Collection[bytes], b: Collection[bytes]) -> str:
    return f"only in the first: {sorted(set(a) - set(b))}\nonly in the second: {sorted(set(b) - set(a))}"


@PROPERTY
@given(histories(), st.data())
def test_outputs_do_not_depend_on_where_the_close_of_b_falls(h: History, data: st.DataObject) -> None:
    first, last = h.earliest_close(), len(h.window)
    somewhere = data.draw(st.integers(first, last), label="close placed before window event")
    early = outputs(h.events(first))
    assert any(orjson.loads(o)["type"] == "tier_assessed" for o in early)  # B and the next boundary closed
    for place in {somewhere, last}:
        later = outputs(h.events(place))
        assert later == early, differences(early, later)


@PROPERTY
@given(histories(), st.data())
def test_a_resent_event_changes_no_output(h: History, data: st.DataObject) -> None:
    """Events sent again (tests.histories.with_resends): exactly what the history without them
    emits, the same outputs and none of them twice."""
    events = h.events(data.draw(st.integers(h.earliest_close(), len(h.window)), label="close"))
    original = emitted(events)
    resent = with_resends(data.draw, events)
    again = emitted(resent)  # not even the same output a second time (a late event reported twice)
    assert again == original, differences(original, again) + f"\ncounts: {again - original}"
