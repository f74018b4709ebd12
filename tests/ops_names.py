"""The metric names the ops files (Grafana board, Prometheus alert rules) query."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "ops" / "grafana" / "tierstream.json"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
NAME = re.compile(r"\b(tierstream_[a-z0-9_]+)\b")


def grafana_exprs() -> list[str]:
    board = json.loads(GRAFANA.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs


def alert_exprs() -> list[str]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [str(rule["expr"]) for group in doc["groups"] for rule in group["rules"]]


def ops_metric_names() -> set[str]:
    return {m for expr in grafana_exprs() + alert_exprs() for m in NAME.findall(expr)}


def declared(exposition: str) -> set[str]:
    """The sample names a scrape declares (`# TYPE` lines), with a histogram's _bucket/_sum/_count:
    a counter no event has bumped yet is declared, with no sample."""
    out: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _h, _t, name, kind = line.split(" ", 3)
            out |= {name} if kind != "histogram" else {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return out
