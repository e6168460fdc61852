"""The prefix-cache-aware prompt layout: byte-stable prefix for the same retrieved set, the
question last, citations that follow the layout, an off switch. Through ragcli processes
(cached prompt tokens, --max-context-tokens): tests/e2e/test_prompt_layout.py."""

from __future__ import annotations

import random
import re

import pytest

from ragcli.generators.extractive import ExtractiveGenerator, select
from ragcli.generators.prompt_types import SYSTEM
from ragcli.index.catalog import ChunkRecord
from ragcli.retrieval.prompt import build_prompt

count = ExtractiveGenerator().count_tokens


def chunk(source: str, position: int, text: str) -> ChunkRecord:
    return ChunkRecord(
        id=f"{source}#{position}",
        text=text,
        source=source,
        relpath=source,
        partition=source.split("/")[0],
        title=source.rsplit("/", 1)[-1],
        date="2026-01-01",
        position=position,
    )


CHUNKS = [
    chunk("runbooks/pager.md", 1, "To rotate the pager, open PageRelay and click Hand Over."),
    chunk("runbooks/pager.md", 0, "The on-call engineer carries the pager for one week."),
    chunk("hr/leave.md", 0, "Employees get 25 days of annual leave per year."),
    chunk("faq/rates.md", 3, "The Team plan allows 600 API requests per minute."),
    chunk("ops/logs.md", 2, "Application logs are kept for 30 days, then deleted."),
]
SCORES = [0.91, 0.90, 0.62, 0.61, 0.40]


def ranked(order: list[int], jitter: float = 0.0, seed: int = 0) -> list[tuple[ChunkRecord, float]]:
    rng = random.Random(seed)
    return [(CHUNKS[i], SCORES[i] + rng.uniform(-jitter, jitter)) for i in order]


def test_same_retrieved_set_gives_a_byte_identical_prefix() -> None:
    base = build_prompt("How do I rotate the pager?", ranked([0, 1, 2, 3, 4]), 2000, count)
    rng = random.Random(7)
    for seed in range(20):
        order = list(range(5))
        rng.shuffle(order)
        # another order, tiny score differences, another question: the prefix never changes
        p = build_prompt(f"question {seed}?", ranked(order, 0.005, seed), 2000, count)
        assert p.system == base.system == SYSTEM
        assert p.prefix == base.prefix
        assert p.prefix.encode() == base.prefix.encode()
        assert [s.chunk.id for s in p.sources] == [s.chunk.id for s in base.sources]
    # canonical order: by source path, then position in the document
    assert [s.chunk.id for s in base.sources] == [
        "faq/rates.md#3",
        "hr/leave.md#0",
        "ops/logs.md#2",
        "runbooks/pager.md#0",
        "runbooks/pager.md#1",
    ]


def test_question_is_last_and_citations_follow_the_layout() -> None:
    p = build_prompt("How do I rotate the pager?", ranked([0, 1, 2, 3, 4]), 2000, count)
    assert p.user.endswith("\n\nQuestion: How do I rotate the pager?")
    assert p.user.startswith(p.prefix) and "Question:" not in p.prefix
    rendered = re.findall(r'<source id="(\d+)" title="[^"]*" path="([^"]+)">\n([^\n]*)', p.user)
    assert [(int(n), path, text) for n, path, text in rendered] == [
        (s.number, s.chunk.source, s.chunk.text) for s in p.sources
    ]
    assert [s.number for s in p.sources] == [1, 2, 3, 4, 5]
    # the retrieval rank travels with each source (the best is rank 1, whatever its number)
    best = next(s for s in p.sources if s.rank == 1)
    assert best.chunk.id == "runbooks/pager.md#1" and best.number == 5
    assert best.as_dict()["rank"] == 1 and best.as_dict()["number"] == 5


def test_ranked_layout_is_the_off_switch() -> None:
    p = build_prompt("q?", ranked([0, 1, 2, 3, 4]), 2000, count, layout="ranked")
    assert [s.chunk.id for s in p.sources] == [c.id for c in CHUNKS]
    assert [(s.number, s.rank) for s in p.sources] == [(i, i) for i in range(1, 6)]
    swapped = build_prompt("q?", ranked([1, 0, 2, 3, 4]), 2000, count, layout="ranked")
    assert swapped.prefix != p.prefix  # best-first: a rank swap changes the bytes
    prefix = build_prompt("q?", ranked([0, 1, 2, 3, 4]), 2000, count, layout="prefix")
    assert prefix.prefix != p.prefix and sorted(prefix.user) == sorted(p.user)
    with pytest.raises(ValueError):
        build_prompt("q?", ranked([0]), 2000, count, layout="sideways")


def test_budget_selects_best_first_then_lays_out_canonically() -> None:
    full = build_prompt("q?", ranked([0, 1, 2, 3, 4]), 2000, count)
    tight_budget = full.tokens - count(CHUNKS[4].text) - 5  # the worst source no longer fits
    tight = build_prompt("q?", ranked([0, 1, 2, 3, 4]), tight_budget, count)
    assert tight.tokens <= tight_budget
    assert {s.chunk.id for s in tight.sources} == {c.id for c in CHUNKS[:4]}
    assert [s.chunk.source for s in tight.sources] == sorted(s.chunk.source for s in tight.sources)
    # the same choice whatever the layout: only the order differs
    ranked_tight = build_prompt("q?", ranked([0, 1, 2, 3, 4]), tight_budget, count, "ranked")
    assert {s.chunk.id for s in ranked_tight.sources} == {s.chunk.id for s in tight.sources}


def test_extractive_answer_does_not_depend_on_the_layout() -> None:
    q = "How do I rotate the pager?"
    by_layout = {
        layout: build_prompt(q, ranked([0, 1, 2, 3, 4]), 2000, count, layout)
        for layout in ("prefix", "ranked")
    }
    picked = {
        layout: [(u.text, p.sources[u.source - 1].chunk.id) for u in select(q, p)]
        for layout, p in by_layout.items()
    }
    assert picked["prefix"] == picked["ranked"] and picked["prefix"]
    assert picked["prefix"][0] == (CHUNKS[0].text, CHUNKS[0].id)
