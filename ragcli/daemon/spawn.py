"""Starting and stopping a data directory's daemon from a client process (standard library).

A daemon is started fully detached, like `setsid cmd </dev/null >log 2>&1 &`: its own session,
no terminal, stdin from /dev/null, stdout and stderr to `daemon.log`, working directory `/`,
so no shell, pipe or CI job ever waits on it. The starter holds `daemon.lock` from its check to
the daemon's "ready", so concurrent `ask`s start one daemon between them; the daemon says
ready on a pipe once its socket accepts requests (loads continue in the background).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragcli.daemon.client import Client, Unavailable
from ragcli.daemon.location import Location, NotPrivate, check_data_dir, check_private

START_TIMEOUT = 60.0  # seconds for a daemon to say ready (imports on a loaded 2-core machine)
STOP_TIMEOUT = 30.0  # what it gets to finish the requests in flight before SIGKILL
LOG_LIMIT = 1 << 20  # a daemon.log over this is started afresh


class StartFailed(Exception):
    """A daemon could not be started; the message says why (its log's last line, if any)."""


@dataclass(frozen=True)
class Started:
    pid: int
    ms: float  # from the spawn to its "ready"
    replaced: bool = False


@contextlib.contextmanager
def starter_lock(location: Location) -> Iterator[None]:
    """The lock held by whoever starts (or replaces) the daemon of `location`."""
    fd = os.open(location.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def start(location: Location, config: Path | None = None, replace: bool = False) -> Started | None:
    """Start the daemon of `location` unless one answers (then None); with `replace`, stop the
    one that answers first. StartFailed if it cannot be started."""
    try:
        check_data_dir(location.data_dir)
    except (OSError, NotPrivate) as exc:
        raise StartFailed(str(exc)) from None
    with starter_lock(location):
        client = Client(location)
        try:
            status = client.status()
        except Unavailable:
            status = None
        if status is not None and not replace:
            return None  # someone else started it meanwhile
        if status is not None:
            _stop_pid(client, int(status.get("pid", 0)))
        _refuse_foreign_socket(location.socket)
        if status is None and (silent := recorded_pid(location)) is not None:
            _replace_silent(silent)  # alive and ours, but it did not answer
        with contextlib.suppress(FileNotFoundError):
            os.unlink(location.socket)  # a dead daemon's socket: it answered nothing
        started = _spawn(location, config)
        return Started(started.pid, started.ms, replaced=status is not None)


def recorded_pid(location: Location) -> int | None:
    """The pid in `daemon.json` if that process is alive and is this data directory's daemon
    (its command line says so: a recycled pid is never taken for it)."""
    import json

    try:
        pid = int(json.loads(location.state.read_text(encoding="utf-8"))["pid"])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ours = b"ragcli.daemon.main" in argv and os.fsencode(location.data_dir) in argv
    return pid if ours else None


def _replace_silent(pid: int) -> None:
    """A daemon of this directory that is alive but did not answer: one that is stopped
    (SIGSTOP, a debugger) is killed, to be replaced; one that runs is only slow (a loaded
    machine, a long load) and is left alone — never two daemons for one directory: this ask
    is answered in-process (`ragcli daemon stop` ends one that is stuck for good)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return
    if state not in ("T", "t", "Z"):
        raise StartFailed(f"the daemon (pid {pid}) did not answer in time")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _gone(pid, 5.0)


def _refuse_foreign_socket(path: Path) -> None:
    """A socket that is not ours alone is never replaced: whoever made it may still use it
    (it is refused, and `ask` answers in-process, until its owner removes it)."""
    try:
        check_private(path)
    except FileNotFoundError:
        return
    except NotPrivate as exc:
        raise StartFailed(f"refusing {exc}") from None


def _spawn(location: Location, config: Path | None) -> Started:
    import subprocess

    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "ragcli.daemon.main", "--data-dir", str(location.data_dir)]
    argv += ["--ready-fd", str(write_fd)]
    if config is not None:
        argv += ["--config", str(config)]
    log = _open_log(location.log)
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            start_new_session=True,
            pass_fds=(write_fd,),
            close_fds=True,
        )
    finally:
        os.close(write_fd)
        os.close(log)
    try:
        line = _read_ready(read_fd, START_TIMEOUT)
    finally:
        os.close(read_fd)
    if not line.startswith("ready"):
        if proc.poll() is None:
            proc.kill()
        raise StartFailed(_last_line(location.log) or "it exited before it was ready")
    proc.returncode = 0  # detached: never waited for, never reported as a zombie by Popen
    return Started(proc.pid, (time.perf_counter() - t0) * 1000)


def _open_log(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    with contextlib.suppress(OSError):
        if path.stat().st_size > LOG_LIMIT:
            flags |= os.O_TRUNC
    return os.open(path, flags, 0o600)


def _read_ready(fd: int, timeout: float) -> str:
    """The daemon's line on the ready pipe; "" at EOF (it died) or after `timeout`."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return ""
        chunk = os.read(fd, 256)
        if not chunk:
            return ""
        data += chunk
    return data.decode(errors="replace").strip()


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


def stop(location: Location) -> int | None:
    """Stop the daemon of `location`: the pid it had, or None when none was running. One that
    does not answer (stuck, or behind a refused socket) is found by its state file."""
    client = Client(location)
    try:
        pid: int | None = int(client.status().get("pid", 0))
    except Unavailable:
        pid = recorded_pid(location)
        if pid is None:
            return None
    with starter_lock(location):
        _stop_pid(client, pid or 0)
    return pid


def _stop_pid(client: Client, pid: int) -> None:
    """Ask politely (it finishes what is in flight), then SIGTERM, then SIGKILL; return once
    `pid` is gone. One that cannot be asked gets SIGTERM at once."""
    try:
        client.shutdown()
        steps: tuple[tuple[signal.Signals | None, float], ...] = ((None, STOP_TIMEOUT),)
    except Unavailable:
        steps = ()
    if pid <= 0:
        return
    for sig, wait in (*steps, (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if _gone(pid, wait):
            return


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child (daemon start in tests)
                return True
        time.sleep(0.02)
    return False
