"""`ragcli prune`: documents whose file is missing on disk (a moved or deleted folder) leave
the catalogue (rows, FTS) and every Chroma collection. Nothing whose file still exists is
removed: each document's file is stat'ed now (index/missing.py), whatever the marks say.

The removal is an ingest's last window without new documents (index/live.py): `index.pending`
set, the catalogue's rows out in one transaction that moves the version on (so no cache of
the old state is served), then the chunks out of the collections. A run killed between two
steps leaves `index.pending` set, and the next `prune`, `ingest` or `index` makes the
collections match the catalogue again.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ragcli.caches.backends import open_embedding_cache
from ragcli.core.datadir import DataDir
from ragcli.core.db import storage_errors
from ragcli.core.errors import NotReadyError
from ragcli.embedders import open_embedder, settings_for_index
from ragcli.index import indexing
from ragcli.index.catalog import Catalog
from ragcli.index.missing import MissingScan, scan
from ragcli.index.store import StoreError
from ragcli.ingest.run import live_update

if TYPE_CHECKING:
    from ragcli.core.config import Settings


@dataclass
class PruneReport:
    checked: int = 0  # documents whose file was stat'ed
    missing: int = 0  # of them, missing on disk
    paths: list[str] = field(default_factory=list)  # those, in path order
    chunks: int = 0  # the chunks of the missing documents
    pruned: int = 0  # documents removed (0 with --dry-run)
    chunks_deleted: int = 0
    documents_left: int = 0
    chunks_left: int = 0
    index_version: int = 0
    dry_run: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def prune(settings: Settings, dry_run: bool = False) -> PruneReport:
    """Remove the documents missing on disk (with `dry_run`, only say which)."""
    started = time.perf_counter()
    dirs = DataDir(settings.data_dir)
    if not dirs.exists():
        raise NotReadyError(f"nothing ingested in {dirs.root}: run `ragcli ingest PATH` first")
    catalog = Catalog(dirs.catalog)
    try:
        with storage_errors(dirs.root, (StoreError,)):
            found = scan(catalog)
            report = PruneReport(found.checked, len(found.missing), found.missing)
            report.dry_run = dry_run
            report.chunks = len(catalog.plan([], found.missing)[1])
            if not dry_run:
                await _remove(catalog, settings, found, report)
            counts = catalog.counts()
            report.documents_left, report.chunks_left = counts["documents"], counts["chunks"]
            report.index_version = catalog.version
    finally:
        catalog.close()
    report.seconds = time.perf_counter() - started
    return report


def _needs_repair(catalog: Catalog) -> bool:
    """Whether a run was cut short (a prune's or an ingest's): the collections may not match
    the catalogue, and this run puts them right as an ingest would."""
    info = indexing.current(catalog)
    pending = bool(catalog.get_meta(indexing.PENDING))
    return pending or (info is not None and info.version != catalog.version)


async def _remove(
    catalog: Catalog, settings: Settings, found: MissingScan, report: PruneReport
) -> None:
    """The missing documents out, by the live index's protocol; marks of documents whose file
    is back cleared. The index is opened only if there is something to remove or repair."""
    if not found.missing and not _needs_repair(catalog):
        catalog.mark_missing([], found.back)
        return
    built_with = catalog.get_meta("embedder")
    if built_with:  # vectors (for a repair) in the index's own space, from the cache first
        settings = settings_for_index(settings, built_with)
    embedder = open_embedder(settings)
    cache = open_embedding_cache(settings)
    try:
        live = live_update(catalog, cache, embedder, settings)
        if found.missing:
            await live.apply([], None, found.missing)
        catalog.mark_missing([], found.back)
        await live.finish()
    finally:
        cache.close()
    report.pruned = len(found.missing)
    report.chunks_deleted = live.deleted
