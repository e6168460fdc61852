"""A second process that takes a data directory's writer lock, for the locking tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.cli import REPO, clean_env

HOLD = (
    "import sys, time; from pathlib import Path; from ragcli.core.locking import writer_lock\n"
    "with writer_lock(Path(sys.argv[1]), 0, 'test holder'):\n"
    "    print('held', flush=True); time.sleep(60)\n"
)


def hold_lock(home: Path) -> subprocess.Popen:
    """A process holding the writer lock of `home` (for 60 s) once this returns."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=clean_env(home),
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc
