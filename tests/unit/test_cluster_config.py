"""TIERSTREAM_REDIS naming a Redis Cluster: the form, and one clear line when it is malformed."""

from __future__ import annotations

import pytest

from plumbing.redis_clients import RedisConfigError, cluster_seeds

pytestmark = pytest.mark.unit


def test_a_cluster_url_gives_its_seed_nodes_and_credentials() -> None:
    assert cluster_seeds("redis-cluster://127.0.0.1:17100,127.0.0.1:17101") == \
        ([("127.0.0.1", 17100), ("127.0.0.1", 17101)], {})
    assert cluster_seeds("redis-cluster://app:s%40cret@10.0.0.5:6379/") == \
        ([("10.0.0.5", 6379)], {"username": "app", "password": "s@cret"})
    assert cluster_seeds("redis-cluster://:pw@h:1") == ([("h", 1)], {"username": None, "password": "pw"})
    assert cluster_seeds("redis://127.0.0.1:6379/0") is None  # a single Redis: not a cluster URL


@pytest.mark.parametrize(("url", "says"), [
    ("redis-cluster://127.0.0.1", "takes host:port"),
    ("redis-cluster://127.0.0.1:17100,", "takes host:port"),
    ("redis-cluster://h:port", "takes host:port"),
    ("redis-cluster://h:1/2", "only database 0"),
])
def test_a_malformed_cluster_url_is_refused_in_one_line(url: str, says: str) -> None:
    with pytest.raises(RedisConfigError, match=says) as exc:
        cluster_seeds(url)
    assert "\n" not in str(exc.value) and "TIERSTREAM_REDIS" in str(exc.value)
