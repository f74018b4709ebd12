"""Namespaces as things an operator moves: promote one to be live, drop one no longer needed."""

from __future__ import annotations

from typing import Any

from plumbing.redis_clients import sync_redis
from projections.keys import Keys, pointer_key, resolve_namespace_sync


class NamespaceError(RuntimeError):
    """A promote or drop that would lose or confuse state; the message says why."""


def _has_state(r: Any, namespace: str, partitions: int) -> bool:
    keys = Keys(namespace)
    pipe = r.pipeline(transaction=False)  # one GET each: the offsets lie in different slots
    for p in range(partitions):
        pipe.get(keys.offset(p))
    return any(v is not None for v in pipe.execute())


def promote(redis_url: str, name: str, namespace: str, partitions: int) -> str:
    """Point readers and workers of `name` at `namespace` in one atomic SET; return the previous target.

    Workers notice within a second (streams/app.py `pointer`), switch, and resume every ledger
    partition from the promoted namespace's own offsets, so it catches up to the live position."""
    r: Any = sync_redis(redis_url)
    try:
        if not _has_state(r, namespace, partitions):
            raise NamespaceError(f"namespace {namespace!r} holds no folded ledger offsets: rebuild it first "
                                 f"(tierstream replay --from-kafka --namespace {namespace})")
        old = r.set(pointer_key(name), namespace, get=True)
        return old.decode() if old is not None else name
    finally:
        r.close()


def drop(redis_url: str, name: str, namespace: str, batch: int = 5000) -> int:
    """Delete every key of `namespace`; refuse the one `name` currently points at. Returns keys deleted."""
    r: Any = sync_redis(redis_url)
    try:
        if resolve_namespace_sync(r, name) == namespace:
            raise NamespaceError(f"namespace {namespace!r} is live (the pointer {name!r} names it); "
                                 "promote another one first")
        n = 0
        chunk: list[bytes] = []
        for key in r.scan_iter(f"{namespace}:*", count=batch):
            chunk.append(key)
            if len(chunk) >= batch:
                n += r.unlink(*chunk)
                chunk.clear()
        if chunk:
            n += r.unlink(*chunk)
        return int(n)
    finally:
        r.close()
