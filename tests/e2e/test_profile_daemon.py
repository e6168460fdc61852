"""`ragcli profile` and the warm daemon, with real processes: `--cold-runs N` times fresh
`ragcli ask` processes both ways (in-process, and through a daemon it stops before each run,
whose start is a stage of its own), only in-process when the daemon is off; `--server` takes
the daemon's socket (`unix:PATH` or a path ending in .sock) as well as a URL, and so does
`ask --server`. In-process (parsing, the section's shape, the table):
tests/unit/profile/test_cold.py and tests/unit/serve/test_remote_unix.py."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragcli.daemon.location import Location
from ragcli.daemon.spawn import stop
from tests.support.cli import Run, copy_home

Q = "How do I rotate the on-call pager?"
ON = {"RAGCLI_DAEMON": "on"}


@pytest.fixture
def copied(sample_home: Path, home: Path, ragcli: Run) -> Iterator[Run]:
    """A private copy of the ingested sample corpus; its daemon is stopped after the test."""
    copy_home(sample_home, home)
    yield ragcli
    stop(Location(home.resolve()))


def _status(ragcli: Run) -> dict[str, Any]:
    out = ragcli("daemon", "status", "--json", **ON)
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cold_runs_time_both_ways_with_the_daemon_start_as_a_stage(copied: Run) -> None:
    out = copied("profile", Q, "--runs", "1", "--cold-runs", "2", "--json", **ON)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert len(data["cold"]["ttft_ms_runs"]) == 2  # the existing section, as it was
    assert set(data["cold"]) == {"ttft_ms", "ttft_ms_runs", "cached", "spans"}
    both = data["cold_both"]
    assert both["runs"] == 2 and both["command"] == ["ragcli", "ask", Q]
    assert both["daemon_skipped"] is None
    assert len(both["in_process"]["ttft_ms"]) == 2
    daemon = both["daemon"]
    # each cold run started its own daemon: the stage exists once per run
    for key in ("ttft_ms", "start_ms", "ready_ms"):
        assert len(daemon[key]) == 2, key
        assert all(v > 0 for v in daemon[key]), key
    assert len(both["daemon_warm"]["ttft_ms"]) == 2
    assert all(v > 0 for v in both["in_process"]["ttft_ms"] + both["daemon_warm"]["ttft_ms"])
    assert both["speedup_p50"] > 0 and both["warm_speedup_p50"] > 0
    left = both["daemon_left_running"]
    status = _status(copied)
    assert status["running"] and status["pid"] == left["pid"] and _alive(left["pid"])
    # the last cold run's daemon answered the cold ask and the warm one after it
    assert status["requests"] == 2


def test_cold_runs_text_shows_the_table(copied: Run) -> None:
    out = copied("profile", Q, "--runs", "1", "--cold-runs", "2", **ON)
    assert out.returncode == 0, out.stderr
    assert "Cold TTFT both ways: 2 fresh `ragcli ask` processes each" in out.stdout
    for row in ("in-process (--no-daemon)", "through the daemon, started by the ask",
                "daemon start: spawn → ready", "through the daemon, already warm"):  # fmt: skip
        assert row in out.stdout
    assert "The daemon is left running" in out.stdout


@pytest.mark.parametrize(
    ("flags", "env", "why"),
    [
        ((), {"RAGCLI_DAEMON": "off"}, "daemon = off"),
        (("--no-daemon",), ON, "--no-daemon"),
    ],
)
def test_cold_runs_without_the_daemon_are_in_process_only(
    copied: Run, flags: tuple[str, ...], env: dict[str, str], why: str
) -> None:
    out = copied("profile", Q, "--runs", "1", "--cold-runs", "2", "--json", *flags, **env)
    assert out.returncode == 0, out.stderr
    both = json.loads(out.stdout)["cold_both"]
    assert len(both["in_process"]["ttft_ms"]) == 2
    assert both["daemon"] is None and both["daemon_warm"] is None
    assert why in both["daemon_skipped"]
    assert both["daemon_left_running"] is None
    assert not _status(copied)["running"]  # no daemon was started


def test_one_cold_run_adds_no_section(copied: Run) -> None:
    out = copied("profile", Q, "--runs", "1", "--json", **ON)
    assert out.returncode == 0, out.stderr
    assert "cold_both" not in json.loads(out.stdout)
    assert not _status(copied)["running"]


def test_server_takes_the_daemon_socket(copied: Run) -> None:
    started = copied("daemon", "start", "--json", **ON)
    assert started.returncode == 0, started.stderr
    sock = json.loads(started.stdout)["socket"]
    assert sock.endswith(".sock")

    prof = copied("profile", "--server", f"unix:{sock}", Q, "--runs", "2", "--json")
    assert prof.returncode == 0, prof.stderr
    data = json.loads(prof.stdout)
    assert data["server"] == f"unix:{sock}"
    assert data["runs"] == 2 and data["client_ttft_ms"]["n"] == 2
    assert data["server_ttft_ms"]["n"] == 2  # the daemon's own TTFT came back with each answer

    text = copied("ask", "--server", f"unix:{sock}", Q)
    assert text.returncode == 0, text.stderr
    assert "Hand Over" in text.stdout and "Sources:" in text.stdout
    assert "rotate-on-call-pager.md" in text.stdout

    as_json = copied("ask", "--server", sock, Q, "--json")  # a bare path to the socket
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["server"]["url"] == f"unix:{sock}" and answer["server"]["spans"]
    assert "Hand Over" in answer["answer"]
    assert _status(copied)["pid"] == json.loads(started.stdout)["pid"]  # the same daemon


def test_server_on_a_socket_without_a_daemon_fails_in_one_line(copied: Run, home: Path) -> None:
    sock = Location(home.resolve()).socket
    out = copied("ask", "--server", f"unix:{sock}", Q)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1].startswith("ragcli: error: cannot connect")
    assert "ragcli daemon start" in out.stderr
