"""The request path as one async pipeline that yields events: timing spans, the sources,
answer tokens as they arrive, and a final summary.

    question → [retrieval cache] → embed ([embedding cache] / model) → HNSW search
             → [answer cache] → prompt → LLM stream → tokens

`ask`, `profile` and any server consume the same events; none of them times anything itself.
Heavy resources (ONNX model, Chroma, the LLM client) load only when a cache misses, start as
soon as a miss is known, and overlap one another; each load is a span of its own. A cached
answer therefore needs neither Chroma nor the model nor the `openai` package.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli.caches.backends import open_caches
from ragcli.caches.sqlite import (
    AnswerCache,
    CachedAnswer,
    EmbeddingCache,
    RetrievalCache,
    digest_key,
    embedding_key,
)
from ragcli.core.datadir import DataDir
from ragcli.core.errors import NotReadyError, UsageError
from ragcli.core.native import native_import
from ragcli.embedders import open_embedder, settings_for_index
from ragcli.generators import open_generator
from ragcli.index import indexing
from ragcli.index.catalog import Catalog, ChunkRecord, LexicalFilter
from ragcli.index.store import Store, open_store
from ragcli.retrieval.prompt import PROMPT_VERSION, Prompt, Source, build_prompt

if TYPE_CHECKING:
    import numpy as np

    from ragcli.core.config import Settings

# What a generator with several endpoints reports in `prompt.usage` about the route it took.
ROUTE_KEYS = ("endpoint", "attempts", "failovers", "hedged", "hedge_won")


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
    prompt: Prompt | None  # None when the answer came from the cache


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
    cached: str = ""  # "", "exact" or "semantic"
    piece_times_ns: tuple[int, ...] = ()  # arrival of each streamed piece (for ITL)


Event = Span | SourcesEvent | TokenEvent | DoneEvent


@dataclass(frozen=True)
class Query:
    question: str
    k: int | None = None
    partitions: tuple[str, ...] = ()
    since: str | None = None  # "30d", "12h", "2w" or an ISO date
    source: str | None = None  # glob over source paths, e.g. "*/runbooks/*"


@dataclass(frozen=True)
class _Scope:
    """A query's resolved filters: the Chroma `where`, the same as SQL for the lexical index,
    and a stable key for the caches."""

    where: dict[str, Any] | None  # every filter, for the global collection
    key: str
    sql: LexicalFilter = field(default_factory=lambda: LexicalFilter())
    partitions: tuple[str, ...] = ()
    rest: dict[str, Any] | None = None  # the filters but the partition, for its own collection


@dataclass(frozen=True)
class _Retrieval:
    question: str
    k: int
    scope: _Scope
    index: indexing.IndexInfo
    started_ns: int
    vector: bytes | None
    ranked: list[tuple[ChunkRecord, float]]


MAX_QUESTION_CHARS = 4000  # the embedder reads 256 tokens; a prompt should not be all question
RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al., 2009)


def fuse(
    dense: Sequence[tuple[str, float]], lexical: Sequence[tuple[str, float]], weight: float
) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: score = 1/(60 + dense rank) + weight/(60 + lexical rank)."""
    scores: dict[str, float] = {}
    for rank, (cid, _) in enumerate(dense, 1):
        scores[cid] = scores.get(cid, 0.0) + 1.0 / (RRF_K + rank)
    for rank, (cid, _) in enumerate(lexical, 1):
        scores[cid] = scores.get(cid, 0.0) + weight / (RRF_K + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def normalise(question: str) -> str:
    return " ".join(question.split())


_SINCE = re.compile(r"^(\d+)([hdw])$")


def since_timestamp(spec: str, now: float | None = None) -> int:
    """`30d` → the start of the UTC day 30 days ago (day granularity keeps cache keys stable)."""
    m = _SINCE.match(spec.strip())
    if m:
        hours = int(m.group(1)) * {"h": 1, "d": 24, "w": 168}[m.group(2)]
        moment = dt.datetime.fromtimestamp(now or time.time(), dt.UTC) - dt.timedelta(hours=hours)
        if m.group(2) == "h":
            return int(moment.replace(minute=0, second=0, microsecond=0).timestamp())
        return int(moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    try:
        day = dt.date.fromisoformat(spec.strip())
    except ValueError:
        raise UsageError(f"--since {spec!r}: use a duration like 30d, 12h, 2w or a date") from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


class Pipeline:
    """Holds the warm resources (model, index, clients) and answers questions with them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.caches = settings.caches
        self.dirs = DataDir(settings.data_dir)
        self.embedder = open_embedder(settings)
        self.generator = open_generator(settings)
        # The prompt layout: `auto` asks the generator (prefix-cache friendly for LLMs).
        self.layout = (
            settings.prompt_layout
            if settings.prompt_layout != "auto"
            else getattr(self.generator, "prompt_layout", "prefix")
        )
        self.catalog: Catalog | None = None
        self.embedding_cache: EmbeddingCache | None = None
        self.retrieval_cache: RetrievalCache | None = None
        self.answer_cache: AnswerCache | None = None
        self.store: Store | None = None
        self._loads: dict[str, asyncio.Future[Span]] = {}
        self._prefetched: dict[str, list[tuple[str, float]]] = {}
        self._exact: tuple[str, Any] | None = None
        self._lookups: dict[str, tuple[int, Any]] = {}

    # -- resources ------------------------------------------------------------------------
    async def open(self) -> list[Span]:
        """The cheap part: catalogue and caches (stdlib sqlite3). Returns its span."""
        t = time.perf_counter_ns()
        if not self.dirs.exists():
            raise NotReadyError(
                f"nothing ingested in {self.dirs.root}: run `ragcli ingest PATH` first"
            )
        self.catalog = Catalog(self.dirs.catalog)
        if indexing.current(self.catalog) is None:
            raise NotReadyError("there is no index yet: run `ragcli ingest PATH` first")
        built_with = self.catalog.get_meta("embedder")
        if built_with and built_with != self.embedder.cache_id:
            # The index decides how questions are embedded: its vectors are in that space.
            self.settings = settings_for_index(self.settings, built_with)
            self.embedder = open_embedder(self.settings)
        caches = open_caches(self.settings)  # SQLite in the data dir, or Redis
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
        """Start a load once; every caller awaits the same one."""
        if name not in self._loads:

            async def timed() -> Span:
                start = time.perf_counter_ns()
                await work()
                return Span(name, start, time.perf_counter_ns())

            self._loads[name] = asyncio.ensure_future(timed())
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
        def blocking() -> None:
            np = native_import("numpy")

            store = open_store(self.settings)
            probe = np.full((1, self.embedder.dimensions), 1.0, dtype=np.float32)
            store.query(self._index().name, probe, 1)  # Chroma loads HNSW on the first query
            self.store = store

        await asyncio.to_thread(blocking)

    async def _embedder_ready(self) -> Span | None:
        return await self._await_load("load.embedder", self._embedder_work)

    async def _index_ready(self) -> Span | None:
        return await self._await_load("load.index", self._index_work)

    async def _generator_ready(self) -> Span | None:
        return await self._await_load("load.generator", self.generator.warm)

    def close(self) -> None:
        for resource in (self.catalog, self.embedding_cache):
            if resource is not None:
                resource.close()

    def counters(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for name, cache in (
            ("embedding", self.embedding_cache),
            ("retrieval", self.retrieval_cache),
            ("answer", self.answer_cache),
        ):
            if cache is not None:
                out[name] = {"hits": cache.counters.hits, "misses": cache.counters.misses}
        if self.answer_cache is not None:
            out["answer"]["semantic_hits"] = self.answer_cache.semantic_hits
        return out

    # -- steps ----------------------------------------------------------------------------
    def _index(self) -> indexing.IndexInfo:
        assert self.catalog is not None
        info = indexing.current(self.catalog)  # re-read: an ingest may have moved it on
        if info is None:
            raise NotReadyError("there is no index yet: run `ragcli ingest PATH` first")
        return info

    def _per_version(self, name: str, load: Callable[[], Any]) -> Any:
        """A catalogue lookup remembered until the catalogue's version changes."""
        assert self.catalog is not None
        version = self.catalog.version
        hit = self._lookups.get(name)
        if hit is None or hit[0] != version:
            hit = self._lookups[name] = (version, load())
        return hit[1]

    def _scope(self, query: Query) -> _Scope:
        assert self.catalog is not None
        rest: list[dict[str, Any]] = []
        key: dict[str, Any] = {}
        parts: list[str] = []
        if query.partitions:
            known = self._per_version("partitions", self.catalog.partition_names)
            unknown = [p for p in query.partitions if p not in known]
            if unknown:
                names = ", ".join(sorted(known)) or "none"
                raise UsageError(f"unknown partition {unknown[0]!r} (known: {names})")
            parts = sorted(set(query.partitions))
            key["partitions"] = parts
        if query.since:
            ts = since_timestamp(query.since)
            key["since"] = ts
            rest.append({"date_ts": {"$gte": ts}})
        if query.source:
            sources = [
                s
                for s, rel in self._per_version("sources", self.catalog.sources)
                if fnmatch.fnmatch(s, query.source) or fnmatch.fnmatch(rel, query.source)
            ]
            if not sources:
                raise UsageError(f"--source {query.source!r} matches no ingested document")
            key["sources"] = sorted(sources)
            rest.append({"source": {"$in": sorted(sources)}})
        clauses = list(rest)
        if parts:
            clauses.insert(
                0, {"partition": parts[0]} if len(parts) == 1 else {"partition": {"$in": parts}}
            )

        def combine(items: list[dict[str, Any]]) -> dict[str, Any] | None:
            return None if not items else items[0] if len(items) == 1 else {"$and": items}

        sql = LexicalFilter(tuple(parts), key.get("since"), tuple(key.get("sources", ())))
        return _Scope(
            combine(clauses), json.dumps(key, sort_keys=True), sql, tuple(parts), combine(rest)
        )

    def _retrieval_key(self, question: str, k: int, scope: _Scope) -> str:
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
        import numpy as np

        assert self.embedding_cache is not None
        e = self.embedder
        use_cache = "embedding" in self.caches
        keys = [embedding_key(e.cache_id, e.dimensions, t) for t in texts]
        found = self.embedding_cache.get_many(keys) if use_cache else {}
        missing = [i for i, k in enumerate(keys) if k not in found]
        out = np.empty((len(texts), e.dimensions), dtype=np.float32)
        for i, k in enumerate(keys):
            if k in found:
                out[i] = np.frombuffer(found[k], dtype=np.float32)
        load = None
        if missing:
            load = await self._embedder_ready()
            vecs = await e.aembed([texts[i] for i in missing])
            out[missing] = vecs
            if use_cache:
                self.embedding_cache.put_many(
                    e.cache_id, e.dimensions, [(keys[i], out[i].tobytes()) for i in missing]
                )
        return out, len(texts) - len(missing), load

    async def _search(
        self, vectors: np.ndarray, k: int, scope: _Scope
    ) -> list[list[tuple[str, float]]]:
        """Top-k per vector among the chunks the catalogue knows. A scoped question searches
        its partitions' own collections (in parallel threads, merged by score); anything else
        searches the global one. The index may briefly hold chunks of an ingest in progress
        (added before the catalogue commits, deleted after): asking for a few more than k and
        dropping ids the catalogue does not know hides them."""
        assert self.store is not None and self.catalog is not None
        info = self._index()
        fetch = k + min(k, 10)
        if self.settings.search == "exact":
            if self._exact is None or self._exact[0] != info.name:
                from ragcli.index.exact import ExactIndex

                self._exact = (
                    info.name,
                    await asyncio.to_thread(ExactIndex, self.store, info.name),
                )
            found = self._exact[1].query(vectors, fetch, scope.where)
        elif scope.partitions and all(p in info.partitions for p in scope.partitions):
            per_partition = await asyncio.gather(
                *(
                    asyncio.to_thread(
                        self.store.query, info.partitions[p], vectors, fetch, scope.rest
                    )
                    for p in scope.partitions
                )
            )
            found = [
                sorted((h for rows in per_partition for h in rows[i]), key=lambda h: -h.score)[
                    :fetch
                ]
                for i in range(len(vectors))
            ]
        else:
            found = await asyncio.to_thread(
                self.store.query, info.name, vectors, fetch, scope.where
            )
        known = self.catalog.known_ids({h.id for row in found for h in row})
        return [[(h.id, h.score) for h in row if h.id in known][:k] for row in found]

    async def prefetch(self, queries: Sequence[Query]) -> list[Span]:
        """Retrieve for many questions at once: missing query vectors in one embedding batch,
        one Chroma call per distinct (k, filters). `ask` then finds the results ready."""
        if self.catalog is None:
            await self.open()
        todo: dict[str, tuple[str, int, _Scope]] = {}
        for q in queries:
            text, k = normalise(q.question), q.k or self.settings.k
            if not text:
                continue
            scope = self._scope(q)
            rkey = self._retrieval_key(text, k, scope)
            if "retrieval" in self.caches and self.retrieval_cache.get(rkey) is not None:
                continue
            todo[rkey] = (text, k, scope)
        if not todo or self.settings.retrieval == "lexical":
            return []  # lexical search needs neither the model nor Chroma: nothing to batch
        self._load("load.index", self._index_work)
        t0 = time.perf_counter_ns()
        keys = list(todo)
        vectors, hits, load = await self._embed_queries([todo[r][0] for r in keys])
        spans = [load] if load else []
        t1 = time.perf_counter_ns()
        spans.append(Span("embed.batch", t0, t1, {"queries": len(keys), "cache_hits": hits}))
        if load := await self._index_ready():
            spans.append(load)
            t1 = time.perf_counter_ns()
        groups: dict[tuple[int, str], list[int]] = {}
        for i, r in enumerate(keys):
            groups.setdefault((todo[r][1], todo[r][2].key), []).append(i)
        version = self._index().version
        hybrid = self.settings.retrieval == "hybrid"
        for (k, _), rows in groups.items():
            scope = todo[keys[rows[0]]][2]
            depth = max(k * 4, 20) if hybrid else k
            found = await self._search(vectors[rows], depth, scope)
            for row, hits_ in zip(rows, found, strict=True):
                if hybrid:
                    lexical = self.catalog.lexical_search(todo[keys[row]][0], depth, scope.sql)
                    hits_ = fuse(hits_, lexical, self.settings.hybrid_weight)[:k]
                self._prefetched[keys[row]] = hits_
                if "retrieval" in self.caches:
                    self.retrieval_cache.put(keys[row], hits_, version)
        spans.append(Span("retrieve.batch", t1, time.perf_counter_ns(), {"calls": len(groups)}))
        return spans

    # -- the request path -----------------------------------------------------------------
    async def _retrieval_steps(
        self, query: Query, for_answer: bool
    ) -> AsyncIterator[Span | _Retrieval]:
        """Retrieval for one question: yields its spans, then the `_Retrieval` result."""
        if self.catalog is None:
            for span in await self.open():
                yield span
        assert self.catalog is not None and self.answer_cache is not None
        question = normalise(query.question)
        if not question:
            raise UsageError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise UsageError(
                f"the question is too long ({len(question)} characters; at most "
                f"{MAX_QUESTION_CHARS}): put long material in a document and ingest it"
            )
        k = query.k or self.settings.k
        t0 = time.perf_counter_ns()
        scope = self._scope(query)
        index = self._index()
        rkey = self._retrieval_key(question, k, scope)
        hits = self._prefetched.pop(rkey, None)
        if hits is None and "retrieval" in self.caches:
            hits = self.retrieval_cache.get(rkey)
        vector: bytes | None = None
        mode = self.settings.retrieval
        if hits is not None:
            yield Span("retrieve", t0, time.perf_counter_ns(), {"cache": "hit", "k": k})
        elif mode == "lexical":
            hits = self.catalog.lexical_search(question, k, scope.sql)
            if "retrieval" in self.caches:
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
            await asyncio.sleep(0)  # let the loads start their threads before we embed
            t1 = time.perf_counter_ns()
            vectors, cache_hits, load = await self._embed_queries([question])
            vector = vectors[0].tobytes()
            t2 = time.perf_counter_ns()
            if load:
                yield load
                t1 = load.end_ns
            yield Span("embed", t1, t2, {"cache": "hit" if cache_hits else "miss"})
            if span := await self._index_ready():
                yield span
            t3 = time.perf_counter_ns()
            depth = k if mode == "dense" else max(k * 4, 20)  # fusion wants deeper lists
            hits = (await self._search(vectors, depth, scope))[0]
            if mode == "hybrid":
                lexical = self.catalog.lexical_search(question, depth, scope.sql)
                hits = fuse(hits, lexical, self.settings.hybrid_weight)[:k]
            if "retrieval" in self.caches:
                self.retrieval_cache.put(rkey, hits, index.version)
            yield Span(
                "retrieve", t3, time.perf_counter_ns(), {"cache": "miss", "k": k, "mode": mode}
            )
        records = self.catalog.chunks([cid for cid, _ in hits])
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
        r: _Retrieval | None = None
        async for item in self._retrieval_steps(query, for_answer=True):
            if isinstance(item, Span):
                yield item
            else:
                r = item
        assert r is not None and self.catalog is not None and self.answer_cache is not None
        question, scope, index, t0, vector, ranked = (
            r.question,
            r.scope,
            r.index,
            r.started_ns,
            r.vector,
            r.ranked,
        )
        cached: CachedAnswer | None = None
        akey = digest_key(
            "answer",
            question,
            [c.id for c, _ in ranked],
            self.generator.name,
            PROMPT_VERSION,
            self.settings.max_context_tokens,
            self.layout,
        )
        if "answer" in self.caches and ranked:
            t = time.perf_counter_ns()
            cached = self.answer_cache.get(akey)
            if cached is None and self.settings.semantic_threshold > 0:
                if vector is None:
                    vectors, _, load = await self._embed_queries([question])
                    if load:
                        yield load
                    vector = vectors[0].tobytes()
                cached = self.answer_cache.nearest(
                    scope.key,
                    self.generator.name,
                    index.version,
                    vector,
                    self.settings.semantic_threshold,
                )
            kind = "" if cached is None else "exact" if cached.similarity == 1.0 else "semantic"
            yield Span("answer_cache", t, time.perf_counter_ns(), {"cache": kind or "miss"})
        if cached is not None:
            async for event in self._replay(cached, t0, kind):
                yield event
            return

        t4 = time.perf_counter_ns()
        prompt = build_prompt(
            question,
            ranked,
            self.settings.max_context_tokens,
            self.generator.count_tokens,
            self.layout,
        )
        t5 = time.perf_counter_ns()
        yield Span(
            "prompt",
            t4,
            t5,
            {"tokens": prompt.tokens, "sources": len(prompt.sources), "layout": prompt.layout},
        )
        yield SourcesEvent(prompt.sources, prompt)
        if not prompt.sources:
            first = time.perf_counter_ns()
            text = "No ingested text matches this question."
            yield TokenEvent(text)
            yield DoneEvent(text, self.generator.name, t0, first, first, 1)
            return
        if span := await self._generator_ready():
            yield span
        t6 = time.perf_counter_ns()
        pieces: list[str] = []
        times: list[int] = []
        first: int | None = None
        async for piece in self.generator.stream(question, prompt):
            times.append(time.perf_counter_ns())
            if first is None:
                first = times[0]
                # Several LLM endpoints: which one answered, failovers, hedging (endpoints.py).
                route = {k: prompt.usage.pop(k) for k in ROUTE_KEYS if k in prompt.usage}
                yield Span("llm.first_token", t6, first, route)
            pieces.append(piece)
            yield TokenEvent(piece)
        end = time.perf_counter_ns()
        # prompt_tokens / cached_tokens, when the provider reported them (prefix-cache reuse).
        yield Span("llm.stream", first or end, end, {"pieces": len(pieces), **prompt.usage})
        answer = "".join(pieces)
        if "answer" in self.caches and answer:
            self.answer_cache.put(
                akey,
                scope=scope.key,
                question=question,
                vector=vector,
                answer=answer,
                sources=[(s.chunk.id, s.score) for s in prompt.sources],
                generator=self.generator.name,
                index_version=index.version,
            )
        yield DoneEvent(answer, self.generator.name, t0, first, end, len(pieces), "", tuple(times))

    async def _replay(self, cached: CachedAnswer, t0: int, kind: str) -> AsyncIterator[Event]:
        assert self.catalog is not None
        records = self.catalog.chunks([cid for cid, _ in cached.sources])
        kept = [(c, s) for c, s in cached.sources if c in records]  # in citation order
        ranks = {c: r for r, (c, _) in enumerate(sorted(kept, key=lambda cs: -cs[1]), start=1)}
        sources = [
            Source(i, records[cid], score, ranks[cid])
            for i, (cid, score) in enumerate(kept, start=1)
        ]
        yield SourcesEvent(sources, None)
        first = time.perf_counter_ns()
        yield Span("llm.first_token", first, first, {"cache": kind})
        pieces = re.findall(r"\S+\s*", cached.answer) or [cached.answer]
        for piece in pieces:
            yield TokenEvent(piece)
        end = time.perf_counter_ns()
        yield Span("llm.stream", first, end, {"pieces": len(pieces), "cache": kind})
        yield DoneEvent(cached.answer, self.generator.name, t0, first, end, len(pieces), kind)
