"""The capacity model's arithmetic (bench/capacity_model.py), on round numbers worked by hand."""

from __future__ import annotations

import pytest

from bench.capacity_model import Load, Measured, partitions, plan, processes, redis_bytes, redis_parts, render

pytestmark = pytest.mark.unit

M = Measured(ingest_per_core=10_000, evaluate_per_core=5_000, file_fold_per_core=100_000,
             ledger_bytes_per_event=200, redis_bytes_per_member=100, redis_bytes_per_shop=2_000,
             redis_bytes_per_counter=500, redis_bytes_per_dedupe_id=50)


def test_processes_round_up_at_the_planned_utilisation() -> None:
    assert processes(7_000, 10_000, 0.7) == 1
    assert processes(7_001, 10_000, 0.7) == 2
    assert processes(0, 10_000, 0.7) == 1


def test_partitions_are_a_power_of_two_with_room_per_process() -> None:
    assert partitions(1, 2) == 2
    assert partitions(3, 2) == 8
    assert partitions(143, 2) == 512


def test_redis_memory_adds_members_shops_counters_and_dedupe_ids() -> None:
    load = Load(events_per_s=1_000, members=1e6, shops=1e3, average_share=0.5, open_cycles=2, dedupe_cycles=3)
    ids = 1_000 * 0.5 * 86_400 * 15 * 3
    assert redis_parts(M, load) == {"members": 1e6 * 100, "shops": 1e3 * 2_000, "cycle counters": 1e3 * 2 * 500,
                                    "dedupe ids": ids * 50}
    assert redis_bytes(M, load) == 1e6 * 100 + 1e3 * 2_000 + 1e3 * 2 * 500 + ids * 50


def test_the_default_load_plan() -> None:
    load = Load()
    p = plan(M, load)
    assert p.ingest_processes == 72  # 500,000 / (10,000 x 0.7) = 71.4
    assert p.evaluate_processes == 143  # 500,000 / 3,500 = 142.9
    assert (p.input_partitions, p.ledger_partitions) == (256, 512)
    per_day = 500_000 * 0.25 * 86_400
    assert p.ledger_bytes_per_day == per_day * 200 * 3
    assert p.redis_shards == -(-int(redis_bytes(M, load)) // int(25e9))
    assert p.rebuild_hours_per_day_of_history == pytest.approx(per_day / (5_000 * 143) / 3600)
    assert p.first_limit.startswith("Redis shards")  # 1e9 members x 100 B + 1.6e12 ids x 50 B
    text = render(M, load, p)
    assert "evaluate processes: 143 (ledger partitions 512)" in text and "first limit:" in text
    assert "of which members 100 GB" in text  # 1e9 x 100 B


def test_the_largest_count_is_the_first_limit() -> None:
    small = Load(members=1e3, shops=10, events_per_s=100_000, average_share=0.0001)
    assert plan(M, small).first_limit.startswith("evaluate processes")
