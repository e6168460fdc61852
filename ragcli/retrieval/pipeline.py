"""The request path as one async pipeline that yields events (retrieval.events): timing spans,
the sources, answer tokens as they arrive, and a final summary.

    question → [retrieval cache] → embed ([embedding cache] / model) → HNSW search
             → [answer cache] → prompt → LLM stream → tokens

`ask`, `profile` and any server consume the same events; none of them times anything itself.
Heavy resources (ONNX model, Chroma, the LLM client) load only when a cache misses, start as
soon as a miss is known, and overlap one another; each load is a span of its own. A cached
answer therefore needs neither Chroma nor the model nor the `openai` package.

This module holds the warm resources and the order of the steps; the steps themselves live
beside it: scope (filters), search (dense, lexical, fusion), replay (the answer cache),
prompt, and embedders.cached (the cache-first embedding shared with ingest).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from ragcli.caches.backends import Caches, open_caches
from ragcli.caches.keys import digest_key, embedding_key
from ragcli.caches.null import NullAnswerCache, NullEmbeddingCache, NullRetrievalCache
from ragcli.core.datadir import DataDir
from ragcli.core.errors import NotReadyError, UsageError
from ragcli.core.native import native_import
from ragcli.embedders import open_embedder, settings_for_index
from ragcli.embedders.cached import VectorFetcher
from ragcli.generators import open_generator
from ragcli.index import indexing
from ragcli.index.catalog import Catalog, ChunkRecord
from ragcli.index.store import Store, forget_loaded_indexes, open_store
from ragcli.retrieval.events import (
    ROUTE_KEYS,
    DoneEvent,
    Event,
    Query,
    SourcesEvent,
    Span,
    TokenEvent,
)
from ragcli.retrieval.prompt import Source, build_prompt
from ragcli.retrieval.relevance import NO_ANSWER, abstains, cosines, unmatched_names
from ragcli.retrieval.replay import answer_key, cache_kind, replay
from ragcli.retrieval.scope import Scope, resolve_scope
from ragcli.retrieval.search import Hits, Searcher

if TYPE_CHECKING:
    import numpy as np

    from ragcli.caches.protocols import AnswerCache, CachedAnswer, EmbeddingCache, RetrievalCache
    from ragcli.core.config import Settings
    from ragcli.embedders.base import Embedder

T = TypeVar("T")

MAX_QUESTION_CHARS = 4000  # the embedder reads 256 tokens; a prompt should not be all question


def normalise(question: str) -> str:
    return " ".join(question.split())


@dataclass
class _Retrieval:
    question: str
    k: int
    scope: Scope
    index: indexing.IndexInfo
    started_ns: int
    vector: bytes | None  # the question's embedding, once something needed it
    ranked: list[tuple[ChunkRecord, float]]


@dataclass(frozen=True)
class _Pending:
    """A question whose retrieval missed the cache."""

    key: str  # its retrieval-cache key
    question: str
    k: int
    scope: Scope


@dataclass(frozen=True)
class _Batch:
    """What retrieving many pending questions at once took and found."""

    vectors: np.ndarray
    hits: list[Hits]  # per pending question
    cache_hits: int  # query vectors found in the embedding cache
    embed: tuple[int, int]  # start and end of the embedding
    search: tuple[int, int]  # start and end of the searches
    calls: int  # index calls (one per distinct k and scope)
    embedder_load: Span | None
    index_load: Span | None


class Pipeline:
    """Holds the warm resources (model, index, clients) and answers questions with them.

    `embedder`: one already opened (and perhaps loaded) to share, e.g. across the variants of
    a profile or the runs of an eval; by default the settings' own. Either way `open` swaps
    it for the index's embedder if the index was built with another."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.dirs = DataDir(settings.data_dir)
        self.embedder = embedder if embedder is not None else open_embedder(settings)
        self.generator = open_generator(settings)
        # A generator that chooses sentences by meaning (extractive) borrows the embedder.
        lend = getattr(self.generator, "lend_similarity", None)
        if lend is not None:
            lend(self.similarities)
        # The prompt layout: `auto` asks the generator (prefix-cache friendly for LLMs).
        self.layout = (
            settings.prompt_layout
            if settings.prompt_layout != "auto"
            else getattr(self.generator, "prompt_layout", "prefix")
        )
        self.catalog: Catalog | None = None
        self.store: Store | None = None
        # Null until `open`; then each is the real cache, or a null one if it is switched off.
        self._caches: Caches | None = None
        self.embedding_cache: EmbeddingCache = NullEmbeddingCache()
        self.retrieval_cache: RetrievalCache = NullRetrievalCache()
        self.answer_cache: AnswerCache = NullAnswerCache()
        self._searcher: Searcher | None = None
        self._loaded_index: indexing.IndexInfo | None = None  # what `store` holds in memory
        self._loads: dict[str, asyncio.Future[Span]] = {}
        self._prefetched: dict[str, Hits] = {}
        self._lookups: dict[str, tuple[int, Any]] = {}

    # -- resources ------------------------------------------------------------------------
    async def open(self) -> list[Span]:
        """The cheap part: catalogue and caches (stdlib sqlite3). Returns its span."""
        t = time.perf_counter_ns()
        if not self.dirs.exists():
            raise NotReadyError(
                f"nothing ingested in {self.dirs.root}: run `ragcli ingest PATH` first"
            )
        catalog = Catalog(self.dirs.catalog)
        try:
            if indexing.current(catalog) is None:
                raise NotReadyError("there is no index yet: run `ragcli ingest PATH` first")
            built_with = catalog.get_meta("embedder")
            if built_with and built_with != self.embedder.cache_id:
                # The index decides how questions are embedded: its vectors are in that space.
                self.settings = settings_for_index(self.settings, built_with)
                self.embedder = open_embedder(self.settings)
            caches = open_caches(self.settings)  # SQLite in the data dir, or Redis
        except BaseException:
            catalog.close()  # a long-lived pipeline opens again on its next question
            raise
        self.catalog, self._caches = catalog, caches  # opened: only once all of it is
        self.embedding_cache = caches.embedding
        self.retrieval_cache = caches.retrieval
        self.answer_cache = caches.answer
        return [Span("load.catalog", t, time.perf_counter_ns())]

    async def warm(self) -> list[Span]:
        """Load everything now, overlapping (for profile's warm runs and long-lived servers)."""
        if self.catalog is None:
            await self.open()
        spans = await asyncio.gather(
            self._embedder_ready(), self._index_ready(), self._generator_ready()
        )
        return [s for s in spans if s is not None]

    def _load(self, name: str, work: Callable[[], Awaitable[None]]) -> asyncio.Future[Span]:
        """Start a load once; every caller awaits the same one. A load that fails is
        forgotten, so that a long-lived pipeline tries again on its next question (after
        `index --rebuild`, say) instead of failing the same way for ever."""
        if name not in self._loads:

            async def timed() -> Span:
                start = time.perf_counter_ns()
                await work()
                return Span(name, start, time.perf_counter_ns())

            def forget_if_failed(done: asyncio.Future[Span]) -> None:
                # .exception() also marks it seen: a load started ahead of need that fails
                # unawaited is not logged as "never retrieved" (who needs it awaits it).
                failed = done.cancelled() or done.exception() is not None
                if failed and self._loads.get(name) is done:
                    del self._loads[name]

            future = self._loads[name] = asyncio.ensure_future(timed())
            future.add_done_callback(forget_if_failed)
        return self._loads[name]

    async def _await_load(self, name: str, work: Callable[[], Awaitable[None]]) -> Span | None:
        """The load's span the first time it is awaited (so it is reported once), then None."""
        future = self._load(name, work)
        span = await future
        reported = f"{name}.reported"
        if reported in self._loads:
            return None
        self._loads[reported] = future
        return span

    async def _embedder_work(self) -> None:
        # A remote embedder warms without a request (a cached query vector must cost none).
        warm = getattr(self.embedder, "warm", None)
        await (warm() if warm is not None else self.embedder.aembed(["warm up"]))

    async def _index_work(self) -> None:
        catalog = self._opened()
        info = self._index()

        def blocking() -> None:
            np = native_import("numpy")

            store = open_store(self.settings)
            probe = np.full((1, self.embedder.dimensions), 1.0, dtype=np.float32)
            store.query(info.name, probe, 1)  # Chroma loads HNSW on the first query
            self.store = store

        try:
            await asyncio.to_thread(blocking)
        except BaseException:
            if not self.settings.chroma_url:  # Chroma's client of this path saw the broken index
                forget_loaded_indexes()
            raise
        assert self.store is not None
        s = self.settings
        self._searcher = Searcher(self.store, catalog, s.retrieval, s.search, s.hybrid_weight)
        self._loaded_index = info

    def _refresh_index(self) -> None:
        """A long-lived pipeline (serve, the daemon) whose index changed since it loaded it
        (an ingest, `index --rebuild`, a new ef_search in another process) loads it again:
        embedded Chroma keeps the HNSW graph it loaded in memory and never sees another
        process's writes. Requests already searching keep the old store until they end."""
        loaded = self._loaded_index
        if loaded is None or loaded == self._index():
            return
        self._loaded_index = None
        self._loads.pop("load.index", None)
        self._loads.pop("load.index.reported", None)
        if not self.settings.chroma_url:  # a Chroma server's collections are always current
            forget_loaded_indexes()

    async def _embedder_ready(self) -> Span | None:
        return await self._await_load("load.embedder", self._embedder_work)

    async def _index_ready(self) -> Span | None:
        return await self._await_load("load.index", self._index_work)

    async def _generator_ready(self) -> Span | None:
        return await self._await_load("load.generator", self.generator.warm)

    def close(self) -> None:
        if self.catalog is not None:
            self.catalog.close()
        if self._caches is not None:
            self._caches.close()

    def counters(self) -> dict[str, dict[str, int]]:
        """Hits and misses per cache in this process (zeros for a cache that is off)."""
        if self._caches is None:
            return {}
        return {
            "embedding": _hits_misses(self.embedding_cache),
            "retrieval": _hits_misses(self.retrieval_cache),
            "answer": {
                **_hits_misses(self.answer_cache),
                "semantic_hits": self.answer_cache.semantic_hits,
            },
        }

    # -- steps ----------------------------------------------------------------------------
    def _opened(self) -> Catalog:
        assert self.catalog is not None, "Pipeline.open() first"
        return self.catalog

    def _index(self) -> indexing.IndexInfo:
        info = indexing.current(self._opened())  # re-read: an ingest may have moved it on
        if info is None:
            raise NotReadyError("there is no index yet: run `ragcli ingest PATH` first")
        return info

    def _per_version(self, name: str, load: Callable[[], T]) -> T:
        """A catalogue lookup remembered until the catalogue's version changes."""
        version = self._opened().version
        hit = self._lookups.get(name)
        if hit is None or hit[0] != version:
            hit = self._lookups[name] = (version, load())
        value: T = hit[1]
        return value

    def _scope(self, query: Query) -> Scope:
        catalog = self._opened()
        return resolve_scope(
            query,
            lambda: self._per_version("partitions", catalog.partition_names),
            lambda: self._per_version("sources", catalog.sources),
        )

    def _retrieval_key(self, question: str, k: int, scope: Scope) -> str:
        info = self._index()
        return digest_key(
            "retrieval",
            self.embedder.cache_id,
            question,
            k,
            scope.key,
            info.name,
            info.version,
            info.params.ef_search,
            self.settings.search,
            self.settings.retrieval,
            self.settings.hybrid_weight,
        )

    async def _embed_queries(self, texts: Sequence[str]) -> tuple[np.ndarray, int, Span | None]:
        """Vectors for `texts`, cache first, all misses in one model call. Also returns the hit
        count and, if the model had to be loaded for the misses, that load's span."""
        load: Span | None = None

        async def model_ready() -> None:
            nonlocal load
            load = await self._embedder_ready()

        fetch = VectorFetcher(
            self.embedder, self.embedding_cache, per_batch=False, before_embed=model_ready
        )
        vectors = await fetch.vectors(texts)
        return vectors, fetch.hits, load

    async def _retrieve_misses(self, pending: Sequence[_Pending], version: int) -> _Batch:
        """The one retrieval path for questions that missed the retrieval cache, one or many:
        their vectors in one embedding call, one index call per distinct (k, scope), each
        result stored in the retrieval cache under `version`."""
        self._refresh_index()
        self._load("load.index", self._index_work)
        await asyncio.sleep(0)  # let the loads start their threads before we embed
        t0 = time.perf_counter_ns()
        vectors, cache_hits, embedder_load = await self._embed_queries(
            [p.question for p in pending]
        )
        t1 = time.perf_counter_ns()
        index_load = await self._index_ready()
        t2 = time.perf_counter_ns()
        assert self._searcher is not None
        groups: dict[tuple[int, str], list[int]] = {}
        for i, p in enumerate(pending):
            groups.setdefault((p.k, p.scope.key), []).append(i)
        info = self._index()
        hits: list[Hits] = [[] for _ in pending]
        for rows in groups.values():
            first = pending[rows[0]]
            questions = [pending[r].question for r in rows]
            found = await self._searcher.rank(info, questions, vectors[rows], first.k, first.scope)
            for row, ranked in zip(rows, found, strict=True):
                hits[row] = ranked
                self.retrieval_cache.put(pending[row].key, ranked, version)
        t3 = time.perf_counter_ns()
        return _Batch(
            vectors, hits, cache_hits, (t0, t1), (t2, t3), len(groups), embedder_load, index_load
        )

    async def prefetch(self, queries: Sequence[Query]) -> list[Span]:
        """Retrieve for many questions at once: missing query vectors in one embedding batch,
        one Chroma call per distinct (k, filters). `ask` then finds the results ready."""
        if self.catalog is None:
            await self.open()
        todo: dict[str, _Pending] = {}
        for q in queries:
            text, k = normalise(q.question), q.k or self.settings.k
            if not text:
                continue
            scope = self._scope(q)
            rkey = self._retrieval_key(text, k, scope)
            if self.retrieval_cache.get(rkey) is not None:
                continue
            todo[rkey] = _Pending(rkey, text, k, scope)
        if not todo or self.settings.retrieval == "lexical":
            return []  # lexical search needs neither the model nor Chroma: nothing to batch
        pending = list(todo.values())
        batch = await self._retrieve_misses(pending, self._index().version)
        for p, hits in zip(pending, batch.hits, strict=True):
            self._prefetched[p.key] = hits
        spans = [batch.embedder_load] if batch.embedder_load else []
        attrs = {"queries": len(pending), "cache_hits": batch.cache_hits}
        spans.append(Span("embed.batch", *batch.embed, attrs))
        if batch.index_load:
            spans.append(batch.index_load)
        spans.append(Span("retrieve.batch", *batch.search, {"calls": batch.calls}))
        return spans

    # -- the request path -----------------------------------------------------------------
    async def _retrieval_steps(
        self, query: Query, for_answer: bool
    ) -> AsyncIterator[Span | _Retrieval]:
        """Retrieval for one question: yields its spans, then the `_Retrieval` result."""
        if self.catalog is None:
            for span in await self.open():
                yield span
        catalog = self._opened()
        question = _checked(query.question)
        k = query.k or self.settings.k
        t0 = time.perf_counter_ns()
        scope = self._scope(query)
        index = self._index()
        rkey = self._retrieval_key(question, k, scope)
        hits = self._prefetched.pop(rkey, None)
        if hits is None:
            hits = self.retrieval_cache.get(rkey)
        vector: bytes | None = None
        mode = self.settings.retrieval
        if hits is not None:
            yield Span("retrieve", t0, time.perf_counter_ns(), {"cache": "hit", "k": k})
        elif mode == "lexical":
            hits = catalog.lexical_search(question, k, scope.sql)
            self.retrieval_cache.put(rkey, hits, index.version)
            yield Span(
                "retrieve", t0, time.perf_counter_ns(), {"cache": "miss", "k": k, "mode": mode}
            )
        else:
            # A retrieval miss means a model, an index and most likely an LLM call: start
            # loading all three now, so they overlap each other and the embedding.
            self._load("load.index", self._index_work)
            if for_answer:
                self._load("load.generator", self.generator.warm)
            batch = await self._retrieve_misses([_Pending(rkey, question, k, scope)], index.version)
            vector, hits = batch.vectors[0].tobytes(), batch.hits[0]
            embed_start, embed_end = batch.embed
            if batch.embedder_load:
                yield batch.embedder_load
                embed_start = batch.embedder_load.end_ns
            cache = "hit" if batch.cache_hits else "miss"
            yield Span("embed", embed_start, embed_end, {"cache": cache})
            if batch.index_load:
                yield batch.index_load
            attrs = {"cache": "miss", "k": k, "mode": mode}
            yield Span("retrieve", *batch.search, attrs)
        records = catalog.chunks([cid for cid, _ in hits])
        ranked = [(records[cid], score) for cid, score in hits if cid in records]
        yield _Retrieval(question, k, scope, index, t0, vector, ranked)

    async def retrieve(self, query: Query) -> tuple[list[tuple[ChunkRecord, float]], list[Span]]:
        """Top-k chunks with scores, no generation (eval, `serve`'s /v1/retrieve)."""
        spans: list[Span] = []
        result: _Retrieval | None = None
        async for item in self._retrieval_steps(query, for_answer=False):
            if isinstance(item, Span):
                spans.append(item)
            else:
                result = item
        assert result is not None
        return result.ranked, spans

    async def ask(self, query: Query) -> AsyncIterator[Event]:
        """Answer one question: retrieval, the answer cache, then prompt and LLM stream."""
        r: _Retrieval | None = None
        async for item in self._retrieval_steps(query, for_answer=True):
            if isinstance(item, Span):
                yield item
            else:
                r = item
        assert r is not None
        relevance, load = await self._relevance(r)
        if load:
            yield load
        if self._abstains(r, relevance):
            # Decided before the answer cache and the generator: no LLM call, nothing cached
            # (the retrieval and the vectors are, so asking again costs no model).
            for event in _abstention(r, relevance, self.generator.name):
                yield event
            return
        async for event in self._answer(r):
            if isinstance(event, SourcesEvent):
                event = SourcesEvent(with_relevance(event.sources, relevance), event.prompt)
            yield event

    async def answers(self, query: Query) -> tuple[bool, float | None]:
        """Whether `ask` would answer the question (False: it would abstain), and the best
        retrieved chunk's relevance (None: nothing retrieved); no generation (eval)."""
        r: _Retrieval | None = None
        async for item in self._retrieval_steps(query, for_answer=False):
            if not isinstance(item, Span):
                r = item
        assert r is not None
        relevance, _ = await self._relevance(r)
        return not self._abstains(r, relevance), max(relevance.values(), default=None)

    def _abstains(self, r: _Retrieval, relevance: dict[str, float]) -> bool:
        """Too weak evidence (retrieval.relevance): decided before the answer cache and any
        generator, so an abstention costs no LLM call."""
        best = max(relevance.values(), default=None)
        texts = [f"{c.title} {c.text}" for c, _ in r.ranked]
        names = unmatched_names(r.question, texts) if best is not None else []
        return abstains(best, self.settings.abstain_threshold, names)

    async def _relevance(self, r: _Retrieval) -> tuple[dict[str, float], Span | None]:
        """Each retrieved chunk's cosine to the question, from the vectors the embedding cache
        holds (ingest stored the chunks'; retrieval the question's): no model on a warm cache.
        These lookups are not counted as the cache's hits and misses (those count what
        retrieval embeds). Skipped (empty) when neither abstention nor the source floor is on."""
        s = self.settings
        if not r.ranked or (s.abstain_threshold <= 0 and s.source_floor <= 0):
            return {}, None
        vectors, load = await self._vectors([r.question] + [c.text for c, _ in r.ranked])
        values = cosines(vectors[0], vectors[1:])
        return {c.id: v for (c, _), v in zip(r.ranked, values, strict=True)}, load

    async def similarities(self, question: str, texts: Sequence[str]) -> list[float] | None:
        """Cosine of `question` to each of `texts` (the extractive generator's choice of
        sentences). None with a remote embedder: a network round trip to choose quotations
        would cost more time-to-first-token than it buys."""
        if not self.embedder.in_process:
            return None
        vectors, _ = await self._vectors([question, *texts], store=True)
        return cosines(vectors[0], vectors[1:])

    async def _vectors(
        self, texts: Sequence[str], store: bool = False
    ) -> tuple[list[bytes], Span | None]:
        """The texts' vectors (float32 bytes), in order: from the embedding cache (ingest
        stored the chunks', retrieval the question's), the rest embedded now, and stored if
        `store` (a sentence quoted once is likely quoted again). The lookups are not counted as
        the cache's hits and misses (those count what retrieval embeds). The span: the model's
        load, if this had to wait for it."""
        e, cache = self.embedder, self.embedding_cache
        keys = [embedding_key(e.cache_id, e.dimensions, t) for t in texts]
        hits, misses = cache.counters.hits, cache.counters.misses
        found = cache.get_many(keys)  # synchronous: no other question counts meanwhile
        cache.counters.hits, cache.counters.misses = hits, misses
        load: Span | None = None
        todo = sorted({t for k, t in zip(keys, texts, strict=True) if k not in found})
        if todo:
            load = await self._embedder_ready()
            fresh = await self.embedder.aembed(todo)
            by_text = {t: v.astype("float32").tobytes() for t, v in zip(todo, fresh, strict=True)}
            new = {k: by_text[t] for k, t in zip(keys, texts, strict=True) if t in by_text}
            found.update(new)
            if store:
                cache.put_many(e.cache_id, e.dimensions, new.items())
        return [found[k] for k in keys], load

    async def _answer(self, r: _Retrieval) -> AsyncIterator[Event]:
        """The answer cache, else prompt and generation."""
        akey = answer_key(
            r.question,
            [c.id for c, _ in r.ranked],
            self.generator.name,
            self.settings.max_context_tokens,
            self.layout,
        )
        cached: CachedAnswer | None = None
        async for step in self._cached_answer(r, akey):
            if isinstance(step, Span):
                yield step
            else:
                cached = step
        if cached is not None:
            records = self._opened().chunks([cid for cid, _ in cached.sources])
            for event in replay(cached, records, self.generator.name, r.started_ns):
                yield event
            return
        async for event in self._generate(r, akey):
            yield event

    async def _cached_answer(self, r: _Retrieval, akey: str) -> AsyncIterator[Span | CachedAnswer]:
        """The answer-cache stage: exact, then semantic (embedding the question if retrieval
        did not). Yields its spans, then the cached answer if there is one. Skipped (no span)
        when the answer cache is off or nothing was retrieved."""
        if not self.answer_cache.enabled or not r.ranked:
            return
        t = time.perf_counter_ns()
        cached = self.answer_cache.get(akey)
        if cached is None and self.settings.semantic_threshold > 0:
            if r.vector is None:
                vectors, _, load = await self._embed_queries([r.question])
                if load:
                    yield load
                r.vector = vectors[0].tobytes()
            cached = self.answer_cache.nearest(
                r.scope.key,
                self.generator.name,
                r.index.version,
                r.vector,
                self.settings.semantic_threshold,
            )
        kind = cache_kind(cached)
        yield Span("answer_cache", t, time.perf_counter_ns(), {"cache": kind or "miss"})
        if cached is not None:
            yield cached

    async def _generate(self, r: _Retrieval, akey: str) -> AsyncIterator[Event]:
        """Prompt, LLM stream, and the answer stored in the answer cache."""
        t4 = time.perf_counter_ns()
        prompt = build_prompt(
            r.question,
            r.ranked,
            self.settings.max_context_tokens,
            self.generator.count_tokens,
            self.layout,
        )
        attrs = {"tokens": prompt.tokens, "sources": len(prompt.sources), "layout": prompt.layout}
        yield Span("prompt", t4, time.perf_counter_ns(), attrs)
        yield SourcesEvent(prompt.sources, prompt)
        name = self.generator.name
        if not prompt.sources:
            now = time.perf_counter_ns()
            text = "No ingested text matches this question."
            yield TokenEvent(text)
            yield DoneEvent(text, name, r.started_ns, now, now, 1)
            return
        if span := await self._generator_ready():
            yield span
        t6 = time.perf_counter_ns()
        pieces: list[str] = []
        times: list[int] = []
        async for piece in self.generator.stream(r.question, prompt):
            times.append(time.perf_counter_ns())
            if len(times) == 1:
                # Several LLM endpoints: which one answered, failovers, hedging (endpoints.py).
                route = {k: prompt.usage.pop(k) for k in ROUTE_KEYS if k in prompt.usage}
                yield Span("llm.first_token", t6, times[0], route)
            pieces.append(piece)
            yield TokenEvent(piece)
        end = time.perf_counter_ns()
        first = times[0] if times else None
        # prompt_tokens / cached_tokens, when the provider reported them (prefix-cache reuse).
        yield Span("llm.stream", first or end, end, {"pieces": len(pieces), **prompt.usage})
        answer = "".join(pieces)
        if answer:
            self.answer_cache.put(
                akey,
                scope=r.scope.key,
                question=r.question,
                vector=r.vector,
                answer=answer,
                sources=[(s.chunk.id, s.score) for s in prompt.sources],
                generator=name,
                index_version=r.index.version,
            )
        yield DoneEvent(answer, name, r.started_ns, first, end, len(pieces), "", tuple(times))


def with_relevance(sources: Sequence[Source], relevance: dict[str, float]) -> list[Source]:
    """The sources with their relevance (cosine to the question) filled in."""
    return [replace(s, relevance=relevance.get(s.chunk.id)) for s in sources]


def _abstention(r: _Retrieval, relevance: dict[str, float], generator: str) -> Iterator[Event]:
    """The events of "no answer": the closest sources, best first, and the fixed sentence."""
    closest = [
        Source(n, chunk, score, n, relevance.get(chunk.id))
        for n, (chunk, score) in enumerate(r.ranked, start=1)
    ]
    yield SourcesEvent(closest, None)
    now = time.perf_counter_ns()
    yield TokenEvent(NO_ANSWER)
    yield DoneEvent(NO_ANSWER, generator, r.started_ns, now, now, 1, answered=False)


def _checked(question: str) -> str:
    """The question, whitespace-normalised; refused if empty or too long."""
    text = normalise(question)
    if not text:
        raise UsageError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise UsageError(
            f"the question is too long ({len(text)} characters; at most "
            f"{MAX_QUESTION_CHARS}): put long material in a document and ingest it"
        )
    return text


def _hits_misses(cache: EmbeddingCache | RetrievalCache | AnswerCache) -> dict[str, int]:
    return {"hits": cache.counters.hits, "misses": cache.counters.misses}
