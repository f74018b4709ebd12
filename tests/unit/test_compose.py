"""docker-compose.yml as a Docker user meets it: listeners, volumes, healthchecks, a scalable worker.

No Docker engine runs these: they read the file as compose and apache/kafka's image would, and
compare it with the devstack and the README. tests/integration/test_compose_broker.py starts a
broker with its settings."""

from __future__ import annotations

import base64
import pathlib
import re
from typing import Any

import pytest

from devstack import stack
from tests import compose

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[2]
# what differs between the devstack and compose by design: where the broker listens and keeps data
ADDRESS_KEYS = frozenset({"listeners", "advertised.listeners", "controller.quorum.voters",
                          "listener.security.protocol.map", "inter.broker.listener.name", "log.dirs"})


def kafka(env: dict[str, str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    services = compose.load(env)["services"]
    return services, compose.kafka_properties(services["kafka"])


def test_the_image_turns_variables_into_properties_by_its_rules() -> None:
    assert compose.image_key("KAFKA_LOG_DIRS") == "log.dirs"
    assert compose.image_key("KAFKA_CONTROLLER_QUORUM_VOTERS") == "controller.quorum.voters"
    assert compose.image_key("KAFKA_ABC__DEF") == "abc_def"
    assert compose.image_key("KAFKA_ABC___DEF") == "abc-def"
    assert compose.interpolate("127.0.0.1:${P:-9092}", {}) == "127.0.0.1:9092"
    assert compose.interpolate("127.0.0.1:${P:-9092}", {"P": ""}) == "127.0.0.1:9092"
    assert compose.interpolate("${P-x}/${Q}/$$", {"P": ""}) == "//$"


@pytest.mark.parametrize("host_port", [None, "19999"])
def test_kafka_has_an_internal_listener_and_one_the_host_can_reach(host_port: str | None) -> None:
    """Containers get kafka:29092; the host gets 127.0.0.1:<published port>, the address it is told."""
    services, props = kafka({"TIERSTREAM_KAFKA_HOST_PORT": host_port} if host_port else {})
    bound, advertised = compose.listeners(props["listeners"]), compose.listeners(props["advertised.listeners"])
    assert set(bound) == {"INTERNAL", "HOST", "CONTROLLER"} and set(advertised) == {"INTERNAL", "HOST"}
    assert advertised["INTERNAL"] == ("kafka", bound["INTERNAL"][1])
    [(ip, published, container)] = compose.published(services["kafka"])
    assert container == bound["HOST"][1], "the published port is not the HOST listener's"
    assert advertised["HOST"] == (ip, published) == ("127.0.0.1", int(host_port or 9092))
    assert props["inter.broker.listener.name"] == "INTERNAL"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["controller.quorum.voters"] == f"1@kafka:{bound['CONTROLLER'][1]}"
    assert {p.split(":")[0] for p in props["listener.security.protocol.map"].split(",")} == set(bound)
    assert services["kafka"]["hostname"] == "kafka"
    for name in ("worker", "dashboard"):
        assert services[name]["environment"]["TIERSTREAM_KAFKA"] == "kafka:{}".format(advertised["INTERNAL"][1])


def test_the_broker_settings_beside_the_addresses_are_the_devstacks() -> None:
    _services, props = kafka()
    devstack = stack.broker_settings(stack.StackConfig(pathlib.Path("/nowhere")))
    assert {k: v for k, v in props.items() if k not in ADDRESS_KEYS} == {
        k: v for k, v in devstack.items() if k not in ADDRESS_KEYS}
    assert set(props) >= ADDRESS_KEYS


def test_the_cluster_id_is_a_kafka_uuid() -> None:
    cluster = compose.load()["services"]["kafka"]["environment"]["CLUSTER_ID"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster)
    assert len(base64.urlsafe_b64decode(cluster + "==")) == 16


def test_kafka_log_and_redis_aof_live_in_named_volumes() -> None:
    doc = compose.load()
    services, props = doc["services"], compose.kafka_properties(doc["services"]["kafka"])
    assert services["kafka"]["volumes"] == [f"kafka-data:{props['log.dirs']}"]
    assert services["redis"]["volumes"] == ["redis-data:/data"]  # the redis image's working directory
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert set(doc["volumes"]) == {"kafka-data", "redis-data"}


def test_every_service_is_health_checked_and_waits_for_what_it_uses() -> None:
    services = compose.load()["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] == "CMD", name
    _services, props = kafka()
    probe = services["kafka"]["healthcheck"]["test"]
    assert probe[-2:] == ["--bootstrap-server", "localhost:{}".format(compose.listeners(props["listeners"])
                                                                      ["INTERNAL"][1])]
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    for name in ("worker", "dashboard"):
        assert services[name]["depends_on"] == {"kafka": {"condition": "service_healthy"},
                                                "redis": {"condition": "service_healthy"}}
    # the extra evaluate processes (profile `scale`) start once the worker has created the topics
    assert services["evaluate"]["depends_on"] == {"worker": {"condition": "service_healthy"}}
    assert "ports" not in services["evaluate"] and services["evaluate"]["profiles"] == ["scale"]
    worker_port = services["worker"]["environment"]["TIERSTREAM_WEB_PORT"]
    assert f"http://127.0.0.1:{worker_port}/health" in services["worker"]["healthcheck"]["test"][-1]


def test_the_worker_scales_and_the_dashboard_is_published() -> None:
    services = compose.load()["services"]
    worker, dashboard = services["worker"], services["dashboard"]
    assert "ports" not in worker and "container_name" not in worker  # both would clash at --scale worker=2
    assert worker["command"] == ["tierstream", "worker"] and worker["build"] == "."
    assert dashboard["command"][:2] == ["tierstream", "dashboard"] and dashboard["build"] == "."
    port = int(dashboard["command"][dashboard["command"].index("--port") + 1])
    assert dashboard["command"][dashboard["command"].index("--host") + 1] == "0.0.0.0"
    assert compose.published(dashboard) == [("127.0.0.1", 8080, port)]
    assert not any("container_name" in s for s in services.values())


def test_the_file_is_self_contained() -> None:
    assert "shared/" not in compose.COMPOSE.read_text()


def _docker_rows() -> dict[str, list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### With Docker", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines() if line.startswith("| `")]
    return {re.findall(r"`([^`]+)`", cells[0])[0]: [c.strip() for c in cells[1:]] for cells in rows}


def test_the_readme_says_what_the_file_does() -> None:
    """The README's Docker table: image, host address, volume and healthcheck of every service."""
    rows, services = _docker_rows(), compose.load()["services"]
    assert set(rows) == set(services)
    for name, (image, host, data, healthy) in rows.items():
        service = services[name]
        assert (f"`{service['image']}`" in image) if "image" in service else ("Dockerfile" in image), name
        ports = [f"`{ip}:{port}`" for ip, port, _ in compose.published(service)]
        assert ports == re.findall(r"`127\.0\.0\.1:\d+`", host), name
        mounts = [f"volume `{v.split(':')[0]}` at `{v.split(':')[1]}`" for v in service.get("volumes", [])]
        assert all(m in data for m in mounts) and (mounts or data == "—"), name
        assert healthy and healthy != "—", name
    assert "`kafka:29092`" in rows["kafka"][1] and "`--scale worker=N`" in rows["worker"][1]
