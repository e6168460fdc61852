"""`ragcli status`'s view of the documents missing on disk: a fresh stat of every catalogued
document's file (index/missing.py; read-only: only `ingest` and `prune` write the marks that
retrieval follows), and how many of them retrieval already leaves out (marked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragcli.index.missing import scan

if TYPE_CHECKING:
    from ragcli.index.catalog import Catalog

EXAMPLES = 3  # paths the text output names


def empty() -> dict[str, Any]:
    return {"count": 0, "paths": [], "excluded": 0}


def missing_documents(catalog: Catalog) -> dict[str, Any]:
    """{"count", "paths" (every one, in path order), "excluded" (marked: retrieval skips
    them; the others are skipped once `ingest` or `prune` has run)}."""
    found = scan(catalog)
    return {"count": len(found.missing), "paths": found.missing, "excluded": found.marked}


def missing_line(missing: dict[str, Any]) -> str | None:
    """The status line for them, or None when there are none."""
    count = missing["count"]
    if not count:
        return None
    shown = ", ".join(missing["paths"][:EXAMPLES]) + (", …" if count > EXAMPLES else "")
    line = f"missing on disk: {count} documents ({shown}); `ragcli prune` removes them"
    served = count - missing["excluded"]
    if served:
        line += (
            f"; answers may still cite {served} of them until `ragcli ingest` or "
            "`ragcli prune` runs"
        )
    return line
