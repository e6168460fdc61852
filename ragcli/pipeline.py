"""The request path as one async pipeline that yields events: timing spans, the sources,
answer tokens as they arrive, and a final summary.

    question → embed (cache) → retrieve (HNSW) → prompt → LLM stream

`ask`, `profile` and any server consume the same events; none of them times anything itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli import indexing
from ragcli.caches import EmbeddingCache, embedding_key
from ragcli.catalog import Catalog
from ragcli.datadir import DataDir
from ragcli.embedders import open_embedder
from ragcli.errors import NotReadyError, UsageError
from ragcli.generators import open_generator
from ragcli.prompt import Prompt, Source, build_prompt
from ragcli.store import Store

if TYPE_CHECKING:
    import numpy as np

    from ragcli.config import Settings


@dataclass(frozen=True)
class Span:
    name: str
    start_ns: int  # time.perf_counter_ns() clock
    end_ns: int
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True)
class SourcesEvent:
    sources: list[Source]
    prompt: Prompt


@dataclass(frozen=True)
class TokenEvent:
    text: str


@dataclass(frozen=True)
class DoneEvent:
    answer: str
    generator: str
    started_ns: int  # when the question was received
    first_token_ns: int | None
    ended_ns: int
    tokens: int  # streamed pieces


Event = Span | SourcesEvent | TokenEvent | DoneEvent


@dataclass(frozen=True)
class Query:
    question: str
    k: int | None = None
    partitions: tuple[str, ...] = ()


def normalise(question: str) -> str:
    return " ".join(question.split())


class Pipeline:
    """Holds the warm resources (model, index, clients) and answers questions with them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dirs = DataDir(settings.data_dir)
        self.embedder = open_embedder(settings)
        self.generator = open_generator(settings)
        self.catalog: Catalog | None = None
        self.cache: EmbeddingCache | None = None
        self.store: Store | None = None
        self.index_name = ""
        self.partitions: dict[str, int] = {}

    async def open(self) -> list[Span]:
        """Load everything a question needs; loading overlaps where it can. Returns load spans."""
        spans: list[Span] = []
        t = time.perf_counter_ns()
        if not self.dirs.exists():
            raise NotReadyError(
                f"nothing ingested in {self.dirs.root}: run `ragcli ingest PATH` first"
            )
        self.catalog = Catalog(self.dirs.catalog)
        self.cache = EmbeddingCache(self.dirs.cache)
        info = indexing.current(self.catalog)
        if info is None:
            raise NotReadyError("there is no index yet: run `ragcli ingest PATH` first")
        built_with = self.catalog.get_meta("embedder")
        if built_with and built_with != self.embedder.cache_id:
            raise UsageError(
                f"the index was built with embedder {built_with!r}, not {self.embedder.cache_id!r}"
            )
        self.index_name = info.name
        self.partitions = self.catalog.partitions()
        spans.append(Span("load.catalog", t, time.perf_counter_ns()))

        async def timed(name: str, fn: Any) -> Span:
            start = time.perf_counter_ns()
            await fn()
            return Span(name, start, time.perf_counter_ns())

        spans += await asyncio.gather(
            timed("load.embedder", self._warm_embedder),
            timed("load.index", self._warm_index),
            timed("load.generator", self.generator.warm),
        )
        return spans

    async def _warm_embedder(self) -> None:
        await self.embedder.aembed(["warm up"])

    async def _warm_index(self) -> None:
        def work() -> None:
            import numpy as np

            self.store = Store(self.dirs.chroma)
            probe = np.full((1, self.embedder.dimensions), 1.0, dtype=np.float32)
            self.store.query(self.index_name, probe, 1)  # Chroma loads HNSW on first query

        await asyncio.to_thread(work)

    def close(self) -> None:
        for resource in (self.catalog, self.cache):
            if resource is not None:
                resource.close()

    def _where(self, partitions: Sequence[str]) -> dict | None:
        unknown = [p for p in partitions if p not in self.partitions]
        if unknown:
            known = ", ".join(self.partitions) or "none"
            raise UsageError(f"unknown partition {unknown[0]!r} (known: {known})")
        if not partitions:
            return None
        if len(partitions) == 1:
            return {"partition": partitions[0]}
        return {"partition": {"$in": list(partitions)}}

    async def _embed_query(self, text: str) -> tuple[np.ndarray, bool]:
        import numpy as np

        assert self.cache is not None
        e = self.embedder
        key = embedding_key(e.cache_id, e.dimensions, text)
        found = self.cache.get_many([key])
        if key in found:
            return np.frombuffer(found[key], dtype=np.float32)[None, :], True
        vec = await e.aembed([text])
        self.cache.put_many(e.cache_id, e.dimensions, [(key, vec[0].astype(np.float32).tobytes())])
        return vec, False

    async def ask(self, query: Query) -> AsyncIterator[Event]:
        if self.catalog is None:
            await self.open()
        assert self.catalog is not None and self.store is not None
        question = normalise(query.question)
        if not question:
            raise UsageError("the question is empty")
        k = query.k or self.settings.k
        where = self._where(query.partitions)
        t0 = time.perf_counter_ns()

        vec, hit = await self._embed_query(question)
        t1 = time.perf_counter_ns()
        yield Span("embed", t0, t1, {"cache": "hit" if hit else "miss"})

        hits = (await asyncio.to_thread(self.store.query, self.index_name, vec, k, where))[0]
        records = self.catalog.chunks([h.id for h in hits])
        ranked = [(records[h.id], h.score) for h in hits if h.id in records]
        t2 = time.perf_counter_ns()
        yield Span("retrieve", t1, t2, {"k": k, "hits": len(ranked)})

        prompt = build_prompt(
            question, ranked, self.settings.max_context_tokens, self.generator.count_tokens
        )
        t3 = time.perf_counter_ns()
        yield Span("prompt", t2, t3, {"tokens": prompt.tokens, "sources": len(prompt.sources)})
        yield SourcesEvent(prompt.sources, prompt)

        pieces: list[str] = []
        first: int | None = None
        if prompt.sources:
            async for piece in self.generator.stream(question, prompt):
                if first is None:
                    first = time.perf_counter_ns()
                    yield Span("llm.first_token", t3, first)
                pieces.append(piece)
                yield TokenEvent(piece)
        else:
            first = time.perf_counter_ns()
            yield Span("llm.first_token", t3, first, {"skipped": "no sources"})
            pieces.append("No ingested text matches this question.")
            yield TokenEvent(pieces[0])
        end = time.perf_counter_ns()
        yield Span("llm.stream", first or end, end, {"pieces": len(pieces)})
        yield DoneEvent("".join(pieces), self.generator.name, t0, first, end, len(pieces))
