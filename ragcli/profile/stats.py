"""Percentiles and summaries of measured values: what `profile`, `profile --server` and
`eval` report for a list of latencies (standard library only)."""

from __future__ import annotations

from collections.abc import Sequence

PERCENTILES = (50, 90, 95, 99)


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p95/p99, mean, min, max (4 decimals) and n; only {"n": 0} for no values."""
    if not values:
        return {"n": 0}
    out: dict[str, float] = {f"p{p}": round(percentile(values, p), 4) for p in PERCENTILES}
    out.update(
        mean=round(sum(values) / len(values), 4),
        min=round(min(values), 4),
        max=round(max(values), 4),
        n=len(values),
    )
    return out
