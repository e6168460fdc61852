"""Talking to a running daemon over its socket, with the standard library only — and little
of it: one HTTP/1.1 exchange on a raw Unix socket (no http.client: with its email and ssl
imports it cost a third of a warm `ask`).

The daemon speaks HTTP (it is `serve`'s app); besides the OpenAI-compatible routes it has

  POST ASK_PATH       an `ask` command line, answered as newline-delimited JSON frames:
                      {"out": text} stdout, {"err": text} stderr, {"note": text} a dim note
                      on stderr, then {"exit": code}. 409 {"reason", "message"}: a request
                      it will not answer (another ragcli version or code, another process
                      environment, too busy).
  GET  STATUS_PATH    pid, version, fingerprint, uptime, requests, memory, idle timeout
  POST SHUTDOWN_PATH  stop: unlink the socket now, finish what is in flight, exit
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ragcli.daemon.location import NotPrivate, check_private

if TYPE_CHECKING:
    from ragcli.daemon.location import Location

ASK_PATH = "/v1/ragcli/ask"
STATUS_PATH = "/v1/ragcli/daemon"
SHUTDOWN_PATH = "/v1/ragcli/shutdown"
PID_HEADER = "X-Ragcli-Daemon-Pid"
CONNECT_TIMEOUT = 0.2  # a live daemon accepts at once; anything slower is not worth waiting for
RESPONSE_TIMEOUT = 3.0  # a live daemon answers with its headers as soon as it reads a request
STREAM_TIMEOUT = 3600.0  # between two pieces of an answer (the provider has its own limits)


class Unavailable(Exception):
    """No usable daemon behind the socket: missing, dead, stuck, or not private."""


class Lost(Exception):
    """The daemon went away mid-answer."""


class Refusal:
    """A request the daemon will not answer, and why (`reason`: version, env, busy)."""

    __slots__ = ("message", "reason")

    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message


Writer = Callable[[str], None]


class Terminal:
    """Where the frames of an answer go: by default this process's stdout and stderr."""

    def __init__(self, out: Writer, err: Writer, dim: bool, quiet: bool = False) -> None:
        self.out, self.err, self.dim, self.quiet = out, err, dim, quiet

    @classmethod
    def of_this_process(cls, quiet: bool = False) -> Terminal:
        """This process's stdout and stderr; `quiet` (`ragcli -q`): no notes."""

        def out(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        def err(text: str) -> None:
            sys.stderr.write(text)
            sys.stderr.flush()

        dim = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        return cls(out, err, dim, quiet)

    def note(self, text: str) -> None:
        if self.quiet:  # as the in-process path's stderr() console under -q
            return
        self.err(f"\x1b[2m{text}\x1b[0m\n" if self.dim else f"{text}\n")


class _Response:
    """An HTTP/1.1 response read from a socket: status, headers, then the body (chunked,
    sized, or to the end of the connection) as it arrives."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        status_line = self._line()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ValueError(f"not an HTTP response: {status_line[:60]!r}")
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the connection closed before the answer ended")
        self.buf += data

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line, self.buf = self.buf[:end], self.buf[end + 2 :]
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def pieces(self) -> Iterator[bytes]:
        """The body, piece by piece as it arrives."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int(self._line().split(b";")[0], 16):
                yield self._exactly(size)
                self._exactly(2)
            while self._line():  # trailers
                pass
        elif "content-length" in self.headers:
            yield self._exactly(int(self.headers["content-length"]))
        else:
            yield self.buf
            self.buf = b""
            while data := self.sock.recv(65536):
                yield data

    def lines(self) -> Iterator[bytes]:
        """The body, line by line as the lines complete."""
        pending = b""
        for piece in self.pieces():
            pending += piece
            *complete, pending = pending.split(b"\n")
            yield from complete
        if pending:
            yield pending

    def read(self) -> bytes:
        return b"".join(self.pieces())


class Client:
    """One data directory's daemon, as seen from a client process: its Location, or the
    path of its socket (the fast path's form)."""

    def __init__(self, location: Location | str) -> None:
        self.socket = location if isinstance(location, str) else str(location.socket)

    def _connect(self) -> socket.socket:
        try:
            check_private(self.socket)
        except FileNotFoundError:
            raise Unavailable("no daemon is running") from None
        except NotPrivate as exc:
            raise Unavailable(f"refusing the socket: {exc}") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(self.socket)
        except OSError as exc:
            sock.close()
            raise Unavailable(f"its socket does not answer ({_reason(exc)})") from None
        return sock

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> _Response:
        """Send a request; the response once its headers are in (Unavailable otherwise)."""
        sock = self._connect()
        data = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        try:
            sock.settimeout(RESPONSE_TIMEOUT)
            sock.sendall(head.encode() + data)
            return _Response(sock)
        except (OSError, EOFError, ValueError) as exc:
            sock.close()
            raise Unavailable(f"it does not answer ({_reason(exc)})") from None

    def _json(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        response = self._request(method, path, body)
        try:
            data: dict[str, Any] = json.loads(response.read())
            return data
        except (OSError, EOFError, ValueError) as exc:
            raise Unavailable(f"it does not answer ({_reason(exc)})") from None
        finally:
            response.sock.close()

    def status(self) -> dict[str, Any]:
        """The daemon's own account of itself; Unavailable if none answers."""
        return self._json("GET", STATUS_PATH, None)

    def shutdown(self) -> None:
        """Ask the daemon to stop (it unlinks its socket at once)."""
        self._json("POST", SHUTDOWN_PATH, {})

    def ask(
        self, body: dict[str, Any], terminal: Terminal, on_start: Callable[[int], None]
    ) -> int | Refusal:
        """Send an `ask` and write its frames as they come: the exit code, or the refusal.
        `on_start(pid)` runs once the daemon has taken the request, before any frame.
        Unavailable before anything was written; Lost after."""
        response = self._request("POST", ASK_PATH, body)
        try:
            if response.status != 200:
                return _refusal(response)
            on_start(int(response.headers.get(PID_HEADER.lower()) or 0))
            response.sock.settimeout(STREAM_TIMEOUT)
            return _frames(response.lines(), terminal)
        finally:
            response.sock.close()


def _refusal(response: _Response) -> Refusal:
    try:
        data = json.loads(response.read())
        return Refusal(str(data["reason"]), str(data["message"]))
    except (OSError, EOFError, ValueError, KeyError, TypeError):
        raise Unavailable(f"it answered HTTP {response.status}") from None


def _frames(lines: Iterator[bytes], terminal: Terminal) -> int:
    """Write each frame where it belongs; the exit code of the last one. A failure to write
    (a closed pipe: `ragcli ask … | head -1`) is the caller's; a failure to read is Lost."""
    while True:
        try:
            frame = json.loads(next(lines))
        except StopIteration:
            raise Lost("the connection closed before the answer ended") from None
        except (OSError, EOFError, ValueError) as exc:
            raise Lost(_reason(exc)) from None
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
