"""The shop-state topic on the devstack: compacted, equal to the fold of every output, the same
records from a rebuild as live (issue 23)."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from plumbing.kafka import consume
from plumbing.kafka_security import kafka_kwargs
from plumbing.settings import Settings
from plumbing.topics import SHOP_STATE, started
from replay.file import replay_file
from replay.ledger import rebuild
from simulator.workload import SimConfig, Simulator
from tests.integration.live import (
    consume_all,
    delete_namespace,
    fold_lines,
    running_worker,
    settings_for,
)
from tiering.shopstate import PRESENT_TYPES, Present, present_of

pytestmark = pytest.mark.integration
Processed = tuple[Settings, bytes, list[bytes], list[bytes]]


def read_topic(settings: Settings, topic: str, idle_seconds: float = 2.0) -> list[bytes]:
    buf = io.BytesIO()
    asyncio.run(consume(settings, buf, idle_seconds, topics=(topic,)))
    return [ln for ln in buf.getvalue().splitlines() if ln]


@pytest.fixture(scope="module")
def processed(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processed]:
    """A simulated workload through one worker: (settings, input, outputs, shop-state records)."""
    lines = b"\n".join(Simulator(SimConfig(shops=20, days=65, seed=2, events_per_shop_day=10)).lines()) + b"\n"
    s = settings_for(kafka_bootstrap, redis_url, f"t{uuid.uuid4().hex[:8]}")
    with running_worker(s, tmp_path_factory.mktemp("shopstate"), redis_url) as w:
        fold_lines([w], s, lines)
        yield s, lines, consume_all(s), read_topic(s, SHOP_STATE)


def fold_outputs(outputs: list[Any]) -> dict[str, dict[str, Any]]:
    presents: dict[str, Present] = {}
    for o in outputs:
        if o["type"] in PRESENT_TYPES:
            presents.setdefault(o["shop_id"], Present(o["shop_id"])).apply(o)
    return {sid: p.p for sid, p in sorted(presents.items())}


def last_per_shop(records: list[bytes]) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for line in records:
        rec = orjson.loads(line)
        last[rec["shop_id"]] = present_of(rec)
    return dict(sorted(last.items()))


def test_shop_state_alone_gives_the_present_that_folding_every_output_gives(processed: Processed) -> None:
    _s, lines, outputs, states = processed
    from_topics = fold_outputs([orjson.loads(o) for o in outputs])  # each topic in order, interleaved as read
    out = io.BytesIO()
    replay_file(io.BytesIO(lines), out)
    file_outputs = [orjson.loads(o) for o in out.getvalue().splitlines()]
    assert sum(o["type"] == "recruitment_restricted" for o in file_outputs) > 0  # not only tiers to compare
    from_file_form = fold_outputs(file_outputs)
    assert len(from_file_form) == 20
    assert last_per_shop(states) == from_topics == from_file_form


def test_a_rebuild_gives_the_live_shop_state_records_byte_for_byte(processed: Processed, unique: str) -> None:
    s, _lines, _outputs, states = processed
    try:
        result = asyncio.run(rebuild(s, f"{unique}-rebuilt", keep_outputs=False, shop_state=True))
    finally:
        delete_namespace(str(s.redis), f"{unique}-rebuilt")
    rebuilt: dict[int, list[bytes]] = {}
    for rec in result.shop_states:
        rebuilt.setdefault(rec["ledger"]["partition"], []).append(orjson.dumps(rec))
    live: dict[int, list[bytes]] = {}
    for line in states:
        live.setdefault(orjson.loads(line)["ledger"]["partition"], []).append(line)
    assert len(states) > 20
    assert rebuilt == live  # the same records in the same order on every partition (nothing compacted yet)


TOPIC_LEVEL = 1  # DescribeConfigs config_source: set on the topic itself (DYNAMIC_TOPIC_CONFIG)


async def topic_configs(settings: Settings, topic: str) -> dict[str, tuple[str, int]]:
    """The topic's configs: name -> (value, where it comes from)."""
    admin = await started(AIOKafkaAdminClient(**kafka_kwargs(settings)))
    try:
        [resp] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic(topic))])
        [(_err, _msg, _rtype, _name, entries)] = resp.resources
        return {e[0]: (e[1], e[3]) for e in entries}
    finally:
        await admin.close()


def test_shop_state_is_compacted_and_the_tier_history_kept_forever(processed: Processed) -> None:
    """Set on the topics at creation, not inherited (the devstack's broker keeps everything anyway)."""
    s = processed[0]
    assert asyncio.run(topic_configs(s, SHOP_STATE))["cleanup.policy"] == ("compact", TOPIC_LEVEL)
    for topic in ("tier-changes", "tier-assessments", "ledger"):
        cfg = asyncio.run(topic_configs(s, topic))
        assert cfg["retention.ms"] == ("-1", TOPIC_LEVEL) and cfg["cleanup.policy"][0] == "delete", topic
    assert asyncio.run(topic_configs(s, "recruitment-throttles"))["retention.ms"][1] != TOPIC_LEVEL  # the broker's


def test_a_rebuild_publishes_the_same_shop_state_when_asked(processed: Processed, unique: str) -> None:
    s, _lines, _outputs, states = processed
    try:
        result = asyncio.run(rebuild(s, f"{unique}-published", keep_outputs=False, shop_state=True,
                                     publish_shop_state=True))
    finally:
        delete_namespace(str(s.redis), f"{unique}-published")
    after = read_topic(s, SHOP_STATE)
    # per shop (one partition, in order): the live records, then the rebuild's, the same again
    # (the topic is not compacted this soon)
    assert by_shop(after) == {sid: recs + recs for sid, recs in by_shop(states).items()}
    assert by_shop([orjson.dumps(r) for r in result.shop_states]) == by_shop(states)
    assert last_per_shop(after) == last_per_shop(states)


def by_shop(records: list[bytes]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for line in records:
        out.setdefault(orjson.loads(line)["shop_id"], []).append(line)
    return out


def test_every_live_output_and_shop_state_record_validates_against_its_schema(processed: Processed) -> None:
    import jsonschema

    from cli.schema import shipped
    from tiering.schemas import OUTPUT_TYPES, output_schema

    published = {t: jsonschema.Draft202012Validator(orjson.loads(shipped(t))) for t in OUTPUT_TYPES}
    closed = {t: jsonschema.Draft202012Validator(output_schema(t, closed=True)) for t in OUTPUT_TYPES}
    _s, _lines, outputs, states = processed
    records = [orjson.loads(line) for line in [*outputs, *states]]
    for o in records:
        for validator in (published[o["type"]], closed[o["type"]]):
            error = jsonschema.exceptions.best_match(validator.iter_errors(o))
            assert error is None, f"{o['type']}: {error.message if error else ''}\n{o}"
    assert {"dead_letter", "tier_changed", "recruitment_restricted", "shop_state"} <= {o["type"] for o in records}
