"""The example enforcer beside a worker through a scenario: bootstrap from shop-state mid-run, follow the
rest, drop redelivered outputs, end with the channels the file form's outputs block (issue 23)."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from examples.enforcer import FOLLOWED, Table, run
from plumbing.kafka_security import kafka_kwargs
from plumbing.settings import Settings
from replay.file import replay_file
from tests.integration.live import (
    fold_lines,
    running_worker,
    settings_for,
)
from tests.paths import PUBLIC
from tiering.outputs import OUTPUT_TOPIC
from tiering.shopstate import PRESENT_TYPES, Present, blocked_channels

pytestmark = pytest.mark.integration
SCENARIO = PUBLIC / "seed000_example_a" / "input.jsonl"


def file_form_present(lines: list[bytes]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(blocked channels, tiers) per shop, from the file form's outputs of `lines`."""
    out = io.BytesIO()
    replay_file(io.BytesIO(b"\n".join(lines) + b"\n"), out)
    presents: dict[str, Present] = {}
    for line in out.getvalue().splitlines():
        o = orjson.loads(line)
        if o["type"] in PRESENT_TYPES:
            presents.setdefault(o["shop_id"], Present(o["shop_id"])).apply(o)
    return ({sid: b for sid, p in sorted(presents.items()) if (b := blocked_channels(p.p))},
            {sid: p.p["tier"] for sid, p in sorted(presents.items())})


def wait_for(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"not reached in {timeout}s")


def followed_ends(settings: Settings) -> dict[tuple[str, int], int]:
    async def go() -> dict[tuple[str, int], int]:
        c = AIOKafkaConsumer(**kafka_kwargs(settings), group_id=None)
        await c.start()
        try:
            tps = [TopicPartition(settings.topic(t), n) for t in FOLLOWED for n in range(settings.partitions)]
            return {(tp.topic, tp.partition): off for tp, off in (await c.end_offsets(tps)).items()}
        finally:
            await c.stop()
    return asyncio.run(go())


def redeliver(settings: Settings, since: dict[tuple[str, int], int]) -> int:
    """Send the followed topics' records from `since` on again, as a re-folding worker or a producer
    retry would: same key and value, after the originals."""
    async def go() -> int:
        c = AIOKafkaConsumer(**kafka_kwargs(settings), group_id=None, auto_offset_reset="earliest")
        p = AIOKafkaProducer(**kafka_kwargs(settings), acks="all")
        await c.start()
        await p.start()
        try:
            tps = [TopicPartition(settings.topic(t), n) for t in FOLLOWED for n in range(settings.partitions)]
            ends = await c.end_offsets(tps)
            c.assign(tps)
            for tp in tps:
                c.seek(tp, since[tp.topic, tp.partition])
            n = 0
            while any([await c.position(tp) < ends[tp] for tp in tps]):
                for tp, records in (await c.getmany(timeout_ms=1000)).items():
                    for r in records:
                        if r.offset < ends[tp]:
                            await p.send_and_wait(tp.topic, r.value, key=r.key, partition=tp.partition)
                            n += 1
            return n
        finally:
            await c.stop()
            await p.stop()
    return asyncio.run(go())


def test_the_enforcer_bootstraps_mid_run_follows_and_ends_with_the_file_forms_blocked_channels(
        kafka_bootstrap: str, redis_url: str, unique: str, tmp_path: Path) -> None:
    lines = [ln for ln in SCENARIO.read_bytes().splitlines() if ln.strip()]
    # cut where the file form has a channel blocked, so the bootstrap alone must carry it
    cut = next(k for k in range(1, len(lines)) if file_form_present(lines[:k])[0])
    blocked_at_cut, tiers_at_cut = file_form_present(lines[:cut])
    blocked_at_end, tiers_at_end = file_form_present(lines)
    assert blocked_at_cut != blocked_at_end  # the follow has something to change
    s = settings_for(kafka_bootstrap, redis_url, unique)
    table, changes = Table(), []
    with running_worker(s, tmp_path, redis_url) as w:
        fold_lines([w], s, b"\n".join(lines[:cut]) + b"\n")
        at_cut = followed_ends(s)
        # margin 0: start following at the end, so what the table knows at the cut came from shop-state alone
        enforcer = threading.Thread(target=lambda: asyncio.run(
            run(s, idle_seconds=45, margin_s=0, on_change=lambda sid, b: changes.append((sid, b)), table=table)))
        enforcer.start()
        wait_for(lambda: table.blocked() == blocked_at_cut)
        assert table.tiers() == tiers_at_cut and table.duplicates == 0
        fold_lines([w], s, b"\n".join(lines[cut:]) + b"\n")
        wait_for(lambda: table.blocked() == blocked_at_end)
        resent = redeliver(s, at_cut)
        enforcer.join(timeout=120)
        assert not enforcer.is_alive()
    assert table.blocked() == blocked_at_end and table.tiers() == tiers_at_end, w.tail()
    assert resent > 0 and table.duplicates == resent  # every redelivered output dropped by its event_id
    last_reported = dict(changes)
    changed_shops = {sid for sid in set(blocked_at_cut) | set(blocked_at_end)
                     if blocked_at_cut.get(sid) != blocked_at_end.get(sid)}
    assert {sid: last_reported[sid] for sid in changed_shops} == \
        {sid: blocked_at_end.get(sid, {}) for sid in changed_shops}
    assert all(OUTPUT_TOPIC[t] in FOLLOWED for t in ("tier_changed", "recruitment_restricted"))
