"""The vector store: Chroma collections with explicit HNSW settings.

It takes vectors, never models. chromadb is imported on first use (≈0.85 s), so paths that
do not search (answer-cache hits, --help) never pay for it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import RagcliError

if TYPE_CHECKING:
    import numpy as np


class StoreError(RagcliError):
    """The Chroma index is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class HnswParams:
    m: int = 16
    ef_construction: int = 128
    ef_search: int = 64

    def as_chroma(self) -> dict[str, Any]:
        return {
            "hnsw": {
                "space": "cosine",
                "max_neighbors": self.m,
                "ef_construction": self.ef_construction,
                "ef_search": self.ef_search,
            }
        }


@dataclass(frozen=True)
class Hit:
    id: str
    score: float  # cosine similarity, 1.0 = same direction


class Store:
    """One Chroma database (a directory) holding ragcli's collections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._client: Any = None
        self._collections: dict[str, Any] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            import chromadb
            from chromadb.config import Settings

            # Chroma logs a warning for every query asking for more results than exist.
            logging.getLogger("chromadb").setLevel(logging.ERROR)
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(
                    path=str(self.path), settings=Settings(anonymized_telemetry=False)
                )
            except Exception as exc:  # chromadb raises many types; all mean the same here
                raise StoreError(f"cannot open the index at {self.path}: {exc}") from None
        return self._client

    def _get(self, name: str) -> Any:
        coll = self._collections.get(name)
        if coll is None:
            try:
                coll = self.client.get_collection(name, embedding_function=None)
            except Exception:
                raise StoreError(
                    f"index collection {name!r} is missing: run `ragcli index --rebuild`"
                ) from None
            self._collections[name] = coll
        return coll

    def create(self, name: str, params: HnswParams) -> None:
        self._collections[name] = self.client.create_collection(
            name, configuration=params.as_chroma(), embedding_function=None
        )

    def drop(self, name: str) -> None:
        self._collections.pop(name, None)
        with contextlib.suppress(Exception):  # already gone: dropping is idempotent
            self.client.delete_collection(name)

    def names(self) -> list[str]:
        return [c.name for c in self.client.list_collections()]

    def set_ef_search(self, name: str, ef_search: int) -> None:
        self._get(name).modify(configuration={"hnsw": {"ef_search": ef_search}})

    def upsert(
        self, name: str, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict]
    ) -> None:
        coll = self._get(name)
        step = self.client.get_max_batch_size()
        for i in range(0, len(ids), step):
            coll.upsert(
                ids=list(ids[i : i + step]),
                embeddings=vectors[i : i + step],
                metadatas=list(metadatas[i : i + step]),
            )

    def delete(self, name: str, ids: Sequence[str]) -> None:
        coll = self._get(name)
        step = self.client.get_max_batch_size()
        for i in range(0, len(ids), step):
            coll.delete(ids=list(ids[i : i + step]))

    def count(self, name: str) -> int:
        return self._get(name).count()

    def ids(self, name: str) -> set[str]:
        coll = self._get(name)
        out: set[str] = set()
        step, offset = 10_000, 0
        while True:
            got = coll.get(include=[], limit=step, offset=offset)["ids"]
            out.update(got)
            if len(got) < step:
                return out
            offset += step

    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, Any]:
        """Stored vectors of the given ids (those the collection has)."""
        coll = self._get(name)
        out: dict[str, Any] = {}
        step = 5000
        for i in range(0, len(ids), step):
            got = coll.get(ids=list(ids[i : i + step]), include=["embeddings"])
            out.update(zip(got["ids"], got["embeddings"], strict=True))
        return out

    def dump(self, name: str) -> tuple[list[str], list[Any], list[dict]]:
        """Every id, vector and metadata of a collection (for exact search)."""
        coll = self._get(name)
        ids: list[str] = []
        vectors: list[Any] = []
        metas: list[dict] = []
        step, offset = 5000, 0
        while True:
            got = coll.get(include=["embeddings", "metadatas"], limit=step, offset=offset)
            ids += got["ids"]
            vectors += list(got["embeddings"])
            metas += got["metadatas"]
            if len(got["ids"]) < step:
                return ids, vectors, metas
            offset += step

    def query(
        self, name: str, vectors: np.ndarray, k: int, where: dict | None = None
    ) -> list[list[Hit]]:
        """Top-k per query vector, all queries in one call."""
        coll = self._get(name)
        res = coll.query(
            query_embeddings=vectors, n_results=k, where=where or None, include=["distances"]
        )
        return [
            [Hit(i, 1.0 - float(d)) for i, d in zip(ids, dists, strict=True)]
            for ids, dists in zip(res["ids"], res["distances"], strict=True)
        ]
