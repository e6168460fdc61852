"""SQLite connections and schema migrations.

Reads on the request path use the stdlib `sqlite3` module (importing it is nearly free);
`sqlite-utils` (≈0.2 s to import) is used only when a schema has to be created or migrated,
which `PRAGMA user_version` tells us without importing it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.errors import RagcliError

if TYPE_CHECKING:
    import sqlite_utils

Migration = Callable[["sqlite_utils.Database"], None]


class DatabaseError(RagcliError):
    """A SQLite file is unreadable, corrupted, or on a read-only or full disk."""


def connect(path: Path, migrations: Sequence[Migration], what: str) -> sqlite3.Connection:
    """Open (creating if needed) a WAL-mode database and bring its schema up to date."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # REPLACE must fire delete triggers too (they keep the FTS5 index in step).
        conn.execute("PRAGMA recursive_triggers=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < len(migrations):
            _migrate(conn, migrations, version)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{what} database {path} is unusable ({exc})") from None
    except OSError as exc:
        raise DatabaseError(f"cannot create {path.parent}: {exc.strerror}") from None
    return conn


def _migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], version: int) -> None:
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    with transaction(conn):
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, migration in enumerate(migrations[version:], start=version + 1):
            migration(db)
            conn.execute(f"PRAGMA user_version={number}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """An IMMEDIATE transaction: the write lock is taken up front, so it cannot deadlock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
