"""One atomic commit per ledger partition: its writes, read models and offset in one script, fenced.

A partition's keys lie in one slot (projections/keys.py), so one Lua script can write them all
on a single Redis and on a Redis Cluster alike. The script first compares the partition's stored
offset with the one the batch was folded from and writes nothing when they differ (another worker
committed first: `FencedOut`, and the batch is re-folded). The stores queue their writes on a
`Recorder`, which takes the pipeline calls they used on a MULTI; the scripts of all partitions of
a pass go in one pipeline, one round trip on a single Redis (WATCH, the offset read and MULTI/EXEC
were three), one per node on a cluster. Partitions commit independently: a crash between two of
them leaves each at its own offset, equal to a replay of its ledger up to there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

CHUNK = 1000  # items per command inside the script (Lua's unpack takes at most ~8000)


class FencedOut(RuntimeError):
    """The partition's offset moved under this batch: another worker committed first."""


class Committable(Protocol):
    """What `commit_many` needs of a partition's store (projections.redis_store.RedisStore)."""

    p: int
    offset: int

    def offset_key(self) -> str: ...
    def write(self, pipe: Any, offset: int) -> None: ...
    def committed(self, offset: int) -> None: ...


# Functions the stores queue as scripts (queue_script) that the commit script runs in place:
# script text -> its name in COMMIT_LUA. Filled by `embed`.
_EMBEDDED: dict[str, str] = {}
_FUNCTIONS: list[str] = []


def embed(name: str, script: str) -> str:
    """Let `script` (KEYS/ARGV Lua) run inside a partition's commit; returns it unchanged."""
    _EMBEDDED[script] = name
    _FUNCTIONS.append(f"local function {name}(KEYS, ARGV)\n{script}\nend\n")
    return script


# KEYS[1]: the partition's offset; ARGV[1]: the offset the batch was folded from (-1: none). Then
# ops, each ARGV: name, number of keys, number of args, the args; its keys follow in KEYS. MSET
# pairs its keys with its args; an embedded function gets its own KEYS and ARGV; any other
# command takes its keys, then its args. Returns {1}, or {0, stored offset} when fenced.
_BODY = """
local stored = redis.call('GET', KEYS[1]) or '-1'
if stored ~= ARGV[1] then return {0, stored} end
local k, a = 2, 2
while a <= #ARGV do
  local op, nk, na = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  local ks, as = {}, {}
  for i = 1, nk do ks[i] = KEYS[k + i - 1] end
  for i = 1, na do as[i] = ARGV[a + i - 1] end
  k, a = k + nk, a + na
  local fn = EMBEDDED[op]
  if fn then
    fn(ks, as)
  elseif op == 'MSET' then
    local kv = {}
    for i = 1, nk do kv[2 * i - 1] = ks[i]; kv[2 * i] = as[i] end
    redis.call('MSET', unpack(kv))
  else
    for i = 1, na do ks[nk + i] = as[i] end
    redis.call(op, unpack(ks))
  end
end
return {1}
"""


def commit_script() -> str:
    """The commit script's text, with every embedded function defined before it runs."""
    table = ", ".join(f"{n} = {n}" for n in _EMBEDDED.values())
    return "".join(_FUNCTIONS) + f"local EMBEDDED = {{{table}}}\n" + _BODY


class Recorder:
    """Takes the pipeline calls a store makes for its writes and turns them into COMMIT_LUA's ops."""

    def __init__(self) -> None:
        self.keys: list[Any] = []
        self.args: list[Any] = []

    def _op(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> None:
        self.keys += keys
        self.args += (name, len(keys), len(args), *args)

    def _chunked(self, name: str, key: Any, items: Sequence[Any], step: int = CHUNK) -> None:
        for i in range(0, len(items), step):
            self._op(name, [key], items[i:i + step])

    def set(self, key: Any, value: Any) -> None:
        self._op("SET", [key], [value])

    def mset(self, mapping: dict[Any, Any]) -> None:
        items = list(mapping.items())
        for i in range(0, len(items), CHUNK):
            part = items[i:i + CHUNK]
            self._op("MSET", [k for k, _v in part], [v for _k, v in part])

    def delete(self, *keys: Any) -> None:
        for i in range(0, len(keys), CHUNK):
            self._op("DEL", keys[i:i + CHUNK], [])

    def sadd(self, key: Any, *members: Any) -> None:
        self._chunked("SADD", key, members)

    def srem(self, key: Any, *members: Any) -> None:
        self._chunked("SREM", key, members)

    def rpush(self, key: Any, *values: Any) -> None:
        self._chunked("RPUSH", key, values)

    def hdel(self, key: Any, *fields: Any) -> None:
        self._chunked("HDEL", key, fields)

    def hset(self, key: Any, mapping: dict[Any, Any]) -> None:
        self._chunked("HSET", key, [x for kv in mapping.items() for x in kv], 2 * (CHUNK // 2))

    def execute_command(self, command: str, script: str, numkeys: int, *keys_and_args: Any) -> None:
        """An embedded script queued with `queue_script` (EVAL): its function runs in the commit."""
        name = _EMBEDDED.get(script) if command == "EVAL" else None
        if name is None:
            raise ValueError("a script inside a partition's commit must be registered with commit.embed")
        self._op(name, keys_and_args[:numkeys], keys_and_args[numkeys:])

    def queue(self, pipe: Any, offset_key: str, expected: int, script: str) -> None:
        """Queue the partition's commit on `pipe` (EVAL: the text is cached by its SHA1 in Redis)."""
        pipe.execute_command("EVAL", script, 1 + len(self.keys), offset_key, *self.keys, expected, *self.args)


Extra = Callable[[Any], None] | None  # more writes for the partition's commit (read models)
After = Callable[[Any], None] | None  # writes outside the partition's slot once it committed


def commit_many(client: Any, batches: Sequence[tuple[Committable, int, Extra]],
                after: Sequence[After] = ()) -> None:
    """Commit each partition's batch atomically on its own slot, fenced by its stored offset.

    Each batch is (store, its new offset, extra writes for the same commit or None). The partitions
    that were not fenced commit (and then run their `after`, e.g. the platform feed, a namespace-
    wide key); FencedOut names the ones that were, after the others committed."""
    script = commit_script()
    pipe = client.pipeline(transaction=False)
    for store, offset, also in batches:
        rec = Recorder()
        store.write(rec, offset)
        if also is not None:
            also(rec)
        rec.queue(pipe, store.offset_key(), store.offset, script)
    results = pipe.execute()
    fenced: list[str] = []
    tail = client.pipeline(transaction=False)
    queued = False
    for i, ((store, offset, _also), res) in enumerate(zip(batches, results, strict=True)):
        if int(res[0]) != 1:
            raw = res[1].decode() if isinstance(res[1], bytes) else res[1]
            fenced.append(f"partition {store.p}: offset moved from {store.offset} to {raw}")
            continue
        store.committed(offset)
        extra = after[i] if i < len(after) else None
        if extra is not None:
            extra(tail)
            queued = True
    if queued:
        tail.execute()
    if fenced:
        raise FencedOut("; ".join(fenced))
