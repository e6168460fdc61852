"""What every embedder offers. Embedders know texts and vectors, never the index."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np


class Embedder(Protocol):
    model_id: str
    dimensions: int
    max_tokens: int  # input limit, special tokens included
    # True when vectors are computed in this process (no network round trip per call): the
    # request path may then embed a few extra texts, e.g. sentences to quote.
    in_process: bool

    @property
    def cache_id(self) -> str:
        """Identifies the vector space: cache keys and the index are tied to it."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of each token (no special tokens), for chunking."""
        ...

    def token_spans_batch(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """`token_spans` of each text, exactly, tokenised together (on every core)."""
        ...

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, shape (len(texts), dimensions), in input order."""
        ...

    def embed_batches(self, texts: Sequence[str]) -> AsyncIterator[tuple[list[int], np.ndarray]]:
        """Embed many texts, yielding (row indices into `texts`, their vectors) per finished
        batch, in completion order. The embedder chooses batch sizes and concurrency."""
        ...
