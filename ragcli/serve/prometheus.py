"""Counters and histograms in the Prometheus text exposition format (version 0.0.4).

Small on purpose: `serve` needs a handful of series, and the format is a few lines of text.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    ]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Registry:
    def __init__(self) -> None:
        self._help: dict[str, tuple[str, str]] = {
            "ragcli_provider_requests_total": (
                "counter",
                "Requests to each LLM/embedding endpoint by event: requests sent, ok, errors, "
                "failovers (failed before the first token, moved on), cancelled (lost a hedge).",
            ),
            "ragcli_provider_hedges_total": (
                "counter",
                "Hedged requests an endpoint received (sent) and those that answered first (won).",
            ),
            "ragcli_provider_in_flight": ("gauge", "Requests in flight to each endpoint."),
            "ragcli_provider_ttft_p95_seconds": (
                "gauge",
                "Recent p95 time to first token of each LLM endpoint (the default hedge delay).",
            ),
        }
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._hist: dict[str, dict[Labels, list[float]]] = defaultdict(dict)  # counts + sum, n

    def describe(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self.add(name, labels, value)

    def add(self, name: str, labels: dict[str, str], value: float = 1.0) -> None:
        """`inc` with the labels as a dict."""
        key = tuple(sorted(labels.items()))
        series = self._counters[name]
        series[key] = series.get(key, 0.0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a series to a value kept elsewhere (a gauge, or a counter read at scrape)."""
        self._counters[name][tuple(sorted(labels.items()))] = float(value)

    def export_pool(self, role: str, pool: Any) -> None:
        """Provider counters of an EndpointPool (ragcli/providers/endpoints.py), per endpoint."""
        for ep in pool.endpoints:
            labels = {"role": role, "endpoint": ep.label}
            for event in ("requests", "ok", "errors", "failovers", "cancelled"):
                self.set(
                    "ragcli_provider_requests_total", getattr(ep, event), event=event, **labels
                )
            self.set("ragcli_provider_hedges_total", ep.hedges_sent, result="sent", **labels)
            self.set("ragcli_provider_hedges_total", ep.hedges_won, result="won", **labels)
            self.set("ragcli_provider_in_flight", ep.in_flight, **labels)
            p95 = ep.p95()
            if p95 is not None:
                self.set("ragcli_provider_ttft_p95_seconds", p95, **labels)

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        row = self._hist[name].setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 2))
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                row[i] += 1
        row[-2] += seconds
        row[-1] += 1

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(set(self._help) | set(self._counters) | set(self._hist)):
            kind, text = self._help.get(name, ("untyped", ""))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for labels, value in sorted(self._counters.get(name, {}).items()):
                lines.append(f"{name}{_labels(labels)} {value:g}")
            for labels, row in sorted(self._hist.get(name, {}).items()):
                for bound, count in zip(LATENCY_BUCKETS, row, strict=False):
                    le = 'le="' + f"{bound:g}" + '"'
                    lines.append(f"{name}_bucket{_labels(labels, le)} {count:g}")
                inf = 'le="+Inf"'
                lines.append(f"{name}_bucket{_labels(labels, inf)} {row[-1]:g}")
                lines.append(f"{name}_sum{_labels(labels)} {row[-2]:.6f}")
                lines.append(f"{name}_count{_labels(labels)} {row[-1]:g}")
        return "\n".join(lines) + "\n"
