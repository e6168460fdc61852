"""Repeated timed runs of the pipeline and their percentiles. Data only: the CLI renders it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli.pipeline import DoneEvent, Pipeline, Query, Span

if TYPE_CHECKING:
    from collections.abc import Sequence

STAGES = ("embed", "retrieve", "prompt", "llm.first_token", "llm.stream")


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


@dataclass
class RunRecord:
    spans: list[Span]
    ttft_ms: float  # question received → first answer token
    total_ms: float
    answer: str

    def stage_ms(self) -> dict[str, float]:
        return {s.name: s.ms for s in self.spans}

    @property
    def pre_llm_ms(self) -> float:
        """ragcli's own share of TTFT: question received → LLM request (embed, retrieve, prompt)."""
        llm = next(s for s in self.spans if s.name == "llm.first_token")
        return (llm.start_ns - self.spans[0].start_ns) / 1e6


@dataclass
class ProfileReport:
    question: str
    generator: str
    origin_ns: int  # the cold run's time zero: process start when known
    load_spans: list[Span]
    cold: RunRecord
    warm: list[RunRecord] = field(default_factory=list)

    @property
    def cold_ttft_ms(self) -> float:
        """From process start (or profile start) to the cold run's first token."""
        first = next(s for s in self.cold.spans if s.name == "llm.first_token")
        return (first.end_ns - self.origin_ns) / 1e6

    def stats(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        runs = self.warm or [self.cold]
        series: dict[str, list[float]] = {
            name: [] for name in (*STAGES, "pre_llm", "ttft", "total")
        }
        for run in runs:
            stage = run.stage_ms()
            for name in STAGES:
                series[name].append(stage.get(name, 0.0))
            series["pre_llm"].append(run.pre_llm_ms)
            series["ttft"].append(run.ttft_ms)
            series["total"].append(run.total_ms)
        for name, values in series.items():
            out[name] = {
                "p50": percentile(values, 50),
                "p95": percentile(values, 95),
                "mean": sum(values) / len(values),
                "n": len(values),
            }
        return out

    def as_dict(self) -> dict[str, Any]:
        def spans(items: list[Span], zero: int) -> list[dict[str, Any]]:
            return [
                {
                    "name": s.name,
                    "start_ms": round((s.start_ns - zero) / 1e6, 3),
                    "ms": round(s.ms, 3),
                    **({"attrs": s.attrs} if s.attrs else {}),
                }
                for s in items
            ]

        return {
            "question": self.question,
            "generator": self.generator,
            "cold": {
                "ttft_ms": round(self.cold_ttft_ms, 3),
                "spans": spans(self.load_spans + self.cold.spans, self.origin_ns),
            },
            "warm": {
                "runs": len(self.warm),
                "stats": {
                    k: {m: round(v, 3) for m, v in s.items()} for k, s in self.stats().items()
                },
                "last": spans(self.warm[-1].spans, self.warm[-1].spans[0].start_ns)
                if self.warm
                else [],
            },
        }


async def run_once(pipeline: Pipeline, query: Query) -> RunRecord:
    spans: list[Span] = []
    done: DoneEvent | None = None
    async for event in pipeline.ask(query):
        if isinstance(event, Span):
            spans.append(event)
        elif isinstance(event, DoneEvent):
            done = event
    assert done is not None and done.first_token_ns is not None
    return RunRecord(
        spans,
        (done.first_token_ns - done.started_ns) / 1e6,
        (done.ended_ns - done.started_ns) / 1e6,
        done.answer,
    )


async def profile(
    pipeline: Pipeline, query: Query, runs: int, origin_ns: int | None = None
) -> ProfileReport:
    """One cold run (loading included) then `runs - 1` warm runs in the same process."""
    origin = origin_ns if origin_ns is not None else time.perf_counter_ns()
    start = time.perf_counter_ns()
    load_spans = [Span("startup", origin, start)] if origin_ns is not None else []
    load_spans += await pipeline.open()
    cold = await run_once(pipeline, query)
    warm = [await run_once(pipeline, query) for _ in range(max(0, runs - 1))]
    return ProfileReport(query.question, pipeline.generator.name, origin, load_spans, cold, warm)
