"""Cache-first embedding: look every text up, embed only the misses, commit batch by batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ragcli.caches.sqlite import EmbeddingCache, embedding_key
from ragcli.core.errors import ProviderError

if TYPE_CHECKING:
    import numpy as np

    from ragcli.embedders.base import Embedder

# progress(phase, done, total): the CLI draws it; the core only reports.
Progress = Callable[[str, int, int], None]


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
        done = 0
        # The embedder plans the requests (sizes, concurrency) and yields each finished batch;
        # it is committed at once, so an interruption loses at most the batches in flight.
        try:
            async for rows, vecs in e.embed_batches([t for _, t in todo]):
                blobs = [
                    (todo[r][0], v.astype(np.float32).tobytes())
                    for r, v in zip(rows, vecs, strict=True)
                ]
                self.cache.put_many(e.cache_id, e.dimensions, blobs)
                found.update(blobs)
                done += len(rows)
                self.embedded += len(rows)
                if self.progress:
                    self.progress("embed", done, len(todo))
        except ProviderError as exc:
            if not done:
                raise
            raise ProviderError(
                f"{exc} ({done} of {len(todo)} embeddings of this run are saved in the cache; "
                "run the same command again to resume)"
            ) from None
        out = np.empty((len(texts), e.dimensions), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = np.frombuffer(found[key], dtype=np.float32)
        return out
