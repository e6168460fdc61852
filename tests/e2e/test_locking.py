"""One writer per data directory across real ragcli processes: a second writer waits then
fails clearly, readers do not take the lock, a killed writer leaves no lock."""

import json
import os
import signal
import time
from pathlib import Path

from tests.support.cli import Run
from tests.support.locking import hold_lock


def test_second_writer_waits_then_fails_clearly(ragcli: Run, home: Path, corpus: Path) -> None:
    holder = hold_lock(home)
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
    holder = hold_lock(home)
    try:
        ask = ragcli("ask", "How do I rotate the pager?", "--json")
        assert ask.returncode == 0 and json.loads(ask.stdout)["sources"]
        assert ragcli("status", "--json").returncode == 0
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
