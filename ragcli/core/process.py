"""This process's start, on the perf_counter clock: what a cold run (profile) or a daemon's
start-up time (daemon status) is measured from."""

from __future__ import annotations

import os
import time


def process_started_ns() -> int | None:
    """This process's start on the perf_counter_ns clock (Linux /proc; 10 ms resolution)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        ticks = os.sysconf("SC_CLK_TCK")
        age_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME) - start_ticks * 1_000_000_000 // ticks
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.perf_counter_ns() - age_ns
