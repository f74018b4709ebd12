"""The capacity model: from measured per-core rates and bytes to a deployment (pure arithmetic)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

DAY_S = 86_400
CYCLE_DAYS = 15  # a cycle is half a month


@dataclass(frozen=True)
class Measured:
    """What one run of `python -m bench.capacity` measures (per core: one process, one core)."""

    ingest_per_core: float  # events/s: validate, route, append to the ledger
    evaluate_per_core: float  # records/s: fold + Redis commit + read models (the rebuild's rate)
    file_fold_per_core: float  # events/s of the file form
    ledger_bytes_per_event: float  # on the broker's disk, one replica
    redis_bytes_per_member: float  # member record + its two index entries
    redis_bytes_per_shop: float  # state + read model + feed
    redis_bytes_per_counter: float  # one shop's counters of one open cycle
    redis_bytes_per_dedupe_id: float  # an event id kept for the fold's dedupe


@dataclass(frozen=True)
class Load:
    events_per_s: float = 500_000  # peak
    members: float = 1e9  # member relations (a user in a shop's programme)
    shops: float = 1e7
    average_share: float = 0.25  # average rate / peak rate (storage and dedupe follow the average)
    utilisation: float = 0.7  # the share of a core a process is planned to use at peak
    open_cycles: int = 2  # cycles a shop's counters are kept for (the open one, the one closing)
    dedupe_cycles: int = 3  # cycles of event ids the fold keeps (2 closed + the open one)
    replication: int = 3  # Kafka replicas of the ledger
    redis_shard_bytes: float = 25e9  # memory planned per Redis primary
    partitions_per_process: int = 2  # partitions per process, room to rebalance and grow


@dataclass(frozen=True)
class Plan:
    ingest_processes: int
    evaluate_processes: int
    input_partitions: int
    ledger_partitions: int
    redis_bytes: float
    redis_shards: int
    ledger_bytes_per_day: float
    rebuild_hours_per_day_of_history: float  # with every evaluate process rebuilding
    first_limit: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def processes(rate: float, per_core: float, utilisation: float) -> int:
    """Processes (one core each) that carry `rate` with each at `utilisation` of its measured rate."""
    return max(1, math.ceil(rate / (per_core * utilisation)))


def partitions(procs: int, per_process: int) -> int:
    """A power of two with `per_process` partitions for every process (a partition is the unit of work)."""
    return 1 << max(0, math.ceil(math.log2(procs * per_process)))


def redis_parts(m: Measured, load: Load) -> dict[str, float]:
    """Redis bytes by what they hold."""
    ids = load.events_per_s * load.average_share * DAY_S * CYCLE_DAYS * load.dedupe_cycles
    return {"members": load.members * m.redis_bytes_per_member, "shops": load.shops * m.redis_bytes_per_shop,
            "cycle counters": load.shops * load.open_cycles * m.redis_bytes_per_counter,
            "dedupe ids": ids * m.redis_bytes_per_dedupe_id}


def redis_bytes(m: Measured, load: Load) -> float:
    return sum(redis_parts(m, load).values())


def plan(m: Measured, load: Load) -> Plan:
    ingest = processes(load.events_per_s, m.ingest_per_core, load.utilisation)
    evaluate = processes(load.events_per_s, m.evaluate_per_core, load.utilisation)
    memory = redis_bytes(m, load)
    shards = max(1, math.ceil(memory / load.redis_shard_bytes))
    per_day = load.events_per_s * load.average_share * DAY_S
    limits = {"evaluate processes (fold + Redis commit per core)": evaluate,
              "ingest processes (validate + ledger append per core)": ingest,
              f"Redis shards (memory; most of it {_largest(redis_parts(m, load))})": shards}
    return Plan(ingest_processes=ingest, evaluate_processes=evaluate,
                input_partitions=partitions(ingest, load.partitions_per_process),
                ledger_partitions=partitions(evaluate, load.partitions_per_process),
                redis_bytes=memory, redis_shards=shards,
                ledger_bytes_per_day=per_day * m.ledger_bytes_per_event * load.replication,
                rebuild_hours_per_day_of_history=per_day / (m.evaluate_per_core * evaluate) / 3600,
                first_limit=max(limits, key=lambda k: limits[k]))


def _largest(parts: dict[str, float]) -> str:
    name = max(parts, key=lambda k: parts[k])
    return f"{name}, {parts[name] / sum(parts.values()):.0%}"


def render(m: Measured, load: Load, p: Plan) -> str:
    """The deployment as text (docs/capacity.md shows one)."""
    gb = 1e9
    return "\n".join([
        f"load: {load.events_per_s:,.0f} events/s at peak ({load.average_share:.0%} of it on average), "
        f"{load.members:,.0f} member relations, {load.shops:,.0f} shops",
        f"measured per core: ingest {m.ingest_per_core:,.0f}/s, evaluate {m.evaluate_per_core:,.0f}/s, "
        f"file fold {m.file_fold_per_core:,.0f}/s",
        f"measured bytes: ledger {m.ledger_bytes_per_event:,.0f}/event; Redis {m.redis_bytes_per_member:,.0f}/member, "
        f"{m.redis_bytes_per_shop:,.0f}/shop, {m.redis_bytes_per_counter:,.0f}/cycle counter, "
        f"{m.redis_bytes_per_dedupe_id:,.0f}/dedupe id",
        f"ingest processes:   {p.ingest_processes:,} (input partitions {p.input_partitions:,})",
        f"evaluate processes: {p.evaluate_processes:,} (ledger partitions {p.ledger_partitions:,})",
        f"Redis memory:       {p.redis_bytes / gb:,.0f} GB in {p.redis_shards:,} shards of "
        f"{load.redis_shard_bytes / gb:,.0f} GB",
        "  of which " + ", ".join(f"{k} {v / gb:,.0f} GB" for k, v in redis_parts(m, load).items()),
        f"Kafka ledger:       {p.ledger_bytes_per_day / gb:,.0f} GB per retained day ({load.replication} replicas)",
        f"rebuild:            {p.rebuild_hours_per_day_of_history:.2f} h per day of history on "
        f"{p.evaluate_processes:,} processes",
        f"first limit:        {p.first_limit}",
    ])
