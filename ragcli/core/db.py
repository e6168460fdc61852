"""SQLite connections and schema migrations.

Reads on the request path use the stdlib `sqlite3` module (importing it is nearly free);
`sqlite-utils` (≈0.2 s to import) is used only when a schema has to be created or migrated,
which `PRAGMA user_version` tells us without importing it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.core.errors import RagcliError

if TYPE_CHECKING:
    import sqlite_utils

Migration = Callable[["sqlite_utils.Database"], None]


class DatabaseError(RagcliError):
    """A SQLite file is unreadable, corrupted, or on a read-only or full disk."""


class ReadOnlyError(DatabaseError):
    """The data directory cannot be written by this user (or sits on a read-only mount)."""


class StorageFullError(DatabaseError):
    """The disk holding the data directory is full (or a file-size limit was reached)."""


# What a storage failure raises that no ragcli code turned into a DatabaseError: SQLite's own
# errors and the OS's. `isinstance(exc, STORAGE_EXCEPTIONS)` lets code outside this module (the
# CLI's last-resort handler) recognise one without importing sqlite3 itself.
STORAGE_EXCEPTIONS: tuple[type[Exception], ...] = (sqlite3.Error, OSError)

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_FULL_WORDS = ("disk is full", "no space left", "file too large", "quota exceeded")
LOW_SPACE = 4 * 1024 * 1024  # under this many free bytes a failed write is a full disk


def free_bytes(path: Path) -> int | None:
    """Bytes available to this user on the filesystem holding `path` (or its nearest parent)."""
    for p in (path, *path.parents):
        try:
            st = os.statvfs(p)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize
    return None


def writable(path: Path) -> bool:
    """Can this user create files in `path` (the nearest existing parent if it is missing)?"""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return os.access(p, os.W_OK) and not _read_only_mount(p)


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def file_size_limit() -> int | None:
    """This process's file-size limit (`ulimit -f`) in bytes, None when unlimited."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def is_disk_full(exc: BaseException, where: Path | None = None) -> bool:
    """Did `exc` come from a full disk? By errno, by message, or by the free space left."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    message = str(exc).lower()
    if any(w in message for w in _FULL_WORDS):
        return True
    if "disk i/o error" in message and file_size_limit() is not None:
        return True  # SQLite reports a write refused with EFBIG as an I/O error
    if "error in compaction" in message and file_size_limit() is not None:
        return True  # so does Chroma, when its metadata segment cannot grow
    free = free_bytes(where) if where is not None else None
    return free is not None and free < LOW_SPACE


def read_only_error(data_dir: Path) -> ReadOnlyError:
    return ReadOnlyError(
        f"the data directory {data_dir} is read-only for this user: ragcli needs to write "
        "there, even to answer (SQLite and Chroma keep lock files beside the data); "
        "use a writable --data-dir (or RAGCLI_HOME), or ask its owner"
    )


def full_error(data_dir: Path, exc: BaseException) -> StorageFullError:
    free, limit = free_bytes(data_dir), file_size_limit()
    detail = " ".join(str(getattr(exc, "strerror", None) or exc).split())
    detail = detail if len(detail) <= 90 else detail[:89] + "…"
    if limit is not None and (free is None or free >= LOW_SPACE):
        return StorageFullError(
            f"storage: a file under {data_dir} is full: it reached this process's file-size "
            f"limit (`ulimit -f`, {limit // 1024} kB; {detail}): raise the limit and run the "
            "same command again (what was already stored is kept)"
        )
    left = f"{free // 1024} kB free" if free is not None else "no space left"
    return StorageFullError(
        f"storage: the disk holding {data_dir} is full ({left}; {detail}): free some space "
        "and run the same command again (what was already stored is kept)"
    )


def storage_error(data_dir: Path, exc: BaseException) -> DatabaseError | None:
    """The one-line error for a storage failure under `data_dir`, or None if it is not one."""
    if is_disk_full(exc, data_dir):
        return full_error(data_dir, exc)
    if not writable(data_dir) or (isinstance(exc, OSError) and exc.errno == errno.EROFS):
        return read_only_error(data_dir)
    if "readonly database" in str(exc) or "read-only" in str(exc):
        return read_only_error(data_dir)
    return None


@contextmanager
def storage_errors(data_dir: Path, wrapped: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """A full or read-only disk met mid-operation becomes its one-line error. Other ragcli
    errors pass untouched, except `wrapped` ones that may hide a storage failure (the store's)."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, RagcliError) and not isinstance(exc, wrapped):
            raise
        known = storage_error(data_dir, exc)
        if known is None:
            raise
        raise known from None


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
    except (sqlite3.DatabaseError, OSError) as exc:
        known = storage_error(path.parent, exc)
        if known is not None:
            raise known from None
        if isinstance(exc, OSError):
            raise DatabaseError(f"cannot create {path.parent}: {exc.strerror}") from None
        raise DatabaseError(f"{what} database {path} is unusable ({exc})") from None
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
