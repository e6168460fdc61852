"""Where a long run's time goes: seconds per named phase, and the process's peak memory.

Phases may overlap (an ingest embeds one window while it indexes the previous one), so their
seconds can add up to more than the wall time; each is the time that phase's own work took.
Standard library only."""

from __future__ import annotations

import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class PhaseClock:
    """Seconds per phase, added up over every timed span; safe to use from several threads."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self._seconds[phase] = self._seconds.get(phase, 0.0) + seconds

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def seconds(self) -> dict[str, float]:
        with self._lock:
            return {name: round(s, 3) for name, s in self._seconds.items()}


class Spans:
    """The wall time covered by possibly overlapping (start, end) spans: their union."""

    def __init__(self) -> None:
        self._spans: list[tuple[float, float]] = []

    def add(self, start: float, end: float) -> None:
        self._spans.append((start, end))

    def covered(self) -> float:
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self._spans):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (ru_maxrss: KiB on Linux, bytes on
    macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
