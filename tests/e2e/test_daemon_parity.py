"""The same `ragcli ask` with and without the daemon: the same exit code, stdout and stderr.

Every case runs in two copies of the ingested sample corpus that go through the same asks in
the same order (their caches stay alike): in-process in one (RAGCLI_DAEMON=off), through the
daemon in the other (with -v, whose one extra stderr line must say the daemon answered). Each
case runs twice: the first time the daemon is started by that ask, the second time it is warm
(and most answers are replayed from the answer cache, in both copies alike). --json lines are
compared without ttft_ms, the one field that measures time. A `--source-floor` given to one
ask is that ask's alone: the next ask on the same daemon prints the default floor's sources.

It runs in `make test-daemon` (in CI beside `make test`), which is the with-and-without run,
not in `make test`: 64 ask processes, about half a minute of the default suite's budget."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragcli.daemon.client import Client, Unavailable
from ragcli.daemon.location import Location
from tests.support.cli import DAEMON_MODE, copy_home, run_ragcli

pytestmark = pytest.mark.skipif(
    DAEMON_MODE != "on", reason="the with/without-daemon run: make test-daemon"
)

Q = "How do I rotate the on-call pager?"
ANSWERED = re.compile(r"^ragcli: daemon: answered by pid \d+ \((started in \d+ ms|warm)\)\n")
BATCH = (
    f"{Q}\n"
    "# a comment line, skipped\n"
    '{"question": "How many days of annual leave do employees get?", "k": 2, '
    '"partition": "hr"}\n'
)

CASES: dict[str, list[str]] = {
    "plain": [Q],
    "json": [Q, "--json"],
    "batch": ["--batch", "BATCH"],
    "batch-json": ["--batch", "BATCH", "--json"],
    "batch-relative": ["--batch", "batch.jsonl"],  # read from the client's working directory
    "k3": [Q, "-k", "3"],
    "partition": [Q, "--partition", "hr", "-p", "runbooks"],
    "source": [Q, "--source", "runbooks/*"],
    "since": ["What changed in the deploy freeze calendar?", "--since", "2026-01-01", "--json"],
    "lexical": [Q, "--retrieval", "lexical"],
    "dense": [Q, "--retrieval=dense", "--json"],
    "no-cache": [Q, "--no-cache", "all", "--json"],
    "ranked": [Q, "--prompt-layout", "ranked", "--json"],
    "k0": [Q, "--k", "0"],  # a usage error: exit 2
    "missing-batch": ["--batch", "no-such-file.txt"],  # exit 2
    "empty-question": [""],  # exit 2
    "quiet": ["-q", "ask", Q],  # a global option: before the command
    "quiet-json": ["--quiet", "ask", Q, "--json"],
    "source-floor": [Q, "--source-floor", "0"],
}


@pytest.fixture(scope="module")
def homes(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("parity")
    for name in ("off", "on"):
        copy_home(sample_home, root / name)
    (root / "batch.jsonl").write_text(BATCH)
    yield root
    with contextlib.suppress(Unavailable):  # it exits on its own, unwaited
        Client(Location((root / "on").resolve())).shutdown()


def _run(root: Path, mode: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`ragcli ask ARGS` (or `ragcli ARGS` when they name the command, after global options)."""
    args = [str(root / "batch.jsonl") if a == "BATCH" else a for a in args]
    extra = ["-v"] if mode == "on" else []
    command = [] if "ask" in args else ["ask"]
    return run_ragcli(root / mode, *command, *args, *extra, cwd=root, RAGCLI_DAEMON=mode)


def _stdout(proc: subprocess.CompletedProcess[str], as_json: bool) -> Any:
    if not as_json or proc.returncode != 0:
        return proc.stdout
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    for line in lines:
        assert isinstance(line.pop("ttft_ms"), float)
    return lines


def _same(off: subprocess.CompletedProcess[str], on: subprocess.CompletedProcess[str],
          as_json: bool, how: str) -> None:  # fmt: skip
    match = ANSWERED.match(on.stderr)
    assert match, on.stderr  # the daemon answered, and said so first
    assert how in match.group(1), on.stderr
    assert on.returncode == off.returncode, (off.stderr, on.stderr)
    assert _stdout(on, as_json) == _stdout(off, as_json)
    assert on.stderr[match.end() :] == off.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_output_with_and_without_the_daemon(homes: Path, case: str) -> None:
    args = CASES[case]
    as_json = "--json" in args
    with contextlib.suppress(Unavailable):  # the next ask starts a new daemon
        Client(Location((homes / "on").resolve())).shutdown()
    for how in ("started", "warm"):
        off = _run(homes, "off", args)
        on = _run(homes, "on", args)
        _same(off, on, as_json, how)
    if case in ("k0", "missing-batch", "empty-question"):
        assert off.returncode == 2 and off.stdout == ""
        assert len(off.stderr.splitlines()) == 1 or "Usage:" in off.stderr
    else:
        assert off.returncode == 0, off.stderr
        assert off.stdout
    if case.startswith("quiet"):  # -q: not the generator's note, nor the cached answer's
        assert off.stderr == ""


def _sources(proc: subprocess.CompletedProcess[str]) -> tuple[int, list[str]]:
    """The pid of the daemon that answered (its -v line), and the source lines printed."""
    assert proc.returncode == 0, proc.stderr
    match = re.match(r"ragcli: daemon: answered by pid (\d+) ", proc.stderr)
    assert match, proc.stderr
    return int(match.group(1)), proc.stdout.split("\nSources:\n", 1)[1].splitlines()


def test_a_source_floor_is_that_asks_alone(homes: Path) -> None:
    """--source-floor 0 shows the sources the default floor (0.8) hides, through the daemon,
    and the next ask on the same daemon is back to the default."""
    pid, default = _sources(_run(homes, "on", [Q]))
    same, every = _sources(_run(homes, "on", [Q, "--source-floor", "0"]))
    assert same == pid
    assert len(every) > len(default) and every[: len(default)] == default
    assert _sources(_run(homes, "on", [Q])) == (pid, default)  # no floor left behind
    assert _sources(_run(homes, "on", [Q, "--source-floor=0.8"])) == (pid, default)
    bad = _run(homes, "on", [Q, "--source-floor", "1.5"])  # the fast path leaves it to ask
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == "ragcli: error: --source-floor must be between 0 and 1, got 1.5\n"
