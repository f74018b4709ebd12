"""The file form on N processes: shops split by a hash of their id, outputs merged in file-form order.

Every shard reads and validates every line, because the clock is shared: each valid event moves
the watermark, the dedupe ids and the ledger seq of every shard, so boundaries close, timers fire
and lateness is decided at the same line in all of them. A shard folds into shop state only the
events of its own shops (`Folder.fold(own=False)` for the others) and reports only the outputs of
its own shops; global events (standards, promos) are folded by all. The lines with no shop —
dead letters and late global events — belong to shard 0. Each shard writes `(line, shop, output)`
in the order of `replay.file.replay_numbered`; a merge on `(line, shop)` then gives the file
form's order exactly, since a shop's outputs all come from one shard.
"""

from __future__ import annotations

import heapq
import os
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from typing import Any

import orjson

from replay.file import Owns, ReplayStats, paused_gc, replay_numbered
from replay.procs import Progress, run_children
from tiering.fold import Folder
from tiering.params import RuleParams

PROGRESS_EVERY = 50_000  # lines between a shard's progress reports


def shard_of(shop_id: str, shards: int) -> int:
    """The shard of a shop: CRC-32 of its UTF-8 id (Python's str hash is salted per process)."""
    return zlib.crc32(shop_id.encode()) % shards


def owner(shard: int, shards: int) -> Owns:
    """Whether `shard` owns a line with this shop id (None: a line without a shop)."""
    cache: dict[str, bool] = {}

    def owns(shop_id: str | None) -> bool:
        if shop_id is None:
            return shard == 0
        mine = cache.get(shop_id)
        if mine is None:
            mine = cache[shop_id] = shard_of(shop_id, shards) == shard
        return mine

    return owns


def run_shard(shard: int, shards: int, input_path: str, part_path: str, params: RuleParams | None,
              progress: Progress | None = None) -> ReplayStats:
    """Fold the whole input as shard `shard` of `shards`; write its outputs, keyed, to `part_path`."""
    stats = ReplayStats()
    store = Folder(params or RuleParams()).new_store()
    dumps = orjson.dumps
    by_type = stats.by_type
    with open(input_path, "rb") as src, open(part_path, "wb") as dst:
        lines = _counted(src, progress)
        for n, outs in paused_gc(replay_numbered(lines, params, store, stats, owns=owner(shard, shards))):
            prefix = b"%d\t" % n
            for out in outs:
                dst.write(prefix + dumps(out.get("shop_id", "")) + b"\t" + dumps(out) + b"\n")
                by_type[out["type"]] = by_type.get(out["type"], 0) + 1
            stats.outputs += len(outs)
    stats.duplicates = store.clock.stats.get("duplicates", 0)
    stats.late = store.clock.stats.get("late", 0)
    return stats


def _counted(src: Any, progress: Progress | None) -> Iterator[bytes]:
    if progress is None:
        yield from src
        return
    for n, line in enumerate(src, 1):
        if n % PROGRESS_EVERY == 0:
            progress(src.tell())
        yield line


def merge_parts(parts: list[str], dst: Any) -> None:
    """Merge the shards' keyed outputs on (line, shop); a shop's outputs come from one shard."""
    streams = [_keyed(p) for p in parts]
    for _n, _shop, payload in heapq.merge(*streams, key=lambda r: (r[0], r[1])):
        dst.write(payload)


def _keyed(path: str) -> Iterator[tuple[int, str, bytes]]:
    with open(path, "rb") as f:
        for rec in f:
            n, shop, payload = rec.split(b"\t", 2)
            yield int(n), orjson.loads(shop), payload


def replay_sharded(input_path: str, output_path: str, workers: int,
                   params: RuleParams | None = None, show_progress: bool = True) -> ReplayStats:
    """`tierstream replay --input F --output O --workers N`: byte-identical to one process."""
    size = os.path.getsize(input_path)
    tmpdir = tempfile.mkdtemp(prefix=".replay-", dir=os.path.dirname(os.path.abspath(output_path)))
    parts = [os.path.join(tmpdir, f"shard-{k}.jsonl") for k in range(workers)]
    read = [0] * workers
    t0 = time.perf_counter()

    def report(k: int, offset: Any) -> None:
        read[k] = int(offset)
        if show_progress:
            done = min(read) / max(size, 1)
            elapsed = time.perf_counter() - t0
            eta = f"{elapsed * (1 - done) / done:,.0f}s" if done else "?"
            print(f"\rreplay: {workers} workers, {done:6.1%} of {size:,} bytes, eta {eta}",
                  end="", file=sys.stderr, flush=True)

    try:
        results = run_children(run_shard, [(k, workers, input_path, parts[k], params) for k in range(workers)],
                               on_progress=report)
        if show_progress:
            print("\rreplay: merging the shards' outputs" + " " * 30, end="", file=sys.stderr, flush=True)
        with open(output_path, "wb") as dst:
            merge_parts(parts, dst)
        if show_progress:
            print(file=sys.stderr)
    finally:
        for p in parts:
            if os.path.exists(p):
                os.remove(p)
        os.rmdir(tmpdir)
    stats = ReplayStats()
    for r in results:
        stats.add(r)
    return stats
