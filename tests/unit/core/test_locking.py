"""The writer lock in-process: held inside each use, refused to a second writer, released
after (a probe process takes it at once). Across ragcli processes: tests/e2e/test_locking.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragcli.core.errors import BusyError
from ragcli.core.locking import LOCK_NAME, writer_lock
from tests.support.cli import REPO, clean_env
from tests.support.locking import HOLD


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
