"""The key layout: a partition's keys share one hash tag, found from the shop id as producers find it."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from redis.crc import key_slot

from plumbing.partitioner import partition_for
from projections.commit import Recorder
from projections.keys import Keys

pytestmark = pytest.mark.unit


def test_partition_for_is_kafkas_default_partitioner() -> None:
    rng = random.Random(7)
    parts = list(range(8))
    for _ in range(2000):
        key = f"shop-{rng.randrange(10**7):07d}".encode()
        assert partition_for(key, 8) == DefaultPartitioner()(key, parts, parts)


def test_every_key_of_a_partition_lies_in_one_slot_and_namespaces_spread() -> None:
    shops = [f"shop-{i:05d}" for i in range(300)]
    for p in range(8):
        k = Keys("live", home=p)
        names = [k.clock(p), k.offset(p), k.shops(p), k.seen(p, 5), k.seen_cycles(p), k.deferred(p), k.tiers(p)]
        names += [f(s) for s in shops for f in (k.shop, k.members, k.quality, k.effective, k.view, k.feed)]
        names += [k.counters(s, 1_672_588_800_000) for s in shops]
        assert {key_slot(n.encode()) for n in names} == {key_slot(k.offset(p).encode())}
        assert all(n.startswith("live:") for n in names)  # `ns:*` still names the whole namespace
    slots = {key_slot(Keys(ns).offset(p).encode()) for ns in ("live", "rebuilt") for p in range(8)}
    assert len(slots) == 16


def test_a_reader_finds_a_shops_keys_where_its_partitions_fold_wrote_them() -> None:
    reader = Keys("live", partitions=8)
    for i in range(200):
        shop = f"shop-{i:05d}"
        home = Keys("live", home=partition_for(shop.encode(), 8))
        assert (reader.shop(shop), reader.view(shop), reader.feed(shop)) == (home.shop(shop), home.view(shop),
                                                                          home.feed(shop))
    with pytest.raises(ValueError, match="partitions"):
        Keys("live").view("shop-1")


def test_relative_names_compare_two_namespaces() -> None:
    a, b = Keys("live", home=3), Keys("rebuilt", home=3)
    assert a.relative(a.shop("s1")) == b.relative(b.shop("s1")) == ":{p3}:s1:s"
    assert a.relative(a.platform_feed()) == ":feed"


def test_recorder_chunks_commands_and_pairs_mset() -> None:
    rec = Recorder()
    rec.set("k0", 1)
    rec.mset({f"k{i}": i for i in range(1, 1502)})
    rec.sadd("s", *range(2500))
    assert rec.keys[:2] == ["k0", "k1"] and len(rec.keys) == 1 + 1501 + 3
    assert rec.args[:4] == ["SET", 1, 1, 1]
    assert rec.args[4:7] == ["MSET", 1000, 1000]
    with pytest.raises(ValueError, match="embed"):
        rec.execute_command("EVAL", "return 1", 0)
