"""Cache-first embedding: look every text up, embed only the misses, commit batch by batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ragcli.caches import EmbeddingCache, embedding_key

if TYPE_CHECKING:
    import numpy as np

    from ragcli.embedders.base import Embedder

# progress(phase, done, total): the CLI draws it; the core only reports.
Progress = Callable[[str, int, int], None]
EMBED_BATCH = 64


class VectorFetcher:
    """Cache-first embedding: look every text up, embed only the misses, commit per batch."""

    def __init__(
        self, embedder: Embedder, cache: EmbeddingCache, progress: Progress | None
    ) -> None:
        self.embedder = embedder
        self.cache = cache
        self.progress = progress
        self.embedded = 0
        self.hits = 0

    async def __call__(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return await self.vectors([text for _, text in pairs])

    async def vectors(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        e = self.embedder
        keys = [embedding_key(e.cache_id, e.dimensions, t) for t in texts]
        found = self.cache.get_many(keys)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found and key not in missing:
                missing[key] = text
        self.hits += len(texts) - sum(1 for k in keys if k in missing)
        todo = list(missing.items())
        # Similar lengths in one batch: padding only to the longest text costs less.
        todo.sort(key=lambda kv: len(kv[1]))
        for i in range(0, len(todo), EMBED_BATCH):
            part = todo[i : i + EMBED_BATCH]
            vecs = await e.aembed([t for _, t in part])
            blobs = [
                (k, v.astype(np.float32).tobytes()) for (k, _), v in zip(part, vecs, strict=True)
            ]
            self.cache.put_many(e.cache_id, e.dimensions, blobs)
            found.update(blobs)
            self.embedded += len(part)
            if self.progress:
                self.progress("embed", min(i + EMBED_BATCH, len(todo)), len(todo))
        out = np.empty((len(texts), e.dimensions), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = np.frombuffer(found[key], dtype=np.float32)
        return out
