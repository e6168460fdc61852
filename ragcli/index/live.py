"""An ingest's changes applied to the catalogue and the index window by window, so that the
vector index is written while later windows are still being read and embedded.

Each window keeps the order that makes a crash harmless at any moment:

1. its new chunks go into the index first (readers ignore ids the catalogue does not know);
2. the catalogue takes the window's documents, and records the index as matching, in one
   transaction (so a document is always whole: its old chunks or its new ones);
3. the window's old chunks leave the index (readers already ignore ids the catalogue dropped).

`index.pending` is set before the first window's index writes and cleared after the last
one's; a run that finds it set reconciles the index with the catalogue first (indexing.py).
Which partitions get a collection of their own is settled once, at the end (`finish`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ragcli.index import indexing
from ragcli.index.indexing import PENDING, IndexInfo, VectorSource

if TYPE_CHECKING:
    import numpy as np

    from ragcli.core.phases import PhaseClock
    from ragcli.core.records import Chunk, Document
    from ragcli.index.catalog import Catalog
    from ragcli.index.store import HnswParams, Store

Replaced = Sequence[tuple["Document", Sequence["Chunk"]]]
_STEP = 1024  # vectors per Chroma call: its add holds the GIL, so the event loop gets turns


class LiveUpdate:
    """Applies windows of changed documents (and, last, removed ones) to a live index."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        params: HnswParams,
        vectors: VectorSource,
        embedder_id: str,
        clock: PhaseClock,
    ) -> None:
        self.catalog, self.store, self.params = catalog, store, params
        self.vectors, self.embedder_id, self.clock = vectors, embedder_id, clock
        self.info: IndexInfo | None = None
        self.pending = False
        self.added = 0
        self.deleted = 0

    async def _live(self) -> IndexInfo:
        """The index, matching the catalogue: built first if there is none, repaired first if a
        run was cut short (`index.pending`, or a catalogue version it does not reflect)."""
        if self.info is None:
            catalog, store = self.catalog, self.store
            info = indexing.current(catalog)
            with self.clock.phase("vector_index"):
                if info is None or info.name not in store.names():
                    params = info.params if info else self.params
                    await indexing.rebuild(catalog, store, params, self.vectors)
                elif catalog.get_meta(PENDING) or info.version != catalog.version:
                    await indexing.reconcile(catalog, store, info, self.vectors)
            self.info = indexing.current(catalog)
            assert self.info is not None
        return self.info

    async def apply(
        self, replaced: Replaced, vecs: np.ndarray | None, removed: Sequence[str] = ()
    ) -> None:
        """One window: documents with their new chunks (`vecs`: one row per chunk, in order)
        and/or removed paths."""
        info = await self._live()
        catalog = self.catalog
        added, deleted = catalog.plan(replaced, removed)
        old_partitions = catalog.chunk_partitions(deleted)
        if (added or deleted) and not self.pending:
            catalog.set_meta(PENDING, "1")
            self.pending = True
        if added:
            assert vecs is not None
            rows, metas = _rows(replaced)
            ids = [cid for cid, _ in added]
            picked = vecs[[rows[cid] for cid in ids]]
            await self._in_thread(_upsert, self.store, info, ids, picked, [metas[c] for c in ids])
        catalog.apply(replaced, removed, self.embedder_id, index_follows=True, clock=self.clock)
        if deleted:
            await self._in_thread(indexing.delete, self.store, info, deleted, old_partitions)
        self.added += len(added)
        self.deleted += len(deleted)

    async def _in_thread(self, fn: Any, *args: Any) -> None:
        """Index work on a worker thread, timed as the `vector_index` phase: the event loop
        keeps embedding the next window meanwhile."""
        with self.clock.phase("vector_index"):
            await asyncio.to_thread(fn, *args)

    async def finish(self) -> None:
        """Settle the partitions' own collections, then clear `index.pending`. A run that
        changed nothing still repairs an index that a cut-short run left behind."""
        info = await self._live()
        with self.clock.phase("vector_index"):
            self.info = await indexing.sync_partitions(self.catalog, self.store, info, self.vectors)
        if self.pending:
            self.catalog.set_meta(PENDING, "")
            self.pending = False


def _rows(replaced: Replaced) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """Each chunk id's row in the window's vectors, and what the index stores beside it."""
    rows: dict[str, int] = {}
    metas: dict[str, dict[str, Any]] = {}
    for doc, chunks in replaced:
        for ch in chunks:
            cid, meta = indexing.metadata(doc, ch)
            rows[cid] = len(rows)
            metas[cid] = meta
    return rows, metas


def _upsert(
    store: Store, info: IndexInfo, ids: list[str], vecs: np.ndarray, metas: list[dict[str, Any]]
) -> None:
    for i in range(0, len(ids), _STEP):
        indexing.upsert(store, info, ids[i : i + _STEP], vecs[i : i + _STEP], metas[i : i + _STEP])


async def apply_changes(
    catalog: Catalog,
    store: Store,
    params: HnswParams,
    vectors: VectorSource,
    replaced: Replaced,
    removed: Sequence[str],
    embedder_id: str,
) -> tuple[int, int]:
    """All changes as one window (tests, tools): returns (chunks added, chunks deleted)."""
    import numpy as np

    from ragcli.core.phases import PhaseClock

    live = LiveUpdate(catalog, store, params, vectors, embedder_id, PhaseClock())
    pairs = [("", ch.text) for _, chunks in replaced for ch in chunks]
    vecs = await vectors(pairs) if pairs else np.empty((0, 0), dtype=np.float32)
    await live.apply(replaced, vecs, removed)
    await live.finish()
    return live.added, live.deleted
