"""`profile --cold-runs N` both ways (ragcli/profile/cold.py), in-process: a process timed from
its spawn to the first byte on its stdout (plain `python -c` programs stand in for `ragcli ask`),
what the daemon's `-v` line says, the report's `cold_both` section and its table. With real
`ragcli` processes and a real daemon: tests/e2e/test_profile_daemon.py."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import pytest
from rich.console import Console

from ragcli.core.errors import RagcliError
from ragcli.daemon.location import Location
from ragcli.profile import cold
from ragcli.profile.cold import (
    ColdBoth,
    DaemonRun,
    NotAnswered,
    first_byte,
    query_args,
    render_cold_both,
    through_daemon,
)
from ragcli.retrieval.events import Query


def program(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_first_byte_times_the_first_output_not_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The program writes one byte, then waits for a marker file before it writes the rest and
    # ends; the marker appears when first_byte takes its second clock reading. Timed at the
    # first byte, all goes through; timed at the end, the program would wait for ever.
    marker = tmp_path / "first-byte-seen"
    code = (
        "import os, sys, time\n"
        "sys.stderr.write('note\\n'); sys.stderr.flush()\n"
        "sys.stdout.write('A'); sys.stdout.flush()\n"
        f"while not os.path.exists({str(marker)!r}): time.sleep(0.01)\n"
        "sys.stdout.write('nswer\\n')\n"
    )
    readings: list[int] = []

    def clock() -> int:
        readings.append(time.perf_counter_ns())
        if len(readings) == 2:
            marker.touch()
        return readings[-1]

    monkeypatch.setattr(cold, "time", types.SimpleNamespace(perf_counter_ns=clock))
    timed = first_byte(program(code), timeout=60)
    assert len(readings) == 2 and marker.exists()
    assert timed.ttft_ms == (readings[1] - readings[0]) / 1e6 > 0
    assert timed.stderr == "note\n"


def test_first_byte_refuses_a_failed_or_silent_process() -> None:
    with pytest.raises(RagcliError, match=r"failed \(exit 3\): boom"):
        first_byte(program("import sys; print('x'); sys.stderr.write('boom'); sys.exit(3)"))
    with pytest.raises(RagcliError, match="no output"):
        first_byte(program("pass"))
    with pytest.raises(RagcliError, match="over 1 s"):
        first_byte(program("import time; time.sleep(30)"), timeout=1)


def test_query_args_repeat_the_question_flags() -> None:
    query = Query("q", k=3, partitions=("ops", "hr"), since="30d", source="*/runbooks/*")
    flags = {"--no-cache": "answer", "--llm": None, "--max-context-tokens": 500}
    assert query_args(query, flags) == [
        "--k", "3", "--partition", "ops", "--partition", "hr", "--since", "30d",
        "--source", "*/runbooks/*", "--no-cache", "answer", "--max-context-tokens", "500",
    ]  # fmt: skip
    assert query_args(Query("q"), {}) == []


def test_through_daemon_reads_the_start_from_the_verbose_line(tmp_path: Path) -> None:
    location = Location(tmp_path)  # no daemon here: nothing to stop, no status to read
    said = "ragcli: daemon: answered by pid 4242 (started in 173 ms)"
    run = through_daemon(program(f"import sys; print('a'); sys.stderr.write({said!r})"), location,
                         cold=True)  # fmt: skip
    assert run.start_ms == 173.0 and run.ready_ms is None and run.ttft_ms > 0
    warm = "ragcli: daemon: answered by pid 4242 (warm)"
    run = through_daemon(program(f"import sys; print('a'); sys.stderr.write({warm!r})"), location,
                         cold=False)  # fmt: skip
    assert run.start_ms is None


def test_through_daemon_says_when_the_ask_was_answered_in_process(tmp_path: Path) -> None:
    line = "ragcli: daemon: cannot start one: read-only file system; answering in-process"
    with pytest.raises(NotAnswered, match="^cannot start one: read-only file system$"):
        through_daemon(program(f"import sys; print('a'); sys.stderr.write({line!r})"),
                       Location(tmp_path), cold=True)  # fmt: skip
    with pytest.raises(NotAnswered, match="did not say"):
        through_daemon(program("print('a')"), Location(tmp_path), cold=True)


def _both() -> ColdBoth:
    return ColdBoth(
        2,
        ["ragcli", "ask", "q"],
        in_process=[900.0, 1100.0],
        daemon=[DaemonRun(400.0, 150.0, 140.0), DaemonRun(600.0, 250.0, 240.0)],
        daemon_warm=[90.0, 110.0],
        left_running={"pid": 77, "idle_timeout_s": 600.0},
    )


def test_the_section_has_each_way_and_the_start_stage() -> None:
    data = _both().as_dict()
    assert data["in_process"]["ttft_ms"] == [900.0, 1100.0]
    assert data["daemon"]["ttft_ms"] == [400.0, 600.0]
    assert data["daemon"]["start_ms"] == [150.0, 250.0]
    assert data["daemon"]["ready_ms"] == [140.0, 240.0]
    assert data["daemon_warm"]["ttft_ms"] == [90.0, 110.0]
    assert data["daemon"]["stats"]["start"]["p50"] == 200.0
    assert (data["speedup_p50"], data["warm_speedup_p50"]) == (2.0, 10.0)
    assert data["daemon_skipped"] is None and data["daemon_left_running"]["pid"] == 77


def test_the_section_without_the_daemon() -> None:
    both = ColdBoth(2, ["ragcli", "ask", "q"], in_process=[900.0, 1100.0],
                    daemon_skipped="--no-daemon")  # fmt: skip
    data = both.as_dict()
    assert data["in_process"]["stats"]["ttft"]["n"] == 2
    assert data["daemon"] is None and data["daemon_warm"] is None
    assert data["speedup_p50"] is None and data["daemon_skipped"] == "--no-daemon"


def _rendered(data: dict[str, object]) -> str:
    console = Console(record=True, width=120, no_color=True)
    render_cold_both(console, data)  # type: ignore[arg-type]
    return console.export_text()


def test_the_table_shows_each_way() -> None:
    text = _rendered(_both().as_dict())
    assert "2 fresh `ragcli ask` processes each" in text
    assert "in-process (--no-daemon)" in text and "1000.0" in text
    assert "daemon start: spawn → ready" in text and "200.0" in text
    assert "already warm" in text and "100.0" in text
    assert "cold daemon 2.00×, warm daemon 10.00×" in text
    assert "left running (pid 77)" in text
    off = ColdBoth(1, [], in_process=[5.0], daemon_skipped="--no-daemon").as_dict()
    text = _rendered(off)
    assert "daemon not measured: --no-daemon" in text and "daemon start" not in text
