"""The dashboard read model (tiering.view), on both stores: the Redis one must write, in the
batch transaction, exactly what the pure function computes over the memory store."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from tests.builders import DAY, at, clock, close_through, order, premium_shop, standard
from tiering.view import shop_view, status_of

pytestmark = pytest.mark.unit
JAN1, JAN16, FEB1 = at(2023, 1, 1), at(2023, 1, 16), at(2023, 2, 1)


def view_of(run: Any, shop: str) -> dict[str, Any]:
    if run.processor is None:
        v = shop_view(run.folder.closer, run.store, run.store.shop(shop))
        assert v is not None
        return v
    raw = run.store.r.get(run.store.keys.view(shop))
    assert raw is not None, f"no read model written for {shop}"
    v = orjson.loads(raw)
    assert v.pop("partition") == run.store.p
    return dict(v)


def test_open_cycle_projection_then_the_assessment(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("s1", JAN1 + DAY))
    v = view_of(run, "s1")
    assert v["cycle"] == {"id": "2023-01-01", "start": JAN1, "end": JAN16}
    assert v["as_of"] == JAN1 + 2 * DAY  # the end of the day event time is in
    assert v["tier"] is None and v["projected_tier"] == "improving"  # one day online so far
    ind = v["indicators"]
    assert ind["effective_members"]["numerator"] == 2 and ind["effective_members"]["standard"] == 2
    assert ind["member_gmv_share"] == {"value": 1.0, "numerator": 20_000, "denominator": 20_000,
                                       "standard": 0.5, "met": True}
    assert ind["benefit_online_days"]["numerator"] == 1 and ind["benefit_online_days"]["met"] is False
    assert v["days_in_cycle"] == 15
    assert status_of(v, JAN16 - 1) == "open" and status_of(v, JAN16) == "computing"

    run.feed(clock(JAN1 + 8 * DAY))  # no event of the shop: its read model moves with the day
    v = view_of(run, "s1")
    assert v["as_of"] == JAN1 + 9 * DAY and v["indicators"]["benefit_online_days"]["numerator"] == 8
    assert v["projected_tier"] == "premium"

    run.feed(close_through(JAN16))
    assessed = run.of("tier_assessed", "s1")
    assert [a["tier"] for a in assessed] == ["premium"]
    v = view_of(run, "s1")
    assert v["tier"] == "premium" and v["cycle"]["id"] == "2023-01-16"
    assert v["history"][0]["tier"] == "premium" and v["history"][0]["cycle"] == "2023-01-01"
    assert v["history"][0]["indicators"] == {k: assessed[0]["indicators"][k] for k in v["history"][0]["indicators"]}
    assert v["registration_join"]["state"] == "granted"


def test_projection_at_the_boundary_is_the_assessment(new_run: Any) -> None:
    """A shop that falls short: the read model's projection is what the close then says."""
    run = new_run().feed(standard(), *premium_shop("s1", JAN1 + DAY), order("s1", "stranger", JAN1 + 2 * DAY,
                                                                             cents=1_000_000), clock(JAN16 - 1))
    v = view_of(run, "s1")
    assert v["as_of"] == JAN16
    run.feed(close_through(JAN16))
    (assessed,) = run.of("tier_assessed", "s1")
    assert v["projected_tier"] == assessed["tier"] and v["projected_raw_tier"] == assessed["raw_tier"]
    assert {k: d["met"] for k, d in v["indicators"].items()} == assessed["criteria"]
    for name, d in v["indicators"].items():
        assert d["value"] == assessed["indicators"][name], name


def test_a_standard_change_refreshes_every_read_model(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("s1", JAN1 + DAY), *premium_shop("s2", JAN1 + DAY))
    assert view_of(run, "s2")["standard"]["min_effective_members"] == 2
    run.feed(standard(ts=JAN1 + 3 * DAY, min_effective_members=50))
    for shop in ("s1", "s2"):  # neither had an event since: both read models moved
        v = view_of(run, shop)
        assert v["standard"]["min_effective_members"] == 50 and v["indicators"]["effective_members"]["met"] is False


def test_platform_counts_follow_tier_moves(new_run: Any) -> None:
    run = new_run().feed(standard(), *premium_shop("s1", JAN1 + DAY), *premium_shop("s2", JAN1 + DAY),
                         order("s3", "u", JAN1 + DAY), close_through(JAN16))
    expected = Counter((view_of(run, s)["industry"], view_of(run, s)["tier"] or "unassessed")
                       for s in ("s1", "s2", "s3"))
    assert expected == Counter({("test", "premium"): 2, ("*", "improving"): 1})
    run.feed(order("s2", "stranger", JAN16 + DAY, cents=10_000_000), close_through(FEB1))
    assert view_of(run, "s2")["tier"] == "potential"
    if run.processor is not None:
        raw = run.store.r.hgetall(run.store.keys.tiers(run.store.p))
        stored = {k.decode(): int(v) for k, v in raw.items()}  # no zero fields left behind
        want = Counter(f"{view_of(run, s)['industry']}|{view_of(run, s)['tier']}" for s in ("s1", "s2", "s3"))
        assert stored == dict(want)


def test_feed_throttle_holds_a_change_back_then_sends_it_with_the_next_batch() -> None:
    """At most one announcement per shop per interval; a held-back change goes out with the first
    batch committed after its interval, even a batch that did not touch the shop."""
    from projections.keys import Keys
    from projections.readmodels import Prepared, ReadModels
    from tiering.close import Closer
    from tiering.params import RuleParams

    rm = ReadModels(Closer(RuleParams()), Keys("t"), 0, min_interval_s=0.25)

    def batch(now: float, **views: bytes) -> list[tuple[str, bytes]]:
        prep = Prepared(views=dict(views), summaries={sid: {"shop_id": sid} for sid in views})
        rm.throttle(prep, now)
        rm.committed(prep, now)
        return [(sid, raw) for sid, raw, _summary in prep.announce]

    assert batch(0.0, a=b"a1", b=b"b1") == [("a", b"a1"), ("b", b"b1")]
    assert batch(0.1, a=b"a2") == []  # inside a's interval: held back
    assert batch(0.2, a=b"a3") == []  # still held; the newer view replaces the held one
    assert (rm.due(0.2), rm.due(0.2, force=True), rm.due(0.25)) == ([], ["a"], ["a"])  # what the feed timer sends
    assert batch(0.26, b=b"b2") == [("b", b"b2"), ("a", b"a3")]  # a's interval passed: it rides along
    assert batch(0.3, a=b"a3") == []  # unchanged since announced
    assert batch(0.6, c=b"c1") == [("c", b"c1")]  # nothing held any more


@pytest.mark.parametrize("new_run", [pytest.param("redis", marks=pytest.mark.integration)], indirect=True)
def test_a_commit_costs_no_script_round_trip(new_run: Any) -> None:
    """The members and feeds scripts go in the transaction as EVAL: a redis-py Script queued on
    a pipeline asks SCRIPT EXISTS before every execute, one more round trip per commit."""
    run = new_run().feed(standard(), *premium_shop("s1", JAN1 + DAY))  # members, views, feeds: both scripts ran

    def script_exists_calls() -> int:
        stats = run.store.r.info("commandstats")
        return int(stats.get("cmdstat_script|exists", {}).get("calls", 0))

    before = script_exists_calls()
    run.feed(*[order("s1", f"new{i}", JAN1 + DAY + i, 100) for i in range(3)])
    assert run.store.r.exists(run.store.keys.feed("s1"))
    assert script_exists_calls() == before
