"""Null-object caches: what `open_caches` hands out for a cache switched off (`no_cache`).

Every lookup misses without counting (a cache that is off reports zero hits and zero misses),
every store is dropped, so the pipeline uses a cache the same way whether it is on or off.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ragcli.caches.protocols import CachedAnswer, Counters


class NullEmbeddingCache:
    """Finds nothing, keeps nothing."""

    def __init__(self) -> None:
        self.counters = Counters()

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return {}

    def put_many(self, model_id: str, dimensions: int, items: Iterable[tuple[str, bytes]]) -> None:
        return None

    def count(self) -> int:
        return 0

    def close(self) -> None:
        return None


class NullRetrievalCache:
    """Finds nothing, keeps nothing."""

    def __init__(self) -> None:
        self.counters = Counters()

    def get(self, key: str) -> list[tuple[str, float]] | None:
        return None

    def put(self, key: str, hits: Sequence[tuple[str, float]], index_version: int) -> None:
        return None


class NullAnswerCache:
    """Finds nothing, keeps nothing; `enabled` is False so no lookup stage is timed."""

    enabled = False

    def __init__(self) -> None:
        self.counters = Counters()
        self.semantic_hits = 0

    def get(self, key: str) -> CachedAnswer | None:
        return None

    def nearest(
        self, scope: str, generator: str, index_version: int, vector: bytes, threshold: float
    ) -> CachedAnswer | None:
        return None

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
    ) -> None:
        return None
