"""`profile --budget ttft_p95=300ms,retrieve_p50=5ms`: a CI gate on the profile's figures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ragcli.core.errors import UsageError

_ITEM = re.compile(r"^(?P<metric>[a-z0-9_.]+?)(?:_(?P<stat>p50|p90|p95|p99|mean|max))?$")
_VALUE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>us|µs|ms|s)?$")
_UNIT_MS = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}


@dataclass(frozen=True)
class Budget:
    metric: str  # a warm stat name (ttft, e2e, pre_llm, itl, embed, retrieve, …) or cold_ttft
    stat: str  # p50/p90/p95/p99/mean/max ("" for cold_ttft)
    limit_ms: float
    text: str  # as the user wrote it


@dataclass(frozen=True)
class Verdict:
    budget: Budget
    actual_ms: float | None  # None: the profile has no such figure

    @property
    def ok(self) -> bool:
        return self.actual_ms is not None and self.actual_ms <= self.budget.limit_ms

    def line(self) -> str:
        b = self.budget
        name = b.metric if not b.stat else f"{b.metric} {b.stat}"
        if self.actual_ms is None:
            return f"{name}: no such figure in this profile"
        sign = "<=" if self.ok else ">"
        return f"{name} {self.actual_ms:.3f} ms {sign} budget {b.limit_ms:g} ms"


def parse_budgets(spec: str) -> list[Budget]:
    out: list[Budget] = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        key, sep, value = item.partition("=")
        m, v = _ITEM.match(key.strip()), _VALUE.match(value.strip())
        if not sep or not m or not v:
            raise UsageError(
                f"--budget {item!r}: expected NAME_STAT=VALUE, e.g. ttft_p95=300ms or cold_ttft=2s"
            )
        metric, stat = m.group("metric"), m.group("stat") or ""
        if metric != "cold_ttft" and not stat:
            raise UsageError(f"--budget {item!r}: name a statistic, e.g. {metric}_p95")
        limit = float(v.group("num")) * _UNIT_MS[v.group("unit")]
        out.append(Budget(metric, stat, limit, item))
    if not out:
        raise UsageError("--budget is empty")
    return out


def check(budgets: list[Budget], report: dict[str, Any]) -> list[Verdict]:
    """Compare against a profile's JSON (`ProfileReport.as_dict()`)."""
    stats = report.get("warm", {}).get("stats", {})
    verdicts = []
    for b in budgets:
        if b.metric == "cold_ttft":
            actual = report["cold"]["ttft_ms"]
        else:
            actual = stats.get(b.metric, {}).get(b.stat)
        verdicts.append(Verdict(b, actual))
    return verdicts
