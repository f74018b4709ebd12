"""The command line refuses bad arguments with a clear message and no traceback."""

from __future__ import annotations

import pathlib

import orjson
import pytest

from cli.main import main
from replay.file import replay_lines

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("args", "message"), [
    (["--shops", "0"], "--shops: must be at least 1, not 0"),
    (["--shops", "many"], "--shops: 'many' is not a whole number"),
    (["--days", "-1"], "--days: must be at least 1, not -1"),
    (["--start", "2023-13-01"], "--start: '2023-13-01': expected YYYY-MM-DD"),
    (["--start", "1980-01-01"], "1990-2099, the contract's range"),
    (["--start", "1990-01-01"], "from 1990-01-02 to 2099-12-30"),  # its first hours are 1989 in UTC
])
def test_simulate_refuses_what_it_cannot_simulate(args: list[str], message: str, tmp_path: pathlib.Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["simulate", *args, "--output", str(tmp_path / "out.jsonl")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_simulate_past_the_contract_or_into_nowhere_is_an_error(tmp_path: pathlib.Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--days", "800", "--start", "2098-01-01", "--output", str(tmp_path / "x")]) == 2
    assert "run past 2099" in capsys.readouterr().err
    assert main(["simulate", "--shops", "1", "--days", "1", "--output", str(tmp_path / "no" / "x")]) == 1
    assert "No such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize("start", ["2023-01-01", "1990-01-02"])
def test_simulate_writes_the_contract(start: str, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "sim.jsonl"
    assert main(["simulate", "--shops", "2", "--days", "2", "--seed", "5", "--start", start, "--output", str(out)]) == 0
    types = []
    for line in out.read_bytes().splitlines():
        try:
            types.append(orjson.loads(line)["type"])
        except (orjson.JSONDecodeError, TypeError, KeyError):
            continue  # the simulator writes a few malformed lines on purpose
    assert len(types) > 10 and "order_paid" in types
    refused = [o for o in replay_lines(out.read_bytes().splitlines()) if o["type"] == "dead_letter"]
    assert all("invalid 'ts'" not in o["reason"] for o in refused)  # every well-formed line is in range


@pytest.mark.parametrize(("args", "message"), [
    (["consume", "--output", "{tmp}/out.jsonl", "--idle-seconds", "1"], "cannot reach Kafka at 127.0.0.1:1"),
    (["export", "--output", "{tmp}/out.jsonl"], "cannot reach Kafka at 127.0.0.1:1"),
    (["replay", "promote", "someone"], "cannot reach Redis at redis://u:***@127.0.0.1:1/0"),
    (["produce", "--input", "{tmp}/missing.jsonl"], "No such file or directory"),
])
def test_a_missing_broker_redis_or_file_is_one_line_not_a_traceback(
        args: list[str], message: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TIERSTREAM_KAFKA", "127.0.0.1:1")  # nothing listens on port 1
    monkeypatch.setenv("TIERSTREAM_REDIS", "redis://u:secret@127.0.0.1:1/0")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 1
    err = capsys.readouterr().err
    assert f"tierstream {args[0]}: " in err and message in err
    assert "Traceback" not in err and "secret" not in err


def test_a_what_if_or_a_partial_rebuild_refuses_to_publish_shop_state(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["replay", "--from-kafka", "--set", "online_days_threshold=7", "--publish-shop-state"]) == 2
    assert "hypothetical" in capsys.readouterr().err
    assert main(["replay", "--from-kafka", "--from", "5", "--publish-shop-state"]) == 2
    assert "partial history" in capsys.readouterr().err
