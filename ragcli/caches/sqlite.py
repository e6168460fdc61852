"""The three caches on SQLite (the default backend), in the data dir's cache file, and the
`cache stats|clear` queries over it. It knows keys and bytes, not models or indexes."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.caches.protocols import CachedAnswer, Counters
from ragcli.core.db import connect, transaction

if TYPE_CHECKING:
    import sqlite_utils

_BATCH = 500  # keys per SELECT … IN (…)


def _m001_embeddings(db: sqlite_utils.Database) -> None:
    db.table("embeddings").create(
        {"key": str, "model": str, "dims": int, "vector": bytes, "created": float}, pk="key"
    )


def _m002_retrieval_and_answers(db: sqlite_utils.Database) -> None:
    db.table("retrievals").create(
        {"key": str, "hits": str, "index_version": int, "created": float}, pk="key"
    )
    db.table("retrievals").create_index(["created"])
    db.table("answers").create(
        {
            "key": str,
            "scope": str,
            "question": str,
            "vector": bytes,
            "answer": str,
            "sources": str,
            "generator": str,
            "index_version": int,
            "created": float,
        },
        pk="key",
    )
    db.table("answers").create_index(["scope", "generator", "index_version"])
    db.table("answers").create_index(["created"])


MIGRATIONS = [_m001_embeddings, _m002_retrieval_and_answers]


def open_cache_db(path: Path) -> sqlite3.Connection:
    return connect(path, MIGRATIONS, "cache")


class SqliteEmbeddingCache:
    """Vectors (float32 bytes) by `embedding_key`. Shared by ingest and query time."""

    def __init__(self, path: Path, conn: sqlite3.Connection | None = None) -> None:
        self.path = path
        self.conn = conn or open_cache_db(path)
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


def _pairs(raw: str | bytes) -> list[tuple[str, float]]:
    """(chunk id, score) pairs as stored: a JSON list of two-item lists."""
    return [(cid, score) for cid, score in json.loads(raw)]


def _evict(conn: sqlite3.Connection, table: str, keep: int) -> None:
    """Drop the oldest rows beyond `keep` (first in, first out: reads never write)."""
    count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if count > keep:
        conn.execute(
            f"DELETE FROM {table} WHERE key IN (SELECT key FROM {table} ORDER BY created LIMIT ?)",
            (count - keep,),
        )


class SqliteRetrievalCache:
    """(query, k, scope, index identity) → ranked (chunk id, score) pairs."""

    def __init__(self, conn: sqlite3.Connection, max_entries: int) -> None:
        self.conn = conn
        self.max_entries = max_entries
        self.counters = Counters()

    def get(self, key: str) -> list[tuple[str, float]] | None:
        row = self.conn.execute("SELECT hits FROM retrievals WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.counters.misses += 1
            return None
        self.counters.hits += 1
        return [(cid, score) for cid, score in json.loads(row[0])]

    def put(self, key: str, hits: Sequence[tuple[str, float]], index_version: int) -> None:
        with transaction(self.conn) as c:
            c.execute(
                "INSERT OR REPLACE INTO retrievals VALUES (?,?,?,?)",
                (
                    key,
                    json.dumps([[cid, round(s, 6)] for cid, s in hits]),
                    index_version,
                    time.time(),
                ),
            )
            _evict(c, "retrievals", self.max_entries)


class SqliteAnswerCache:
    """Finished answers. Exact: by question + retrieved chunks + generator + prompt version.
    Semantic (opt-in): a cached answer whose question embedding is within a cosine threshold,
    only ever within the same scope (partitions, filters), index version and generator."""

    enabled = True

    def __init__(self, conn: sqlite3.Connection, max_entries: int, ttl: float) -> None:
        self.conn = conn
        self.max_entries = max_entries
        self.ttl = ttl
        self.counters = Counters()
        self.semantic_hits = 0

    def _fresh(self, created: float) -> bool:
        return self.ttl <= 0 or time.time() - created < self.ttl

    def get(self, key: str) -> CachedAnswer | None:
        row = self.conn.execute(
            "SELECT answer, sources, created FROM answers WHERE key = ?", (key,)
        ).fetchone()
        if row is None or not self._fresh(row[2]):
            self.counters.misses += 1
            return None
        self.counters.hits += 1
        return CachedAnswer(row[0], _pairs(row[1]), row[2])

    def nearest(
        self, scope: str, generator: str, index_version: int, vector: bytes, threshold: float
    ) -> CachedAnswer | None:
        import numpy as np

        rows = self.conn.execute(
            "SELECT answer, sources, created, vector FROM answers WHERE scope = ? AND "
            "generator = ? AND index_version = ? AND vector IS NOT NULL",
            (scope, generator, index_version),
        ).fetchall()
        rows = [r for r in rows if self._fresh(r[2])]
        if not rows:
            return None
        q = np.frombuffer(vector, dtype=np.float32)
        matrix = np.stack([np.frombuffer(r[3], dtype=np.float32) for r in rows])
        sims = matrix @ q
        best = int(np.argmax(sims))
        if sims[best] < threshold:
            return None
        self.semantic_hits += 1
        r = rows[best]
        return CachedAnswer(r[0], _pairs(r[1]), r[2], float(sims[best]))

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
        with transaction(self.conn) as c:
            c.execute(
                "INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    key,
                    scope,
                    question,
                    vector,
                    answer,
                    json.dumps([[cid, round(s, 6)] for cid, s in sources]),
                    generator,
                    index_version,
                    time.time(),
                ),
            )
            _evict(c, "answers", self.max_entries)


def cache_stats(conn: sqlite3.Connection) -> dict[str, dict[str, int | float | None]]:
    out: dict[str, dict[str, int | float | None]] = {}
    for name, table in (
        ("embedding", "embeddings"),
        ("retrieval", "retrievals"),
        ("answer", "answers"),
    ):
        count, oldest = conn.execute(f"SELECT count(*), min(created) FROM {table}").fetchone()
        out[name] = {"entries": count, "oldest": oldest}
    return out


def clear_caches(conn: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
    tables = {"embedding": "embeddings", "retrieval": "retrievals", "answer": "answers"}
    removed: dict[str, int] = {}
    with transaction(conn) as c:
        for name in names:
            removed[name] = c.execute(f"DELETE FROM {tables[name]}").rowcount
    return removed
