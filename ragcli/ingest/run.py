"""documents → chunks → cached embeddings → catalogue → index.

Order matters for crash safety: embeddings are committed to the cache batch by batch, the
catalogue changes in one transaction, and the index follows the catalogue (and catches up on
the next run if a crash came between the two). A re-run therefore pays only for what is missing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.caches.backends import open_embedding_cache
from ragcli.core.datadir import DataDir
from ragcli.core.db import storage_errors
from ragcli.core.errors import UsageError
from ragcli.core.records import Chunk, Document, FileRef
from ragcli.embedders.cached import Progress, VectorFetcher
from ragcli.index import indexing
from ragcli.index.catalog import Catalog, FileState
from ragcli.index.store import HnswParams, StoreError, open_store
from ragcli.ingest.chunking import chunk_long_text
from ragcli.ingest.documents import DEFAULT_MAX_FILE_SIZE, Skipped, discover, load

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.embedders.base import Embedder


@dataclass
class IngestReport:
    files: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    chunks: int = 0  # chunks in the catalogue after the run
    chunks_added: int = 0
    chunks_deleted: int = 0
    embedded: int = 0  # embeddings computed in this run (cache misses)
    cache_hits: int = 0
    truncated: int = 0  # inputs cut to the embedder's input limit (remote embedders)
    index_version: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["skipped"] = [{"path": s.path, "reason": s.reason} for s in self.skipped]
        return d


def _under(path: str, roots: Sequence[Path]) -> bool:
    return any(path == str(r) or path.startswith(str(r) + os.sep) for r in roots)


def _refuse_source_clashes(refs: Sequence[FileRef], catalog: Catalog) -> None:
    """Two live files shown as the same source (two ingested folders of one name) would share
    chunk ids, so one would silently overwrite the other's chunks: refuse, in one line, before
    anything is written. A catalogued file that no longer exists (a moved folder) is no clash."""
    paths: dict[str, str] = {}
    clash: tuple[str, str, str] | None = None
    for ref in refs:
        first = paths.setdefault(ref.source, str(ref.path))
        if first != str(ref.path):
            clash = (ref.source, first, str(ref.path))
            break
    if clash is None:
        for path, source in catalog.paths_by_source(list(paths)):
            if path != paths[source] and os.path.exists(path):
                clash = (source, path, paths[source])
                break
    if clash is not None:
        source, a, b = clash
        raise UsageError(
            f"{a} and {b} would both be {source!r}: ingest folders of different names, or "
            "into another data directory (--data-dir)"
        )


def chunk_document(doc: Document, embedder: Embedder, settings: Settings) -> list[Chunk]:
    """Token-aware chunks; a very long text is tokenised window by window (bounded memory)."""
    return chunk_long_text(
        doc.text, embedder.token_spans, settings.chunk_tokens, settings.chunk_overlap
    )


def _refuse_other_embedder(catalog: Catalog, embedder: Embedder) -> None:
    """One data directory, one embedder: vectors of two models cannot share an index."""
    indexed_with = catalog.get_meta("embedder")
    if indexed_with and indexed_with != embedder.cache_id:
        raise UsageError(
            f"this data directory was built with embedder {indexed_with!r}; "
            f"use a new --data-dir for {embedder.cache_id!r}"
        )


def _discover(
    paths: Sequence[Path], partition: str | None, follow_symlinks: bool, report: IngestReport
) -> list[FileRef]:
    """The files to consider; those skipped go into the report."""
    refs: list[FileRef] = []
    for item in discover(list(paths), partition, follow_symlinks):
        if isinstance(item, Skipped):
            report.skipped.append(item)
        else:
            refs.append(item)
    report.files = len(refs)
    return refs


def _read_changed(
    refs: Sequence[FileRef],
    states: dict[str, FileState],
    catalog: Catalog,
    report: IngestReport,
    max_file_size: int,
    progress: Progress | None,
) -> tuple[list[Document], set[str]]:
    """The new and changed documents (a file whose mtime and size match the catalogue's is not
    read; one whose content hash matches is only touched), and the paths still present."""
    seen: set[str] = set()
    changed_docs: list[Document] = []
    for n, ref in enumerate(refs, 1):
        key = str(ref.path)
        seen.add(key)
        old = states.get(key)
        if progress:
            progress("read", n, len(refs))
        try:
            st = ref.path.stat()
        except OSError as exc:
            report.skipped.append(Skipped(ref.source, f"cannot read: {exc.strerror}"))
            seen.discard(key)
            continue
        if old and old.mtime_ns == st.st_mtime_ns and old.size == st.st_size:
            report.unchanged += 1
            continue
        doc = load(ref, max_file_size)
        if isinstance(doc, Skipped):
            report.skipped.append(doc)
            if not doc.keep:  # a file that became unreadable leaves the index;
                seen.discard(key)  # one still being written keeps its last version
            continue
        if old and old.content_hash == doc.content_hash:
            catalog.touch(key, doc.mtime_ns)
            report.unchanged += 1
            continue
        if old:
            report.changed += 1
        else:
            report.new += 1
        changed_docs.append(doc)
    return changed_docs, seen


async def ingest(
    paths: Sequence[Path],
    settings: Settings,
    embedder: Embedder,
    partition: str | None = None,
    follow_symlinks: bool = False,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    progress: Progress | None = None,
) -> IngestReport:
    started = time.perf_counter()
    if settings.chunk_tokens > embedder.max_tokens - 2:
        raise UsageError(
            f"chunk size {settings.chunk_tokens} exceeds the embedder's input limit "
            f"({embedder.max_tokens - 2} tokens)"
        )
    report = IngestReport()
    dirs = DataDir(settings.data_dir)
    catalog = Catalog(dirs.catalog)
    cache = open_embedding_cache(settings)
    try:
        with storage_errors(dirs.root, (StoreError,)):
            _refuse_other_embedder(catalog, embedder)
            states = catalog.file_states()
            refs = _discover(paths, partition, follow_symlinks, report)
            _refuse_source_clashes(refs, catalog)
            changed_docs, seen = _read_changed(
                refs, states, catalog, report, max_file_size, progress
            )
            roots = [p.resolve() for p in paths if p.is_dir()]
            removed = [p for p in states if _under(p, roots) and p not in seen]
            if not changed_docs and not report.unchanged and not removed:
                names = ", ".join(str(p) for p in paths)
                raise UsageError(f"nothing to ingest: no readable text files in {names}")
            report.removed = len(removed)

            replaced = [(doc, chunk_document(doc, embedder, settings)) for doc in changed_docs]
            fetch = VectorFetcher(embedder, cache, progress)
            await fetch.vectors([c.text for _, chunks in replaced for c in chunks])
            report.embedded, report.cache_hits = fetch.embedded, fetch.hits
            report.truncated = getattr(embedder, "truncated", 0)

            params = HnswParams(
                settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_ef_search
            )
            report.chunks_added, report.chunks_deleted = await indexing.apply_changes(
                catalog, open_store(settings), params, fetch, replaced, removed, embedder.cache_id
            )
            report.chunks = catalog.counts()["chunks"]
            report.index_version = catalog.version
    finally:
        catalog.close()
        cache.close()
    report.seconds = time.perf_counter() - started
    return report
