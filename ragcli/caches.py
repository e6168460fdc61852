"""Caches on SQLite. A leaf module: it knows keys and bytes, not models or indexes."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.db import connect, transaction

if TYPE_CHECKING:
    import sqlite_utils

_BATCH = 500  # keys per SELECT … IN (…)


def _m001_embeddings(db: sqlite_utils.Database) -> None:
    db["embeddings"].create(
        {"key": str, "model": str, "dims": int, "vector": bytes, "created": float}, pk="key"
    )


MIGRATIONS = [_m001_embeddings]


def embedding_key(model_id: str, dimensions: int, text: str) -> str:
    """Stable across processes and machines; differs for another model or dimension count."""
    return hashlib.sha256(f"{model_id}\0{dimensions}\0{text}".encode()).hexdigest()


@dataclass
class Counters:
    hits: int = 0
    misses: int = 0


class EmbeddingCache:
    """Vectors (float32 bytes) by `embedding_key`. Shared by ingest and query time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path, MIGRATIONS, "cache")
        self.counters = Counters()

    def close(self) -> None:
        self.conn.close()

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for i in range(0, len(keys), _BATCH):
            part = keys[i : i + _BATCH]
            marks = ",".join("?" * len(part))
            found.update(
                self.conn.execute(
                    f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", part
                )
            )
        self.counters.hits += len(found)
        self.counters.misses += len(set(keys)) - len(found)
        return found

    def put_many(self, model_id: str, dimensions: int, items: Iterable[tuple[str, bytes]]) -> None:
        """Store one batch in one committed transaction: a crash never loses a stored batch."""
        now = time.time()
        rows = [(k, model_id, dimensions, v, now) for k, v in items]
        with transaction(self.conn) as c:
            c.executemany("INSERT OR REPLACE INTO embeddings VALUES (?,?,?,?,?)", rows)

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
