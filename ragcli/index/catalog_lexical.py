"""The catalogue's lexical search (BM25 over its FTS5 index), on read connections of its own.

Why connections of its own: hybrid retrieval runs this search in a worker thread while the
dense search runs in another (SQLite releases the GIL while a statement steps), and the
catalogue's main connection is used meanwhile by the event loop's thread. One sqlite3
connection must not run statements from two threads at once, so each search borrows an idle
read-only connection from a small pool (one per search running at that moment), and gives it
back. Each statement of a connection in autocommit mode reads the last committed state, as
the main connection does.

Why two queries: ranking inside FTS5 alone (`bm25()` over the full-text table, ORDER BY …
LIMIT k) and mapping only the k winners' rowids to chunk ids costs about half of the single
statement that joined every matching row to `chunks` and `documents` before sorting (every
row that matches any query word: thousands at 13k chunks). The results are the same rows,
scores (-bm25) and order: the same bm25() of the same MATCH over the same table, ties in
rowid order (the order the join returned them in: FTS5 yields matches by rowid and SQLite's
sorter keeps that order among equal keys). A filtered search (partitions, date, sources)
keeps the join, which applies its filters before the LIMIT.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragcli.index.catalog import LexicalFilter

Ranked = list[tuple[str, float]]  # (chunk id, -bm25), best first

_TOP = (
    "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
    "ORDER BY bm25(chunks_fts), rowid LIMIT ?"
)
_IDS = "SELECT rowid, id FROM chunks WHERE rowid IN ({marks})"
_BATCH = 500  # rowids per SELECT … IN (…)


class Readers:
    """Read-only connections to one SQLite file, one per concurrent user, opened on demand
    and kept for reuse (the statement cache and page cache of a connection stay warm)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0  # connections opened so far (tests and `status`-like diagnostics)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA query_only=ON")
        with self._lock:
            self.opened += 1
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """An idle connection (or a new one) for this thread's use until the block ends."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        finally:
            with self._lock:
                keep = not self._closed
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def close(self) -> None:
        """Close the idle connections; one in use is closed when it is given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def top_k(conn: sqlite3.Connection, match: str, k: int, where: LexicalFilter) -> Ranked:
    """The k best chunks for the FTS5 query `match` among those `where` admits."""
    if where.partitions or where.since_ts is not None or where.sources:
        return _filtered(conn, match, k, where)
    rows: list[tuple[int, float]] = conn.execute(_TOP, (match, k)).fetchall()
    ids: dict[int, str] = {}
    for i in range(0, len(rows), _BATCH):
        part = [rowid for rowid, _ in rows[i : i + _BATCH]]
        ids.update(conn.execute(_IDS.format(marks=",".join("?" * len(part))), part))
    return [(ids[rowid], float(score)) for rowid, score in rows if rowid in ids]


def _filtered(conn: sqlite3.Connection, match: str, k: int, where: LexicalFilter) -> Ranked:
    """The filters join each matching row to its document, before the LIMIT."""
    sql = [
        "SELECT c.id, -bm25(chunks_fts) AS score FROM chunks_fts",
        "JOIN chunks c ON c.rowid = chunks_fts.rowid",
        "JOIN documents d ON d.path = c.doc_path WHERE chunks_fts MATCH ?",
    ]
    args: list[object] = [match]
    if where.partitions:
        sql.append(f"AND d.partition IN ({_marks(where.partitions)})")
        args += where.partitions
    if where.since_ts is not None:
        sql.append("AND d.date_ts >= ?")
        args.append(where.since_ts)
    if where.sources:
        sql.append(f"AND d.source IN ({_marks(where.sources)})")
        args += where.sources
    sql.append("ORDER BY bm25(chunks_fts), chunks_fts.rowid LIMIT ?")
    args.append(k)
    return [(cid, float(score)) for cid, score in conn.execute(" ".join(sql), args)]


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))
