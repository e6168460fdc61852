"""The daemon process: `serve`'s app and warm `Service` on the data directory's private Unix
socket, plus the daemon's routes; it accepts requests as soon as its socket is bound (the
loads continue in the background, and the first request waits only for those it needs).

It exits after `daemon_idle` seconds without a request, on SIGTERM or SIGINT, and on
`ragcli daemon stop`; on the way out it unlinks its socket and state file (if they are still
its own), and finishes the requests in flight."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ragcli.core.config import load_settings
from ragcli.core.process import process_started_ns
from ragcli.daemon.location import Location, check_data_dir, check_private, fingerprint
from ragcli.daemon.pool import Pipelines
from ragcli.daemon.routes import DaemonState, routes
from ragcli.serve.server import build_app
from ragcli.serve.service import Service

MAX_CONCURRENCY = 64
REQUEST_TIMEOUT = 3600.0  # an `ask --batch` of many questions is one request


def bind(path: Path) -> tuple[socket.socket, FileId]:
    """A listening socket at `path`, mode 0600 from birth, and what identifies its file; a
    dead daemon's socket is replaced (the starter holds the starter lock, found it silent)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    check_private(path)
    sock.listen(128)
    return sock, _file_id(path)


def run_daemon(data_dir: Path, config: Path | None, ready_fd: int | None) -> None:
    """Serve `data_dir` until idle, stopped or signalled."""
    t0 = process_started_ns() or time.perf_counter_ns()
    settings = load_settings({"data_dir": data_dir}, config)
    check_data_dir(data_dir)
    location = Location(data_dir)
    sock, ours = bind(location.socket)
    service = Service(settings, MAX_CONCURRENCY, REQUEST_TIMEOUT)
    server: Any = None

    def stop() -> None:
        _unlink_if_ours(location.socket, ours)
        if server is not None:
            server.should_exit = True

    idle = settings.idle_seconds(ci=bool(os.environ.get("CI")))
    state = DaemonState(service, Pipelines(service.pipeline), data_dir, location.socket, idle, stop)

    async def on_start() -> None:
        asyncio.ensure_future(_idle_watch(state))

    def on_stop() -> None:
        _unlink_if_ours(location.socket, ours)
        _remove_state(location)
        state.pipelines.close()

    app = build_app(service, routes(state), warm_first=False, on_start=on_start, on_stop=on_stop)
    server = _uvicorn(app)
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets)
        state.ready_ms = round((time.perf_counter_ns() - t0) / 1e6, 1)
        _write_state(location, state)
        _say_ready(ready_fd)

    server.startup = startup
    try:
        server.run(sockets=[sock])
    finally:  # when the lifespan never started or stopped (on_stop did the same)
        _unlink_if_ours(location.socket, ours)
        _remove_state(location)


def _uvicorn(app: Any) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=30, access_log=False, lifespan="on"
    )
    return uvicorn.Server(config)


async def _idle_watch(state: DaemonState) -> None:
    """Stop after `idle_s` without a request (a request that never ended counts as ended
    once the request time limit has passed too), or once the data directory is gone."""
    service = state.service
    step = min(5.0, max(state.idle_s / 4, 0.05))
    while True:
        await asyncio.sleep(step)
        if not (state.data_dir / "catalog.db").exists():
            print("ragcli daemon: the data directory is gone; exiting", file=sys.stderr, flush=True)
            state.stop()
            return
        quiet = time.monotonic() - service.last_active
        if quiet >= state.idle_s and (service.in_flight == 0 or quiet >= REQUEST_TIMEOUT):
            print(f"ragcli daemon: idle for {quiet:.0f} s; exiting", file=sys.stderr, flush=True)
            state.stop()
            return


def _say_ready(fd: int | None) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, f"ready {os.getpid()}\n".encode())
    with contextlib.suppress(OSError):
        os.close(fd)


def _write_state(location: Location, state: DaemonState) -> None:
    data = {"pid": os.getpid(), "fingerprint": fingerprint(), "socket": str(state.socket)}
    tmp = location.state.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, location.state)


def _remove_state(location: Location) -> None:
    with contextlib.suppress(OSError, ValueError):
        if json.loads(location.state.read_text(encoding="utf-8")).get("pid") == os.getpid():
            location.state.unlink()


FileId = tuple[int, int, int]


def _file_id(path: Path) -> FileId:
    """A file's identity: an inode number alone is not one (a socket unlinked on `daemon stop`
    frees its inode, and the successor's socket, bound at once, may get the same number)."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_ctime_ns


def _unlink_if_ours(path: Path, ours: FileId) -> None:
    """Unlink the socket file if it is still the one this daemon bound (a successor may
    already have bound its own at the same path)."""
    with contextlib.suppress(OSError):
        if _file_id(path) == ours:
            os.unlink(path)
