"""Talking to a running daemon over its socket, with the standard library only.

The daemon speaks HTTP (it is `serve`'s app); besides the OpenAI-compatible routes it has

  POST ASK_PATH       an `ask` command line, answered as newline-delimited JSON frames:
                      {"out": text} stdout, {"err": text} stderr, {"note": text} a dim note
                      on stderr, then {"exit": code}. 409 {"reason", "message"}: a request
                      it will not answer (another ragcli version or code, another data
                      directory, another process environment).
  GET  STATUS_PATH    pid, version, fingerprint, uptime, requests, memory, idle timeout
  POST SHUTDOWN_PATH  stop: unlink the socket now, finish what is in flight, exit
"""

from __future__ import annotations

import http.client
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ragcli.core.unix_http import UnixHTTPConnection
from ragcli.daemon.location import Location, NotPrivate, check_private

ASK_PATH = "/v1/ragcli/ask"
STATUS_PATH = "/v1/ragcli/daemon"
SHUTDOWN_PATH = "/v1/ragcli/shutdown"
PID_HEADER = "X-Ragcli-Daemon-Pid"
CONNECT_TIMEOUT = 0.2  # a live daemon accepts at once; anything slower is not worth waiting for
RESPONSE_TIMEOUT = 3.0  # a live daemon answers with its headers as soon as it reads a request


class Unavailable(Exception):
    """No usable daemon behind the socket: missing, dead, stuck, or not private."""


class Lost(Exception):
    """The daemon went away mid-answer."""


@dataclass(frozen=True)
class Refusal:
    """A request the daemon will not answer, and why (`reason`: version, data_dir, env)."""

    reason: str
    message: str


Writer = Callable[[str], None]


@dataclass
class Terminal:
    """Where the frames of an answer go: this process's stdout and stderr."""

    out: Writer
    err: Writer
    dim: bool

    @classmethod
    def of_this_process(cls) -> Terminal:
        def out(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        def err(text: str) -> None:
            sys.stderr.write(text)
            sys.stderr.flush()

        dim = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        return cls(out, err, dim)

    def note(self, text: str) -> None:
        self.err(f"\x1b[2m{text}\x1b[0m\n" if self.dim else f"{text}\n")


class Client:
    """One data directory's daemon, as seen from a client process."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self.socket = str(location.socket)

    def _connection(self, timeout: float) -> UnixHTTPConnection:
        try:
            check_private(self.location.socket)
        except FileNotFoundError:
            raise Unavailable("no daemon is running") from None
        except NotPrivate as exc:
            raise Unavailable(f"refusing the socket: {exc}") from None
        conn = UnixHTTPConnection(self.socket, timeout=timeout, connect_timeout=CONNECT_TIMEOUT)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise Unavailable(f"its socket does not answer ({_reason(exc)})") from None
        return conn

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, timeout: float
    ) -> tuple[UnixHTTPConnection, http.client.HTTPResponse]:
        conn = self._connection(RESPONSE_TIMEOUT)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, data, headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise Unavailable(f"it does not answer ({_reason(exc)})") from None
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, response

    def status(self) -> dict[str, Any]:
        """The daemon's own account of itself; Unavailable if none answers."""
        conn, response = self._request("GET", STATUS_PATH, None, RESPONSE_TIMEOUT)
        try:
            data: dict[str, Any] = json.loads(response.read())
            return data
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise Unavailable(f"it does not answer ({_reason(exc)})") from None
        finally:
            conn.close()

    def shutdown(self) -> None:
        """Ask the daemon to stop (it unlinks its socket at once)."""
        conn, response = self._request("POST", SHUTDOWN_PATH, {}, RESPONSE_TIMEOUT)
        try:
            response.read()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    def ask(
        self, body: dict[str, Any], terminal: Terminal, on_start: Callable[[int], None]
    ) -> int | Refusal:
        """Send an `ask` and write its frames as they come: the exit code, or the refusal.
        `on_start(pid)` runs once the daemon has taken the request, before any frame.
        Unavailable before anything was written; Lost after."""
        conn, response = self._request("POST", ASK_PATH, body, 3600.0)
        try:
            if response.status != 200:
                return _refusal(response)
            on_start(int(response.getheader(PID_HEADER) or 0))
            return _frames(response, terminal)
        finally:
            conn.close()


def _refusal(response: http.client.HTTPResponse) -> Refusal:
    try:
        data = json.loads(response.read())
        return Refusal(str(data["reason"]), str(data["message"]))
    except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException):
        raise Unavailable(f"it answered HTTP {response.status}") from None


def _frames(response: http.client.HTTPResponse, terminal: Terminal) -> int:
    """Write each frame where it belongs; the exit code of the last one. A failure to write
    (a closed pipe: `ragcli ask … | head -1`) is the caller's; a failure to read is Lost."""
    while True:
        try:
            raw = response.readline()
            frame = json.loads(raw) if raw else None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise Lost(_reason(exc)) from None
        if frame is None:
            raise Lost("the connection closed before the answer ended")
        if "out" in frame:
            terminal.out(frame["out"])
        elif "err" in frame:
            terminal.err(frame["err"])
        elif "note" in frame:
            terminal.note(frame["note"])
        elif "exit" in frame:
            return int(frame["exit"])


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
