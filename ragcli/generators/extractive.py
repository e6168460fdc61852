"""The offline default: an extractive answer quoted from the retrieved sources.

With no LLM configured, the honest useful answer is the few sentences of the sources that best
match the question, each with its citation, labelled as quotations. Scoring is lexical first
(question-term coverage weighted by IDF over the candidate sentences, plus the retrieval score
of the sentence's source): microseconds, no model. Words alone miss a paraphrase ("the maximum
number of steps in one workflow" against "A single workflow can have up to 200 steps"), so when
the pipeline lends a `Similarity` (an in-process embedder: see Pipeline.similarities), the
best RERANK candidates are re-scored with their cosine to the question as well: one small
batch of short sentences, ≈ 15 ms on two cores (benchmarks/abstention.py measures what it
buys: in-corpus answers with the expected fact 36/40 → 39/40).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragcli.generators.prompt_types import Prompt

if TYPE_CHECKING:
    from ragcli.core.config import Settings

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[*`])")
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_STOP = frozenset(
    """a an the and or but if then of to in on at by for with from as is are was were be been
    being do does did how what when where which who whom why can could should would may
    might must shall will i we you he she it they them our your my me us this that these
    those there here about into over under than so not no yes any all some get got have has
    had its it's also just only very more most such own same other""".split()  # noqa: SIM905 — a word list reads better as text
)
MAX_SENTENCES = 3
RERANK = 6  # lexical candidates re-scored by meaning when a Similarity is lent
MEANING_WEIGHT = 0.5  # a cosine's weight against the lexical score (which is ~0-1)

# Cosine of the question to each text (in order), or None when no cheap embedder is at hand.
Similarity = Callable[[str, Sequence[str]], Awaitable[list[float] | None]]


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _bare(word: str) -> str:
    """A possessive without its 's ("django's" → "django"); contractions stay ("don't")."""
    return word[:-2] if word.endswith(("'s", "’s")) else word


def terms(text: str) -> list[str]:
    words = (_bare(w) for w in _WORD.findall(text.lower()))
    return [_stem(w) for w in words if w not in _STOP]


@dataclass(frozen=True)
class _Unit:
    text: str
    source: int  # the source's number in the prompt
    rank: int
    retrieval_score: float
    terms: frozenset[str]
    order: int  # place among the candidates: retrieval order, then the text's own order


def _units(prompt: Prompt) -> list[_Unit]:
    out: list[_Unit] = []
    # Retrieval order, whatever order the prompt lays the sources out in.
    for src in sorted(prompt.sources, key=lambda s: s.rank):
        rank = src.rank - 1
        in_code = False
        for line in src.chunk.text.splitlines():
            stripped = line.strip()
            if stripped.startswith("```"):
                in_code = not in_code
                continue
            if in_code or not stripped or stripped.startswith(("#", "|", "---", "<")):
                continue
            stripped = _LIST_MARK.sub("", stripped)
            for sentence in _SENTENCE.split(stripped):
                sentence = sentence.strip()
                words = terms(sentence)
                # A lower-case start is a fragment (a chunk cut mid-sentence) or a code line.
                if len(sentence.split()) >= 4 and words and not sentence[0].islower():
                    unit = _Unit(sentence, src.number, rank, src.score, frozenset(words), len(out))
                    out.append(unit)
    return out


def lexical_ranking(question: str, prompt: Prompt) -> list[tuple[float, _Unit]]:
    """Every candidate sentence with its lexical score, best first (ties: retrieval order)."""
    units = _units(prompt)
    wanted = set(terms(question))
    if not units or not wanted:
        return []
    df = Counter(t for u in units for t in u.terms if t in wanted)
    idf = {t: math.log(1 + len(units) / df[t]) for t in wanted if df[t]}
    total = sum(idf.values()) or 1.0

    def score(u: _Unit) -> float:
        coverage = sum(idf.get(t, 0.0) for t in wanted & u.terms) / total
        brevity = 1.0 / (1.0 + max(0, len(u.terms) - 30) / 30)  # long run-ons read badly
        return coverage * brevity + 0.35 * u.retrieval_score - 0.02 * u.rank

    scored = sorted(((score(u), i, u) for i, u in enumerate(units)), key=lambda t: (-t[0], t[1]))
    return [(s, u) for s, _, u in scored]


def _pick(scored: Sequence[tuple[float, _Unit]], limit: int) -> list[_Unit]:
    """Up to `limit` distinct sentences scoring at least 60 % of the best, best first."""
    if not scored:
        return []
    best = scored[0][0]
    picked: list[_Unit] = []
    seen: set[str] = set()
    for s, u in scored:
        key = " ".join(u.text.lower().split())
        if s < 0.6 * best or key in seen:
            continue
        seen.add(key)
        picked.append(u)
        if len(picked) == limit:
            break
    return picked


def select(question: str, prompt: Prompt, limit: int = MAX_SENTENCES) -> list[_Unit]:
    """The sentences that best answer `question` by their words alone, best first."""
    return _pick(lexical_ranking(question, prompt), limit)


async def select_by_meaning(
    question: str, prompt: Prompt, similarity: Similarity | None, limit: int = MAX_SENTENCES
) -> list[_Unit]:
    """`select`, with the best RERANK lexical candidates re-scored by their cosine to the
    question when `similarity` gives one (else the lexical choice)."""
    scored = lexical_ranking(question, prompt)
    top = scored[:RERANK]
    cosines = await similarity(question, [u.text for _, u in top]) if similarity and top else None
    if not cosines:
        return _pick(scored, limit)
    rescored = [
        (s + MEANING_WEIGHT * c, i, u)
        for i, ((s, u), c) in enumerate(zip(top, cosines, strict=True))
    ]
    rescored.sort(key=lambda t: (-t[0], t[1]))
    return _pick([(s, u) for s, _, u in rescored], limit)


def reading_order(picked: Sequence[_Unit]) -> list[_Unit]:
    """The picked sentences as a reader takes them: the best one's source first, and within a
    source in the text's order ("A workflow can have up to 200 steps. If you need more, …")."""
    first: dict[int, int] = {}
    for i, u in enumerate(picked):
        first.setdefault(u.source, i)
    return sorted(picked, key=lambda u: (first[u.source], u.order))


class ExtractiveGenerator:
    name = "extractive"
    # It sends no prompt to any model, so there is no prefix cache to lay the prompt out for:
    # under `prompt_layout = auto` sources stay numbered best-first.
    prompt_layout = "ranked"
    label = "extractive answer: sentences quoted from the sources (no LLM configured)"

    def __init__(self) -> None:
        # Lent by the pipeline (`lend_similarity`): sentence choice by meaning as well as words.
        self.similarity: Similarity | None = None

    def lend_similarity(self, similarity: Similarity | None) -> None:
        self.similarity = similarity

    @classmethod
    def from_settings(cls, settings: Settings) -> ExtractiveGenerator:
        """`llm = extractive` (the registry's factory): nothing in the settings changes it."""
        return cls()

    def count_tokens(self, text: str) -> int:
        # No model reads this prompt; a word-and-punctuation count is a fair, free estimate.
        return len(re.findall(r"\w+|[^\w\s]", text))

    async def warm(self) -> None:
        return None

    async def stream(self, question: str, prompt: Prompt) -> AsyncIterator[str]:
        picked = reading_order(await select_by_meaning(question, prompt, self.similarity))
        if not picked:
            yield "The sources found do not contain a sentence that answers this question."
            return
        for i, unit in enumerate(picked):
            text = f"{unit.text} [{unit.source}]"
            pieces = re.findall(r"\S+\s*", text)
            for j, piece in enumerate(pieces):
                last = i == len(picked) - 1 and j == len(pieces) - 1
                yield piece if last or j < len(pieces) - 1 else piece.rstrip() + "\n"
