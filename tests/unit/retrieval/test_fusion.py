"""Ranking (retrieval.search): reciprocal-rank fusion's order, ties and constant, and the
dense search's merging and filtering, on stand-in store and catalogue objects."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from ragcli.index.catalog import LexicalFilter
from ragcli.index.indexing import IndexInfo
from ragcli.index.store import Hit, HnswParams
from ragcli.retrieval.scope import Scope
from ragcli.retrieval.search import RRF_K, Searcher, fuse, search_depth


def test_rrf_uses_ranks_not_scores() -> None:
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
    lexical = [("c", 55.0), ("a", 3.0)]
    fused = fuse(dense, lexical, 1.0)
    # a: 1/61 + 1/62, c: 1/63 + 1/61, b: 1/62
    assert [cid for cid, _ in fused] == ["a", "c", "b"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][1] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2][1] == pytest.approx(1 / 62)
    # the same ranks with other scores: the same fusion
    assert fuse([(c, 0.0) for c, _ in dense], [(c, 0.0) for c, _ in lexical], 1.0) == fused


def test_the_constant_is_sixty() -> None:
    assert RRF_K == 60
    assert fuse([("a", 1.0)], [], 1.0) == [("a", 1 / 61)]
    assert fuse([], [("a", 1.0), ("b", 1.0)], 1.0) == [("a", 1 / 61), ("b", 1 / 62)]


def test_ties_go_by_chunk_id() -> None:
    # first in one list and first in the other: equal scores
    assert fuse([("z", 1.0)], [("y", 1.0)], 1.0) == [("y", 1 / 61), ("z", 1 / 61)]
    assert fuse([("y", 1.0)], [("z", 1.0)], 1.0) == [("y", 1 / 61), ("z", 1 / 61)]


def test_the_weight_scales_the_lexical_list() -> None:
    dense, lexical = [("d", 1.0)], [("l", 1.0)]
    assert [c for c, _ in fuse(dense, lexical, 2.0)] == ["l", "d"]
    assert [c for c, _ in fuse(dense, lexical, 0.5)] == ["d", "l"]
    assert fuse(dense, lexical, 0.0) == [("d", 1 / 61), ("l", 0.0)]


def test_a_chunk_in_both_lists_beats_one_in_either() -> None:
    dense = [("x", 1.0), ("both", 0.9)]
    lexical = [("y", 1.0), ("both", 0.9)]
    assert fuse(dense, lexical, 1.0)[0][0] == "both"


def test_search_depth() -> None:
    assert search_depth(5, "dense") == 5
    assert search_depth(3, "hybrid") == 20  # at least 20 for fusion
    assert search_depth(10, "hybrid") == 40


class FakeStore:
    """`query` answers from fixed per-collection rows and records what it was asked."""

    def __init__(self, rows: dict[str, list[Hit]]) -> None:
        self.rows = rows
        self.calls: list[tuple[str, int, Any]] = []

    def query(self, name: str, vectors: np.ndarray, k: int, where: Any = None) -> list[list[Hit]]:
        self.calls.append((name, k, where))
        return [self.rows[name][:k] for _ in range(len(vectors))]


class FakeCatalog:
    version = 0

    def __init__(self, known: set[str], lexical: list[tuple[str, float]]) -> None:
        self.known, self.lexical = known, lexical
        self.lexical_calls: list[tuple[str, int, LexicalFilter]] = []

    def missing_chunks(self) -> dict[str, int]:  # no document is missing on disk
        return {}

    def known_ids(self, ids: set[str]) -> set[str]:
        return ids & self.known

    def lexical_search(self, q: str, k: int, where: LexicalFilter) -> list[tuple[str, float]]:
        self.lexical_calls.append((q, k, where))
        return self.lexical[:k]


INFO = IndexInfo("global", HnswParams(), 7, {"ops": "global-ops", "hr": "global-hr"})
ALL = Scope(None, "{}")


def hits(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(cid, score) for cid, score in pairs]


def searcher(store: FakeStore, catalog: FakeCatalog, mode: str = "dense") -> Searcher:
    return Searcher(store, catalog, mode, "hnsw", 1.0)  # type: ignore[arg-type]


def test_dense_drops_ids_the_catalogue_does_not_know_and_fetches_a_few_more() -> None:
    store = FakeStore({"global": hits(("a", 0.9), ("ghost", 0.8), ("b", 0.7), ("c", 0.6))})
    s = searcher(store, FakeCatalog({"a", "b", "c"}, []))
    found = asyncio.run(s.dense(INFO, np.zeros((2, 4), np.float32), 2, ALL))
    assert found == [[("a", 0.9), ("b", 0.7)]] * 2
    assert store.calls == [("global", 4, None)]  # k + min(k, 10)


def test_a_partition_scope_searches_each_partition_collection_and_merges_by_score() -> None:
    store = FakeStore(
        {"global-ops": hits(("o1", 0.9), ("o2", 0.5)), "global-hr": hits(("h1", 0.7), ("h2", 0.1))}
    )
    s = searcher(store, FakeCatalog({"o1", "o2", "h1", "h2"}, []))
    scope = Scope({"partition": {"$in": ["hr", "ops"]}}, "k", partitions=("hr", "ops"))
    found = asyncio.run(s.dense(INFO, np.zeros((1, 4), np.float32), 3, scope))
    assert found == [[("o1", 0.9), ("h1", 0.7), ("o2", 0.5)]]
    assert sorted(name for name, _, _ in store.calls) == ["global-hr", "global-ops"]


def test_hybrid_rank_fuses_deeper_lists_and_cuts_to_k() -> None:
    dense = hits(*((f"d{i}", 1.0 - i / 100) for i in range(30)))
    store = FakeStore({"global": dense})
    catalog = FakeCatalog({h.id for h in dense}, [("d5", 9.0), ("d0", 8.0)])
    ranked = asyncio.run(
        searcher(store, catalog, "hybrid").rank(INFO, ["q"], np.zeros((1, 4), np.float32), 3, ALL)
    )
    assert ranked == [fuse([(h.id, h.score) for h in dense[:20]], catalog.lexical, 1.0)[:3]]
    assert [c for c, _ in ranked[0]] == ["d0", "d5", "d1"]
    assert catalog.lexical_calls == [("q", 20, LexicalFilter())]


def test_dense_rank_is_the_dense_list() -> None:
    store = FakeStore({"global": hits(("a", 0.9), ("b", 0.8))})
    catalog = FakeCatalog({"a", "b"}, [("b", 1.0)])
    ranked = asyncio.run(
        searcher(store, catalog).rank(INFO, ["q"], np.zeros((1, 4), np.float32), 1, ALL)
    )
    assert ranked == [[("a", 0.9)]] and catalog.lexical_calls == []
