"""Ranking for questions whose retrieval missed the cache: dense search over the vector index
(HNSW through Chroma, or exact), lexical search (BM25 in the catalogue) and their
reciprocal-rank fusion for `hybrid`. Many questions of one (k, scope) go to the index in one
call."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Sequence
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


class Searcher:
    """Dense and hybrid ranking over a loaded store, for the `retrieval` and `search` modes
    of the settings (`lexical` needs no searcher: it is one catalogue call)."""

    def __init__(
        self, store: Store, catalog: Catalog, mode: str, search: str, hybrid_weight: float
    ) -> None:
        self.store, self.catalog = store, catalog
        self.mode, self.search, self.hybrid_weight = mode, search, hybrid_weight
        self._exact: tuple[str, ExactIndex] | None = None

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
        """Top-k per vector among the chunks the catalogue knows. A scoped question searches
        its partitions' own collections (in parallel threads, merged by score); anything else
        searches the global one. The index may briefly hold chunks of an ingest in progress
        (added before the catalogue commits, deleted after): asking for a few more than k and
        dropping ids the catalogue does not know hides them."""
        fetch = k + min(k, 10)
        found: list[list[Hit]]
        if self.search == "exact":
            found = (await self._exact_index(info)).query(vectors, fetch, scope.where)
        elif scope.partitions and all(p in info.partitions for p in scope.partitions):
            per_partition = await asyncio.gather(
                *(
                    started(self.store.query, info.partitions[p], vectors, fetch, scope.rest)
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
            found = await started(self.store.query, info.name, vectors, fetch, scope.where)
        known = self.catalog.known_ids({h.id for row in found for h in row})
        return [[(h.id, h.score) for h in row if h.id in known][:k] for row in found]

    async def _exact_index(self, info: IndexInfo) -> ExactIndex:
        """The exact (numpy) index of the current collection, loaded once per index name."""
        if self._exact is None or self._exact[0] != info.name:
            from ragcli.index.exact import ExactIndex

            self._exact = (info.name, await asyncio.to_thread(ExactIndex, self.store, info.name))
        return self._exact[1]
