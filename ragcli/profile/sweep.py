"""Sweeps: `profile --concurrency` (throughput and TTFT with N requests in flight) and
`profile --sweep k=…` (TTFT against prompt size)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ragcli.core.errors import UsageError
from ragcli.profile.runs import RunRecord, prefill_stats, run_once
from ragcli.profile.stats import summarize
from ragcli.retrieval.events import Query

if TYPE_CHECKING:
    from ragcli.retrieval.pipeline import Pipeline

SWEEPABLE = ("k", "max_context_tokens")


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


def parse_sweep(spec: str) -> tuple[str, list[int]]:
    """`k=1,2,4,8` → ("k", [1, 2, 4, 8]) (the `eval --sweep` syntax, for prompt-size knobs)."""
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
