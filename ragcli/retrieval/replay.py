"""The answer cache's side of the request path: the key a finished answer is stored under,
and the replay of a cached answer as the events a generated one yields (sources, first token,
the answer in word-sized pieces, done), so every consumer handles both alike."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence

from ragcli.caches.keys import digest_key
from ragcli.caches.protocols import CachedAnswer
from ragcli.index.catalog import ChunkRecord
from ragcli.retrieval.events import DoneEvent, Event, SourcesEvent, Span, TokenEvent
from ragcli.retrieval.prompt import PROMPT_VERSION, Source


def answer_key(
    question: str, chunk_ids: Sequence[str], generator: str, max_context_tokens: int, layout: str
) -> str:
    """Exact-match key: the question, the retrieved chunks, the generator, the prompt's
    version, budget and layout (a change to any of them is another answer)."""
    return digest_key(
        "answer", question, list(chunk_ids), generator, PROMPT_VERSION, max_context_tokens, layout
    )


def cache_kind(cached: CachedAnswer | None) -> str:
    """ "" (a miss), "exact" or "semantic"."""
    return "" if cached is None else "exact" if cached.similarity == 1.0 else "semantic"


def replay(
    cached: CachedAnswer, records: Mapping[str, ChunkRecord], generator: str, started_ns: int
) -> Iterator[Event]:
    """The events of a cached answer. `records` are the catalogue's chunks of its sources: a
    source that has left the catalogue since is dropped, the others keep their citation
    order and their rank by score."""
    kind = cache_kind(cached)
    kept = [(c, s) for c, s in cached.sources if c in records]  # in citation order
    ranks = {c: r for r, (c, _) in enumerate(sorted(kept, key=lambda cs: -cs[1]), start=1)}
    sources = [
        Source(i, records[cid], score, ranks[cid]) for i, (cid, score) in enumerate(kept, start=1)
    ]
    yield SourcesEvent(sources, None)
    first = time.perf_counter_ns()
    yield Span("llm.first_token", first, first, {"cache": kind})
    pieces = re.findall(r"\S+\s*", cached.answer) or [cached.answer]
    for piece in pieces:
        yield TokenEvent(piece)
    end = time.perf_counter_ns()
    yield Span("llm.stream", first, end, {"pieces": len(pieces), "cache": kind})
    yield DoneEvent(cached.answer, generator, started_ns, first, end, len(pieces), kind)
