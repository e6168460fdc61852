"""One writer per data directory; readers keep working; a killed writer leaves no lock."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragcli.core.errors import BusyError
from ragcli.core.locking import LOCK_NAME, writer_lock
from tests.conftest import REPO, Run, clean_env

HOLD = (
    "import sys, time; from pathlib import Path; from ragcli.core.locking import writer_lock\n"
    "with writer_lock(Path(sys.argv[1]), 0, 'test holder'):\n"
    "    print('held', flush=True); time.sleep(60)\n"
)


def _holder(home: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=clean_env(home),
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_waits_then_fails_clearly(ragcli: Run, home: Path, corpus: Path) -> None:
    holder = _holder(home)
    try:
        started = time.monotonic()
        proc = ragcli("ingest", str(corpus), "--wait", "1")
        waited = time.monotonic() - started
        assert proc.returncode == 5
        assert "waiting up to 1 s for another ragcli writer (pid" in proc.stderr
        assert "another ragcli writer is using" in proc.stderr and "test holder" in proc.stderr
        assert waited >= 1.0
        for args in (["index", "--wait", "0"], ["cache", "clear", "--wait", "0"]):
            assert ragcli(*args).returncode == 5
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the lock with the killed process: no stale lock
    assert ragcli("ingest", str(corpus), "--wait", "0").returncode == 0


def test_readers_do_not_take_the_lock(ragcli: Run, home: Path, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    holder = _holder(home)
    try:
        ask = ragcli("ask", "How do I rotate the pager?", "--json")
        assert ask.returncode == 0 and json.loads(ask.stdout)["sources"]
        assert ragcli("status", "--json").returncode == 0
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


def test_the_lock_is_held_inside_and_released_after_each_use(tmp_path: Path) -> None:
    """Sequential uses in one process each get the lock at once (no wait); while one holds it,
    another open of the lock file (another writer, even in this process) is refused; after it,
    the holder note is cleared and the next writer takes the lock without waiting."""
    lock = tmp_path / LOCK_NAME
    for n in range(3):
        with writer_lock(tmp_path, 0, f"use {n}"):
            assert lock.read_text() == f"pid {os.getpid()}: ragcli use {n}"
            refused = pytest.raises(BusyError, match=f"pid {os.getpid()}: ragcli use {n}")
            with refused, writer_lock(tmp_path, 0, "a second writer"):
                pass
        assert lock.read_text() == ""
    # another process takes it at once: nothing was left held
    probe = subprocess.run(
        [sys.executable, "-c", HOLD.replace("time.sleep(60)", "pass"), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=clean_env(tmp_path),
        timeout=60,
    )
    assert probe.returncode == 0 and probe.stdout.strip() == "held", probe.stderr
