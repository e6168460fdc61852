"""Prompt assembly: numbered, delimited sources packed under a token budget, laid out so that
an LLM's prefix cache can reuse as much of the prompt as possible.

Layout `prefix` (for generators that send the prompt to a model): the instructions first, then
the selected sources in a canonical order — by (source path, chunk position), never by score —
and the question last. The same retrieved set therefore always yields byte-identical text up
to the question, whatever order and whatever tiny score differences retrieval returned it
with, and a follow-up question over the same sources reuses the whole prefix (llama.cpp's KV
cache, vLLM's automatic prefix caching, OpenAI's prompt caching). Citation numbers follow the
canonical order. Layout `ranked` (the ablation, and the extractive default which sends no
prompt anywhere) numbers and renders the sources best-first, as before.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragcli.generators.prompt_types import SOURCES_HEADER, SYSTEM, Prompt
from ragcli.index.catalog import ChunkRecord

PROMPT_VERSION = "4"  # 3: source tags in a document are escaped; 4: extractive reranks
LAYOUTS = ("prefix", "ranked")


@dataclass(frozen=True)
class Source:
    number: int  # the citation number, as in the prompt
    chunk: ChunkRecord
    score: float
    rank: int = 1  # 1 = the best retrieved source
    relevance: float | None = None  # cosine to the question (retrieval.relevance)

    def as_dict(self) -> dict[str, object]:
        """How a source is shown in `--json` and by `serve`."""
        c = self.chunk
        return {
            "number": self.number,
            "rank": self.rank,
            "source": c.source,
            "path": c.relpath,
            "title": c.title,
            "partition": c.partition,
            "date": c.date,
            "score": round(self.score, 4),
            "chunk_id": c.id,
            "relevance": None if self.relevance is None else round(self.relevance, 4),
        }


_TAG = re.compile(r"<(/?)(source)", re.IGNORECASE)


def _render(number: int, chunk: ChunkRecord, text: str) -> str:
    """One delimited source. A document cannot open or close a block of its own: `<source` in
    its text becomes `&lt;source`, and its title and path are attribute-escaped."""
    title, path = html.escape(chunk.title, quote=True), html.escape(chunk.source, quote=True)
    body = _TAG.sub(r"&lt;\1\2", text)
    return f'<source id="{number}" title="{title}" path="{path}">\n{body}\n</source>'


def canonical_key(chunk: ChunkRecord) -> tuple[str, int, str]:
    """The prefix layout's order: by document, then by place in the document."""
    return (chunk.source, chunk.position, chunk.id)


def build_prompt(
    question: str,
    ranked: Sequence[tuple[ChunkRecord, float]],
    budget: int,
    count_tokens: Callable[[str], int],
    layout: str = "prefix",
) -> Prompt:
    """Select sources best-first while they fit in `budget` tokens (system + sources +
    question), then lay them out (`prefix`: canonical order; `ranked`: best-first).

    The best source is always included, cut to fit if it must be. Selection looks only at
    the rank order and the texts, so the same retrieved list always selects the same set.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown prompt layout {layout!r}")
    tail = f"\n\nQuestion: {question}"
    used = count_tokens(SYSTEM) + count_tokens(SOURCES_HEADER) + count_tokens(tail)
    picked: list[tuple[ChunkRecord, float, int, str]] = []  # chunk, score, rank, text
    for rank, (chunk, score) in enumerate(ranked, start=1):
        # Costs are counted with a placeholder number of the widest width in use, so that
        # selection does not depend on which number a source ends up with.
        probe = len(str(len(ranked)))
        cost = count_tokens(_render(int("9" * probe), chunk, chunk.text)) + 1
        text = chunk.text
        if used + cost > budget:
            if picked:
                continue  # a shorter source further down may still fit
            room = max(budget - used, 16)
            text = chunk.text[: room * 3]  # ≈3 characters a token; trimmed below if needed
            while text and count_tokens(_render(1, chunk, text)) + 1 > room:
                text = text[: int(len(text) * 0.9)]
            cost = count_tokens(_render(1, chunk, text)) + 1
        picked.append((chunk, score, rank, text))
        used += cost
    if layout == "prefix":
        picked.sort(key=lambda p: canonical_key(p[0]))
    sources = [Source(n, c, s, r) for n, (c, s, r, _) in enumerate(picked, start=1)]
    blocks = [_render(n, c, t) for n, (c, _, _, t) in enumerate(picked, start=1)]
    user = SOURCES_HEADER + "\n".join(blocks) + tail
    return Prompt(SYSTEM, user, sources, used, layout)
