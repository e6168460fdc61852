"""documents → chunks → cached embeddings → catalogue → index, as a pipeline of windows.

Documents are read and chunked in windows (a text budget that grows from 256 KB to 4 MB), and
the windows flow through embedding and indexing overlapped: one window's vectors go into the
index and the catalogue while the next window is read and chunked and its embedding requests
are in flight. Memory follows the window, not the corpus.

Order matters for crash safety, and is unchanged: embeddings are committed to the cache batch
by batch; each window's documents change in the catalogue in one transaction, after their new
chunks are in the index (index/live.py); and the index follows the catalogue (and catches up
on the next run if a crash came between the two). A re-run pays only for what is missing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ragcli.caches.backends import open_embedding_cache
from ragcli.core.datadir import DataDir
from ragcli.core.db import storage_errors
from ragcli.core.errors import UsageError
from ragcli.core.phases import PhaseClock, Spans, peak_rss_mb
from ragcli.core.records import Chunk, Document, FileRef
from ragcli.embedders.cached import Progress, VectorFetcher
from ragcli.index.catalog import Catalog, FileState
from ragcli.index.live import LiveUpdate
from ragcli.index.missing import MissingScan, scan
from ragcli.index.store import HnswParams, StoreError, open_store
from ragcli.ingest.chunking import chunk_many
from ragcli.ingest.documents import DEFAULT_MAX_FILE_SIZE, Skipped, discover, load

if TYPE_CHECKING:
    import numpy as np

    from ragcli.caches.protocols import EmbeddingCache
    from ragcli.core.config import Settings
    from ragcli.embedders.base import Embedder


@dataclass
class IngestReport:
    files: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    pruned: int = 0  # documents outside the given paths removed as missing on disk (--prune)
    missing: int = 0  # documents outside the given paths missing on disk, left marked
    missing_example: str = ""  # one of them
    skipped: list[Skipped] = field(default_factory=list)
    chunks: int = 0  # chunks in the catalogue after the run
    chunks_added: int = 0
    chunks_deleted: int = 0
    embedded: int = 0  # embeddings computed in this run (cache misses)
    cache_hits: int = 0
    truncated: int = 0  # inputs cut to the embedder's input limit (remote embedders)
    index_version: int = 0
    seconds: float = 0.0
    windows: int = 0  # windows that went through the pipeline
    chunks_read: int = 0  # chunks of the new and changed documents
    chunks_indexed: int = 0
    tokens: int = 0  # tokens of the chunks read
    phases: dict[str, float] = field(default_factory=dict)  # seconds; they overlap
    peak_rss_mb: float = 0.0
    seen: set[str] = field(default_factory=set)  # paths still present (not reported)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "seen"}
        d["skipped"] = [{"path": s.path, "reason": s.reason} for s in self.skipped]
        return d


class _Touch(NamedTuple):
    """A file whose mtime changed but whose content did not: only its mtime is recorded."""

    path: str
    mtime_ns: int


FIRST_WINDOW_CHARS = 256 * 1024
MAX_WINDOW_CHARS = 4 * 1024 * 1024
ENV_WINDOW = "RAGCLI_INGEST_WINDOW"  # the largest window, in characters of text


def window_budgets() -> tuple[int, int]:
    """(first, largest) window in characters: 256 KB doubling up to 4 MB, or up to
    `RAGCLI_INGEST_WINDOW` (less memory, more windows; the tests cut runs into many)."""
    raw = os.environ.get(ENV_WINDOW, "")
    try:
        largest = int(raw) if raw else MAX_WINDOW_CHARS
    except ValueError:
        raise UsageError(f"{ENV_WINDOW}={raw!r}: use a number of characters") from None
    if largest < 1:
        raise UsageError(f"{ENV_WINDOW}={raw!r}: use a number of characters above 0")
    return min(FIRST_WINDOW_CHARS, largest), largest


def _under(path: str, roots: Sequence[Path]) -> bool:
    return any(path == str(r) or path.startswith(str(r) + os.sep) for r in roots)


@dataclass
class _Missing:
    """The documents an ingest run takes out: those gone from under its own paths, and (a
    scan of every other document) those missing on disk elsewhere, removed with `prune` or
    else marked, so that retrieval skips them. Called once every file was seen."""

    catalog: Catalog
    states: dict[str, FileState]
    paths: Sequence[Path]
    report: IngestReport
    clock: PhaseClock
    prune: bool
    found: MissingScan | None = None

    def __call__(self) -> list[str]:
        roots = [p.resolve() for p in self.paths if p.is_dir()]
        files = {str(p.resolve()) for p in self.paths if p.is_file()}
        seen = self.report.seen

        def handled(path: str) -> bool:
            return path in files or _under(path, roots)

        gone = [p for p in self.states if _under(p, roots) and p not in seen]
        with self.clock.phase("missing"):
            self.found = scan(self.catalog, handled, seen.__contains__)
        self.report.removed = len(gone)
        if self.prune:
            self.report.pruned = len(self.found.missing)
            return gone + self.found.missing
        return gone

    def mark(self) -> None:
        """After the run: mark what was found missing (unless pruned), unmark what is back."""
        found = self.found
        if found is None:
            return
        missing = [] if self.prune else found.unmarked
        self.catalog.mark_missing(missing, found.back)
        if not self.prune and found.missing:
            self.report.missing = len(found.missing)
            self.report.missing_example = found.missing[0]


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
    report: IngestReport,
    max_file_size: int,
    progress: Progress | None,
) -> Iterator[Document | _Touch]:
    """The new and changed documents, one at a time (a file whose mtime and size match the
    catalogue's is not read; one whose content hash matches only gets its mtime touched), and
    in `report.seen` the paths still present. Runs on a worker thread: no catalogue access."""
    for n, ref in enumerate(refs, 1):
        key = str(ref.path)
        report.seen.add(key)
        old = states.get(key)
        if progress:
            progress("read", n, len(refs))
        try:
            st = ref.path.stat()
        except OSError as exc:
            report.skipped.append(Skipped(ref.source, f"cannot read: {exc.strerror}"))
            report.seen.discard(key)
            continue
        if old and old.mtime_ns == st.st_mtime_ns and old.size == st.st_size:
            report.unchanged += 1
            continue
        doc = load(ref, max_file_size)
        if isinstance(doc, Skipped):
            report.skipped.append(doc)
            if not doc.keep:  # a file that became unreadable leaves the index;
                report.seen.discard(key)  # one still being written keeps its last version
            continue
        if old and old.content_hash == doc.content_hash:
            report.unchanged += 1
            yield _Touch(key, doc.mtime_ns)
            continue
        if old:
            report.changed += 1
        else:
            report.new += 1
        yield doc


@dataclass
class Window:
    """Documents read and chunked together, embedded and indexed together."""

    replaced: list[tuple[Document, list[Chunk]]] = field(default_factory=list)
    touched: list[_Touch] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [c.text for _, chunks in self.replaced for c in chunks]

    @property
    def tokens(self) -> int:
        return sum(c.n_tokens for _, chunks in self.replaced for c in chunks)


def _windows(
    items: Iterator[Document | _Touch],
    embedder: Embedder,
    settings: Settings,
    clock: PhaseClock,
    budgets: tuple[int, int],
) -> Iterator[Window]:
    """Windows of documents, each closed at a text budget that grows from the first window's
    to the largest (`window_budgets`): the first embedding requests leave early, later
    windows are large enough to make few requests. Memory follows the window (one document
    larger than it is a window of its own), not the corpus."""
    budget, largest = budgets
    docs: list[Document] = []
    touched: list[_Touch] = []
    size = 0
    while True:
        with clock.phase("read"):
            item = next(items, None)
        if isinstance(item, _Touch):
            touched.append(item)
            continue
        if item is not None:
            docs.append(item)
            size += len(item.text)
            if size < budget:
                continue
        if docs or touched:
            with clock.phase("chunk"):
                chunks = chunk_many(
                    [d.text for d in docs],
                    embedder.token_spans_batch,
                    settings.chunk_tokens,
                    settings.chunk_overlap,
                )
            yield Window(list(zip(docs, chunks, strict=True)), touched)
            docs, touched, size = [], [], 0
            budget = min(2 * budget, largest)
        if item is None:
            return


async def ingest(
    paths: Sequence[Path],
    settings: Settings,
    embedder: Embedder,
    partition: str | None = None,
    follow_symlinks: bool = False,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    progress: Progress | None = None,
    prune: bool = False,
) -> IngestReport:
    """Ingest `paths`: new and changed files in, files gone from under them out. Documents
    elsewhere whose file is missing on disk are marked (retrieval skips them), or removed
    with `prune`."""
    started = time.perf_counter()
    if settings.chunk_tokens > embedder.max_tokens - 2:
        raise UsageError(
            f"chunk size {settings.chunk_tokens} exceeds the embedder's input limit "
            f"({embedder.max_tokens - 2} tokens)"
        )
    report = IngestReport()
    clock = PhaseClock()
    dirs = DataDir(settings.data_dir)
    catalog = Catalog(dirs.catalog)
    cache = open_embedding_cache(settings)
    try:
        with storage_errors(dirs.root, (StoreError,)):
            _refuse_other_embedder(catalog, embedder)
            with clock.phase("discover"):
                states = catalog.file_states()
                refs = _discover(paths, partition, follow_symlinks, report)
                _refuse_source_clashes(refs, catalog)
            fetch = VectorFetcher(embedder, cache)
            fetch.progress = _embed_progress(progress, fetch, report)
            live = live_update(catalog, cache, embedder, settings, clock)
            items = _read_changed(refs, states, report, max_file_size, progress)
            windows = _windows(items, embedder, settings, clock, window_budgets())
            gone = _Missing(catalog, states, paths, report, clock, prune)
            await _pipeline(windows, gone, fetch, _Run(live, catalog, report, clock, progress))
            if not report.new + report.changed + report.unchanged and not report.removed:
                names = ", ".join(str(p) for p in paths)
                raise UsageError(f"nothing to ingest: no readable text files in {names}")
            gone.mark()
            await live.finish()
            report.embedded, report.cache_hits = fetch.embedded, fetch.hits
            report.truncated = getattr(embedder, "truncated", 0)
            report.chunks_added, report.chunks_deleted = live.added, live.deleted
            report.chunks = catalog.counts()["chunks"]
            report.index_version = catalog.version
    finally:
        catalog.close()
        cache.close()
    report.phases = clock.seconds()
    report.peak_rss_mb = peak_rss_mb()
    report.seconds = time.perf_counter() - started
    return report


def live_update(
    catalog: Catalog,
    cache: EmbeddingCache,
    embedder: Embedder,
    settings: Settings,
    clock: PhaseClock | None = None,
) -> LiveUpdate:
    """The index writer. Index builds and repairs read vectors through a fetcher of their own,
    so that the report's embedded and cache-hit counts are the documents' alone."""
    params = HnswParams(settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_ef_search)
    rebuilds = VectorFetcher(embedder, cache)
    clock = clock if clock is not None else PhaseClock()
    return LiveUpdate(catalog, open_store(settings), params, rebuilds, embedder.cache_id, clock)


@dataclass
class _Run:
    """What every stage of one ingest run writes to."""

    live: LiveUpdate
    catalog: Catalog
    report: IngestReport
    clock: PhaseClock
    progress: Progress | None


async def _pipeline(
    windows: Iterator[Window], gone: Callable[[], list[str]], fetch: VectorFetcher, run: _Run
) -> None:
    """Read, chunk, embed and index window by window, overlapped: while one window is being
    indexed, the next one is read and chunked (on a worker thread) and its embedding
    requests are on the wire. At most two windows are held at once. Files that are gone
    leave with the last window (in its transaction: one version for a one-window run)."""
    embedding = Spans()

    async def embed(window: Window) -> np.ndarray:
        began = time.perf_counter()
        try:
            return await fetch.vectors(window.texts)
        finally:
            embedding.add(began, time.perf_counter())

    pending: tuple[Window, asyncio.Task[np.ndarray]] | None = None
    while True:
        window = await asyncio.to_thread(next, windows, None)
        if window is None:
            break
        run.report.chunks_read += len(window.texts)
        run.report.tokens += window.tokens
        if run.progress:  # the CLI turns chunks/s into tokens/s with this
            run.progress("tokens", run.report.tokens, run.report.chunks_read)
        task = asyncio.ensure_future(embed(window))
        if pending is not None:
            await _write(*pending, (), run)
        pending = (window, task)
    removed = gone()
    if pending is not None:
        await _write(*pending, removed, run)
    elif removed:
        await run.live.apply([], None, removed)
    run.clock.add("embed", embedding.covered())


async def _write(
    window: Window, task: asyncio.Task[np.ndarray], removed: Sequence[str], run: _Run
) -> None:
    """One window into the catalogue and the index, once its vectors are in."""
    began = time.perf_counter()
    vecs = await task
    run.clock.add("embed_wait", time.perf_counter() - began)
    for touch in window.touched:
        run.catalog.touch(touch.path, touch.mtime_ns)
    if window.replaced or removed:
        await run.live.apply(window.replaced, vecs, removed)
    run.report.windows += 1
    run.report.chunks_indexed += len(vecs)
    if run.progress:
        run.progress("index", run.report.chunks_indexed, run.report.chunks_read)


def _embed_progress(
    progress: Progress | None, fetch: VectorFetcher, report: IngestReport
) -> Progress | None:
    """The fetcher's per-call progress as the run's: chunks embedded (or found in the cache)
    of the chunks read so far, over every window."""
    if progress is None:
        return None

    def forward(phase: str, done: int, total: int) -> None:
        progress(phase, fetch.embedded + fetch.hits, report.chunks_read)

    return forward
