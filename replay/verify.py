"""Compare two Redis namespaces key by key (what `replay --verify` and the tests use)."""

from __future__ import annotations

from typing import Any

import orjson
import redis


def dump(redis_url: str, namespace: str) -> dict[str, Any]:
    """Every key of a namespace with its value, normalised: no offsets, no run counters.

    Offsets differ between a live run and a rebuild (the worker's ledger reads include
    watermark markers at other positions); `stats` counts what a run saw (duplicates,
    late), not what the state is."""
    r: Any = redis.Redis.from_url(redis_url)  # bytes replies
    out: dict[str, Any] = {}
    try:
        for key in sorted(r.scan_iter(f"{namespace}:*", count=1000)):
            name = key.decode()[len(namespace):]
            if name.endswith(":offset"):
                continue
            kind = r.type(key).decode()
            if kind == "stream":
                continue  # dashboard feeds: announcements timed by the wall clock, not state
            value: Any
            if kind == "string":
                value = orjson.loads(r.get(key))
                if name.endswith(":clock"):
                    value.pop("stats", None)
            elif kind == "hash":
                value = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
            elif kind == "set":
                value = sorted(v.decode() for v in r.smembers(key))
            elif kind == "zset":
                value = [(m.decode(), s) for m, s in r.zrange(key, 0, -1, withscores=True)]
            else:
                value = [v.decode() for v in r.lrange(key, 0, -1)]
            out[name] = value
        return out
    finally:
        r.close()


def diff_namespaces(redis_url: str, live: str, rebuilt: str) -> list[str]:
    a, b = dump(redis_url, live), dump(redis_url, rebuilt)
    diffs = [f"only in {live}: {k}" for k in sorted(a.keys() - b.keys())]
    diffs += [f"only in {rebuilt}: {k}" for k in sorted(b.keys() - a.keys())]
    diffs += [f"differs: {k}" for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]
    return diffs
