"""Limits `ragcli serve` puts on a request before it reaches a handler: requests per minute
per API key (a sliding window over the last 60 s, on an injectable clock), the size of a
request body (read as it streams, stopping at the limit), and which addresses are loopback."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

WINDOW_S = 60.0


class RateLimiter:
    """At most N requests in any 60 s per name: the times of the last N admitted requests
    are kept, and a request is refused until the oldest of them is 60 s old."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._admitted: dict[str, deque[float]] = {}

    def take(self, name: str, per_minute: int) -> int:
        """0 when the request is admitted (and counted), else the whole seconds (at least 1)
        until a slot frees. `per_minute` <= 0: no limit."""
        if per_minute <= 0:
            return 0
        now = self.clock()
        times = self._admitted.setdefault(name, deque())
        while times and times[0] <= now - WINDOW_S:
            times.popleft()
        while len(times) > per_minute:  # the limit was lowered: forget the oldest
            times.popleft()
        if len(times) < per_minute:
            times.append(now)
            return 0
        return max(1, math.ceil(times[0] + WINDOW_S - now))


class TooLarge(Exception):
    """A request body over the limit."""


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length a request declares, if any (a malformed one: None, and the body is
    counted as it arrives)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or TooLarge as soon as more than `limit` bytes have arrived
    (a chunked body is counted as it streams). None when the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # http.disconnect
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            raise TooLarge
        chunks.append(body)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the app `body` whole, then what the client sends next (its
    disconnect, which a streamed response listens for)."""
    sent = False

    async def receive_again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


def is_loopback(host: str) -> bool:
    """Whether binding `host` exposes the server to this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
