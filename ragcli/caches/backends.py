"""The one place that picks where the caches live: SQLite in the data dir (the default) or
Redis (`redis_url`), behind the same small interface (get/put, counters, close)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragcli.caches.sqlite import AnswerCache, EmbeddingCache, RetrievalCache, open_cache_db
from ragcli.core.datadir import DataDir

if TYPE_CHECKING:
    from ragcli.core.config import Settings


@dataclass
class Caches:
    embedding: EmbeddingCache | Any
    retrieval: RetrievalCache | Any
    answer: AnswerCache | Any

    def close(self) -> None:
        self.embedding.close()  # closes the shared connection (SQLite) or pool (Redis)


def open_caches(settings: Settings) -> Caches:
    s = settings
    if s.redis_url:
        from ragcli.caches.redis_backend import RedisCaches

        redis = RedisCaches(s.redis_url)
        return Caches(
            redis.embedding(),
            redis.retrieval(s.retrieval_cache_size),
            redis.answer(s.answer_cache_size, s.answer_ttl),
        )
    path = DataDir(s.data_dir).cache
    conn = open_cache_db(path)
    return Caches(
        EmbeddingCache(path, conn),
        RetrievalCache(conn, s.retrieval_cache_size),
        AnswerCache(conn, s.answer_cache_size, s.answer_ttl),
    )


def open_embedding_cache(settings: Settings) -> EmbeddingCache | Any:
    """Only the embedding cache (ingest, index rebuilds)."""
    if settings.redis_url:
        from ragcli.caches.redis_backend import RedisCaches

        return RedisCaches(settings.redis_url).embedding()
    return EmbeddingCache(DataDir(settings.data_dir).cache)
