"""One writer per data directory: an advisory lock (flock) that the kernel releases when the
holder exits, even after `kill -9`, so a crash never leaves a stale lock behind."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ragcli.core.db import storage_error
from ragcli.core.errors import BusyError

LOCK_NAME = "writer.lock"


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def writer_lock(
    data_dir: Path, wait: float, what: str, notify: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the data directory's writer lock; wait up to `wait` seconds for another writer."""
    path = data_dir / LOCK_NAME
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only or full data directory: say so in one line
        raise (storage_error(data_dir, exc) or exc) from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(
                        f"another ragcli writer is using {data_dir} ({_holder(path)}); "
                        "try again when it finishes, or wait longer with --wait SECONDS"
                    ) from None
                if not told and notify:
                    notify(f"waiting up to {wait:g} s for another ragcli writer ({_holder(path)})")
                    told = True
                time.sleep(0.1)
        with contextlib.suppress(OSError):  # who holds it is a courtesy (a full disk says no)
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}: ragcli {what}".encode())
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def stderr_notice(message: str) -> None:
    print(f"ragcli: {message}", file=sys.stderr, flush=True)
