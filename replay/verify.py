"""Compare two Redis namespaces key by key (what `replay --verify` and the tests use)."""

from __future__ import annotations

from typing import Any

import orjson

from plumbing.redis_clients import sync_redis
from projections.keys import Keys


def dump(redis_url: str, namespace: str) -> dict[str, Any]:
    """Every key of a namespace with its value, normalised: no offsets, no run counters.

    Offsets differ between a live run and a rebuild (the worker's ledger reads include
    watermark markers at other positions); `stats` counts what a run saw (duplicates,
    late), not what the state is."""
    r: Any = sync_redis(redis_url)  # bytes replies
    keys = Keys(namespace)
    out: dict[str, Any] = {}
    try:
        for key in sorted(r.scan_iter(f"{namespace}:*", count=1000)):
            name = keys.relative(key.decode())
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


def diff_outputs(settings: Any, rebuilt: list[dict[str, Any]], idle_seconds: float = 2.0) -> list[str]:
    """The rebuild's outputs against what was published live, by output `event_id` and payload.

    Dead letters are ingest's, not the fold's, so they are left out on both sides."""
    import asyncio
    import io

    from plumbing.kafka import consume

    buf = io.BytesIO()
    asyncio.run(consume(settings, buf, idle_seconds))
    live: dict[str, bytes] = {}
    for line in buf.getvalue().splitlines():
        if line:
            o = orjson.loads(line)
            if o.get("type") != "dead_letter":
                live.setdefault(o["event_id"], orjson.dumps(o, option=orjson.OPT_SORT_KEYS))
    mine = {o["event_id"]: orjson.dumps(o, option=orjson.OPT_SORT_KEYS) for o in rebuilt
            if o.get("type") != "dead_letter"}
    diffs = [f"output only live: {i}" for i in sorted(live.keys() - mine.keys())]
    diffs += [f"output only rebuilt: {i}" for i in sorted(mine.keys() - live.keys())]
    diffs += [f"output differs: {i}" for i in sorted(live.keys() & mine.keys()) if live[i] != mine[i]]
    return diffs


def diff_shop_states(settings: Any, rebuilt: list[dict[str, Any]], idle_seconds: float = 2.0) -> list[str]:
    """The rebuild's `shop_state` records against the shop-state topic: every record on the topic is
    one of the rebuild's, byte for byte, and each shop's last record is the rebuild's last (older ones
    may be compacted away on the topic)."""
    import asyncio
    import io

    from plumbing.kafka import consume
    from plumbing.topics import SHOP_STATE

    buf = io.BytesIO()
    asyncio.run(consume(settings, buf, idle_seconds, topics=(SHOP_STATE,)))
    live = [line for line in buf.getvalue().splitlines() if line]
    mine = {o["event_id"]: orjson.dumps(o) for o in rebuilt}
    diffs: list[str] = []
    last_live: dict[str, bytes] = {}
    for line in live:
        o = orjson.loads(line)
        last_live[o["shop_id"]] = line
        if mine.get(o["event_id"]) != line:
            diffs.append(f"shop-state {'differs' if o['event_id'] in mine else 'only live'}: {o['event_id']}")
    last_mine = {o["shop_id"]: orjson.dumps(o) for o in rebuilt}
    diffs += [f"shop-state of {sid}: the last record differs" for sid in sorted(last_live.keys() | last_mine.keys())
              if last_live.get(sid) != last_mine.get(sid)]
    return diffs
