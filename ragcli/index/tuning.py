"""The `index` command: rebuild the HNSW index when its build parameters change (or on
request), change ef_search in place, and measure what the index costs and how well it finds."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from ragcli.caches.backends import open_embedding_cache
from ragcli.core.datadir import DataDir
from ragcli.core.db import storage_errors
from ragcli.core.errors import NotReadyError
from ragcli.embedders import open_embedder
from ragcli.embedders.cached import VectorFetcher
from ragcli.index import indexing
from ragcli.index.catalog import Catalog
from ragcli.index.store import (
    HnswParams,
    Store,
    StoreError,
    forget_loaded_indexes,
    open_store,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import numpy as np

    from ragcli.core.config import Settings


def _usable_store(store: Store) -> Store:
    """For a rebuild: if the Chroma directory cannot be opened, set it aside and start anew
    (the catalogue and the embedding cache hold everything the index is built from). A Chroma
    server is never set aside: if it cannot be reached, that is the error to report."""
    try:
        store.names()
        return store
    except StoreError:
        if store.path is None:
            raise
        forget_loaded_indexes()
        aside = store.path.with_name(f"{store.path.name}.unreadable-{int(time.time())}")
        store.path.rename(aside)
        return Store(store.path)


class _ReuseIndexVectors:
    """For a rebuild: take each chunk's vector from the index being replaced, and fall back to
    the embedding cache (then the model) only for chunks it lacks. A new M or ef_construction
    then costs no embedding at all, even with an emptied cache."""

    def __init__(self, store: Store, name: str, fallback: VectorFetcher) -> None:
        self.store, self.name, self.fallback = store, name, fallback

    async def __call__(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        import numpy as np

        found = self.store.vectors(self.name, [cid for cid, _ in pairs])
        missing = [(cid, text) for cid, text in pairs if cid not in found]
        if missing:
            found.update(zip((c for c, _ in missing), await self.fallback(missing), strict=True))
        return np.asarray([found[cid] for cid, _ in pairs], dtype=np.float32)


def _disk_bytes(path: Path | None) -> int | None:
    """Bytes of the embedded index; None for a Chroma server (its disk is not ours to read)."""
    if path is None:
        return None
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _structural(info: indexing.IndexInfo, params: HnswParams) -> bool:
    """Whether `params` change the graph itself (M, ef_construction): a rebuild, not a tweak."""
    return (params.m, params.ef_construction) != (info.params.m, info.params.ef_construction)


async def _rebuild(
    catalog: Catalog,
    store: Store,
    info: indexing.IndexInfo | None,
    params: HnswParams,
    fetch: VectorFetcher,
) -> indexing.BuildReport:
    """Fresh collections, their vectors from the index being replaced where it has them."""
    source: indexing.VectorSource = fetch
    if info is not None and info.name in store.names():
        source = _ReuseIndexVectors(store, info.name, fetch)
    return await indexing.rebuild(catalog, store, params, source)


async def _retune(
    catalog: Catalog,
    store: Store,
    info: indexing.IndexInfo,
    params: HnswParams,
    fetch: VectorFetcher,
) -> indexing.BuildReport:
    """The same graph: ef_search changed in place, and the index brought up to the catalogue."""
    if params.ef_search != info.params.ef_search:
        for name in info.collections():
            store.set_ef_search(name, params.ef_search)
    report = indexing.BuildReport(info.name, params, store.count(info.name), 0.0, False)
    if catalog.get_meta(indexing.PENDING) or info.version != catalog.version:
        await indexing.reconcile(catalog, store, info, fetch)
    indexing.record_params(catalog, params)
    return report


async def tune_index(
    settings: Settings, flags: dict[str, int], rebuild: bool, recall_queries: int
) -> dict[str, Any]:
    """Parameters are the current index's, changed only by the flags given."""
    dirs = DataDir(settings.data_dir)
    if not dirs.exists():
        raise NotReadyError(f"nothing ingested in {dirs.root}: run `ragcli ingest PATH` first")
    catalog = Catalog(dirs.catalog)
    cache = open_embedding_cache(settings)
    store = open_store(settings)
    if rebuild:
        store = _usable_store(store)
    try:
        with storage_errors(dirs.root, (StoreError,)):
            info = indexing.current(catalog)
            base = (
                info.params
                if info
                else HnswParams(
                    settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_ef_search
                )
            )
            params = dataclasses.replace(base, **flags)
            fetch = VectorFetcher(open_embedder(settings), cache, None)
            if (
                info is None
                or rebuild
                or _structural(info, params)
                or info.name not in store.names()
            ):
                report = await _rebuild(catalog, store, info, params, fetch)
            else:
                report = await _retune(catalog, store, info, params, fetch)
            recall = None
            if recall_queries > 0 and report.vectors:
                vectors = _ReuseIndexVectors(store, report.name, fetch)
                recall = await indexing.recall_at_k(
                    catalog, store, report.name, vectors, 10, recall_queries
                )
            return {
                "rebuilt": report.rebuilt,
                "vectors": report.vectors,
                "params": dataclasses.asdict(report.params),
                "build_seconds": round(report.seconds, 3),
                "disk_bytes": _disk_bytes(store.path),
                "recall_at_10": recall,
                "recall_queries": recall_queries,
                "index_version": catalog.version,
                "embedded": fetch.embedded,
            }
    finally:
        catalog.close()
        cache.close()
