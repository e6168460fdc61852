"""What an embedded Chroma directory holds, read from Chroma's own SQLite file with the stdlib
(for `ragcli status`, which must not pay chromadb's import)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

CHROMA_DB = "chroma.sqlite3"


def collection_names(path: Path) -> set[str] | None:
    """Collection names of the Chroma directory `path`, read-only; None if unreadable."""
    db = path / CHROMA_DB
    if not db.is_file():
        return None
    # A write cut short (a kill, a full disk) leaves a hot journal that a read-only connection
    # cannot roll back; a read-write one does, exactly as Chroma's next open would.
    for uri in (f"file:{db}?mode=ro", f"file:{db}?mode=rw"):
        try:
            conn = sqlite3.connect(uri, uri=True)
            try:
                return {r[0] for r in conn.execute("SELECT name FROM collections")}
            finally:
                conn.close()
        except sqlite3.Error:
            continue
    return None
