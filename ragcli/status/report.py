"""`ragcli status`: what a data directory holds, what is wrong with it, and a digest to
compare two of them. Stdlib only: it never imports chromadb (index.chroma_files reads
Chroma's own SQLite file), so it stays fast."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.caches.sqlite import cache_stats, open_cache_db
from ragcli.core.datadir import DataDir
from ragcli.core.db import LOW_SPACE, DatabaseError, ReadOnlyError, free_bytes, writable
from ragcli.index import indexing
from ragcli.index.catalog import Catalog
from ragcli.index.chroma_files import collection_names
from ragcli.status import missing

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.core.urls import ChromaAccess

EMPTY_DIGEST = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of b""
# status's name of each cache → the caches' own name for it
_CACHES = {"embeddings": "embedding", "retrievals": "retrieval", "answers": "answer"}


def _server_problem(server: ChromaAccess, info: indexing.IndexInfo) -> str | None:
    """The index on a Chroma server: reachable, taking our token, and holding every
    collection of the index."""
    from ragcli.index.chroma_http import TokenRefused, explain, missing_collections

    url = server.url
    try:
        lacking = missing_collections(server, info.collections())
    except TokenRefused as exc:
        return str(exc)
    except (OSError, ValueError) as exc:
        return f"cannot reach the Chroma server at {url}: {server.redact(explain(exc))}"
    if lacking:
        return (
            f"the Chroma server at {url} lacks {len(lacking)} of this index's collections: "
            "run `ragcli index --rebuild`"
        )
    return None


def _index_problem(
    dirs: DataDir, info: indexing.IndexInfo, catalog: Catalog, server: ChromaAccess | None = None
) -> str | None:
    if server is not None:
        problem = _server_problem(server, info)
        if problem:
            return problem
    else:
        names = collection_names(dirs.chroma)
        if names is None or not set(info.collections()) <= names:
            return "the vector index is missing or unreadable: run `ragcli index --rebuild`"
    if catalog.get_meta(indexing.PENDING):
        return (
            "an ingest or prune was interrupted: run `ragcli index` (or the same command) to "
            "finish it"
        )
    if info.version != catalog.version:
        return "the index is behind the catalogue: run `ragcli index`"
    return None


def _redis_counts(url: str, empty: dict[str, int]) -> tuple[dict[str, int], str | None]:
    """Entries per cache on Redis, or a problem line if it cannot be read."""
    from ragcli.caches.redis_backend import RedisCaches
    from ragcli.core.errors import RagcliError

    try:
        redis = RedisCaches(url)
        try:
            stats = redis.stats()
        finally:
            redis.close()
    except RagcliError as exc:
        return empty, str(exc)
    return {key: int(stats[name]["entries"] or 0) for key, name in _CACHES.items()}, None


def _storage_problems(root: Path) -> list[str]:
    """A read-only data directory or a (nearly) full disk: what blocks every writer."""
    out: list[str] = []
    if not writable(root):
        out.append(
            f"the data directory {root} is read-only for this user: ragcli cannot ingest or "
            "answer from it (SQLite and Chroma write lock files even to read); use a writable "
            "--data-dir"
        )
    free = free_bytes(root)
    if free is not None and free < LOW_SPACE:
        out.append(
            f"the disk holding {root} is full ({free // 1024} kB free): free some space, "
            "then run the interrupted command again"
        )
    return out


def collect_status(settings: Settings) -> dict[str, Any]:
    dirs = DataDir(settings.data_dir)
    problems: list[str] = []
    out: dict[str, Any] = {
        "data_dir": str(dirs.root),
        "documents": 0,
        "chunks": 0,
        "partitions": {},
        "embedder": "",
        "index_version": 0,
        "index": None,
        "cache": {name: 0 for name in _CACHES},
        "digest": EMPTY_DIGEST,
        "missing": missing.empty(),  # documents missing on disk (status/missing.py)
        "problems": problems,
    }
    if not dirs.exists():  # never create a data directory just to describe it
        problems.append("nothing ingested yet: run `ragcli ingest PATH`")
        return out
    problems.extend(_storage_problems(dirs.root))
    try:
        catalog = Catalog(dirs.catalog)
    except ReadOnlyError:
        return out  # _storage_problems said why
    except DatabaseError as exc:
        problems.append(f"{exc}: re-ingest into a fresh --data-dir")
        return out
    try:
        out.update(catalog.counts())
        out["partitions"] = catalog.partitions()
        out["embedder"] = catalog.get_meta("embedder")
        out["index_version"] = catalog.version
        out["digest"] = catalog.digest()
        out["missing"] = missing.missing_documents(catalog)
        info = indexing.current(catalog)
        if info:
            problem = _index_problem(dirs, info, catalog, settings.chroma)
            out["index"] = {
                "name": info.name,
                "params": dataclasses.asdict(info.params),
                "version": info.version,
                "in_step": problem is None,
            }
            if problem:
                problems.append(problem)
        elif out["chunks"]:
            problems.append("there is no vector index: run `ragcli index --rebuild`")
    finally:
        catalog.close()
    if settings.chroma_url:
        out["chroma_url"] = settings.chroma_url
    if settings.redis_url:
        out["cache"], problem = _redis_counts(settings.redis_url, out["cache"])
        if problem:
            problems.append(problem)
    elif dirs.cache.is_file():
        try:
            conn = open_cache_db(dirs.cache)
            try:
                stats = cache_stats(conn)
                out["cache"] = {key: stats[name]["entries"] for key, name in _CACHES.items()}
            finally:
                conn.close()
        except DatabaseError as exc:
            problems.append(f"{exc}: run `ragcli cache clear`")
    return out
