"""Timed runs of the pipeline and what they add up to. Data only: the CLI renders it.

Conventions follow the serving benchmarks people know (vLLM's benchmark_serving, llmperf):
TTFT (question received → first answer token), ITL (gap between consecutive streamed pieces),
end-to-end latency, output pieces per second, and p50/p90/p99 with the number of runs.
Warm-up runs are excluded and reported as such. Stage names: `embed`, `retrieve`,
`answer_cache`, `prompt`, `llm.first_token`, `llm.stream`; cold-start stages `startup`,
`load.catalog`, `load.embedder`, `load.index`, `load.generator`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli.retrieval.pipeline import DoneEvent, Pipeline, Query, Span

if TYPE_CHECKING:
    from ragcli.core.config import Settings

SCHEMA = "ragcli.profile/1"
STAGES = ("embed", "retrieve", "answer_cache", "prompt", "llm.first_token", "llm.stream")
PREFILL_SPANS = ("prompt", "llm.first_token", "llm.stream")
PERCENTILES = (50, 90, 95, 99)


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


@dataclass
class RunRecord:
    """One question answered: its spans and its streaming timeline."""

    question: str
    spans: list[Span]
    started_ns: int  # question received (or, in a round, the round's start)
    first_ns: int
    ended_ns: int
    piece_times_ns: tuple[int, ...]
    pieces: int
    cached: str

    @property
    def ttft_ms(self) -> float:
        return (self.first_ns - self.started_ns) / 1e6

    @property
    def e2e_ms(self) -> float:
        return (self.ended_ns - self.started_ns) / 1e6

    @property
    def itl_ms(self) -> list[float]:
        t = self.piece_times_ns
        return [(b - a) / 1e6 for a, b in zip(t, t[1:], strict=False)]

    @property
    def pre_llm_ms(self) -> float:
        """ragcli's own share of TTFT: question received → LLM request (or cached replay)."""
        llm = next((s for s in self.spans if s.name == "llm.first_token"), None)
        return ((llm.start_ns if llm else self.first_ns) - self.started_ns) / 1e6

    @property
    def output_per_s(self) -> float:
        seconds = (self.ended_ns - self.first_ns) / 1e9
        return self.pieces / seconds if seconds > 0 else float("inf")

    def stage_ms(self) -> dict[str, float]:
        return {s.name: s.ms for s in self.spans}

    def prefill(self) -> dict[str, Any]:
        """The LLM's prefill for this run: prompt tokens (the provider's count when it reported
        one, else ragcli's estimate), cached prompt tokens (None: not reported), sources, and
        the provider's time to first token. Empty for a cached answer."""
        by_name = {s.name: s for s in self.spans}
        prompt, first, stream = (by_name.get(n) for n in PREFILL_SPANS)
        if prompt is None or first is None:
            return {}
        usage = stream.attrs if stream is not None else {}
        return {
            "prompt_tokens": usage.get("prompt_tokens", prompt.attrs.get("tokens", 0)),
            "reported": "prompt_tokens" in usage,
            "cached_tokens": usage.get("cached_tokens"),
            "sources": prompt.attrs.get("sources", 0),
            "llm_first_token_ms": first.ms,
        }

    def span_dicts(self, zero_ns: int) -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "start_ms": round((s.start_ns - zero_ns) / 1e6, 3),
                "ms": round(s.ms, 3),
                **({"attrs": s.attrs} if s.attrs else {}),
            }
            for s in sorted(self.spans, key=lambda s: s.start_ns)
        ]


def run_stats(runs: Sequence[RunRecord]) -> dict[str, dict[str, float]]:
    """Per-metric summaries over runs; a stage a run skipped (a cache hit) counts as 0 ms."""
    out: dict[str, dict[str, float]] = {
        "ttft": summarize([r.ttft_ms for r in runs]),
        "e2e": summarize([r.e2e_ms for r in runs]),
        "pre_llm": summarize([r.pre_llm_ms for r in runs]),
        "itl": summarize([g for r in runs for g in r.itl_ms]),
        "output_per_s": summarize([r.output_per_s for r in runs if r.pieces > 1]),
    }
    for stage in STAGES:
        out[stage] = summarize([r.stage_ms().get(stage, 0.0) for r in runs])
    return out


def prefill_stats(runs: Sequence[RunRecord]) -> dict[str, Any]:
    """The `llm.prefill` view: prompt tokens, cached prompt tokens and TTFT over the runs the
    LLM answered (cached answers have no prefill)."""
    rows = [(r, p) for r in runs if (p := r.prefill())]
    cached = [p["cached_tokens"] for _, p in rows if p["cached_tokens"] is not None]
    return {
        "runs": len(rows),
        "prompt_tokens_reported_by": (
            "provider" if rows and all(p["reported"] for _, p in rows) else "estimate"
        ),
        "prompt_tokens": summarize([p["prompt_tokens"] for _, p in rows]),
        "cached_tokens": summarize(cached),
        "sources": summarize([p["sources"] for _, p in rows]),
        "llm_first_token": summarize([p["llm_first_token_ms"] for _, p in rows]),
        "ttft": summarize([r.ttft_ms for r, _ in rows]),
    }


async def run_once(pipeline: Pipeline, query: Query, started_ns: int | None = None) -> RunRecord:
    """Answer one question, keeping every span; `started_ns` overrides the start (rounds)."""
    spans: list[Span] = []
    done: DoneEvent | None = None
    async for event in pipeline.ask(query):
        if isinstance(event, Span):
            spans.append(event)
        elif isinstance(event, DoneEvent):
            done = event
    assert done is not None and done.first_token_ns is not None
    return RunRecord(
        query.question,
        spans,
        started_ns or done.started_ns,
        done.first_token_ns,
        done.ended_ns,
        done.piece_times_ns,
        done.tokens,
        done.cached,
    )


async def run_round(
    pipeline: Pipeline, queries: Sequence[Query], *, batch: bool, concurrency: int
) -> tuple[list[RunRecord], float]:
    """Answer a whole question set as a user submitting it would: TTFT counts from the moment
    the set was submitted. Returns the records and the round's wall time in ms."""
    start = time.perf_counter_ns()
    if batch and len(queries) > 1:
        await pipeline.prefetch(queries)
    limit = asyncio.Semaphore(max(1, concurrency))

    async def one(q: Query) -> RunRecord:
        async with limit:
            return await run_once(pipeline, q, start)

    records = list(await asyncio.gather(*(one(q) for q in queries)))
    return records, (time.perf_counter_ns() - start) / 1e6


# -- the default profile: one cold run, warm-up, warm runs -------------------------------
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
            # only when asked for (as `budgets`): --prewarm, --sweep
            **({"prewarm": self.warmed} if self.warmed else {}),
            **({"sweep": self.sweep} if self.sweep is not None else {}),
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


# -- ablation -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    name: str
    baseline: str  # the row it is compared with
    settings: dict[str, Any] = field(default_factory=dict)
    batch: bool = True
    concurrent: bool = True
    scoped: bool = True  # keep the questions' partitions


# Caches hide everything behind them on a repeated question, so the optimisations behind the
# caches are measured on the first-time path ("caches off") and compared with that.
FIRST_TIME = {"no_cache": "retrieval,answer"}
VARIANTS = (
    Variant("all optimisations", "all optimisations"),
    Variant("no retrieval cache", "all optimisations", {"no_cache": "retrieval"}),
    Variant("no answer cache", "all optimisations", {"no_cache": "answer"}),
    Variant("first-time path (retrieval+answer caches off)", "all optimisations", FIRST_TIME),
    Variant("  no embedding cache", "first-time path", {"no_cache": "embedding,retrieval,answer"}),
    Variant("  exact search instead of HNSW", "first-time path", {**FIRST_TIME, "search": "exact"}),
    Variant("  no partition scoping", "first-time path", FIRST_TIME, scoped=False),
    Variant("  no query batching", "first-time path", FIRST_TIME, batch=False),
    Variant("  no concurrency", "first-time path", FIRST_TIME, concurrent=False),
    Variant("  no connection reuse", "first-time path", {**FIRST_TIME, "connection_reuse": False}),
)


async def ablate(
    make_pipeline: Callable[[dict[str, Any]], Pipeline],
    queries: Sequence[Query],
    rounds: int,
    warmup: int,
    concurrency: int = 8,
) -> list[dict[str, Any]]:
    """Answer the question set `rounds` times under each variant (after `warmup` rounds)."""
    rows: list[dict[str, Any]] = []
    reference: dict[str, dict[str, float]] = {}
    for v in VARIANTS:
        pipeline = make_pipeline(v.settings)
        qs = [q if v.scoped else dataclasses.replace(q, partitions=()) for q in queries]
        try:
            for _ in range(warmup):
                await run_round(pipeline, qs, batch=v.batch, concurrency=concurrency)
            records: list[RunRecord] = []
            walls: list[float] = []
            for _ in range(rounds):
                recs, wall = await run_round(
                    pipeline, qs, batch=v.batch, concurrency=concurrency if v.concurrent else 1
                )
                records += recs
                walls.append(wall)
        finally:
            pipeline.close()
        ttft = summarize([r.ttft_ms for r in records])
        row = {
            "variant": v.name.strip(),
            "baseline": v.baseline,
            "ttft": ttft,
            "pre_llm": summarize([r.pre_llm_ms for r in records]),
            "round_ms": summarize(walls),
            "requests": len(records),
        }
        if v.name.strip() in ("all optimisations", "first-time path (retrieval+answer caches off)"):
            reference[v.name.strip().split(" (")[0]] = ttft
        base = reference.get(v.baseline)
        if base and base.get("p50"):
            row["ttft_p50_change"] = round(ttft["p50"] / base["p50"] - 1, 4)
            row["ttft_p95_change"] = round(ttft["p95"] / base["p95"] - 1, 4)
        rows.append(row)
    return rows


# -- concurrency sweep --------------------------------------------------------------------
async def sweep(
    pipeline: Pipeline, queries: Sequence[Query], levels: Sequence[int], requests: int
) -> list[dict[str, Any]]:
    """`requests` questions per level with `level` in flight, each timed from its own start."""
    out: list[dict[str, Any]] = []
    for level in levels:
        n = max(requests, level)
        limit = asyncio.Semaphore(level)

        async def one(i: int, limit: asyncio.Semaphore = limit) -> RunRecord:
            async with limit:
                return await run_once(pipeline, queries[i % len(queries)])

        start = time.perf_counter_ns()
        records = list(await asyncio.gather(*(one(i) for i in range(n))))
        wall_s = (time.perf_counter_ns() - start) / 1e9
        out.append(
            {
                "concurrency": level,
                "requests": n,
                "wall_s": round(wall_s, 4),
                "requests_per_s": round(n / wall_s, 2),
                "ttft": summarize([r.ttft_ms for r in records]),
                "e2e": summarize([r.e2e_ms for r in records]),
            }
        )
    return out


# -- context budget sweep -----------------------------------------------------------------
SWEEPABLE = ("k", "max_context_tokens")


def parse_sweep(spec: str) -> tuple[str, list[int]]:
    """`k=1,2,4,8` → ("k", [1, 2, 4, 8]) (the `eval --sweep` syntax, for prompt-size knobs)."""
    from ragcli.core.errors import UsageError

    name, sep, raw = spec.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or name not in SWEEPABLE:
        raise UsageError(
            f"--sweep {spec!r}: expected NAME=V1,V2,… with NAME one of {', '.join(SWEEPABLE)}"
        )
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values or not all(v.isdigit() and int(v) > 0 for v in values):
        raise UsageError(f"--sweep {spec!r}: expected positive integers, e.g. k=1,2,4,8")
    return name, list(dict.fromkeys(int(v) for v in values))


async def prefill_sweep(
    make_pipeline: Callable[[dict[str, Any]], Pipeline],
    queries: Sequence[Query],
    name: str,
    values: Sequence[int],
    runs: int,
) -> dict[str, Any]:
    """TTFT against prompt size: for each value of `name`, `runs` answers with the answer
    cache off (a cached answer has no prefill). Values are interleaved round by round, so no
    value always follows itself (which would find its whole prompt in a prefix cache)."""
    pipelines = {v: make_pipeline({name: v}) for v in values}
    records: dict[int, list[RunRecord]] = {v: [] for v in values}
    try:
        for i in range(max(1, runs)):
            for v in values:
                q = queries[i % len(queries)]
                if name == "k":
                    q = dataclasses.replace(q, k=v)
                records[v].append(await run_once(pipelines[v], q))
    finally:
        for p in pipelines.values():
            p.close()
    rows = []
    for v in values:
        stats = prefill_stats(records[v])
        rows.append(
            {
                name: v,
                "runs": stats["runs"],
                "sources": stats["sources"].get("p50"),
                "prompt_tokens": stats["prompt_tokens"].get("p50"),
                "cached_tokens": stats["cached_tokens"].get("p50"),
                "ttft": stats["ttft"],
                "llm_first_token": stats["llm_first_token"],
            }
        )
    reported = {prefill_stats(records[v])["prompt_tokens_reported_by"] for v in values}
    return {
        "knob": name,
        "prompt_tokens_reported_by": "provider" if reported == {"provider"} else "estimate",
        "rows": rows,
    }
