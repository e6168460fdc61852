"""When the next request may start: client-side rate limits (requests and tokens per
minute) on a virtual clock, a shared hold that a server's ``Retry-After`` sets for every
worker, and the jittered exponential backoff of a retried request. Standard library only.
"""

from __future__ import annotations

import asyncio
import random
import time

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


class Pacer:
    """Client-side rate limits on a virtual clock (GCRA, no burst), plus a shared hold that a
    `Retry-After` sets for every request. Synchronous reservations: no lock, no loop binding."""

    def __init__(self, rpm: int = 0, tpm: int = 0, seed: int | None = None) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._next_request = 0.0
        self._next_token = 0.0
        self.not_before = 0.0
        self._hold_s = 0.0
        self._rng = random.Random(seed)

    def hold(self, seconds: float) -> None:
        """No request starts for `seconds` (a server's Retry-After)."""
        until = time.monotonic() + seconds
        if until > self.not_before:
            self.not_before, self._hold_s = until, seconds

    def _held(self, now: float) -> float:
        # Held requests resume spread over 10 % of the hold, not all in the same millisecond.
        if self.not_before <= now:
            return now
        return self.not_before + self._rng.uniform(0.0, 0.1 * self._hold_s)

    async def wait(self, tokens: int) -> None:
        now = time.monotonic()
        start = max(self._held(now), self._next_request, self._next_token)
        if self.rpm > 0:
            self._next_request = start + 60.0 / self.rpm
        if self.tpm > 0:
            self._next_token = start + tokens * 60.0 / self.tpm
        while start > now:  # a hold may arrive while we sleep: check again on waking
            await asyncio.sleep(start - now)
            now = time.monotonic()
            if self.not_before > now:
                start = max(start, self._held(now))


def backoff_delay(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Jittered exponential backoff, never shorter than the server's Retry-After."""
    expo = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempt - 1)) * rng.uniform(0.5, 1.0)
    if retry_after is None:
        return expo
    return max(retry_after * rng.uniform(1.0, 1.1), expo if attempt > 2 else 0.0)
