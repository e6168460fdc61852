"""The same `ragcli ask` with and without the daemon: the same exit code, stdout and stderr.

Every case runs in two copies of the ingested sample corpus that go through the same asks in
the same order (their caches stay alike): in-process in one (RAGCLI_DAEMON=off), through the
daemon in the other (with -v, whose one extra stderr line must say the daemon answered). Each
case runs twice: the first time the daemon is started by that ask, the second time it is warm
(and most answers are replayed from the answer cache, in both copies alike). --json lines are
compared without ttft_ms, the one field that measures time.

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
    args = [str(root / "batch.jsonl") if a == "BATCH" else a for a in args]
    extra = ["-v"] if mode == "on" else []
    return run_ragcli(root / mode, "ask", *args, *extra, cwd=root, RAGCLI_DAEMON=mode)


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
