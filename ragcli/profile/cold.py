"""`ragcli profile --cold-runs N`: cold time to first token both ways, whole process against
whole process: N fresh `ragcli ask --no-daemon` processes (answered in-process), and N fresh
`ragcli ask` processes through the data directory's daemon, stopped before each, so that each
pays the daemon's start; after each, one more `ragcli ask` to the daemon it left warm.

Every figure is client-observed: from the spawn of the `ragcli ask` process to the first byte
of its answer on stdout (text mode, read as it comes), process start included. The daemon's
start is a stage of its own, two ways: `start_ms`, from its spawn to its "ready" as the client
that started it saw it (`ask -v` says "started in X ms"), and `ready_ms`, from the daemon
process's own start to its socket accepting requests (its status). The loads (model, index)
run in the daemon after "ready"; the first request waits for those it needs.

The last daemon is left running, as a user's own `ask` would have left it: it exits after its
idle time, or on `ragcli daemon stop`.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli.core.errors import RagcliError
from ragcli.daemon.client import Client, Unavailable
from ragcli.daemon.location import Location
from ragcli.daemon.spawn import stop
from ragcli.profile.stats import summarize

if TYPE_CHECKING:
    from rich.console import Console

    from ragcli.retrieval.events import Query

PROCESS_TIMEOUT = 300.0  # seconds a cold `ragcli ask` may take (a slow first model install)
ANSWERED_BY = re.compile(r"ragcli: daemon: answered by pid (\d+) \((?:started in (\d+) ms|warm)\)")
NOT_BY_DAEMON = re.compile(r"ragcli: daemon: (.*); answering in-process")


def query_args(query: Query, setting_flags: Mapping[str, Any]) -> list[str]:
    """The flags that ask `query` with these settings (`--k`, `--partition`, …, `--llm`)."""
    args: list[str] = []
    if query.k:
        args += ["--k", str(query.k)]
    for p in query.partitions:
        args += ["--partition", p]
    query_flags = {"--since": query.since, "--source": query.source}
    for flag, value in {**query_flags, **setting_flags}.items():
        if value:
            args += [flag, str(value)]
    return args


@dataclass(frozen=True)
class Timed:
    """One process: spawn to first stdout byte, and what it said on stderr."""

    ttft_ms: float
    stderr: str


def first_byte(argv: Sequence[str], timeout: float = PROCESS_TIMEOUT) -> Timed:
    """Run `argv` to its end; time from its spawn to the first byte on its stdout. RagcliError
    if it fails, prints nothing, or runs past `timeout`."""
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter_ns()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        first, code = b"", None
        try:
            if select.select([proc.stdout], [], [], timeout)[0]:
                first = os.read(proc.stdout.fileno(), 1)
                t1 = time.perf_counter_ns()
                proc.communicate(timeout=timeout)  # the rest of the answer, to its end
                code = proc.returncode
        except subprocess.TimeoutExpired:
            pass
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if code != 0 or not first:
        why = f"exit {code}" if code is not None else f"over {timeout:.0f} s"
        tail = stderr.strip()[-300:] or "no output"
        raise RagcliError(f"a cold `ragcli ask` process failed ({why}): {tail}")
    return Timed((t1 - t0) / 1e6, stderr)


@dataclass
class DaemonRun:
    """A `ragcli ask` through the daemon: its TTFT, and the start it paid (None: warm)."""

    ttft_ms: float
    start_ms: float | None
    ready_ms: float | None


class NotAnswered(Exception):
    """The daemon did not answer (the ask answered in-process); the message says why."""


def through_daemon(argv: Sequence[str], location: Location, cold: bool) -> DaemonRun:
    """`argv` (an `ask -v`) timed; with `cold`, the daemon is stopped first."""
    if cold:
        stop(location)
    timed = first_byte(argv)
    by = ANSWERED_BY.search(timed.stderr)
    if by is None:
        declined = NOT_BY_DAEMON.search(timed.stderr)
        raise NotAnswered(declined.group(1) if declined else "it did not say it answered")
    start_ms = float(by.group(2)) if by.group(2) else None
    ready_ms = None
    if start_ms is not None:
        with contextlib.suppress(Unavailable):
            ready_ms = Client(location).status().get("ready_ms")
    return DaemonRun(timed.ttft_ms, start_ms, ready_ms)


@dataclass
class ColdBoth:
    """The figures of `profile --cold-runs N` both ways; `as_dict` is the report's section."""

    runs: int
    command: list[str]
    in_process: list[float] = field(default_factory=list)
    daemon: list[DaemonRun] = field(default_factory=list)
    daemon_warm: list[float] = field(default_factory=list)
    daemon_skipped: str | None = None  # why the daemon was not measured
    left_running: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        inproc = summarize(self.in_process)
        cold, warm = summarize([r.ttft_ms for r in self.daemon]), summarize(self.daemon_warm)
        starts = [r.start_ms for r in self.daemon if r.start_ms is not None]
        readies = [r.ready_ms for r in self.daemon if r.ready_ms is not None]
        measured = not self.daemon_skipped
        return {
            "runs": self.runs,
            "command": self.command,
            "in_process": {"ttft_ms": _ms(self.in_process), "stats": {"ttft": inproc}},
            "daemon": {
                "ttft_ms": _ms([r.ttft_ms for r in self.daemon]),
                "start_ms": _ms(starts),
                "ready_ms": _ms(readies),
                "stats": {"ttft": cold, "start": summarize(starts), "ready": summarize(readies)},
            }
            if measured
            else None,
            "daemon_warm": {"ttft_ms": _ms(self.daemon_warm), "stats": {"ttft": warm}}
            if measured
            else None,
            "speedup_p50": _ratio(inproc, cold) if measured else None,
            "warm_speedup_p50": _ratio(inproc, warm) if measured else None,
            "daemon_skipped": self.daemon_skipped,
            "daemon_left_running": self.left_running,
        }


def _ms(values: Sequence[float]) -> list[float]:
    return [round(v, 3) for v in values]


def _ratio(base: dict[str, float], other: dict[str, float]) -> float | None:
    if not base.get("n") or not other.get("n") or other["p50"] <= 0:
        return None
    return round(base["p50"] / other["p50"], 2)


def cold_both(
    base: Sequence[str], ask: Sequence[str], location: Location, n: int, daemon_off: str | None
) -> ColdBoth:
    """`n` cold runs each way, interleaved (in-process, daemon cold, daemon warm) so that a
    machine's load weighs on both alike. `base`: `python -m ragcli GLOBAL-OPTIONS`; `ask`: the
    `ask QUESTION FLAGS` words; `daemon_off`: why not to measure the daemon (None: measure)."""
    result = ColdBoth(n, ["ragcli", *base[3:], *ask], daemon_skipped=daemon_off)
    for _ in range(n):
        result.in_process.append(first_byte([*base, *ask, "--no-daemon"]).ttft_ms)
        if result.daemon_skipped:
            continue
        try:
            result.daemon.append(through_daemon([*base, *ask, "-v"], location, cold=True))
            result.daemon_warm.append(through_daemon([*base, *ask, "-v"], location, False).ttft_ms)
        except NotAnswered as why:
            result.daemon_skipped = f"the daemon did not answer: {why}"
        except RagcliError as exc:  # shown in the report; the in-process runs go on
            result.daemon_skipped = f"through the daemon: {exc}"
    if not result.daemon_skipped:
        result.left_running = _left_running(location)
    return result


def _left_running(location: Location) -> dict[str, Any] | None:
    try:
        status = Client(location).status()
    except Unavailable:
        return None
    return {"pid": status.get("pid"), "idle_timeout_s": status.get("idle_timeout_s")}


def render_cold_both(console: Console, data: dict[str, Any]) -> None:
    """The cold runs both ways as a small table (p50, min, max, n of each)."""
    from rich.table import Table

    table = Table()
    table.add_column("how")
    for col in ("p50 ms", "min ms", "max ms", "n"):
        table.add_column(col, justify="right")
    rows = [("in-process (--no-daemon)", data["in_process"]["stats"]["ttft"])]
    if data["daemon"] is not None:
        stats = data["daemon"]["stats"]
        rows += [
            ("through the daemon, started by the ask", stats["ttft"]),
            ("  daemon start: spawn → ready (client)", stats["start"]),
            ("  daemon ready: its process start → accepting", stats["ready"]),
            ("through the daemon, already warm", data["daemon_warm"]["stats"]["ttft"]),
        ]
    for label, s in rows:
        cells = [f"{s[c]:.1f}" for c in ("p50", "min", "max")] if s.get("n") else ["–"] * 3
        table.add_row(label, *cells, str(s.get("n", 0)))
    console.print()
    console.print(
        f"Cold TTFT both ways: {data['runs']} fresh `ragcli ask` processes each, from spawn to "
        "the first byte of the answer"
    )
    console.print(table)
    console.print(_cold_both_note(data))


def _cold_both_note(data: dict[str, Any]) -> str:
    if data["daemon"] is None:
        return f"[dim]daemon not measured: {data['daemon_skipped']}[/]"
    speed = "speed-up over in-process (ratio of p50s): " + ", ".join(
        f"{label} {data[key]:.2f}×"
        for key, label in (("speedup_p50", "cold daemon"), ("warm_speedup_p50", "warm daemon"))
        if data[key] is not None
    )
    left = data["daemon_left_running"]
    if left:
        speed += (
            f"\n[dim]The daemon is left running (pid {left['pid']}), as after any `ragcli ask`: "
            f"it exits after {left['idle_timeout_s']:.0f} s idle, or `ragcli daemon stop`.[/]"
        )
    return speed


def python_ragcli(global_argv: Sequence[str]) -> list[str]:
    """`python -m ragcli GLOBAL-OPTIONS`: a fresh ragcli process with this one's interpreter."""
    return [sys.executable, "-m", "ragcli", *global_argv]
