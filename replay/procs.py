"""Child processes for the sharded replay and rebuild: spawn, relay progress, fail as one."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

Progress = Callable[[Any], None]


class ChildFailed(RuntimeError):
    """A child raised or died; the others were stopped."""


def run_children(target: Callable[..., Any], args: Sequence[tuple[Any, ...]],
                 on_progress: Callable[[int, Any], None] | None = None, poll_s: float = 0.2) -> list[Any]:
    """Run `target(*args[i], progress=...)` in one process each and return their results in order.

    Processes are started with 'spawn' (the callers run asyncio and aiokafka, which a fork would
    copy mid-flight). The first child to raise or die stops the others, which are terminated
    and reaped before ChildFailed (naming the child and its error) reaches the caller; a child
    whose parent dies exits on its own, so no child outlives the command."""
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(target, i, a, q, os.getpid()), daemon=True, name=f"shard-{i}")
             for i, a in enumerate(args)]
    results: dict[int, Any] = {}
    try:
        for p in procs:
            p.start()
        while len(results) < len(procs):
            try:
                kind, i, payload = q.get(timeout=poll_s)
            except queue.Empty:
                _check_alive(procs, results)
                continue
            if kind == "progress" and on_progress is not None:
                on_progress(i, payload)
            elif kind == "done":
                results[i] = payload
            elif kind == "error":
                raise ChildFailed(f"worker {i} of {len(procs)} failed: {payload}")
    finally:
        _stop(procs)
    return [results[i] for i in range(len(procs))]


def _check_alive(procs: list[Any], results: dict[int, Any]) -> None:
    for i, p in enumerate(procs):
        if i not in results and p.exitcode not in (None, 0):
            how = f"killed by signal {-p.exitcode}" if p.exitcode < 0 else f"exit status {p.exitcode}"
            raise ChildFailed(f"worker {i} of {len(procs)} died ({how}) before finishing")


def _stop(procs: list[Any]) -> None:
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 10
    for p in procs:
        if p.pid is None:
            continue  # never started
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def _child(target: Callable[..., Any], i: int, args: tuple[Any, ...], q: Any, parent: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    try:
        result = target(*args, progress=lambda x: q.put(("progress", i, x)))
    except BaseException as exc:  # the parent reports it and stops the others
        q.put(("error", i, f"{type(exc).__name__}: {exc}"))
        q.close()
        q.join_thread()
        raise SystemExit(1) from None
    q.put(("done", i, result))


def _exit_with_parent(parent: int) -> None:
    """A parent killed outright cannot stop its children: each notices it is gone and exits."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
