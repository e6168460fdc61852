"""Timed runs of the pipeline: one answered question as a `RunRecord` (its spans and its
streaming timeline), a question set answered as one round, and what runs add up to.

Conventions follow the serving benchmarks people know (vLLM's benchmark_serving, llmperf):
TTFT (question received → first answer token), ITL (gap between consecutive streamed pieces),
end-to-end latency, output pieces per second, and p50/p90/p99 with the number of runs.
Stage names: `embed`, `retrieve`, `answer_cache`, `prompt`, `llm.first_token`, `llm.stream`;
cold-start stages `startup`, `load.catalog`, `load.embedder`, `load.index`, `load.generator`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragcli.profile.stats import summarize
from ragcli.retrieval.answer import collect, span_dicts
from ragcli.retrieval.events import Query, Span

if TYPE_CHECKING:
    from ragcli.retrieval.pipeline import Pipeline

STAGES = ("embed", "retrieve", "answer_cache", "prompt", "llm.first_token", "llm.stream")
PREFILL_SPANS = ("prompt", "llm.first_token", "llm.stream")


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
        """The spans as JSON, in start order, timed from `zero_ns`."""
        return span_dicts(sorted(self.spans, key=lambda s: s.start_ns), zero_ns)


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
    answer = await collect(pipeline.ask(query))
    done = answer.done
    assert done is not None and done.first_token_ns is not None
    return RunRecord(
        query.question,
        answer.spans,
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
