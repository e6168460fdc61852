"""The catalogue's lexical search (BM25 over its FTS5 index), on read connections of its own.

Why connections of its own: hybrid retrieval runs this search in a worker thread while the
dense search runs in another (SQLite releases the GIL while a statement steps), and the
catalogue's main connection is used meanwhile by the event loop's thread. One sqlite3
connection must not run statements from two threads at once, so each search borrows an idle
read-only connection from a small pool (one per search running at that moment), and gives it
back. A search is one read transaction: its statements read the last state committed when it
began, as the single statement it replaces did.

Why not one statement: the old query joined every matching row (thousands at 13k chunks:
any row with any query word) to `chunks` and `documents`, then sorted them by bm25().
Ranking inside FTS5 alone and mapping only the k winners' rowids to chunk ids costs about
half. Most of the rest is bm25() itself, evaluated on every matching row, mostly rows that
hold only common words and could never reach the top k. Exact pruning skips them
(MaxScore, Turtle & Flood 1995): one phrase's share of a row's BM25 is below
idf × (k1 + 1) whatever the row, so rows that match only phrases whose bounds add up to less
than the k-th best score found so far cannot be in the top k.

  1. rank (full bm25, every phrase) only the rows that hold a rare phrase: the rarest
     phrases whose document counts add up to at most a tenth of the index (when the other,
     common phrases hold fewer than PRUNE_FROM rows, one query is cheaper: a small index
     is always searched that way);
  2. if the k-th best of those beats the sum of the bounds of the other (common) phrases,
     that is the answer; else drop the commonest phrases while their bounds add up to less
     than that k-th score, rank the rows that hold one of the remaining common phrases and
     none of the rare ones, and merge the two lists.

Every returned score is bm25() of the same MATCH over the same table, so the rows, scores
(-bm25) and order are the single statement's, ties in rowid order (the order the join
returned them in: FTS5 yields matches by rowid and SQLite's sorter keeps that order among
equal keys). The counts come from the same snapshot as the ranking (one read transaction per
search) and are remembered per connection until another connection commits. A filtered
search (partitions, date, sources) joins its candidate rows to their documents and applies
the filters before the LIMIT, in each step: filters only take rows away, the bounds hold.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragcli.index.catalog import LexicalFilter

Ranked = list[tuple[str, float]]  # (chunk id, -bm25), best first
Rows = list[tuple[int, float]]  # (rowid, -bm25), best first

# The '+' keeps SQLite from handing `rowid IN (…)` to FTS5 as one lookup per rowid: FTS5
# walks the MATCH once and the IN only decides which rows are joined and scored.
_SELECT = "SELECT chunks_fts.rowid, -bm25(chunks_fts) FROM chunks_fts"
_JOIN = "JOIN chunks c ON c.rowid = chunks_fts.rowid JOIN documents d ON d.path = c.doc_path"
_HOLDING = "+chunks_fts.rowid IN (SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?)"
_LACKING = "+chunks_fts.rowid NOT IN (SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?)"
_ORDER = "ORDER BY bm25(chunks_fts), chunks_fts.rowid LIMIT ?"
_COUNT = "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
_IDS = "SELECT rowid, id FROM chunks WHERE rowid IN ({marks})"
# The rows of documents marked missing on disk: one lookup of the partial index on
# documents.missing, made once per statement (the subquery is not correlated).
_PRESENT = (
    "+chunks_fts.rowid NOT IN (SELECT c.rowid FROM documents d JOIN chunks c "
    "ON c.doc_path = d.path WHERE d.missing = 1)"
)
_ANY_MISSING = "SELECT EXISTS (SELECT 1 FROM documents WHERE missing = 1)"
_BATCH = 500  # rowids per SELECT … IN (…)
K1 = 1.2  # FTS5's bm25() constant k1 (fts5_aux.c): a phrase adds less than idf × (k1 + 1)
RARE_SHARE = 0.1  # step 1 ranks the rows of the rarest phrases, up to this share of the rows
PRUNE_FROM = 1000  # rows of common phrases under which one query costs less than two
_SAFETY = 1e-9  # relative margin on the bounds, far above float rounding in bm25()
_REMEMBERED = 50_000  # phrase counts kept per connection


def phrase_bound(rows: int, hits: int) -> float:
    """An upper bound on one phrase's share of any row's BM25 score: FTS5's idf (clamped to
    1e-6 when not positive, as bm25() clamps it) times k1 + 1, with a safety margin."""
    idf = max(math.log((max(rows - hits, 0) + 0.5) / (hits + 0.5)), 1e-6)
    return idf * (K1 + 1.0) * (1.0 + _SAFETY)


class Reader:
    """One read connection and what it remembers of the index: the number of rows and each
    phrase's number of matching rows, until another connection commits. PRAGMA data_version
    tells: read first in the search's transaction, it opens the snapshot that the counts and
    the ranking then read."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._version: int | None = None
        self._rows = 0
        self._hits: dict[str, int] = {}
        self._missing: tuple[int, bool] | None = None  # (data_version, any marked missing)

    def any_missing(self) -> bool:
        """Whether the catalogue marks any document missing on disk (call inside the
        search's read transaction; remembered until another connection commits)."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if self._missing is None or self._missing[0] != version:
            self._missing = (version, bool(self.conn.execute(_ANY_MISSING).fetchone()[0]))
        return self._missing[1]

    def counts(self, phrases: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(rows, {phrase: rows matching it}); call inside the search's read transaction."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version or len(self._hits) > _REMEMBERED:
            self._version, self._hits = version, {}
            self._rows = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        for p in phrases:
            if p not in self._hits:
                self._hits[p] = self.conn.execute(_COUNT, (p,)).fetchone()[0]
        return self._rows, {p: self._hits[p] for p in phrases}


class Readers:
    """Read-only connections to one SQLite file, one per concurrent user, opened on demand
    and kept for reuse (the statement cache and page cache of a connection stay warm)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._idle: list[Reader] = []
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0  # connections opened so far
        self.plans: Counter[str] = Counter()  # how the searches went (see `ranked`)

    def _open(self) -> Reader:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA query_only=ON")
        with self._lock:
            self.opened += 1
        return Reader(conn)

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """An idle reader (or a new one) for this thread's use until the block ends."""
        with self._lock:
            reader = self._idle.pop() if self._idle else None
        if reader is None:
            reader = self._open()
        try:
            yield reader
        finally:
            with self._lock:
                keep = not self._closed
                if keep:
                    self._idle.append(reader)
            if not keep:
                reader.conn.close()

    def search(self, phrases: Sequence[str], k: int, where: LexicalFilter) -> Ranked:
        """The k best chunks for the OR of `phrases` among those `where` admits, read in one
        snapshot of the catalogue."""
        with self.reader() as reader:
            conn = reader.conn
            conn.execute("BEGIN")  # its first read (of data_version) starts it
            try:
                if reader.any_missing():
                    where = dataclasses.replace(where, skip_missing=True)
                if where.partitions or where.since_ts is not None or where.sources:
                    self.plans["filtered"] += 1
                return _with_ids(conn, ranked(reader, phrases, k, where, self.plans))
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        """Close the idle connections; one in use is closed when it is given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for reader in idle:
            reader.conn.close()


def ranked(
    reader: Reader, phrases: Sequence[str], k: int, where: LexicalFilter, plans: Counter[str]
) -> Rows:
    """(rowid, -bm25) of the k best rows for the OR of `phrases` that `where` admits, best
    first, ties by rowid: what one statement returns, with the pruning described at the top
    (filters only take rows away: the bounds hold as they are)."""
    match = " OR ".join(phrases)

    def top(holding: list[str] | None = None, lacking: list[str] | None = None) -> Rows:
        sql, values = _statement(where, holding is not None, lacking is not None)
        extra = [" OR ".join(ps) for ps in (holding, lacking) if ps is not None]
        return reader.conn.execute(sql, [match, *extra, *values, k]).fetchall()

    if k <= 0 or len(phrases) < 2:
        plans["one query"] += 1
        return top()
    rows, hits = reader.counts(phrases)
    order = sorted(phrases, key=hits.__getitem__)  # rarest first
    rare, covered = [order[0]], hits[order[0]]
    for p in order[1:]:
        if covered + hits[p] > RARE_SHARE * rows:
            break
        rare.append(p)
        covered += hits[p]
    common = order[len(rare) :]
    if sum(hits[p] for p in common) < PRUNE_FROM:
        plans["one query"] += 1
        return top()
    first = top(holding=rare)
    kth = first[-1][1] if len(first) == k else -math.inf
    bound = 0.0
    while common and bound + phrase_bound(rows, hits[common[-1]]) < kth:
        bound += phrase_bound(rows, hits[common.pop()])  # rows with only these: below kth
    if not common:
        plans["pruned"] += 1
        return first
    plans["two steps"] += 1
    rest = top(holding=common, lacking=rare)
    return sorted(first + rest, key=lambda row: (-row[1], row[0]))[:k]


def _statement(where: LexicalFilter, holding: bool, lacking: bool) -> tuple[str, list[object]]:
    """The ranking statement: MATCH ?, then a ? for `holding` and one for `lacking` if asked,
    the filters' values (returned with it: they join each row to its document, before the
    LIMIT) and the LIMIT ?."""
    sql: list[str] = [_SELECT]
    values: list[object] = []
    filtered = bool(where.partitions or where.since_ts is not None or where.sources)
    if filtered:
        sql.append(_JOIN)
    sql.append("WHERE chunks_fts MATCH ?")
    if holding:
        sql.append(f"AND {_HOLDING}")
    if lacking:
        sql.append(f"AND {_LACKING}")
    if where.skip_missing:
        sql.append(f"AND {_PRESENT}")
    if where.partitions:
        sql.append(f"AND d.partition IN ({_marks(where.partitions)})")
        values += where.partitions
    if where.since_ts is not None:
        sql.append("AND d.date_ts >= ?")
        values.append(where.since_ts)
    if where.sources:
        sql.append(f"AND d.source IN ({_marks(where.sources)})")
        values += where.sources
    sql.append(_ORDER)
    return " ".join(sql), values


def _with_ids(conn: sqlite3.Connection, rows: Rows) -> Ranked:
    ids: dict[int, str] = {}
    for i in range(0, len(rows), _BATCH):
        part = [rowid for rowid, _ in rows[i : i + _BATCH]]
        ids.update(conn.execute(_IDS.format(marks=",".join("?" * len(part))), part))
    return [(ids[rowid], float(score)) for rowid, score in rows if rowid in ids]


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))
