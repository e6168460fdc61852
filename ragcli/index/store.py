"""The vector store: Chroma collections with explicit HNSW settings.

It takes vectors, never models. chromadb is imported on first use (≈0.85 s), so paths that
do not search (answer-cache hits, --help) never pay for it. The store is either embedded (a
directory in the data dir) or a Chroma server (`--chroma-url`, `chroma run`) that several data
dirs and replicas share; the catalogue records which collections are this data dir's.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ragcli.core.errors import RagcliError
from ragcli.core.native import native_import
from ragcli.core.urls import ChromaAccess

if TYPE_CHECKING:
    import numpy as np

    from ragcli.core.config import Settings

T = TypeVar("T")


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


def _transport_failure(exc: BaseException) -> BaseException | None:
    """The transport failure (refused, reset, timed out, a certificate that did not check)
    behind `exc`, which chromadb may have rewrapped as another error; None for a Chroma
    error."""
    import httpx

    seen: BaseException | None = exc
    for _ in range(5):  # chromadb wraps once or twice; never loop on a cycle
        if seen is None:
            return None
        if isinstance(seen, httpx.TransportError | ConnectionError | TimeoutError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Turn a Chroma server that went away, or that refuses our token, mid-operation into one
    clear line."""

    @functools.wraps(method)
    def call(self: Store, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            failure = self._server_failure(exc)
            if failure is not None:
                raise failure from None
            raise

    return call


# chromadb's registry of clients (one shared system per path) is not thread-safe: two
# PersistentClients of one path made at once (two pipelines loading in a long-lived daemon)
# break each other ("'RustBindingsAPI' object has no attribute 'bindings'"). Clients are made,
# and the registry cleared, under this lock.
_CLIENTS = threading.Lock()


def forget_loaded_indexes() -> None:
    """Chroma keeps one client per path, with the HNSW indexes it loaded, for the whole
    process (broken clients included): drop them, so that the next client opens the
    directory afresh and the next load reads each collection's current settings."""
    from chromadb.api.client import SharedSystemClient

    with _CLIENTS:
        SharedSystemClient.clear_system_cache()


def apply_ef_search(store: Store, collections: Sequence[str], ef_search: int) -> None:
    """Put `ef_search` on those of `collections` the store has, for the next load to read."""
    existing = set(store.names())
    for name in collections:
        if name in existing:
            store.set_ef_search(name, ef_search)
    forget_loaded_indexes()


def open_store(settings: Settings) -> Store:
    """The store the settings name: the Chroma server at `chroma_url`, else the data dir's."""
    if settings.chroma is not None:
        return Store(url=settings.chroma)
    from ragcli.core.datadir import DataDir

    return Store(DataDir(settings.data_dir).chroma)


class Store:
    """ragcli's collections in one Chroma database: a directory (embedded) or a server."""

    def __init__(self, path: Path | None = None, *, url: str | ChromaAccess = "") -> None:
        if (path is None) == (not url):
            raise ValueError("a Store needs a path or a url, not both")
        self.path = path
        # A server: its URL and how to authenticate (a bare URL: no token, default trust).
        self.access = ChromaAccess(url) if isinstance(url, str) and url else url or None
        self.url = self.access.url if self.access else ""
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        # Calls of `query` so far: what shows that a batch of questions searched together.
        self.queries = 0

    @property
    def where(self) -> str:
        """Where the index lives, for messages."""
        return f"the Chroma server at {self.url}" if self.url else f"the index at {self.path}"

    @property
    def client(self) -> Any:
        if self._client is None:
            with _CLIENTS:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        """A new Chroma client: of the server at `url`, else of the directory at `path`."""
        chromadb = native_import("chromadb")
        Settings = native_import("chromadb.config").Settings  # noqa: N806

        # Chroma logs a warning for every query asking for more results than exist.
        logging.getLogger("chromadb").setLevel(logging.ERROR)
        settings = Settings(anonymized_telemetry=False)
        if self.access is not None:
            return self._connect_server(chromadb.HttpClient, settings)
        assert self.path is not None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(self.path), settings=settings)
        except Exception as exc:  # chromadb raises many types; all mean the same here
            raise StoreError(f"cannot open the index at {self.path}: {exc}") from None

    def _connect_server(self, http_client: Callable[..., Any], settings: Any) -> Any:
        """A client of the server at `access`: its token header on every request, https
        checked against the CA file (else httpx's default trust)."""
        from ragcli.index.chroma_http import explain, refusal, ssl_context, warn_cleartext

        access = self.access
        assert access is not None
        host, port, ssl = access.address
        if ssl and access.ca_file:
            # An SSLContext, as httpx wants it (a path string is deprecated there); chromadb's
            # Settings declare bool | str but pass the value to httpx as is.
            settings.chroma_server_ssl_verify = ssl_context(access.ca_file)
        warn_cleartext(access)
        try:  # the constructor asks the server who we are (our token) and checks its tenant
            return http_client(
                host=host, port=port, ssl=ssl, headers=access.headers(), settings=settings
            )
        except Exception as exc:
            transport = _transport_failure(exc)
            refused = None if transport else refusal(access)
            if refused:
                raise StoreError(refused) from None
            start = "" if ssl else f" (start one with `chroma run --path DIR --port {port}`)"
            detail = access.redact(explain(transport or exc))
            raise StoreError(
                f"cannot reach the Chroma server at {self.url}{start}: {detail}"
            ) from None

    def _server_failure(self, exc: BaseException) -> StoreError | None:
        """For a server: the one line a failed call becomes (the server went away, or it, or
        its proxy, refuses our token); None for any other error, or the embedded store."""
        if self.access is None:
            return None
        from ragcli.index.chroma_http import explain, refusal

        transport = _transport_failure(exc)
        if transport is not None:
            detail = self.access.redact(explain(transport))
            return StoreError(f"lost the Chroma server at {self.url}: {detail}")
        refused = refusal(self.access)
        return StoreError(refused) if refused else None

    def _get(self, name: str) -> Any:
        coll = self._collections.get(name)
        if coll is None:
            client = self.client
            try:
                coll = client.get_collection(name, embedding_function=None)
            except Exception as exc:
                failure = self._server_failure(exc)
                if failure is not None:
                    raise failure from None
                raise StoreError(
                    f"index collection {name!r} is missing: run `ragcli index --rebuild`"
                ) from None
            self._collections[name] = coll
        return coll

    @_guarded
    def create(self, name: str, params: HnswParams) -> None:
        self._collections[name] = self.client.create_collection(
            name, configuration=params.as_chroma(), embedding_function=None
        )

    @_guarded
    def drop(self, name: str) -> None:
        self._collections.pop(name, None)
        with contextlib.suppress(Exception):  # already gone: dropping is idempotent
            self.client.delete_collection(name)

    @_guarded
    def names(self) -> list[str]:
        return [c.name for c in self.client.list_collections()]

    @_guarded
    def set_ef_search(self, name: str, ef_search: int) -> None:
        self._get(name).modify(configuration={"hnsw": {"ef_search": ef_search}})

    @_guarded
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

    @_guarded
    def delete(self, name: str, ids: Sequence[str]) -> None:
        coll = self._get(name)
        step = self.client.get_max_batch_size()
        for i in range(0, len(ids), step):
            coll.delete(ids=list(ids[i : i + step]))

    @_guarded
    def count(self, name: str) -> int:
        return self._get(name).count()

    @_guarded
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

    @_guarded
    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, Any]:
        """Stored vectors of the given ids (those the collection has)."""
        coll = self._get(name)
        out: dict[str, Any] = {}
        step = 5000
        for i in range(0, len(ids), step):
            got = coll.get(ids=list(ids[i : i + step]), include=["embeddings"])
            out.update(zip(got["ids"], got["embeddings"], strict=True))
        return out

    @_guarded
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

    @_guarded
    def query(
        self, name: str, vectors: np.ndarray, k: int, where: dict | None = None
    ) -> list[list[Hit]]:
        """Top-k per query vector, all queries in one call."""
        self.queries += 1
        coll = self._get(name)
        res = coll.query(
            query_embeddings=vectors, n_results=k, where=where or None, include=["distances"]
        )
        return [
            [Hit(i, 1.0 - float(d)) for i, d in zip(ids, dists, strict=True)]
            for ids, dists in zip(res["ids"], res["distances"], strict=True)
        ]
