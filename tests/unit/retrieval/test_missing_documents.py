"""Dense retrieval never returns a chunk of a document marked missing on disk (the index keeps
its vectors until `ragcli prune`), and still returns k chunks when the corpus has them: the
global collection, a partition's own collection, a partition searched in the global one
(`search_in_scope`) and exact search, on a real catalogue and a real Chroma index in a
temporary folder. With no document missing, the searches are the ones they were (same
collections, same depths)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from ragcli.core.records import Chunk, Document, FileRef
from ragcli.index.catalog import Catalog, LexicalFilter
from ragcli.index.indexing import IndexInfo
from ragcli.index.store import HnswParams
from ragcli.retrieval.scope import Scope
from ragcli.retrieval.search import Searcher, global_depth, present_depth
from tests.support.stores import RecordingStore

DIMS = 16
ROOT = Path("/corpus")
GLOBAL = "missing-test-global"
OWN_B = "missing-test-global-p-b"
SIZES = {"a": 120, "b": 80}


def unit(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=-1, keepdims=True)).astype(np.float32)


def document(partition: str, n: int, count: int) -> tuple[Document, list[Chunk]]:
    ref = FileRef(ROOT / partition / f"d{n:03d}.md", ROOT, partition)
    doc = Document(ref, "", f"D{n}", "1970-01-01", 1000, f"h-{partition}-{n}", 1, 10)
    texts = [f"{partition} doc {n} chunk {i}" for i in range(count)]
    return doc, [Chunk(i, t, 0, len(t), 5) for i, t in enumerate(texts)]


class Corpus:
    """Two partitions of documents of 4 chunks, each a cluster of vectors; `b` has a
    collection of its own, `a` is searched in the global one."""

    def __init__(self, tmp_path: Path, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        self.catalog = Catalog(tmp_path / "catalog.db")
        self.store = RecordingStore(tmp_path / "chroma")
        self.centres = {p: unit(rng.standard_normal(DIMS)) for p in SIZES}
        docs = [document(p, n, 4) for p, size in SIZES.items() for n in range(size // 4)]
        self.paths = {p: [str(d.ref.path) for d, _ in docs if d.ref.partition == p] for p in SIZES}
        self.catalog.apply(docs, [], "emb", index_follows=True)
        ids = [cid for cid, _ in self.catalog.chunk_texts()]
        meta = self.catalog.chunk_metadata(ids)
        self.partition = {cid: str(m["partition"]) for cid, m in zip(ids, meta, strict=True)}
        noise = rng.standard_normal((len(ids), DIMS)).astype(np.float32) * 0.25
        self.vectors = {
            cid: unit(self.centres[self.partition[cid]] + noise[i]) for i, cid in enumerate(ids)
        }
        for name in (GLOBAL, OWN_B):
            self.store.create(name, HnswParams())
        self.store.upsert(GLOBAL, ids, np.stack([self.vectors[c] for c in ids]), meta)
        own = [i for i, c in enumerate(ids) if self.partition[c] == "b"]
        self.store.upsert(
            OWN_B, [ids[i] for i in own], np.stack([self.vectors[ids[i]] for i in own]),
            [meta[i] for i in own],
        )  # fmt: skip
        self.info = IndexInfo(GLOBAL, HnswParams(), self.catalog.version, {"b": OWN_B})

    def mark(self, share: float, **shares: float) -> set[str]:
        """Mark `share` of each partition's documents missing (or `shares[partition]`);
        their chunk ids."""
        gone = [
            p
            for partition, paths in self.paths.items()
            for p in paths[: int(len(paths) * shares.get(partition, share))]
        ]
        self.catalog.mark_missing(gone, [])
        every = set(self.vectors)
        return every - self.catalog.known_ids(every)

    def exact(self, queries: np.ndarray, k: int, allowed: set[str]) -> list[list[str]]:
        ids = sorted(allowed)
        matrix = np.stack([self.vectors[c] for c in ids])
        order = np.argsort(-(queries @ matrix.T), axis=1)[:, :k]
        return [[ids[j] for j in row] for row in order]

    def near(self, partition: str, count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((count, DIMS)).astype(np.float32) * 0.3
        return unit(self.centres[partition] + noise)


def scope_of(partitions: tuple[str, ...], since: int | None = None) -> Scope:
    """A scope of `partitions` (none: everything), dated `since` or later if given."""
    rest = {"date_ts": {"$gte": since}} if since is not None else None
    if not partitions:
        return Scope(rest, f"{since}", LexicalFilter(since_ts=since), (), rest)
    clause = {"partition": {"$in": list(partitions)}}
    where = {"$and": [clause, rest]} if rest else clause
    key = f"{partitions}-{since}"
    return Scope(where, key, LexicalFilter(partitions, since), partitions, rest)


def dense(c: Corpus, queries: np.ndarray, k: int, scope: Scope, search: str = "hnsw") -> list:
    searcher = Searcher(c.store, c.catalog, "dense", search, 1.0)
    found = asyncio.run(searcher.dense(c.info, queries, k, scope))
    return [[cid for cid, _ in row] for row in found]


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    return Corpus(tmp_path)


@pytest.mark.parametrize("search", ["hnsw", "exact"])
@pytest.mark.parametrize("since", [None, 0], ids=["", "since"])  # since: the `where` filter
@pytest.mark.parametrize("partitions", [(), ("a",), ("b",), ("a", "b")], ids=repr)
def test_no_chunk_of_a_missing_document_and_still_k(
    corpus: Corpus, partitions: tuple[str, ...], search: str, since: int | None
) -> None:
    gone = corpus.mark(0.75)  # most of each cluster: the nearest hits are mostly missing
    assert corpus.catalog.missing_chunks() == {"a": 88, "b": 60}
    scope, k = scope_of(partitions, since), 10
    allowed = {c for c, p in corpus.partition.items() if c not in gone}
    allowed = {c for c in allowed if not partitions or corpus.partition[c] in partitions}
    queries = np.concatenate([corpus.near("a", 6, seed=1), corpus.near("b", 6, seed=2)])
    got = dense(corpus, queries, k, scope, search)
    assert all(len(row) == k and not set(row) & gone for row in got)
    assert all(set(row) <= allowed for row in got)
    want = corpus.exact(queries, k, allowed)
    overlap = sum(len(set(g) & set(w)) for g, w in zip(got, want, strict=True))
    assert overlap >= 0.95 * k * len(queries), (overlap, k * len(queries))


def test_a_refill_asks_for_as_many_more_as_are_missing(corpus: Corpus) -> None:
    """Questions whose neighbourhood is nearly all missing: the first, over-fetched search
    leaves them short, and a second one asks for fetch + the missing chunks."""
    gone = corpus.mark(0.0, a=0.9)  # a's cluster nearly all missing, b's all there
    queries = corpus.near("a", 4, seed=3)
    got = dense(corpus, queries, 10, scope_of(()))
    assert all(len(row) == 10 and not set(row) & gone for row in got)
    fetch, lost = 20, len(gone)
    depth = present_depth(fetch, lost, len(corpus.vectors))
    assert fetch < depth < fetch + lost
    assert corpus.store.calls == [(GLOBAL, depth, None), (GLOBAL, fetch + lost, None)]


def test_a_scope_over_fetches_by_the_share_it_may_return(corpus: Corpus) -> None:
    """A partition searched in the global collection is over-fetched by the share of its
    chunks that retrieval may return (32 of 200 here), not by all of them (120)."""
    corpus.mark(0.75)
    dense(corpus, corpus.near("a", 2, seed=5), 10, scope_of(("a",)))
    assert corpus.store.calls[0] == (GLOBAL, global_depth(20, 32 / 200), None)


@pytest.mark.parametrize("partitions", [(), ("a",), ("b",)], ids=repr)
def test_with_nothing_missing_the_searches_are_unchanged(
    corpus: Corpus, partitions: tuple[str, ...]
) -> None:
    scope = scope_of(partitions)
    queries = corpus.near("a", 3, seed=4)
    dense(corpus, queries, 5, scope)
    name = OWN_B if partitions == ("b",) else GLOBAL
    where = None if partitions != ("b",) else scope.rest
    depth = 10 if partitions != ("a",) else corpus.store.calls[0][1]
    assert corpus.store.calls == [(name, depth, where)]
    if partitions == ("a",):  # the partition's over-fetch of search_in_scope, as before
        assert depth == global_depth(10, 120 / 200)


def test_present_depth() -> None:
    assert present_depth(20, 0, 1000) == 20
    assert present_depth(20, 500, 1000) == 80  # ceil(20 / 0.5 × 2)
    assert present_depth(20, 10, 1000) == 30  # never past fetch + missing
    assert present_depth(20, 1000, 1000) == 1020  # none left: all of them
