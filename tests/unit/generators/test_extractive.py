"""The extractive generator's choice of sentences: lexical first, then the best RERANK
candidates re-scored by meaning when the pipeline lends a similarity (the local embedder's
cosine). Measured on the 40 sample questions by benchmarks/abstention.py; gated end to end by
tests/e2e/test_answers.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ragcli.generators import extractive
from ragcli.generators.extractive import ExtractiveGenerator, select, select_by_meaning
from ragcli.index.catalog import ChunkRecord
from ragcli.retrieval.prompt import build_prompt

count = ExtractiveGenerator().count_tokens

# The sample corpus's workflow FAQ: the answer shares only "workflow" and "steps" with the
# question; the sentence after it shares those and "one" too, so words alone pick it.
FAQ = (
    "A single workflow can have up to 200 steps. If you need more, split the work into several "
    'workflows and use the "Run workflow" step to call one workflow from another. Calls can be '
    "nested up to 5 levels deep."
)
QUESTION = "What is the maximum number of steps in one workflow?"


def prompt_of(*texts: str):  # type: ignore[no-untyped-def]
    chunks = [
        ChunkRecord(
            id=f"faq.md#{i}",
            text=t,
            source="faq.md",
            relpath="faq.md",
            partition="faq",
            title="faq.md",
            date="2026-01-01",
            position=i,
        )
        for i, t in enumerate(texts)
    ]
    return build_prompt(
        QUESTION, [(c, 0.03 - i * 0.001) for i, c in enumerate(chunks)], 4000, count
    )


def test_words_alone_miss_the_paraphrase() -> None:
    picked = select(QUESTION, prompt_of(FAQ))
    assert "up to 200 steps" not in " ".join(u.text for u in picked)


def test_the_local_embedders_cosine_finds_it() -> None:
    from ragcli.embedders.local import LocalEmbedder

    embedder = LocalEmbedder()

    async def similarity(question: str, texts: Sequence[str]) -> list[float]:
        vectors = await embedder.aembed([question, *texts])
        return [float(v @ vectors[0]) for v in vectors[1:]]

    picked = asyncio.run(select_by_meaning(QUESTION, prompt_of(FAQ), similarity))
    assert "A single workflow can have up to 200 steps." in [u.text for u in picked]


def test_only_the_best_lexical_candidates_are_rescored() -> None:
    texts = [f"Workflow rule number {i} says step {i} is fine." for i in range(10)]
    asked: list[list[str]] = []

    async def similarity(question: str, candidates: Sequence[str]) -> list[float]:
        asked.append(list(candidates))
        # Meaning prefers the last candidate it is shown, whatever words say.
        return [1.0 if i == len(candidates) - 1 else 0.0 for i in range(len(candidates))]

    p = prompt_of(*texts)
    picked = asyncio.run(select_by_meaning(QUESTION, p, similarity, limit=1))
    lexical = [u.text for _, u in extractive.lexical_ranking(QUESTION, p)]
    assert asked == [lexical[: extractive.RERANK]]
    assert [u.text for u in picked] == [lexical[extractive.RERANK - 1]]


@pytest.mark.parametrize("answer", [None, []])
def test_no_similarity_is_the_lexical_choice(answer: list[float] | None) -> None:
    async def similarity(question: str, texts: Sequence[str]) -> list[float] | None:
        return answer  # a remote embedder: the pipeline lends nothing it would pay for

    p = prompt_of(FAQ)
    lexical = [u.text for u in select(QUESTION, p)]
    assert [u.text for u in asyncio.run(select_by_meaning(QUESTION, p, similarity))] == lexical
    assert [u.text for u in asyncio.run(select_by_meaning(QUESTION, p, None))] == lexical


def test_the_generator_streams_the_lent_choice() -> None:
    async def similarity(question: str, texts: Sequence[str]) -> list[float]:
        return [1.0 if "200 steps" in t else 0.0 for t in texts]

    gen = ExtractiveGenerator()
    gen.lend_similarity(similarity)

    async def answer() -> str:
        return "".join([piece async for piece in gen.stream(QUESTION, prompt_of(FAQ))])

    assert asyncio.run(answer()).startswith("A single workflow can have up to 200 steps. [1]")


def test_quotations_read_in_the_texts_order_best_source_first() -> None:
    other = "Workflow steps in the other source run for at most 15 minutes each."
    units = [u for _, u in extractive.lexical_ranking(QUESTION, prompt_of(FAQ, other))]
    by_text = {u.text: u for u in units}
    second = by_text[next(t for t in by_text if t.startswith("If you need more"))]
    first = by_text["A single workflow can have up to 200 steps."]
    elsewhere = by_text[other]
    # Picked best first: the later sentence of source 1, source 2, then the earlier one.
    ordered = extractive.reading_order([second, elsewhere, first])
    assert [u.text for u in ordered] == [first.text, second.text, elsewhere.text]


def test_a_possessive_is_its_word() -> None:
    # "Django's" must meet "Django" in the sources; a contraction stays what it is.
    assert extractive.terms("Django's admin’s don't") == ["django", "admin", "don't"]
