"""The default profile: one cold run (loading included, from process start when known),
excluded warm-up runs, then warm runs in the same process, and the `ProfileReport` that
`--json` prints (schema `ragcli.profile/1`). Data only: render.py and svg.py draw it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli.profile.runs import RunRecord, prefill_stats, run_once, run_stats
from ragcli.retrieval.events import Query, Span

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.retrieval.pipeline import Pipeline

SCHEMA = "ragcli.profile/1"


@dataclass
class ProfileReport:
    questions: list[str]
    generator: str
    settings: dict[str, Any]
    origin_ns: int  # the cold run's time zero: process start when known
    load_spans: list[Span]
    cold: RunRecord
    warmup: int
    warm: list[RunRecord] = field(default_factory=list)
    extra_cold_ttft_ms: list[float] = field(default_factory=list)  # from --cold-runs processes
    ablation: list[dict[str, Any]] | None = None
    concurrency: list[dict[str, Any]] | None = None
    sweep: dict[str, Any] | None = None  # `--sweep k=1,2,4,8`: TTFT against prompt tokens
    warmed: str = ""  # what `--prewarm` did before the cold run ("" when it did not run)
    cold_both: dict[str, Any] | None = None  # `--cold-runs N` (N >= 2): ragcli.profile.cold

    @property
    def cold_ttft_ms(self) -> float:
        """From process start (or profile start) to the cold run's first token."""
        return (self.cold.first_ns - self.origin_ns) / 1e6

    def cold_spans(self) -> list[dict[str, Any]]:
        rec = dataclasses.replace(self.cold, spans=self.load_spans + self.cold.spans)
        return rec.span_dicts(self.origin_ns)

    def as_dict(self) -> dict[str, Any]:
        last = self.warm[-1] if self.warm else None
        return {
            "schema": SCHEMA,
            "questions": self.questions,
            "generator": self.generator,
            "settings": self.settings,
            "cold": {
                "ttft_ms": round(self.cold_ttft_ms, 3),
                "ttft_ms_runs": [round(self.cold_ttft_ms, 3)]
                + [round(v, 3) for v in self.extra_cold_ttft_ms],
                "cached": self.cold.cached,
                "spans": self.cold_spans(),
            },
            "warm": {
                "warmup_runs_excluded": self.warmup,
                "runs": len(self.warm),
                "stats": run_stats(self.warm) if self.warm else {},
                "cached_runs": sum(1 for r in self.warm if r.cached),
                "last": last.span_dicts(last.started_ns) if last else [],
                "prefill": prefill_stats(self.warm),
            },
            "ablation": self.ablation,
            "concurrency": self.concurrency,
            # only when asked for (as `budgets`): --prewarm, --sweep, --cold-runs N >= 2
            **({"prewarm": self.warmed} if self.warmed else {}),
            **({"sweep": self.sweep} if self.sweep is not None else {}),
            **({"cold_both": self.cold_both} if self.cold_both is not None else {}),
        }


def settings_snapshot(s: Settings) -> dict[str, Any]:
    return {
        "k": s.k,
        "caches": sorted(s.caches),
        "search": s.search,
        "retrieval": s.retrieval,
        "embedder": s.embedder,
        "llm": s.generator,
        "max_context_tokens": s.max_context_tokens,
        "prompt_layout": s.prompt_layout,
        "connection_reuse": s.connection_reuse,
    }


async def profile(
    pipeline: Pipeline,
    queries: Sequence[Query],
    runs: int,
    warmup: int = 1,
    origin_ns: int | None = None,
    before: Sequence[Span] = (),
) -> ProfileReport:
    """The first question cold (loading included), `warmup` excluded runs, then `runs` warm
    runs in the same process, cycling through the question set. `before`: spans of work done
    between start-up and this call (`--prewarm`), shown in the cold waterfall."""
    origin = origin_ns if origin_ns is not None else time.perf_counter_ns()
    start = time.perf_counter_ns()
    startup_end = before[0].start_ns if before else start
    load_spans = [Span("startup", origin, startup_end)] if origin_ns is not None else []
    load_spans += list(before)
    load_spans += await pipeline.open()
    cold = await run_once(pipeline, queries[0])
    for i in range(warmup):
        await run_once(pipeline, queries[(i + 1) % len(queries)])
    warm = [await run_once(pipeline, queries[(warmup + 1 + i) % len(queries)]) for i in range(runs)]
    return ProfileReport(
        [q.question for q in queries],
        pipeline.generator.name,
        settings_snapshot(pipeline.settings),
        origin,
        load_spans,
        cold,
        warmup,
        warm,
    )
