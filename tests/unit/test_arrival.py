"""The arrival merge restores producer order across partitions fetched in chunks."""

import pytest

from streams.arrival import ArrivalMerge

pytestmark = pytest.mark.unit
A, B = ("orders", 0), ("config", 0)


def test_holds_until_every_partition_can_no_longer_precede() -> None:
    m: ArrivalMerge[str] = ArrivalMerge(max_hold_s=10)
    hw = {A: 2, B: 1}
    m.add(A, 5, 0, "a5")
    assert m.release([A, B], hw.get, now=0) == []        # B not caught up and empty: wait
    m.add(B, 3, 0, "b3")
    m.add(A, 7, 1, "a7")
    assert m.release([A, B], hw.get, now=0.1) == ["b3", "a5", "a7"]


def test_a_chunk_of_one_topic_does_not_overtake_an_older_record_of_another() -> None:
    m: ArrivalMerge[str] = ArrivalMerge(max_hold_s=10)
    hw = {A: 3, B: 2}
    for i, ts in enumerate((1, 4, 9)):
        m.add(A, ts, i, f"a{ts}")
    m.add(B, 2, 0, "b2")
    assert m.release([A, B], hw.get, now=0) == ["a1", "b2"]  # B may still deliver something older than a4
    m.add(B, 8, 1, "b8")
    assert m.release([A, B], hw.get, now=0) == ["a4", "b8", "a9"]


def test_silent_partition_blocks_at_most_max_hold() -> None:
    m: ArrivalMerge[str] = ArrivalMerge(max_hold_s=1.0)
    hw = {A: 1, B: 5}  # B has old data we will never see (already committed)
    m.add(A, 1, 0, "a1")
    assert m.release([A, B], hw.get, now=0.0) == []
    assert m.release([A, B], hw.get, now=1.5) == ["a1"]
    m.add(A, 2, 1, "a2")
    hw[A] = 2
    assert m.release([A, B], hw.get, now=1.6) == ["a2"]   # B counts as caught up at 5 now


def test_ties_break_by_topic_partition_offset() -> None:
    m: ArrivalMerge[str] = ArrivalMerge()
    hw = {A: 1, B: 1}
    m.add(A, 5, 0, "a")
    m.add(B, 5, 0, "b")
    assert m.release([A, B], hw.get, now=0) == ["b", "a"]


def test_clock_event_time_is_held_back_by_partitions_that_wait() -> None:
    from streams.clock import event_time, is_waiting

    assert event_time({"a/0": 100, "b/0": 50}, {"a/0": False, "b/0": True}) == 50
    assert event_time({"a/0": 100, "b/0": 50}, {"a/0": False, "b/0": False}) == 100
    assert event_time({"a/0": 100}, {"a/0": False, "b/0": True}) is None   # b waits with nothing sent yet
    assert is_waiting(None, 10_000, 3000) and is_waiting("0:1000", 10_000, 3000)  # unknown or stale
    assert not is_waiting("0:9000", 10_000, 3000) and is_waiting("1:9000", 10_000, 3000)


def test_an_end_offset_read_before_a_record_arrived_does_not_release_it() -> None:
    """End offsets from fetch responses: B's end offset was read at t=10, the record of A arrived at
    t=20, so B may still hold an older record sent just before; wait for a read after t=20."""
    m: ArrivalMerge[str] = ArrivalMerge(max_hold_s=10)
    hw, seen = {A: 1, B: 0}, {A: 20.0, B: 10.0}
    m.start(B, 0)
    m.add(A, 5, 0, "a5", received=20.0)
    assert m.release([A, B], hw.get, now=0, observed=seen.get) == []
    seen[B] = 21.0  # the next fetch: B still empty
    assert m.release([A, B], hw.get, now=0, observed=seen.get) == ["a5"]


def test_a_partition_leaves_in_offset_order_whatever_its_timestamps() -> None:
    m: ArrivalMerge[str] = ArrivalMerge(max_hold_s=10)
    hw = {A: 2, B: 1}
    m.add(A, 9, 0, "a9")
    m.add(A, 3, 1, "a3-later")  # an older timestamp behind a newer one in the same partition
    m.add(B, 5, 0, "b5")
    assert m.release([A, B], hw.get, now=0) == ["b5", "a9", "a3-later"]


@pytest.mark.parametrize("seed", range(20))
def test_a_fetched_chunk_held_at_once_is_held_as_record_by_record(seed: int) -> None:
    """`extend` (a chunk of one partition, as ingest holds a fetch) keeps `add`'s order, FIFO
    clamp and end-offset bookkeeping."""
    import random

    rng = random.Random(seed)
    chunks = []
    offsets = {A: 0, B: 0}
    for _ in range(6):
        tp = rng.choice((A, B))
        chunk = []
        for _ in range(rng.randint(0, 4)):
            chunk.append((rng.randint(0, 20), offsets[tp], f"{tp[0]}{offsets[tp]}"))
            offsets[tp] += 1
        chunks.append((tp, chunk))
    one: ArrivalMerge[str] = ArrivalMerge(max_hold_s=10)
    many: ArrivalMerge[str] = ArrivalMerge(max_hold_s=10)
    hw = {A: offsets[A], B: offsets[B]}
    released_one: list[str] = []
    released_many: list[str] = []
    for i, (tp, chunk) in enumerate(chunks):
        for ts, off, item in chunk:
            one.add(tp, ts, off, item)
        many.extend(tp, chunk)
        assert [one.waiting(p, hw[p]) for p in (A, B)] == [many.waiting(p, hw[p]) for p in (A, B)]
        released_one += one.release([A, B], hw.get, now=i)
        released_many += many.release([A, B], hw.get, now=i)
        assert released_many == released_one
    everything = [item for _tp, chunk in chunks for _ts, _off, item in chunk]
    assert sorted(released_one) == sorted(everything) and len(one) == len(many) == 0  # all caught up
