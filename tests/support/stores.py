"""A real embedded Chroma store for the tests of retrieval that also records its queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ragcli.index.store import Hit, Store


class RecordingStore(Store):
    """A real embedded Chroma store that also records each query's (collection, k, where)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[tuple[str, int, dict | None]] = []

    def query(
        self, name: str, vectors: np.ndarray, k: int, where: dict | None = None
    ) -> list[list[Hit]]:
        self.calls.append((name, k, where))
        return super().query(name, vectors, k, where)
