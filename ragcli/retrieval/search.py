"""Ranking for questions whose retrieval missed the cache: dense search over the vector index
(HNSW through Chroma, or exact), lexical search (BM25 in the catalogue) and their
reciprocal-rank fusion for `hybrid`. Many questions of one (k, scope) go to the index in one
call."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np

    from ragcli.index.catalog import Catalog
    from ragcli.index.exact import ExactIndex
    from ragcli.index.indexing import IndexInfo
    from ragcli.index.store import Hit, Store
    from ragcli.retrieval.scope import Scope

Hits = list[tuple[str, float]]  # (chunk id, score), best first

RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al., 2009)
T = TypeVar("T")

# A scoped question whose partitions have no collection of their own (they hold much of the
# corpus: ragcli/index/partition_rule.py) searches the global collection. There, a Chroma
# `where` filter costs the more the more chunks it lets through (100k chunks: 187 ms at p50
# for a partition of 30 %, 783 ms for one of 100 %), while asking the unfiltered graph for
# ceil(fetch / share × OVERFETCH_MARGIN) hits and keeping the scope's costs what a search of
# the partition's own collection costs (4.6 ms against 5.3 ms at 30 %, depth 134; 3.5 against
# 4.0 at 90 %), and finds as many of the right chunks (recall@10 0.99-1.00); a question about
# the partition fell back to the filter in at most 1 % of cases, even at margin 1. It beats the
# filter down to depth 398 (10 %: 8.2 ms against 61 ms); at depth ~2000 (2 %) the filter wins
# at 10k chunks (6.1 ms against 14 ms), hence OVERFETCH_MAX. benchmarks/partitions.py,
# benchmarks/results/partitions.json, docs/benchmarks.md "Partitions without a collection of
# their own".
OVERFETCH_MARGIN = 2.0
OVERFETCH_MAX = 1000


def fuse(
    dense: Sequence[tuple[str, float]], lexical: Sequence[tuple[str, float]], weight: float
) -> Hits:
    """Reciprocal-rank fusion: score = 1/(60 + dense rank) + weight/(60 + lexical rank).
    Ties (equal fused scores) go by chunk id, so the order is total and stable."""
    scores: dict[str, float] = {}
    for rank, (cid, _) in enumerate(dense, 1):
        scores[cid] = scores.get(cid, 0.0) + 1.0 / (RRF_K + rank)
    for rank, (cid, _) in enumerate(lexical, 1):
        scores[cid] = scores.get(cid, 0.0) + weight / (RRF_K + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def started(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """`fn(*args)` in a worker thread, as asyncio.to_thread runs it (in this context), but
    handed to the thread now rather than when first awaited."""
    run = functools.partial(contextvars.copy_context().run, fn, *args)
    return asyncio.get_running_loop().run_in_executor(None, run)


def search_depth(k: int, mode: str) -> int:
    """How many dense hits to fetch: k, or deeper lists for fusion to work with."""
    return k if mode == "dense" else max(k * 4, 20)


def global_depth(fetch: int, share: float, margin: float = OVERFETCH_MARGIN) -> int:
    """How many hits to ask of the global collection for `fetch` of a scope that holds
    `share` of its chunks: `fetch` itself when the scope holds them all, else
    ceil(fetch / share × margin)."""
    if share >= 1.0:
        return fetch
    return math.ceil(fetch / max(share, 1e-9) * margin)


def present_depth(fetch: int, missing: int, total: int, margin: float = OVERFETCH_MARGIN) -> int:
    """How many hits to ask of a collection of `total` chunks for `fetch` of those whose
    document is on disk, when `missing` of them belong to documents marked missing (the index
    keeps them until `prune`): `fetch` when none is, else `global_depth` for the share of the
    others, never past `fetch + missing` (which always holds `fetch` others, if there are)."""
    if missing <= 0 or total <= 0:
        return fetch
    return min(fetch + missing, global_depth(fetch, max(total - missing, 0) / total, margin))


async def search_in_scope(
    store: Store,
    catalog: Catalog,
    name: str,
    vectors: np.ndarray,
    k: int,
    scope: Scope,
    share: float,
    margin: float = OVERFETCH_MARGIN,
    max_depth: int = OVERFETCH_MAX,
    missing: int = 0,
) -> list[Hits]:
    """Top-k per vector among the chunks of `scope.partitions` that retrieval may return
    (known to the catalogue, their document not marked missing), searched in the global
    collection `name` where those chunks are `share` of all its chunks (`missing`: the scope's
    chunks of documents marked missing). A scope holding every chunk needs no partition
    filter (only `scope.rest`); otherwise, without other filters, the collection is asked for
    `global_depth` hits and those of the scope kept (the best hits of a scope are the scope's
    among the best hits overall). Each chunk's partition comes from the catalogue, never from
    a count, so nothing outside the scope is ever kept. A question left with fewer than it
    asked for (k when nothing was filtered out but ids the catalogue does not know yet),
    while the collection had more to give, is asked again with the `where` filter."""
    fetch = k + min(k, 10)
    depth = global_depth(fetch, share, margin)
    if share < 1.0 and (scope.rest is not None or depth > max_depth):
        return await filtered(store, catalog, name, vectors, k, scope.where, missing)
    where = scope.rest if share >= 1.0 else None
    found = await started(store.query, name, vectors, depth, where)
    ids = sorted({h.id for row in found for h in row})
    partition = catalog.chunk_partitions(ids, retrievable=True)
    wanted = set(scope.partitions)
    out = [[(h.id, h.score) for h in row if partition.get(h.id) in wanted] for row in found]
    need = k if share >= 1.0 else fetch  # HNSW's tail is approximate: keep a margin there too
    short = [i for i, row in enumerate(found) if len(out[i]) < need and len(row) >= depth]
    if short:
        again = await filtered(store, catalog, name, vectors[short], k, scope.where, missing)
        for i, row in zip(short, again, strict=True):
            out[i] = row
    return [row[:k] for row in out]


async def filtered(
    store: Store,
    catalog: Catalog,
    name: str,
    vectors: np.ndarray,
    k: int,
    where: dict | None,
    missing: int = 0,
) -> list[Hits]:
    """Top-k per vector from collection `name` under a `where` filter, among the chunks
    retrieval may return (a few more than k asked, for ids of an ingest in progress, and
    `missing` more: the chunks of documents marked missing that the filter lets through)."""
    found = await started(store.query, name, vectors, k + min(k, 10) + missing, where)
    known = catalog.known_ids({h.id for row in found for h in row})
    return [[(h.id, h.score) for h in row if h.id in known][:k] for row in found]


class Searcher:
    """Dense and hybrid ranking over a loaded store, for the `retrieval` and `search` modes
    of the settings (`lexical` needs no searcher: it is one catalogue call)."""

    def __init__(
        self, store: Store, catalog: Catalog, mode: str, search: str, hybrid_weight: float
    ) -> None:
        self.store, self.catalog = store, catalog
        self.mode, self.search, self.hybrid_weight = mode, search, hybrid_weight
        self._exact: tuple[str, ExactIndex] | None = None
        self._counts: tuple[int, dict[str, int]] | None = None  # (catalogue version, counts)
        self._missing: tuple[int, dict[str, int]] | None = None  # (version, missing chunks)

    async def rank(
        self, info: IndexInfo, questions: Sequence[str], vectors: np.ndarray, k: int, scope: Scope
    ) -> list[Hits]:
        """Top-k per question (one vector each, one index call for all), fused with the
        lexical list in hybrid mode. Hybrid runs both searches at once: the dense search is
        handed to worker threads first, and the lexical searches run here meanwhile (Chroma's
        HNSW and SQLite's FTS5 both release the GIL while they search; a thread of their own
        would add a hand-over each way and save nothing), so it costs about the slower of the
        two, not their sum. The event loop waits on SQLite no longer than before, less."""
        depth = search_depth(k, self.mode)
        if self.mode != "hybrid":
            return await self.dense(info, vectors, depth, scope)
        dense = asyncio.ensure_future(self.dense(info, vectors, depth, scope))
        await asyncio.sleep(0)  # dense() runs up to its first wait: its searches have started
        try:
            lexical = [self.catalog.lexical_search(q, depth, scope.sql) for q in questions]
        except BaseException:
            dense.cancel()
            raise
        return [
            fuse(hits, words, self.hybrid_weight)[:k]
            for hits, words in zip(await dense, lexical, strict=True)
        ]

    async def dense(self, info: IndexInfo, vectors: np.ndarray, k: int, scope: Scope) -> list[Hits]:
        """Top-k per vector among the chunks retrieval may return. A scoped question searches
        its partitions' own collections (in parallel threads, merged by score) when each has
        one, else the global collection as `search_in_scope` does; an unscoped one searches
        the global collection. The index may briefly hold chunks of an ingest in progress
        (added before the catalogue commits, deleted after): asking for a few more than k and
        dropping ids the catalogue does not know hides them. It also holds the chunks of
        documents marked missing on disk until `prune`: they are dropped the same way, and a
        collection holding some is asked deeper (`present_depth`)."""
        fetch = k + min(k, 10)
        missing = self.missing()
        found: list[list[Hit]]
        if self.search == "exact":
            deeper = fetch + sum(missing.values())
            found = (await self._exact_index(info)).query(vectors, deeper, scope.where)
        elif scope.partitions and not all(p in info.partitions for p in scope.partitions):
            share = self.share(scope.partitions)
            lost = sum(missing.get(p, 0) for p in set(scope.partitions))
            return await search_in_scope(
                self.store, self.catalog, info.name, vectors, k, scope, share, missing=lost
            )
        elif scope.partitions:
            per_partition = await asyncio.gather(
                *(
                    self._query(info.partitions[p], vectors, fetch, scope.rest, missing, p)
                    for p in scope.partitions
                )
            )
            found = [
                sorted((h for rows in per_partition for h in rows[i]), key=lambda h: -h.score)
                for i in range(len(vectors))
            ]
        else:
            found = await self._query(info.name, vectors, fetch, scope.where, missing, None)
        known = self.catalog.known_ids({h.id for row in found for h in row})
        return [[(h.id, h.score) for h in row if h.id in known][:k] for row in found]

    def _query(
        self,
        name: str,
        vectors: np.ndarray,
        fetch: int,
        where: dict | None,
        missing: dict[str, int],
        partition: str | None,
    ) -> Awaitable[list[list[Hit]]]:
        """`fetch` hits per vector from collection `name` (the global one, or `partition`'s
        own), its search handed to a worker thread now; deeper when some of its chunks belong
        to documents marked missing (`missing`, per partition), see `_refill`."""
        lost = sum(missing.values()) if partition is None else missing.get(partition, 0)
        depth = fetch
        if lost:
            chunks = self._partition_counts()
            total = sum(chunks.values()) if partition is None else chunks.get(partition, 0)
            depth = present_depth(fetch, lost, total)
        first = started(self.store.query, name, vectors, depth, where)
        if depth >= fetch + lost:
            return first
        return self._refill(first, name, vectors, fetch, depth, lost, where)

    async def _refill(
        self,
        first: Awaitable[list[list[Hit]]],
        name: str,
        vectors: np.ndarray,
        fetch: int,
        depth: int,
        lost: int,
        where: dict | None,
    ) -> list[list[Hit]]:
        """A question left with fewer than `fetch` chunks retrieval may return, while the
        collection had more to give, is asked again for `fetch + lost` (`lost`: the chunks of
        documents marked missing that it holds; so many always hold `fetch` others)."""
        found = await first
        known = self.catalog.known_ids({h.id for row in found for h in row})
        short = [
            i
            for i, row in enumerate(found)
            if len(row) >= depth and sum(h.id in known for h in row) < fetch
        ]
        if short:
            again = await started(self.store.query, name, vectors[short], fetch + lost, where)
            for i, row in zip(short, again, strict=True):
                found[i] = row
        return found

    def missing(self) -> dict[str, int]:
        """Chunks of documents marked missing on disk, per partition, read once per catalogue
        version (one lookup of the catalogue's few marked rows; empty nearly always)."""
        version = self.catalog.version
        if self._missing is None or self._missing[0] != version:
            self._missing = (version, self.catalog.missing_chunks())
        return self._missing[1]

    def _partition_counts(self) -> dict[str, int]:
        """Chunks per partition, read once per catalogue version."""
        version = self.catalog.version
        if self._counts is None or self._counts[0] != version:
            self._counts = (version, self.catalog.partitions())
        return self._counts[1]

    def share(self, partitions: Sequence[str]) -> float:
        """The share of the catalogue's chunks that `partitions` hold and retrieval may return
        (their documents are not marked missing), from counts read once per catalogue version
        (1.0 for an empty catalogue)."""
        counts, missing = self._partition_counts(), self.missing()
        total = sum(counts.values())
        held = sum(counts.get(p, 0) - missing.get(p, 0) for p in set(partitions))
        return held / total if total else 1.0

    async def _exact_index(self, info: IndexInfo) -> ExactIndex:
        """The exact (numpy) index of the current collection, loaded once per index name."""
        if self._exact is None or self._exact[0] != info.name:
            from ragcli.index.exact import ExactIndex

            self._exact = (info.name, await asyncio.to_thread(ExactIndex, self.store, info.name))
        return self._exact[1]
