"""`tierstream schema [TYPE]`: the JSON Schemas shipped in the package (tiering/schema/*.json)."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from tiering.contract import TOPIC_OF_TYPE
from tiering.outputs import OUTPUT_TOPIC
from tiering.schemas import ALL_TYPES, INPUT_TYPES, schema

PACKAGE_DIR = "schema"


def render(doc: Any) -> bytes:
    """How a schema file is written: indented, keys sorted, a final newline."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def shipped(etype: str) -> bytes:
    """The schema file of `etype` as the installed package holds it."""
    return (resources.files("tiering") / PACKAGE_DIR / f"{etype}.json").read_bytes()


def write_all(directory: str) -> list[str]:
    """Write every type's schema (as built from the contract) into `directory`; the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for etype in ALL_TYPES:
        path = out / f"{etype}.json"
        path.write_bytes(render(schema(etype)))
        paths.append(str(path))
    return paths


def main(etype: str | None, write: str | None = None, listing: bool = False) -> int:
    if write is not None:
        paths = write_all(write)
        print(f"schema: wrote {len(paths)} schemas to {write}", file=sys.stderr)
        return 0
    if listing:
        for t in ALL_TYPES:
            kind = "input" if t in INPUT_TYPES else "state" if t == "shop_state" else "output"
            print(f"{t}\t{kind}\t{OUTPUT_TOPIC.get(t) or TOPIC_OF_TYPE[t]}")
        return 0
    if etype is None:  # every schema, as one JSON object keyed by type
        sys.stdout.buffer.write(render({t: orjson.loads(shipped(t)) for t in ALL_TYPES}))
        return 0
    if etype not in ALL_TYPES:
        print(f"tierstream schema: unknown type {etype!r}; known: {', '.join(ALL_TYPES)}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(shipped(etype))
    return 0
