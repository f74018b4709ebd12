"""The file form (events.md): read input events in line order, write every output in order."""

from __future__ import annotations

import functools
import gc
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from tiering.contract import InvalidEvent, parse_line, topic_of
from tiering.fold import Folder
from tiering.outputs import Output, dead_letter
from tiering.params import RuleParams
from tiering.state import StateStore


@dataclass
class ReplayStats:
    lines: int = 0
    dead_letters: int = 0
    outputs: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    late: int = 0

    def add(self, other: ReplayStats) -> None:
        """Sum a shard's counts into these (each line is counted by the one shard owning it)."""
        self.lines += other.lines
        self.dead_letters += other.dead_letters
        self.outputs += other.outputs
        self.duplicates += other.duplicates
        self.late += other.late
        for k, v in other.by_type.items():
            self.by_type[k] = self.by_type.get(k, 0) + v

    def summary(self) -> str:
        folded = self.lines - self.dead_letters - self.duplicates - self.late
        return (f"replay: {self.lines} lines, {folded} folded, {self.dead_letters} dead letters, "
                f"{self.duplicates} duplicates, {self.late} late; {self.outputs} outputs "
                f"{dict(sorted(self.by_type.items()))}")


FoldStep = Callable[[dict[str, Any]], list[Output]]
Owns = Callable[[str | None], bool]  # whether this shard emits a line's outputs (shop id, None: no shop)


def shop_order(out: Output) -> str:
    """Within one input line, outputs go in order of shop id (outputs with none first), each
    shop's in the order the fold emitted them: an order every shard split can reproduce."""
    shop: str = out.get("shop_id", "")
    return shop


def replay_lines(lines: Iterable[bytes], params: RuleParams | None = None,
                 store: StateStore | None = None, stats: ReplayStats | None = None,
                 fold: FoldStep | None = None) -> Iterator[Output]:
    """Ingest and fold raw JSONL lines; yield every output event in the file form's order.

    `fold` replaces the in-process fold step (tests pass one that folds into Redis)."""
    for _n, outputs in replay_numbered(lines, params, store, stats, fold):
        yield from outputs


def replay_numbered(lines: Iterable[bytes], params: RuleParams | None = None,
                    store: StateStore | None = None, stats: ReplayStats | None = None,
                    fold: FoldStep | None = None, owns: Owns | None = None) -> Iterator[tuple[int, list[Output]]]:
    """(line number, its outputs in shop order) for every line with outputs.

    With `owns` (replay/shards.py), every line still moves the shared clock, but only the lines
    this shard owns are folded into shop state, counted in `stats` and reported."""
    if fold is None:
        folder = Folder(params or RuleParams())
        state = store if store is not None else folder.new_store()
        fold = functools.partial(folder.fold, state)
        foreign: FoldStep = functools.partial(folder.fold, state, own=False)
    elif owns is not None:
        raise ValueError("a shard folds into its own memory store, not through `fold`")
    else:
        foreign = fold
    st = stats if stats is not None else ReplayStats()
    mine = True
    for n, line in enumerate(lines, 1):
        try:
            event = parse_line(line)  # JSON allows the terminator (whitespace): no copy without it
        except InvalidEvent as first:
            raw = line[:-1] if line.endswith(b"\n") else line  # the message is the line without its terminator
            if not raw.strip() or (owns is not None and not owns(None)):
                continue
            st.lines += 1
            st.dead_letters += 1
            exc = _refusal(raw) or first
            yield n, [dead_letter(str(exc), raw, _source(raw, n), exc.shop_id)]
            continue
        if owns is not None:
            mine = owns(event.get("shop_id"))
        if mine:
            st.lines += 1
            outputs = fold(event)
        else:
            outputs = foreign(event)
        if outputs:
            if len(outputs) > 1:
                outputs.sort(key=shop_order)
            yield n, outputs


def _refusal(raw: bytes) -> InvalidEvent | None:
    """Why the message `raw` is refused, parsed without its line terminator so that the position
    a JSON error names is the message's own."""
    try:
        parse_line(raw)
    except InvalidEvent as exc:
        return exc
    return None


def _source(raw: bytes, line: int) -> dict[str, Any]:
    try:
        obj = orjson.loads(raw)
        topic = obj.get("topic") or topic_of(obj)
    except Exception:  # any unreadable line: the source is just its position
        topic = None
    return {"topic": topic if isinstance(topic, str) else None, "line": line}


def replay_file(src: IO[bytes], dst: IO[bytes], params: RuleParams | None = None,
                store: StateStore | None = None) -> ReplayStats:
    """Replay a whole file into `dst`."""
    stats = ReplayStats()
    for _n, outs in paused_gc(replay_numbered(src, params, store, stats)):
        write_outputs(dst, outs, stats)
    return stats


def paused_gc(it: Iterator[Any]) -> Iterator[Any]:
    """Run `it` with the cyclic collector paused: the fold's state holds no reference cycles,
    so the collector only costs time here (about a fifth of a 1M-event run)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield from it
    finally:
        if was_enabled:
            gc.enable()


def write_outputs(dst: IO[bytes], outs: list[Output], stats: ReplayStats) -> None:
    """Write one line's outputs as JSONL and count them."""
    dumps = orjson.dumps
    by_type = stats.by_type
    for out in outs:
        dst.write(dumps(out) + b"\n")
        by_type[out["type"]] = by_type.get(out["type"], 0) + 1
    stats.outputs += len(outs)


def main(input_path: str, output_path: str, params: RuleParams | None = None, workers: int = 1) -> int:
    """`tierstream replay --input F --output O [--workers N]`: the summary goes to stderr."""
    if workers > 1:
        from replay.shards import replay_sharded

        stats = replay_sharded(input_path, output_path, workers, params)
    else:
        folder_params = params or RuleParams()
        store = Folder(folder_params).new_store()
        with open(input_path, "rb") as src, open(output_path, "wb") as dst:
            stats = replay_file(src, dst, folder_params, store)
        stats.duplicates = store.clock.stats.get("duplicates", 0)
        stats.late = store.clock.stats.get("late", 0)
    print(stats.summary(), file=sys.stderr)
    return 0
