"""`profile --ablate`'s bookkeeping (ragcli/profile/ablation.py): each variant compared with
the baseline its `baseline` key names, whatever the variants' display names."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from ragcli.profile.ablation import VARIANTS, Variant, ablate
from ragcli.retrieval.events import DoneEvent, Event, Query, Span, TokenEvent

MS = 1_000_000


class FakePipeline:
    """Answers at once, reporting its first token `ttft` ms after the question (so a round's
    TTFT is that, plus the microseconds the round itself takes)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.ttft_ns = int(settings["ttft"] * MS)
        self.closed = False

    async def prefetch(self, queries: Sequence[Query]) -> list[Span]:
        return []

    async def ask(self, query: Query) -> AsyncIterator[Event]:
        now = time.perf_counter_ns()
        yield TokenEvent("x")
        yield DoneEvent("x", "fake", now, now + self.ttft_ns, now + self.ttft_ns, 1)

    def close(self) -> None:
        self.closed = True


def test_each_variant_is_compared_with_the_baseline_its_key_names() -> None:
    variants = (
        Variant("ref", "reference run", "ref", {"ttft": 1000}),
        Variant("slower", "  twice as slow", "ref", {"ttft": 2000}),
        Variant("half", "half (a label unlike its key)", "ref", {"ttft": 500}, short="half path"),
        Variant("child", "  measured against half", "half", {"ttft": 1000}),
    )
    made: list[FakePipeline] = []

    def make(settings: dict[str, Any]) -> Any:
        made.append(FakePipeline(settings))
        return made[-1]

    queries = [Query("q1"), Query("q2")]
    rows = asyncio.run(ablate(make, queries, rounds=2, warmup=1, variants=variants))
    assert [r["variant"] for r in rows] == [v.name.strip() for v in variants]
    assert [r["baseline"] for r in rows] == ["reference run"] * 3 + ["half path"]
    change = [r["ttft_p50_change"] for r in rows]
    assert change == pytest.approx([0.0, 1.0, -0.5, 1.0], abs=0.01)
    assert [r["ttft"]["p50"] for r in rows] == pytest.approx([1000, 2000, 500, 1000], abs=10)
    assert all(r["requests"] == 4 for r in rows) and all(p.closed for p in made)


def test_a_baseline_not_measured_yet_gives_no_change() -> None:
    variants = (Variant("a", "a", "b", {"ttft": 1}), Variant("b", "b", "b", {"ttft": 1}))
    rows = asyncio.run(ablate(FakePipeline, [Query("q")], rounds=1, warmup=0, variants=variants))  # type: ignore[arg-type]
    assert "ttft_p50_change" not in rows[0] and rows[0]["baseline"] == "b"
    assert rows[1]["ttft_p50_change"] == 0.0


def test_the_variants_name_their_baselines_by_key() -> None:
    keys = [v.key for v in VARIANTS]
    assert len(set(keys)) == len(keys)
    for n, v in enumerate(VARIANTS):  # itself, or a variant measured before it
        assert v.baseline in keys[: n + 1], v
    by_key = {v.key: v for v in VARIANTS}
    # what `--json` prints as each row's "baseline" (unchanged by the keys)
    assert {by_key[v.baseline].label for v in VARIANTS} == {"all optimisations", "first-time path"}
