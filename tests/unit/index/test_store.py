"""The Chroma store on a real embedded Chroma in tmp_path, with small vectors: upsert, query
(scores, `where` filters), delete, counts and ids, stored vectors, ef_search changed in place
and read back by a fresh client, missing collections; and the partition collections that
index.indexing keeps in step with the catalogue (rebuild, then an update that moves, adds and
removes chunks)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from ragcli.core.records import Chunk, Document, FileRef
from ragcli.index import indexing
from ragcli.index.catalog import Catalog
from ragcli.index.live import apply_changes
from ragcli.index.partition_rule import wants_own_collection
from ragcli.index.store import (
    HnswParams,
    Store,
    StoreError,
    apply_ef_search,
    forget_loaded_indexes,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PARAMS = HnswParams(m=8, ef_construction=32, ef_search=16)
AXES = np.eye(4, dtype=np.float32)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield Store(tmp_path / "chroma")
    forget_loaded_indexes()


def test_upsert_query_and_delete(store: Store) -> None:
    store.create("col-c", PARAMS)
    metas = [{"partition": p, "source": f"s{i}", "date_ts": i} for i, p in enumerate("aabb")]
    store.upsert("col-c", ["x0", "x1", "x2", "x3"], AXES, metas)
    assert store.count("col-c") == 4 and store.ids("col-c") == {"x0", "x1", "x2", "x3"}
    (hits,) = store.query("col-c", AXES[2:3], 2)
    assert hits[0].id == "x2" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[1].score == pytest.approx(0.0, abs=1e-5)  # orthogonal: cosine 0
    (scoped,) = store.query("col-c", AXES[2:3], 4, where={"partition": "a"})
    assert {h.id for h in scoped} == {"x0", "x1"}
    assert store.queries == 2
    upserted = np.array([[0, 0, 1, 0]], dtype=np.float32)  # x0 moves onto x2's axis
    store.upsert("col-c", ["x0"], upserted, [metas[0]])
    assert store.count("col-c") == 4
    assert {h.id for h in store.query("col-c", AXES[2:3], 2)[0]} == {"x0", "x2"}
    store.delete("col-c", ["x2", "x3"])
    assert store.ids("col-c") == {"x0", "x1"}
    assert [h.id for h in store.query("col-c", AXES[2:3], 1)[0]] == ["x0"]
    got = store.vectors("col-c", ["x0", "x1", "gone"])
    assert set(got) == {"x0", "x1"} and list(got["x0"]) == pytest.approx([0, 0, 1, 0])
    ids, vectors, dumped = store.dump("col-c")
    assert sorted(ids) == ["x0", "x1"] and len(vectors) == 2
    assert {m["source"] for m in dumped} == {"s0", "s1"}


def test_collections_are_listed_dropped_and_missing_ones_named(store: Store) -> None:
    store.create("col-one", PARAMS)
    store.create("col-two", PARAMS)
    assert sorted(store.names()) == ["col-one", "col-two"]
    store.drop("col-one")
    store.drop("col-one")  # dropping is idempotent
    assert store.names() == ["col-two"]
    with pytest.raises(StoreError, match="'col-one' is missing"):
        store.count("col-one")


def _ef_search(path: Path, name: str) -> int:
    """ef_search as a fresh client loads it (what the next process would search with)."""
    forget_loaded_indexes()
    value = Store(path)._get(name).configuration_json["hnsw"]["ef_search"]
    return int(value)


def test_ef_search_changes_in_place_and_persists(store: Store) -> None:
    assert store.path is not None
    store.create("col-c", PARAMS)
    store.create("col-d", PARAMS)
    store.upsert("col-c", ["x0"], AXES[:1], [{"partition": "a"}])
    assert _ef_search(store.path, "col-c") == 16
    apply_ef_search(Store(store.path), ["col-c", "not-there"], 48)  # unknown names are skipped
    assert _ef_search(store.path, "col-c") == 48
    assert _ef_search(store.path, "col-d") == 16
    fresh = Store(store.path)
    fresh.set_ef_search("col-d", 24)
    assert _ef_search(store.path, "col-d") == 24
    assert fresh.count("col-c") == 1  # the vectors are untouched


# -- the partition collections kept in step with the catalogue ------------------------------
ROOT = Path("/corpus/root")


def _doc(name: str, partition: str, version: str = "1") -> Document:
    ref = FileRef(ROOT / name, ROOT, partition)
    return Document(ref, "", name, "1970-01-01", 0, f"{name}-{version}", 1, 1)


def _chunks(*texts: str) -> list[Chunk]:
    return [Chunk(i, t, 0, len(t), 2) for i, t in enumerate(texts)]


async def _vectors(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """A unit vector per chunk text, derived from its hash (no model)."""
    rows = []
    for _, text in pairs:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
        rows.append(v / np.linalg.norm(v))
    return np.asarray(rows, dtype=np.float32)


def _held(store: Store, catalog: Catalog) -> dict[str, set[str]]:
    """Chunk ids per collection: 'global' and each partition."""
    info = indexing.current(catalog)
    assert info is not None
    return {
        "global": store.ids(info.name),
        **{p: store.ids(name) for p, name in info.partitions.items()},
    }


def _check_partitions(store: Store, catalog: Catalog) -> dict[str, set[str]]:
    """The index matches the catalogue: the global collection holds every chunk; exactly the
    partitions the rule picks have a collection, each holding exactly that partition's chunks;
    no other collection of this index is left in the store."""
    info = indexing.current(catalog)
    assert info is not None
    held = _held(store, catalog)
    assert held["global"] == catalog.known_ids(held["global"] | {"x"})
    counts = catalog.partitions()
    total = sum(counts.values())
    assert all(wants_own_collection(counts[p], total, True) for p in info.partitions)
    lacking = set(counts) - set(info.partitions)
    assert not any(wants_own_collection(counts[p], total) for p in lacking)
    partition_of = catalog.chunk_partitions(sorted(held["global"]))
    for p in info.partitions:
        assert held[p] == {cid for cid, q in partition_of.items() if q == p}
    assert sorted(store.names()) == sorted(info.collections())
    return held


def test_partition_collections_follow_the_catalogue(tmp_path: Path, store: Store) -> None:
    catalog = Catalog(tmp_path / "catalog.db")
    try:
        a, b = _doc("a.md", "ops"), _doc("b.md", "dev")
        first = [(a, _chunks("pager rotation", "escalation", "paging")), (b, _chunks("deploys"))]
        catalog.apply(first, [], "emb")
        report = asyncio.run(indexing.rebuild(catalog, store, PARAMS, _vectors))
        assert report.vectors == 4 and report.rebuilt
        held = _check_partitions(store, catalog)
        assert set(held) == {"global", "dev"}  # ops holds 3 of 4 chunks: the global serves it

        # a changed document, a removed one and a new partition, applied together
        a2, c = _doc("a.md", "ops", "2"), _doc("c.md", "hr")
        added, deleted = asyncio.run(
            apply_changes(
                catalog,
                store,
                PARAMS,
                _vectors,
                [(a2, _chunks("pager rotation", "handover", "paging")), (c, _chunks("leave"))],
                [str(ROOT / "b.md")],
                "emb",
            )
        )
        assert (added, deleted) == (2, 2)  # handover + leave in; escalation + deploys out
        held = _check_partitions(store, catalog)
        assert set(held) == {"global", "hr"} and len(held["global"]) == 4  # dev's collection gone
        assert catalog.get_meta(indexing.PENDING) == ""
        info = indexing.current(catalog)
        assert info is not None and info.version == catalog.version == 2
        # a scoped search reads the partition's own collection
        (hits,) = store.query(info.partitions["hr"], asyncio.run(_vectors([("", "leave")])), 5)
        assert [h.score for h in hits] == [pytest.approx(1.0, abs=1e-5)]
    finally:
        catalog.close()


def test_a_partition_gets_a_collection_when_it_stops_being_most_of_the_corpus(
    tmp_path: Path, store: Store
) -> None:
    """One partition holding the whole corpus is indexed once (the global collection); when a
    second one makes it a minority, it gets its own collection, built from the catalogue."""
    catalog = Catalog(tmp_path / "catalog.db")
    try:
        docs = [(_doc(f"d{i}.md", "docs"), _chunks(f"doc text {i}")) for i in range(3)]
        asyncio.run(apply_changes(catalog, store, PARAMS, _vectors, docs, [], "emb"))
        assert set(_check_partitions(store, catalog)) == {"global"}
        assert len(store.names()) == 1
        more = [(_doc(f"w{i}.md", "wiki"), _chunks(f"wiki text {i}")) for i in range(8)]
        asyncio.run(apply_changes(catalog, store, PARAMS, _vectors, more, [], "emb"))
        held = _check_partitions(store, catalog)
        assert set(held) == {"global", "docs"} and len(held["docs"]) == 3  # 3 of 11 chunks
        gone = [str(ROOT / f"w{i}.md") for i in range(8)]
        asyncio.run(apply_changes(catalog, store, PARAMS, _vectors, [], gone, "emb"))
        assert set(_check_partitions(store, catalog)) == {"global"}
    finally:
        catalog.close()
