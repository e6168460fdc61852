"""The daemon's own routes, beside `serve`'s: an `ask` command line answered as frames
(ragcli.daemon.client documents them), its status, and its shutdown.

An `ask` is answered only when the daemon runs the client's code (same version and code
fingerprint) in the client's process environment (PROCESS_ENV: what the code reads outside
Settings); its settings are then built from the client's own environment, config file and
flags, exactly as `ragcli ask` in the client's process would build them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ragcli import __version__
from ragcli.core.config import Settings, load_settings
from ragcli.core.failures import failure_line
from ragcli.daemon.client import ASK_PATH, PID_HEADER, SHUTDOWN_PATH, STATUS_PATH
from ragcli.daemon.fastpath import PROCESS_ENV
from ragcli.daemon.location import fingerprint
from ragcli.daemon.pool import Pipelines
from ragcli.retrieval.questions import QueryFlags, queries_from
from ragcli.retrieval.session import answer_all
from ragcli.serve.service import Service


@dataclass
class DaemonState:
    """What the daemon's routes share: its service, pipelines, and how to stop it."""

    service: Service
    pipelines: Pipelines
    data_dir: Path
    socket: Path
    idle_s: float
    stop: Callable[[], None]
    ready_ms: float | None = None
    requests: int = 0


class _Frames:
    """A session's output as newline-delimited JSON frames on a queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def _put(self, **frame: Any) -> None:
        self.queue.put_nowait(json.dumps(frame).encode() + b"\n")

    def write(self, text: str) -> None:
        self._put(out=text)

    def note(self, text: str) -> None:
        self._put(note=text)

    def error(self, line: str) -> None:
        self._put(err=line + "\n")

    def exit(self, code: int) -> None:
        self._put(exit=code)
        self.queue.put_nowait(None)


def refusal(body: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when this daemon must not answer `body`, else None."""
    if body.get("version") != __version__ or body.get("fingerprint") != fingerprint():
        return "version", "the daemon runs other ragcli code (it is replaced)"
    theirs = body.get("process_env") or {}
    for name in PROCESS_ENV:
        if theirs.get(name) != os.environ.get(name):
            return "env", f"the daemon was started with another {name}"
    return None


def request_settings(body: dict[str, Any]) -> Settings:
    """The settings `ragcli ask` would have in the client's process."""
    env = {str(k): str(v) for k, v in (body.get("env") or {}).items()}
    config = Path(body["config"]) if body.get("config") else None
    cwd = Path(body["cwd"])
    settings = load_settings(body.get("overrides") or {}, config, env, cwd)
    if settings.local_model and not os.path.isabs(settings.local_model):  # a path, as given
        settings = replace(settings, local_model=str(cwd / settings.local_model))
    return settings


async def _session(state: DaemonState, body: dict[str, Any], out: _Frames) -> None:
    """One `ask` command line; ends with its exit frame whatever happens."""
    code = 0
    pipeline = None
    try:
        settings = request_settings(body)
        flags = QueryFlags(body.get("k"), tuple(body.get("partitions") or ()), body.get("since"),
                           body.get("source"))  # fmt: skip
        batch = Path(body["batch"]) if body.get("batch") else None
        queries = queries_from(body.get("question"), batch, flags, Path(body["cwd"]))
        pipeline = state.pipelines.get(settings)
        await answer_all(pipeline, queries, out, bool(body.get("json")), batch is not None)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the same one line and exit code as in-process
        line, code = failure_line(exc)
        out.error(line)
    finally:
        if pipeline is not None:
            state.pipelines.done(pipeline)
        state.service.release()
    out.exit(code)


def routes(state: DaemonState) -> list[BaseRoute]:
    """ASK_PATH, STATUS_PATH and SHUTDOWN_PATH over `state`."""

    async def ask(request: Request) -> Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return _refused("request", "the request is not a JSON object", 400)
        refused = refusal(body)
        if refused is not None:
            return _refused(*refused)
        if not state.service.admit():
            return _refused("busy", "the daemon is at its concurrency limit")
        state.requests += 1
        return StreamingResponse(
            _stream(state, body),
            media_type="application/x-ndjson",
            headers={PID_HEADER: str(os.getpid()), "Cache-Control": "no-cache"},
        )

    async def status(request: Request) -> Response:
        return JSONResponse(status_of(state))

    async def shutdown(request: Request) -> Response:
        state.stop()
        return JSONResponse({"stopping": True, "pid": os.getpid()})

    return [
        Route(ASK_PATH, ask, methods=["POST"]),
        Route(STATUS_PATH, status, methods=["GET"]),
        Route(SHUTDOWN_PATH, shutdown, methods=["POST"]),
    ]


async def _stream(state: DaemonState, body: dict[str, Any]) -> AsyncIterator[bytes]:
    out = _Frames()
    task = asyncio.ensure_future(_session(state, body, out))
    try:
        while (frame := await out.queue.get()) is not None:
            yield frame
    finally:
        if not task.done():  # the client went away (Ctrl-C): stop answering it
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _refused(reason: str, message: str, status: int = 409) -> Response:
    return JSONResponse({"reason": reason, "message": message}, status_code=status)


def status_of(state: DaemonState) -> dict[str, Any]:
    """`ragcli daemon status --json`: who it is, how busy, how big."""
    service, pipeline = state.service, state.pipelines.base
    idle = time.monotonic() - service.last_active
    return {
        "running": True,
        "pid": os.getpid(),
        "version": __version__,
        "fingerprint": fingerprint(),
        "data_dir": str(state.data_dir),
        "socket": str(state.socket),
        "uptime_s": round(time.time() - service.started, 1),
        "ready_ms": state.ready_ms,
        "requests": state.requests,
        "in_flight": service.in_flight,
        "idle_s": round(0.0 if service.in_flight else idle, 1),
        "idle_timeout_s": state.idle_s,
        "pipelines": len(state.pipelines),
        "rss_mb": _rss_mb(),
        "generator": pipeline.generator.name,
        "embedder": pipeline.embedder.cache_id,
        "index_version": pipeline.catalog.version if pipeline.catalog else None,
    }


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return None
