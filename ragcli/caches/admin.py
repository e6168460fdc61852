"""`ragcli cache stats|clear`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ragcli.caches.sqlite import cache_stats, clear_caches, open_cache_db
from ragcli.core.config import CACHE_NAMES
from ragcli.core.datadir import DataDir
from ragcli.core.db import DatabaseError
from ragcli.core.errors import UsageError

if TYPE_CHECKING:
    from ragcli.core.config import Settings


def _redis_stats(url: str) -> dict[str, Any]:
    from ragcli.caches.redis_backend import RedisCaches, display_url

    redis = RedisCaches(url)
    try:
        now = time.time()
        caches = {
            name: {
                "entries": s["entries"],
                "oldest_age_s": None if s["oldest"] is None else round(now - s["oldest"], 1),
            }
            for name, s in redis.stats().items()
        }
        used = redis.client.info("memory").get("used_memory", 0)
    finally:
        redis.close()
    return {"path": display_url(url), "bytes": int(used), "caches": caches}


def stats(settings: Settings) -> dict[str, Any]:
    """Entries and age per cache; `bytes` is the SQLite file's size, or Redis's used memory."""
    if settings.redis_url:
        return _redis_stats(settings.redis_url)
    path = DataDir(settings.data_dir).cache
    out: dict[str, Any] = {"path": str(path), "bytes": 0, "caches": {}}
    if not path.is_file():
        out["caches"] = {n: {"entries": 0, "oldest_age_s": None} for n in sorted(CACHE_NAMES)}
        return out
    conn = open_cache_db(path)
    try:
        now = time.time()
        for name, s in cache_stats(conn).items():
            oldest = s["oldest"]
            out["caches"][name] = {
                "entries": s["entries"],
                "oldest_age_s": None if oldest is None else round(now - oldest, 1),
            }
    finally:
        conn.close()
    out["bytes"] = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return out


def clear(settings: Settings, which: str) -> dict[str, int]:
    names = [n.strip() for n in which.split(",") if n.strip()]
    unknown = [n for n in names if n not in CACHE_NAMES]
    if unknown or not names:
        raise UsageError(
            f"unknown cache {unknown[0] if unknown else which!r}: use embedding, retrieval, answer"
        )
    if settings.redis_url:
        from ragcli.caches.redis_backend import RedisCaches

        redis = RedisCaches(settings.redis_url)
        try:
            return redis.clear(names)
        finally:
            redis.close()
    path = DataDir(settings.data_dir).cache
    if not path.is_file():
        return dict.fromkeys(names, 0)
    try:
        conn = open_cache_db(path)
    except DatabaseError:
        if set(names) != CACHE_NAMES:
            raise
        # An unreadable cache file is only a cache: set it aside (for a post-mortem) and
        # start afresh. Embeddings are re-computed on the next ingest or index rebuild.
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        path.rename(aside)
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return {name: -1 for name in names}
    try:
        return clear_caches(conn, names)
    finally:
        conn.close()
