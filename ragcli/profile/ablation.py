"""`profile --ablate`: the question set answered under each optimisation switched off in
turn, each variant's TTFT compared with its baseline variant's (found by key).

Caches hide everything behind them on a repeated question, so the optimisations behind the
caches are measured on the first-time path ("caches off") and compared with that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli.profile.runs import RunRecord, run_round
from ragcli.profile.stats import summarize
from ragcli.retrieval.events import Query

if TYPE_CHECKING:
    from ragcli.retrieval.pipeline import Pipeline


@dataclass(frozen=True)
class Variant:
    key: str  # stable identity; what `baseline` names
    name: str  # the row's label (indented: measured against the first-time path)
    baseline: str  # the key of the variant it is compared with (itself, or one before it)
    settings: dict[str, Any] = field(default_factory=dict)
    batch: bool = True
    concurrent: bool = True
    scoped: bool = True  # keep the questions' partitions
    short: str = ""  # how the rows compared with it name it (default: its name)

    @property
    def label(self) -> str:
        return self.short or self.name.strip()


FIRST_TIME = {"no_cache": "retrieval,answer"}
VARIANTS = (
    Variant("all", "all optimisations", "all"),
    Variant("no_retrieval_cache", "no retrieval cache", "all", {"no_cache": "retrieval"}),
    Variant("no_answer_cache", "no answer cache", "all", {"no_cache": "answer"}),
    Variant(
        "first_time",
        "first-time path (retrieval+answer caches off)",
        "all",
        FIRST_TIME,
        short="first-time path",
    ),
    Variant(
        "no_embedding_cache",
        "  no embedding cache",
        "first_time",
        {"no_cache": "embedding,retrieval,answer"},
    ),
    Variant(
        "exact_search",
        "  exact search instead of HNSW",
        "first_time",
        {**FIRST_TIME, "search": "exact"},
    ),
    Variant("no_scoping", "  no partition scoping", "first_time", FIRST_TIME, scoped=False),
    Variant("no_batching", "  no query batching", "first_time", FIRST_TIME, batch=False),
    Variant("no_concurrency", "  no concurrency", "first_time", FIRST_TIME, concurrent=False),
    Variant(
        "no_connection_reuse",
        "  no connection reuse",
        "first_time",
        {**FIRST_TIME, "connection_reuse": False},
    ),
)


async def _measure(
    pipeline: Pipeline, v: Variant, queries: Sequence[Query], rounds: int, warmup: int, conc: int
) -> tuple[list[RunRecord], list[float]]:
    """`warmup` excluded rounds, then `rounds` measured ones: the records and round times."""
    qs = [q if v.scoped else dataclasses.replace(q, partitions=()) for q in queries]
    for _ in range(warmup):
        await run_round(pipeline, qs, batch=v.batch, concurrency=conc)
    records: list[RunRecord] = []
    walls: list[float] = []
    for _ in range(rounds):
        recs, wall = await run_round(
            pipeline, qs, batch=v.batch, concurrency=conc if v.concurrent else 1
        )
        records += recs
        walls.append(wall)
    return records, walls


async def ablate(
    make_pipeline: Callable[[dict[str, Any]], Pipeline],
    queries: Sequence[Query],
    rounds: int,
    warmup: int,
    concurrency: int = 8,
    variants: Sequence[Variant] = VARIANTS,
) -> list[dict[str, Any]]:
    """Answer the question set `rounds` times under each variant (after `warmup` rounds)."""
    rows: list[dict[str, Any]] = []
    measured: dict[str, tuple[Variant, dict[str, float]]] = {}
    for v in variants:
        pipeline = make_pipeline(v.settings)
        try:
            records, walls = await _measure(pipeline, v, queries, rounds, warmup, concurrency)
        finally:
            pipeline.close()
        ttft = summarize([r.ttft_ms for r in records])
        measured[v.key] = (v, ttft)
        baseline, base = measured.get(v.baseline, (None, None))
        row = {
            "variant": v.name.strip(),
            "baseline": baseline.label if baseline else v.baseline,
            "ttft": ttft,
            "pre_llm": summarize([r.pre_llm_ms for r in records]),
            "round_ms": summarize(walls),
            "requests": len(records),
        }
        if base and base.get("p50"):
            row["ttft_p50_change"] = round(ttft["p50"] / base["p50"] - 1, 4)
            row["ttft_p95_change"] = round(ttft["p95"] / base["p95"] - 1, 4)
        rows.append(row)
    return rows
