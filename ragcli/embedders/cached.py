"""Cache-first embedding, the one helper for ingest, index rebuilds and the request path:
look every text up in the embedding cache, embed only the misses, store what was embedded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from ragcli.caches.keys import embedding_key
from ragcli.core.errors import ProviderError

if TYPE_CHECKING:
    import numpy as np

    from ragcli.caches.protocols import EmbeddingCache
    from ragcli.embedders.base import Embedder

# progress(phase, done, total): the CLI draws it; the core only reports.
Progress = Callable[[str, int, int], None]


class VectorFetcher:
    """Cache-first embedding. `hits` and `embedded` add up over every call.

    Two ways to embed the misses:
    - `per_batch=True` (ingest, rebuilds): the embedder plans the requests and each finished
      batch is committed at once, so an interruption loses at most the batches in flight;
    - `per_batch=False` (questions at query time): all misses in one model call, stored after.
    `before_embed` is awaited once before the model is first needed (the pipeline times the
    model's load there); a call whose texts are all cached never awaits it.
    """

    def __init__(
        self,
        embedder: Embedder,
        cache: EmbeddingCache,
        progress: Progress | None = None,
        *,
        per_batch: bool = True,
        before_embed: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.embedder = embedder
        self.cache = cache
        self.progress = progress
        self.per_batch = per_batch
        self.before_embed = before_embed
        self.embedded = 0
        self.hits = 0

    async def __call__(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Vectors for (chunk id, text) pairs, as the index builders ask for them."""
        return await self.vectors([text for _, text in pairs])

    async def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """float32 vectors, shape (len(texts), dimensions), in input order."""
        import numpy as np

        e = self.embedder
        keys = [embedding_key(e.cache_id, e.dimensions, t) for t in texts]
        found = self.cache.get_many(keys)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found and key not in missing:
                missing[key] = text
        self.hits += len(texts) - sum(1 for k in keys if k in missing)
        if missing:
            if self.before_embed is not None:
                await self.before_embed()
            found.update(await self._embed_missing(list(missing.items())))
        out = np.empty((len(texts), e.dimensions), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = np.frombuffer(found[key], dtype=np.float32)
        return out

    async def _embed_missing(self, todo: list[tuple[str, str]]) -> dict[str, bytes]:
        """Embed (key, text) pairs, storing them as they come; returns key → vector bytes."""
        import numpy as np

        e = self.embedder
        done: dict[str, bytes] = {}
        try:
            async for rows, vecs in self._batches([t for _, t in todo]):
                blobs = [
                    (todo[r][0], v.astype(np.float32).tobytes())
                    for r, v in zip(rows, vecs, strict=True)
                ]
                self.cache.put_many(e.cache_id, e.dimensions, blobs)
                done.update(blobs)
                self.embedded += len(rows)
                if self.progress:
                    self.progress("embed", len(done), len(todo))
        except ProviderError as exc:
            if not done:
                raise
            raise ProviderError(
                f"{exc} ({len(done)} of {len(todo)} embeddings of this run are saved in the "
                "cache; run the same command again to resume)"
            ) from None
        return done

    async def _batches(self, texts: Sequence[str]) -> AsyncIterator[tuple[list[int], np.ndarray]]:
        if self.per_batch:
            async for rows, vecs in self.embedder.embed_batches(texts):
                yield rows, vecs
        else:
            yield list(range(len(texts))), await self.embedder.aembed(texts)
