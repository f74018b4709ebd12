"""docker-compose.yml parses and matches interfaces.md; settings read the environment once; the
worker process keeps its log level and times and shortens the collector's pauses."""

import pathlib

import pytest
import yaml

from plumbing.settings import Settings, redact_url

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_compose_names_kafka_redis_and_a_worker_with_the_interface_variables() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"kafka", "redis", "worker"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    env = services["worker"]["environment"]
    assert {"TIERSTREAM_KAFKA", "TIERSTREAM_REDIS", "TIERSTREAM_TOPIC_PREFIX", "TIERSTREAM_NAMESPACE"} <= set(env)


def test_settings_defaults_match_interfaces() -> None:
    s = Settings.from_env({})
    assert (s.kafka, str(s.redis), s.topic_prefix, s.namespace) == (
        "localhost:9092", "redis://localhost:6379/0", "", "live")


def test_settings_never_show_a_redis_password() -> None:
    s = Settings.from_env({"TIERSTREAM_REDIS": "redis://user:hunter2@host:6380/1", "TIERSTREAM_TOPIC_PREFIX": "x-"})
    assert "hunter2" not in repr(s) and "hunter2" not in repr(s.redis)
    assert redact_url(str(s.redis)) == "redis://user:***@host:6380/1"
    assert s.topic("ledger") == "x-ledger"


def test_settings_are_frozen_and_validate() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.namespace = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="TIERSTREAM_PARTITIONS"):
        Settings.from_env({"TIERSTREAM_PARTITIONS": "zero"})


def test_the_worker_keeps_the_root_logger_at_its_level() -> None:
    """faust's terminal spinner would lower the root logger to DEBUG (and aiokafka's debug calls
    would build records a handler then drops); the worker runs without it."""
    import logging

    from streams.app import QuietWorker, create_app

    app, _pipeline = create_app(Settings.from_env({"TIERSTREAM_REDIS": "redis://127.0.0.1:1/0"}))  # never connects
    logger = logging.getLogger("tierstream-test-root")
    logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.WARNING)
    QuietWorker(app, loglevel="warning", quiet=True).on_setup_root_logger(logger, logging.WARNING)
    assert logger.level == logging.WARNING
    assert not logger.isEnabledFor(logging.DEBUG)


def test_the_worker_times_older_generation_collections() -> None:
    import gc

    from plumbing.metrics import Metrics, watch_gc

    metrics = Metrics()
    on_gc = watch_gc(metrics)
    try:
        gc.collect(0)
        gc.collect(1)
        gc.collect(2)
    finally:
        gc.callbacks.remove(on_gc)
    snap = metrics.snapshot()
    assert snap["gc_gen1_ms"]["n"] >= 1 and snap["gc_gen2_ms"]["n"] >= 1
    assert "gc_gen0_ms" not in snap  # the young generation is collected too often to be worth a window
    assert 0 <= snap["gc_gen2_ms"]["p50"] < 60_000


def test_gc_tenure_keeps_old_objects_out_of_collections_until_the_full_one() -> None:
    import gc
    import weakref

    from plumbing.metrics import GcTenure

    class Node:
        other: object = None

    tenure = GcTenure(full_every_s=10)
    try:
        tenure.tick(0.0)
        a, b = Node(), Node()
        a.other, b.other = b, a  # a reference cycle, alive when the next tick freezes it
        alive = weakref.ref(a)
        tenure.tick(1.0)
        assert gc.get_freeze_count() > 0
        del a, b
        gc.collect()
        assert alive() is not None  # frozen: no collection looks at it
        tenure.tick(5.0)
        assert alive() is not None
        tenure.tick(10.0)  # the full collection, over everything
        assert alive() is None
    finally:
        gc.unfreeze()
