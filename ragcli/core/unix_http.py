"""HTTP over a Unix domain socket with the standard library: what `ask` and `profile` use to
talk to the daemon's socket (`unix:/path/daemon.sock`), at the cost of no import."""

from __future__ import annotations

import http.client
import socket

UNIX_PREFIX = "unix:"


class UnixHTTPConnection(http.client.HTTPConnection):
    """An `http.client` connection whose transport is the Unix socket at `path`.

    `connect_timeout` bounds the connect alone (a dead or stuck daemon answers nothing);
    `timeout` then applies to every read."""

    def __init__(self, path: str, timeout: float = 300.0, connect_timeout: float = 0.2) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path
        self.connect_timeout = connect_timeout

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.connect_timeout)
            sock.connect(self.path)
            sock.settimeout(self.timeout)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def unix_path(target: str) -> str | None:
    """The socket path of `unix:/path` (or of a plain path to a socket), else None."""
    if target.startswith(UNIX_PREFIX):
        return target[len(UNIX_PREFIX) :].removeprefix("//") or None
    if target.startswith("/") and target.endswith(".sock"):
        return target
    return None
