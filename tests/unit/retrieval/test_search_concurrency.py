"""Hybrid ranking runs its dense and lexical searches at the same time (retrieval.search):
judged by events (the searches wait at one barrier, which only opens when all of them are in
flight at once), and, on a real catalogue and a real Chroma index in a temporary folder,
it returns exactly what the sequential ranking returned: dense search, then the old lexical
query (tests/support/lexical.py's oracle), then fusion."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from ragcli.index import indexing
from ragcli.index.catalog import Catalog, LexicalFilter
from ragcli.index.indexing import IndexInfo
from ragcli.index.store import Hit, HnswParams, Store
from ragcli.retrieval.scope import Scope
from ragcli.retrieval.search import Hits, Searcher, fuse, search_depth
from tests.support.lexical import QUESTIONS, corpus, oracle

ALL = Scope(None, "{}")
INFO = IndexInfo("global", HnswParams(), 1)
DIMS = 16


class Recorder:
    """A store and a catalogue that log each search's start and end, and whose `waiting`
    searches each wait at one barrier: they return only once all of them are running
    together (a caller that runs them one after the other breaks the barrier)."""

    def __init__(self, *waiting: str) -> None:
        self.waiting = set(waiting)
        self.barrier = threading.Barrier(max(1, len(waiting)), timeout=30)
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def _meet(self, what: str) -> None:
        with self.lock:
            self.events.append(("start", what))
        if what in self.waiting:
            self.barrier.wait()
        with self.lock:
            self.events.append(("end", what))

    # the store
    def query(self, name: str, vectors: np.ndarray, k: int, where: Any = None) -> list[list[Hit]]:
        self._meet(f"dense {name}")
        return [[Hit(f"{name}-a", 0.9), Hit("b", 0.5)] for _ in range(len(vectors))]

    # the catalogue
    version = 0

    def known_ids(self, ids: set[str]) -> set[str]:
        return ids

    def missing_chunks(self) -> dict[str, int]:  # no document is missing on disk
        return {}

    def lexical_search(self, q: str, k: int, where: LexicalFilter) -> list[tuple[str, float]]:
        self._meet(f"lexical {q}")
        return [("b", 2.0), (q, 1.0)]


def test_hybrid_runs_the_dense_and_lexical_searches_at_once() -> None:
    rec = Recorder("dense global", "lexical q1")
    searcher = Searcher(rec, rec, "hybrid", "hnsw", 1.0)  # type: ignore[arg-type]
    vectors = np.zeros((2, 4), np.float32)
    ranked = asyncio.run(searcher.rank(INFO, ["q1", "q2"], vectors, 3, ALL))
    assert sorted(rec.events[:2]) == [("start", "dense global"), ("start", "lexical q1")]
    assert ("start", "lexical q2") in rec.events  # every question had its lexical search
    dense = [("global-a", 0.9), ("b", 0.5)]
    assert ranked == [fuse(dense, [("b", 2.0), (q, 1.0)], 1.0)[:3] for q in ("q1", "q2")]


def test_a_partition_scope_searches_its_collections_and_the_words_at_once() -> None:
    rec = Recorder("dense global-ops", "dense global-hr", "lexical q")
    info = IndexInfo("global", HnswParams(), 1, {"ops": "global-ops", "hr": "global-hr"})
    where = {"partition": {"$in": ["hr", "ops"]}}
    scope = Scope(where, "k", LexicalFilter(("hr", "ops")), ("hr", "ops"), None)
    searcher = Searcher(rec, rec, "hybrid", "hnsw", 1.0)  # type: ignore[arg-type]
    ranked = asyncio.run(searcher.rank(info, ["q"], np.zeros((1, 4), np.float32), 2, scope))
    assert {kind for kind, _ in rec.events[:3]} == {"start"}  # all three began before any ended
    assert ranked[0][0][0] == "b"  # in both lists


def test_dense_mode_runs_no_lexical_search() -> None:
    rec = Recorder()
    searcher = Searcher(rec, rec, "dense", "hnsw", 1.0)  # type: ignore[arg-type]
    ranked = asyncio.run(searcher.rank(INFO, ["q"], np.zeros((1, 4), np.float32), 1, ALL))
    assert ranked == [[("global-a", 0.9)]]
    assert [w for _, w in rec.events] == ["dense global", "dense global"]


def test_a_failing_lexical_search_fails_the_ranking() -> None:
    class Broken(Recorder):
        def lexical_search(self, q: str, k: int, where: LexicalFilter) -> list[tuple[str, float]]:
            raise RuntimeError("fts5 is gone")

    rec = Broken()
    searcher = Searcher(rec, rec, "hybrid", "hnsw", 1.0)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="fts5 is gone"):
        asyncio.run(searcher.rank(INFO, ["q"], np.zeros((1, 4), np.float32), 1, ALL))


# -- a real catalogue and a real Chroma index ----------------------------------------------
def vector_of(text: str) -> np.ndarray:
    """A fixed unit vector per text (repeated texts share it: dense ties too)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIMS).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Catalog, Store]]:
    home = tmp_path_factory.mktemp("hybrid")
    catalog = Catalog(home / "catalog.db")
    catalog.apply(corpus(), [], "emb-1")
    store = Store(home / "chroma")

    async def vectors(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return np.stack([vector_of(text) for _, text in pairs])

    asyncio.run(indexing.rebuild(catalog, store, HnswParams(), vectors))
    yield catalog, store
    catalog.close()


async def sequential(
    searcher: Searcher, questions: Sequence[str], vectors: np.ndarray, k: int, scope: Scope
) -> list[Hits]:
    """The hybrid ranking as it was: dense search, then each lexical search, then fusion."""
    info = indexing.current(searcher.catalog)
    assert info is not None
    depth = search_depth(k, "hybrid")
    found = await searcher.dense(info, vectors, depth, scope)
    return [
        fuse(hits, oracle(searcher.catalog, q, depth, scope.sql), searcher.hybrid_weight)[:k]
        for q, hits in zip(questions, found, strict=True)
    ]


SCOPES = [
    ALL,
    Scope({"partition": "p1"}, "p1", LexicalFilter(("p1",)), ("p1",), None),
    Scope(
        {"partition": {"$in": ["p0", "p2"]}},
        "p0p2",
        LexicalFilter(("p0", "p2")),
        ("p0", "p2"),
        None,
    ),
    Scope({"date_ts": {"$gte": 1200}}, "since", LexicalFilter(since_ts=1200)),
]


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: s.key)
@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_concurrent_hybrid_returns_what_sequential_hybrid_returned(
    indexed: tuple[Catalog, Store], scope: Scope, weight: float
) -> None:
    catalog, store = indexed
    info = indexing.current(catalog)
    assert info is not None
    searcher = Searcher(store, catalog, "hybrid", "hnsw", weight)
    questions = [q for q in QUESTIONS if q]
    vectors = np.stack([vector_of(q) for q in questions])
    for k in (1, 5, 10):
        got = asyncio.run(searcher.rank(info, questions, vectors, k, scope))
        want = asyncio.run(sequential(searcher, questions, vectors, k, scope))
        assert got == want, k
        assert all(len(ranked) == k for ranked in got)  # every question had k to rank
