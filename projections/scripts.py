"""The fold state's Lua scripts, and how they and MGETs are queued on a (cluster) pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.commit import embed


def queue_script(pipe: Any, script: str, keys: Sequence[Any], args: Sequence[Any]) -> None:
    """Queue a Lua script on a pipeline or transaction (sync or asyncio) as EVAL of its text.

    redis-py's registered Script, queued on a pipeline, makes the pipeline ask SCRIPT EXISTS
    before every execute: one more round trip per commit and per ingest flush. EVAL sends the
    text (Redis finds the compiled script in its cache by its SHA1) and, unlike EVALSHA, cannot
    fail inside a MULTI for a script cache a Redis restart emptied. (As a command: redis-py's
    cluster pipeline has no `eval` method for it.)"""
    pipe.execute_command("EVAL", script, len(keys), *keys, *args)


def queue_mget(pipe: Any, keys: Sequence[Any]) -> None:
    """Queue an MGET of keys of one slot (a partition's) on a pipeline. redis-py's cluster pipeline
    refuses its `mget` method, keys of many slots or not; the command itself is routed by slot."""
    pipe.execute_command("MGET", *keys)


MGET_CHUNK = 1000  # keys per MGET
MEMBER_CACHE = 200_000  # member records one partition's store keeps between batches
COUNTS_CHUNK = 1000  # shops per counts script call
# Per shop (KEYS: its effective and quality zsets), at its boundary b (ARGV[1 + i]): members (ZCARD),
# quality and effective members (until > b), and, when ARGV[1] (the cycle start) is not -1, who
# fell silent in (start, b]. One call for a thousand shops instead of four commands per shop.
COUNTS_LUA = """
local start = ARGV[1]
local out = {}
for i = 1, #KEYS / 2 do
  local eff, q, b = KEYS[2 * i - 1], KEYS[2 * i], ARGV[i + 1]
  local silent = {}
  if start ~= '-1' then silent = redis.call('ZRANGEBYSCORE', eff, '(' .. start, b) end
  out[i] = {redis.call('ZCARD', eff), redis.call('ZCOUNT', q, '(' .. b, '+inf'),
            redis.call('ZCOUNT', eff, '(' .. b, '+inf'), silent}
end
return out
"""

# KEYS: per shop its member hash, effective and quality zsets; ARGV: per shop the number of
# members it changed, then per member: user id, record, and for the effective and the quality
# zset a new score, '-' (leaves it) or '' (unchanged there). One call per partition and batch
# instead of up to five commands per shop (their client-side cost was most of a commit at a
# thousand shops a batch).
MEMBERS_LUA = embed("members", """
local a, STEP = 1, 2000
local function call_chunked(cmd, key, items)
  for i = 1, #items, STEP do
    redis.call(cmd, key, unpack(items, i, math.min(i + STEP - 1, #items)))
  end
end
for s = 1, #KEYS / 3 do
  local h, e, q = KEYS[3 * s - 2], KEYS[3 * s - 1], KEYS[3 * s]
  local n = tonumber(ARGV[a]); a = a + 1
  local records, eadd, qadd, erem, qrem = {}, {}, {}, {}, {}
  for _ = 1, n do
    local u, eu, qu = ARGV[a], ARGV[a + 2], ARGV[a + 3]
    records[#records + 1] = u; records[#records + 1] = ARGV[a + 1]
    if eu == '-' then erem[#erem + 1] = u elseif eu ~= '' then eadd[#eadd + 1] = eu; eadd[#eadd + 1] = u end
    if qu == '-' then qrem[#qrem + 1] = u elseif qu ~= '' then qadd[#qadd + 1] = qu; qadd[#qadd + 1] = u end
    a = a + 4
  end
  call_chunked('HSET', h, records)
  call_chunked('ZADD', e, eadd)
  call_chunked('ZADD', q, qadd)
  call_chunked('ZREM', e, erem)
  call_chunked('ZREM', q, qrem)
end
return 0
""")
