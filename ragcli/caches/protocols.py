"""What the request path, ingest and index tuning may ask of a cache: one Protocol per cache.

The SQLite classes (caches.sqlite, the default), the Redis classes (caches.redis_backend) and
the null objects (caches.null, for a cache switched off) all implement them, so callers never
ask which backend they hold, or whether the cache is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass
class Counters:
    """Hits and misses of one cache in this process (`ask --json`, the server's metrics)."""

    hits: int = 0
    misses: int = 0


@dataclass(frozen=True)
class CachedAnswer:
    answer: str
    sources: list[tuple[str, float]]  # (chunk id, score) as they were when answered
    created: float
    similarity: float = 1.0  # < 1 for a semantic match


class EmbeddingCache(Protocol):
    """Vectors (float32 bytes) by `keys.embedding_key`. Shared by ingest and query time."""

    counters: Counters

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored vectors among `keys` (absent keys are misses)."""
        ...

    def put_many(self, model_id: str, dimensions: int, items: Iterable[tuple[str, bytes]]) -> None:
        """Store one batch at once: a crash never loses a stored batch."""
        ...

    def count(self) -> int: ...

    def close(self) -> None:
        """Close the backend's connection (shared by the three caches of one `open_caches`)."""
        ...


class RetrievalCache(Protocol):
    """(query, k, scope, index identity) → ranked (chunk id, score) pairs."""

    counters: Counters

    def get(self, key: str) -> list[tuple[str, float]] | None: ...

    def put(self, key: str, hits: Sequence[tuple[str, float]], index_version: int) -> None: ...


class AnswerCache(Protocol):
    """Finished answers: exact by key, or semantic (nearest question embedding within a cosine
    threshold, only within one scope, generator and index version)."""

    counters: Counters
    semantic_hits: int
    # False only for the null cache: the pipeline then skips the lookup stage altogether (no
    # `answer_cache` span, and no question embedding for a semantic match).
    enabled: bool

    def get(self, key: str) -> CachedAnswer | None: ...

    def nearest(
        self, scope: str, generator: str, index_version: int, vector: bytes, threshold: float
    ) -> CachedAnswer | None: ...

    def put(
        self,
        key: str,
        *,
        scope: str,
        question: str,
        vector: bytes | None,
        answer: str,
        sources: Sequence[tuple[str, float]],
        generator: str,
        index_version: int,
    ) -> None: ...
