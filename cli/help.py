"""What `tierstream --help`, `tierstream CMD --help` and `--version` add to the parser: examples, the version."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

EXAMPLES: dict[str, str] = {
    "replay": """\
  tierstream replay --input events.jsonl --output out.jsonl            # the file form
  tierstream replay --from-kafka --namespace rebuilt --verify           # re-fold the ledger, compare with live
  tierstream replay --from-kafka --set online_days_threshold=7 --report whatif.json   # a what-if
  tierstream replay --input events.jsonl --output out.jsonl --workers 2   # shops split over 2 processes
  tierstream replay --from-kafka --namespace rebuilt --workers 4 --publish-shop-state
  tierstream replay promote rebuilt && tierstream replay drop live""",
    "schema": """\
  tierstream schema --list             # every input and output type, its kind and topic
  tierstream schema tier_changed       # one JSON Schema (draft 2020-12)
  tierstream schema --write schemas/   # every schema as a file""",
    "simulate": """\
  tierstream simulate --shops 1000 --days 60 --seed 1 --output events.jsonl""",
    "worker": """\
  eval "$(tierstream devstack env)" && tierstream worker
  TIERSTREAM_WEB_PORT=6067 TIERSTREAM_ROLES=evaluate tierstream worker   # a second, evaluate-only worker
  curl localhost:6066/metrics        # Prometheus text; JSON counters at /health""",
    "produce": """\
  tierstream produce --input events.jsonl               # in file order, as fast as that goes
  tierstream produce --input events.jsonl --rate 2000   # a live feed of 2,000 lines a second""",
    "consume": """\
  tierstream consume --output out.jsonl --idle-seconds 5""",
    "dashboard": """\
  tierstream dashboard --port 8080     # then open http://127.0.0.1:8080/
  TIERSTREAM_DASHBOARD_TOKEN=$(openssl rand -hex 24) tierstream dashboard --host 0.0.0.0   # token required""",
    "export": """\
  tierstream export --output history.jsonl
  tierstream export --output ledger.jsonl --source ledger --to 2023-01-16T00:00+08:00""",
    "explain": """\
  tierstream explain shop-00042 --cycle 2023-01-16
  tierstream explain shop-00042 --json""",
    "devstack": """\
  tierstream devstack up && eval "$(tierstream devstack env)"
  tierstream devstack up --redis-cluster --replicas 1   # also a Redis Cluster of 3 masters
  tierstream devstack up --brokers 3                     # a three-broker Kafka (docs/reliability.md)
  tierstream devstack up --secure && eval "$(tierstream devstack env --secure)"   # SASL_SSL Kafka, TLS Redis, ACL users
  tierstream devstack status; tierstream devstack down""",
}

MAIN_EPILOG = """\
examples:
  tierstream devstack up && eval "$(tierstream devstack env)"
  tierstream simulate --shops 200 --days 30 --output events.jsonl
  tierstream worker &  tierstream produce --input events.jsonl
  tierstream dashboard

`tierstream COMMAND --help` shows a command's options and examples."""


def package_version() -> str:
    try:
        return version("tierstream")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def decorate(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add --version, and an examples section to the main help and to every command's."""
    parser.add_argument("--version", action="version", version=f"tierstream {package_version()} "
                        f"(Python {sys.version.split()[0]})")
    parser.epilog = MAIN_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    summaries = {action.dest: action.help for action in sub._choices_actions}
    for name, command in sub.choices.items():
        command.description = command.description or summaries.get(name)
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        if name in EXAMPLES:  # a command without one fails tests/unit/test_cli_polish.py
            command.epilog = f"example{'s' if chr(10) in EXAMPLES[name] else ''}:\n{EXAMPLES[name]}"
