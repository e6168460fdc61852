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
from typing import TYPE_CHECKING

from ragcli.db import transaction
from ragcli.store import HnswParams, Store

if TYPE_CHECKING:
    import numpy as np

    from ragcli.catalog import Catalog

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


async def sync(
    catalog: Catalog,
    store: Store,
    params: HnswParams,
    vectors: VectorSource,
    added: Sequence[str],
    deleted: Sequence[str],
    version_before: int,
) -> BuildReport:
    """Apply one ingest's changes; rebuild when there is no index or it was out of step."""
    info = current(catalog)
    if info is None or info.name not in store.names():
        return await rebuild(catalog, store, info.params if info else params, vectors)
    started = time.perf_counter()
    if info.version != version_before:
        # An earlier ingest stopped between the catalogue and the index: reconcile by ids.
        want = {cid for cid, _ in catalog.chunk_texts()}
        have = store.ids(info.name)
        added, deleted = sorted(want - have), sorted(have - want)
    if deleted:
        store.delete(info.name, list(deleted))
    if added:
        texts = catalog.chunks(list(added))
        pairs = [(cid, texts[cid].text) for cid in added]
        await _fill(catalog, store, info.name, pairs, vectors)
    _record(catalog, info.name, info.params, catalog.version)
    return BuildReport(info.name, info.params, len(added), time.perf_counter() - started, False)


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
