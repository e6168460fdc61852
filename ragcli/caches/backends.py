"""The one place that picks where the caches live: SQLite in the data dir (the default) or
Redis (`redis_url`), behind the Protocols of caches.protocols. A cache switched off
(`no_cache`) is a null object (caches.null), so callers use every cache the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragcli.caches.null import NullAnswerCache, NullEmbeddingCache, NullRetrievalCache
from ragcli.caches.protocols import AnswerCache, EmbeddingCache, RetrievalCache
from ragcli.caches.sqlite import (
    SqliteAnswerCache,
    SqliteEmbeddingCache,
    SqliteRetrievalCache,
    open_cache_db,
)
from ragcli.core.datadir import DataDir

if TYPE_CHECKING:
    from ragcli.core.config import Settings


@dataclass
class Caches:
    embedding: EmbeddingCache
    retrieval: RetrievalCache
    answer: AnswerCache
    # Closes the connection (SQLite) or pool (Redis) the three share; by default the embedding
    # cache's own `close`, which does that when it is a real one.
    closer: Callable[[], None] | None = None

    def close(self) -> None:
        (self.closer or self.embedding.close)()


def open_caches(settings: Settings) -> Caches:
    """The three caches of `settings`; a cache that is off is a null cache. The backend is
    opened even when all three are off (as it always was: a bad `redis_url` fails early)."""
    s = settings
    on = s.caches
    embedding: EmbeddingCache
    retrieval: RetrievalCache
    answer: AnswerCache
    if s.redis_url:
        from ragcli.caches.redis_backend import RedisCaches

        redis = RedisCaches(s.redis_url)
        embedding, retrieval, answer = (
            redis.embedding(),
            redis.retrieval(s.retrieval_cache_size),
            redis.answer(s.answer_cache_size, s.answer_ttl),
        )
        closer = redis.close
    else:
        path = DataDir(s.data_dir).cache
        conn = open_cache_db(path)
        embedding, retrieval, answer = (
            SqliteEmbeddingCache(path, conn),
            SqliteRetrievalCache(conn, s.retrieval_cache_size),
            SqliteAnswerCache(conn, s.answer_cache_size, s.answer_ttl),
        )
        closer = conn.close
    return Caches(
        embedding if "embedding" in on else NullEmbeddingCache(),
        retrieval if "retrieval" in on else NullRetrievalCache(),
        answer if "answer" in on else NullAnswerCache(),
        closer,
    )


def open_embedding_cache(settings: Settings) -> EmbeddingCache:
    """Only the embedding cache (ingest, index rebuilds); always the real one, whatever
    `no_cache` says (`no_cache` governs the request path)."""
    if settings.redis_url:
        from ragcli.caches.redis_backend import RedisCaches

        return RedisCaches(settings.redis_url).embedding()
    return SqliteEmbeddingCache(DataDir(settings.data_dir).cache)
