"""Keep the HNSW index (a Chroma collection) in step with the catalogue.

Which collection is current, with which HNSW parameters and for which catalogue version,
is recorded in the catalogue. A rebuild fills a *new* collection and then switches that
record in one transaction, so a reader sees the old index or the new one, never half of one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ragcli.db import transaction
from ragcli.store import HnswParams, Store

if TYPE_CHECKING:
    import numpy as np

    from ragcli.catalog import Catalog
    from ragcli.chunking import Chunk
    from ragcli.documents import Document

# Given (chunk id, text) pairs, return their vectors (cache first, embedding what is missing).
VectorSource = Callable[[Sequence[tuple[str, str]]], Awaitable["np.ndarray"]]
_PREFIX = "ragcli-chunks-"
_BATCH = 5000


@dataclass(frozen=True)
class IndexInfo:
    name: str
    params: HnswParams
    version: int  # the catalogue version this collection reflects


@dataclass(frozen=True)
class BuildReport:
    name: str
    params: HnswParams
    vectors: int
    seconds: float
    rebuilt: bool


def current(catalog: Catalog) -> IndexInfo | None:
    name = catalog.get_meta("index.name")
    if not name:
        return None
    params = HnswParams(**json.loads(catalog.get_meta("index.params", "{}")))
    return IndexInfo(name, params, int(catalog.get_meta("index.version", "-1")))


def _record(catalog: Catalog, name: str, params: HnswParams, version: int) -> None:
    with transaction(catalog.conn):
        catalog.set_meta("index.name", name)
        catalog.set_meta("index.params", json.dumps(asdict(params)))
        catalog.set_meta("index.version", str(version))


def record_params(catalog: Catalog, params: HnswParams) -> None:
    catalog.set_meta("index.params", json.dumps(asdict(params)))


async def _fill(
    catalog: Catalog,
    store: Store,
    name: str,
    pairs: Sequence[tuple[str, str]],
    vectors: VectorSource,
) -> None:
    for i in range(0, len(pairs), _BATCH):
        part = pairs[i : i + _BATCH]
        ids = [cid for cid, _ in part]
        store.upsert(name, ids, await vectors(part), catalog.chunk_metadata(ids))


async def rebuild(
    catalog: Catalog, store: Store, params: HnswParams, vectors: VectorSource
) -> BuildReport:
    """Build a fresh collection from the catalogue, then switch to it atomically."""
    started = time.perf_counter()
    version = catalog.version
    name = f"{_PREFIX}{version}-{time.time_ns()}"
    store.create(name, params)
    pairs = catalog.chunk_texts()
    await _fill(catalog, store, name, pairs, vectors)
    _record(catalog, name, params, version)
    # Collections left behind by this one's predecessor or by an interrupted build.
    for stale in store.names():
        if stale.startswith(_PREFIX) and stale != name:
            store.drop(stale)
    return BuildReport(name, params, len(pairs), time.perf_counter() - started, True)


PENDING = "index.pending"  # set while an ingest is between "new chunks in" and "old out"


async def reconcile(
    catalog: Catalog, store: Store, info: IndexInfo, vectors: VectorSource
) -> BuildReport:
    """Make the collection hold exactly the catalogue's chunks (after a crash mid-update)."""
    started = time.perf_counter()
    want = dict(catalog.chunk_texts())
    have = store.ids(info.name)
    missing = sorted(set(want) - have)
    if missing:
        await _fill(catalog, store, info.name, [(cid, want[cid]) for cid in missing], vectors)
    extra = sorted(have - set(want))
    if extra:
        store.delete(info.name, extra)
    _record(catalog, info.name, info.params, catalog.version)
    catalog.set_meta(PENDING, "")
    return BuildReport(info.name, info.params, len(missing), time.perf_counter() - started, False)


async def apply_changes(
    catalog: Catalog,
    store: Store,
    params: HnswParams,
    vectors: VectorSource,
    replaced: Sequence[tuple[Document, Sequence[Chunk]]],
    removed: Sequence[str],
    embedder_id: str,
) -> tuple[int, int]:
    """Change the catalogue and the index together, so that a reader at any moment sees one
    consistent version and a crash at any moment is repaired by the next run:

    1. new chunks go into the index first (readers ignore ids the catalogue does not know);
    2. the catalogue changes, and records the index as matching, in one transaction;
    3. the old chunks leave the index (readers already ignore ids the catalogue dropped).
    `index.pending` marks the window between 1 and 3; a run that finds it set reconciles.
    Returns (chunks added, chunks deleted).
    """
    added, deleted = catalog.plan(replaced, removed)
    info = current(catalog)
    live = (
        info is not None
        and info.name in store.names()
        and not catalog.get_meta(PENDING)
        and info.version == catalog.version
    )
    if not live:
        catalog.apply(replaced, removed, embedder_id)
        if info is not None and info.name in store.names():
            await reconcile(catalog, store, info, vectors)
        else:
            await rebuild(catalog, store, info.params if info else params, vectors)
        return len(added), len(deleted)
    assert info is not None
    if added or deleted:
        catalog.set_meta(PENDING, "1")
        if added:
            ids = [cid for cid, _ in added]
            meta = dict(_metadata(doc, ch) for doc, chunks in replaced for ch in chunks)
            store.upsert(info.name, ids, await vectors(added), [meta[cid] for cid in ids])
    catalog.apply(replaced, removed, embedder_id, index_follows=True)
    if deleted:
        store.delete(info.name, deleted)
    if added or deleted:
        catalog.set_meta(PENDING, "")
    return len(added), len(deleted)


def _metadata(doc: Document, chunk: Chunk) -> tuple[str, dict[str, Any]]:
    """(chunk id, what the index stores beside its vector), as `Catalog.chunk_metadata` has it."""
    from ragcli.catalog import chunk_id, text_hash

    cid = chunk_id(doc.ref.source, chunk.position, text_hash(chunk.text))
    return cid, {"partition": doc.ref.partition, "source": doc.ref.source, "date_ts": doc.date_ts}


async def recall_at_k(
    catalog: Catalog, store: Store, name: str, vectors: VectorSource, k: int = 10, queries: int = 50
) -> float:
    """Recall@k of the HNSW index against exact search, on `queries` synthetic queries.

    Each query is the normalised midpoint of two chunk vectors (chosen with a fixed seed), so
    it lies between documents, as a real question does, rather than exactly on one.
    """
    import numpy as np

    pairs = catalog.chunk_texts()
    if not pairs:
        return 1.0
    matrix = await vectors(pairs)
    ids = [cid for cid, _ in pairs]
    rng = np.random.default_rng(0)
    a = rng.integers(0, len(ids), queries)
    b = rng.integers(0, len(ids), queries)
    q = matrix[a] + matrix[b]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    k = min(k, len(ids))
    exact = np.argsort(-(q @ matrix.T), axis=1)[:, :k]
    found = store.query(name, q, k)
    hits = sum(
        len({ids[j] for j in row} & {h.id for h in got})
        for row, got in zip(exact, found, strict=True)
    )
    return hits / (k * queries)
