"""How many embedding requests may be in flight: an adaptive limit, AIMD as TCP does.

A 429 halves the limit (once per cohort: requests already in flight when it was cut do not
cut it again) and remembers the level that failed; every success adds 1/limit, so the limit
creeps back up by one per round of successes, and 8 times slower for the last step to the
level that failed (each probe of a hard limit costs a 429). Once past that level, the
ceiling is forgotten. Standard library only.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque


class AdaptiveLimit:
    """Requests in flight, at most `limit` (a float between 1 and `maximum`), adjusted AIMD:
    halved on a 429 (once per cohort), plus 1/limit per success (1/(8·limit) for the step
    back to the level that failed). No lock is needed: it is only touched from the event
    loop's thread, and it binds to no loop."""

    PROBE_ROUNDS = 8

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(self.maximum)
        self.lowest = self.maximum
        self.ceiling: int | None = None  # the level a 429 last came at
        self.in_flight = 0
        self._cut_at = -math.inf
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def current(self) -> int:
        return max(1, int(self.limit))

    async def acquire(self) -> float:
        """Wait for a slot; return the moment it was granted (for `release`)."""
        loop = asyncio.get_running_loop()
        while self.in_flight >= self.current:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif fut.done() and not fut.cancelled():
                    self._wake()  # woken, then cancelled: pass the wake-up on
                raise
        self.in_flight += 1
        return time.monotonic()

    def release(self, granted_at: float, outcome: str) -> None:
        """`outcome`: "ok", "throttled" (a 429) or "error" (no change to the limit)."""
        self.in_flight -= 1
        if outcome == "ok":
            step = 1.0 / self.limit
            if self.ceiling is not None and self.limit + 1.0 >= self.ceiling:
                step /= self.PROBE_ROUNDS
            self.limit = min(float(self.maximum), self.limit + step)
            if self.ceiling is not None and self.current > self.ceiling:
                self.ceiling = None  # probed past it: the provider has room again
        elif outcome == "throttled" and granted_at >= self._cut_at:
            self.ceiling = self.current
            self.limit = max(1.0, self.limit / 2)
            self._cut_at = time.monotonic()
            self.lowest = min(self.lowest, self.current)
        self._wake()

    def _wake(self) -> None:
        free = self.current - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1
