"""`ragcli status`: what a data directory holds, and a digest to compare two of them."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ragcli import indexing
from ragcli.caches import EmbeddingCache
from ragcli.catalog import Catalog
from ragcli.datadir import DataDir

if TYPE_CHECKING:
    from ragcli.config import Settings

EMPTY_DIGEST = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of b""


def collect_status(settings: Settings) -> dict[str, Any]:
    dirs = DataDir(settings.data_dir)
    out: dict[str, Any] = {
        "data_dir": str(dirs.root),
        "documents": 0,
        "chunks": 0,
        "partitions": {},
        "embedder": "",
        "index_version": 0,
        "index": None,
        "cache": {"embeddings": 0},
        "digest": EMPTY_DIGEST,
    }
    if not dirs.exists():  # never create a data directory just to describe it
        return out
    catalog = Catalog(dirs.catalog)
    try:
        out.update(catalog.counts())
        out["partitions"] = catalog.partitions()
        out["embedder"] = catalog.get_meta("embedder")
        out["index_version"] = catalog.version
        out["digest"] = catalog.digest()
        info = indexing.current(catalog)
        if info:
            out["index"] = {
                "name": info.name,
                "params": dataclasses.asdict(info.params),
                "version": info.version,
                "in_step": info.version == catalog.version,
            }
    finally:
        catalog.close()
    if dirs.cache.is_file():
        cache = EmbeddingCache(dirs.cache)
        try:
            out["cache"] = {"embeddings": cache.count()}
        finally:
            cache.close()
    return out
