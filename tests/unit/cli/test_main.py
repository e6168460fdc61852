"""cli/app.py in-process: the commands `ragcli --help` lists and their order, the global options
reaching a command's settings, and `main()` turning each kind of failure into one line on
stderr and its documented exit code."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from ragcli.cli.app import main
from ragcli.core.errors import (
    EXIT_BUDGET,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    NotReadyError,
)

COMMANDS = ["ingest", "index", "ask", "profile", "eval", "serve", "status", "cache"]  # groups last


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ragcli.toml, RAGCLI_* or OPENAI_* from the machine; a data directory of its own."""
    for name in list(os.environ):
        if name.startswith(("RAGCLI_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)


def ragcli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """`main()` with this argv; its exit code."""
    monkeypatch.setattr(sys, "argv", ["ragcli", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    code = caught.value.code
    return code if isinstance(code, int) else (0 if code is None else 1)


def failing_status(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> list[Any]:
    """Make `ragcli status` raise `exc` from the library; the settings it was given."""
    import ragcli.status.report

    seen: list[Any] = []

    def collect_status(settings: Any) -> dict[str, Any]:
        seen.append(settings)
        raise exc

    monkeypatch.setattr(ragcli.status.report, "collect_status", collect_status)
    return seen


def test_help_lists_every_command_in_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ragcli(monkeypatch, "--help") == 0
    out = capsys.readouterr().out
    listed = [w for line in out.splitlines() for w in line.strip("│ ").split()[:1]]
    assert [w for w in listed if w in COMMANDS] == COMMANDS
    assert ragcli(monkeypatch, "cache", "--help") == 0
    out = capsys.readouterr().out
    assert "stats" in out and "clear" in out


def test_global_options_reach_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seen = failing_status(monkeypatch, NotReadyError("nothing ingested yet"))
    data = tmp_path / "elsewhere"
    assert ragcli(monkeypatch, "--data-dir", str(data), "status") == 3
    assert seen[0].data_dir == data
    assert capsys.readouterr().err == "ragcli: error: nothing ingested yet\n"


def test_a_usage_error_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ragcli(monkeypatch, "ask") == EXIT_USAGE
    assert capsys.readouterr().err == "ragcli: error: give either a QUESTION or --batch FILE\n"
    assert ragcli(monkeypatch, "profile", "q", "--questions", "f.txt") == EXIT_USAGE
    assert capsys.readouterr().err == "ragcli: error: give either a QUESTION or --questions FILE\n"


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--ablate"], "--ablate"),
        (["--concurrency", "1,4"], "--concurrency"),
        (["--sweep", "k=1,2"], "--sweep"),
        (["--svg", "w.svg"], "--svg"),
        (["--spans", "s.jsonl"], "--spans"),
        (["--otel"], "--otel"),
        (["--prewarm"], "--prewarm"),
        (["--cold-runs", "2"], "--cold-runs"),
        (["--otel", "--ablate"], "--ablate"),  # the first in the order of the flags' table
    ],
)
def test_profile_server_refuses_what_profiles_this_process(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    named: str,
) -> None:
    args = ["profile", "q", "--server", "http://127.0.0.1:9", *flags]
    assert ragcli(monkeypatch, *args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == f"ragcli: error: {named} profiles this process: drop it, or --server\n"


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--no-cache", "all"], "--no-cache"),
        (["--retrieval", "dense"], "--retrieval"),
        (["--llm", "extractive"], "--llm"),
        (["--prompt-layout", "ranked"], "--prompt-layout"),
        (["--max-context-tokens", "500"], "--max-context-tokens"),
    ],
)
def test_profile_server_refuses_settings_the_server_would_ignore(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    named: str,
) -> None:
    args = ["profile", "q", "--server", "http://127.0.0.1:9", *flags]
    assert ragcli(monkeypatch, *args) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"ragcli: error: {named} sets this process's pipeline; the server answers with its "
        "own settings: drop it, or --server\n"
    )


def test_profile_concurrency_must_be_positive_integers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("0,4", "a", ","):
        assert ragcli(monkeypatch, "profile", "q", "--concurrency", bad) == EXIT_USAGE
        err = capsys.readouterr().err
        assert err == (
            f"ragcli: error: --concurrency {bad!r}: expected positive integers, e.g. 1,4,16\n"
        )


def test_a_bad_flag_is_clicks_usage_message_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ragcli(monkeypatch, "ask", "--k", "x", "q") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Invalid value for '--k' / '-k'" in err and "ask [OPTIONS] [question]" in err


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "nan"])
def test_a_source_floor_outside_0_to_1_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    assert ragcli(monkeypatch, "ask", "q", "--source-floor", bad) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == f"ragcli: error: --source-floor must be between 0 and 1, got {float(bad)}\n"


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (
            OSError(errno.EROFS, "Read-only file system", "/data/catalog.db"),
            "ragcli: error: storage: Read-only file system (/data/catalog.db); "
            "`ragcli status` says what is affected",
        ),
        (
            sqlite3.OperationalError("disk I/O error"),
            "ragcli: error: storage: disk I/O error; `ragcli status` says what is affected",
        ),
        (
            ValueError("boom"),
            "ragcli: internal error: ValueError: boom (set RAGCLI_DEBUG=1 for a traceback)",
        ),
    ],
)
def test_an_unexpected_failure_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: Exception,
    line: str,
) -> None:
    failing_status(monkeypatch, exc)
    assert ragcli(monkeypatch, "status") == EXIT_ERROR
    assert capsys.readouterr().err == line + "\n"


def test_debug_shows_the_exception_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    failing_status(monkeypatch, ValueError("boom"))
    monkeypatch.setenv("RAGCLI_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["ragcli", "status"])
    with pytest.raises(ValueError, match="boom"):
        main()


def test_ctrl_c_says_how_to_resume_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failing_status(monkeypatch, KeyboardInterrupt())
    assert ragcli(monkeypatch, "status") == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err == "ragcli: interrupted; run the same command again to resume\n"


def test_an_abort_says_how_to_resume_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failing_status(monkeypatch, typer.Abort())
    assert ragcli(monkeypatch, "status") == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err == "ragcli: interrupted; run the same command again to resume\n"


def remote_profile(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """`profile --server` against a stub of the remote profiler; the calls it got."""
    import ragcli.profile.remote

    calls: list[Any] = []

    def profile_remote(server: str, queries: Any, runs: int, warmup: int) -> dict[str, Any]:
        calls.append((server, [q.question for q in queries], runs, warmup))
        return {
            "client_ttft_ms": {"p50": 40.0, "p95": 90.0},
            "server_stages_ms": {"retrieve": {"p50": 2.0, "p95": 3.0}},
        }

    monkeypatch.setattr(ragcli.profile.remote, "profile_remote", profile_remote)
    return calls


def test_remote_profile_budgets_judge_the_clients_ttft(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = remote_profile(monkeypatch)
    args = ["profile", "q", "--server", "http://127.0.0.1:9", "--runs", "3", "--warmup", "0"]
    assert ragcli(monkeypatch, *args, "--budget", "ttft_p95=100ms", "--json") == 0
    assert calls == [("http://127.0.0.1:9", ["q"], 3, 0)]
    out = capsys.readouterr().out
    assert json.loads(out)["budgets"] == [
        {"budget": "ttft_p95=100ms", "actual_ms": 90.0, "ok": True}
    ]
    budget = "ttft_p95=50ms,retrieve_p50=5ms"
    assert ragcli(monkeypatch, *args, "--budget", budget, "--json") == EXIT_BUDGET
    captured = capsys.readouterr()
    assert [b["ok"] for b in json.loads(captured.out)["budgets"]] == [False, True]
    assert captured.err == ("ragcli: error: over budget: ttft p95 90.000 ms > budget 50 ms\n")
