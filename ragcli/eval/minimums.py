"""`ragcli eval --min`: the quality gate, e.g. `ndcg@10=0.6,chunk.recall@5=0.8`, checked
against every configuration of a report."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragcli.core.errors import UsageError

_MIN = re.compile(
    r"^(?:(?P<level>doc|document|chunk)\.)?(?P<kind>recall|hit|mrr|ndcg)@(?P<cut>[1-9]\d*)$"
)


@dataclass(frozen=True)
class Minimum:
    level: str  # "document" or "chunk"
    metric: str  # e.g. "ndcg@10"
    value: float
    text: str

    @property
    def cut(self) -> int:
        return int(self.metric.split("@")[1])


def parse_minimums(spec: str) -> list[Minimum]:
    """`ndcg@10=0.6,chunk.recall@5=0.8` (document level unless `chunk.` is written)."""
    out: list[Minimum] = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        key, sep, value = item.partition("=")
        m = _MIN.match(key.strip().lower())
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not sep or not m or not 0.0 <= number <= 1.0:
            raise UsageError(
                f"--min {item!r}: expected [doc.|chunk.]METRIC@K=VALUE with METRIC one of "
                "recall, hit, mrr, ndcg and VALUE between 0 and 1, e.g. ndcg@10=0.6"
            )
        level = "chunk" if m.group("level") == "chunk" else "document"
        out.append(Minimum(level, f"{m.group('kind')}@{m.group('cut')}", number, item))
    if not out:
        raise UsageError("--min is empty")
    return out


def check_minimums(minimums: Sequence[Minimum], report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every minimum against every configuration; a missing figure fails."""
    verdicts = []
    for config in report["configurations"]:
        for m in minimums:
            actual = (config.get(m.level) or {}).get(m.metric)
            prefix = "" if m.level == "document" else "chunk "
            ok = actual is not None and actual >= m.value
            shown = "n/a" if actual is None else f"{actual:.4f}"
            verdicts.append(
                {
                    "configuration": config["label"],
                    "minimum": m.text,
                    "actual": actual,
                    "ok": ok,
                    "line": f"{prefix}{m.metric} {shown} {'>=' if ok else '<'} {m.value:g} "
                    f"({config['label']})",
                }
            )
    return verdicts
