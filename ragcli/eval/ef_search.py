"""ef_search swept by `ragcli eval`: set on the index's collections for fresh pipelines to load,
and restored afterwards. Chroma reads ef_search when it loads an index, so each value needs
fresh pipelines. `eval-restore.json` in the data directory remembers the value to restore
should the process die in between, and the next `eval` restores it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from ragcli.core.datadir import DataDir
from ragcli.index import indexing
from ragcli.index.store import Store, apply_ef_search

if TYPE_CHECKING:
    from pathlib import Path

    from ragcli.core.urls import ChromaAccess
    from ragcli.index.catalog import Catalog

RESTORE_FILE = "eval-restore.json"


@contextlib.contextmanager
def ef_search_control(
    data_dir: Path, catalog: Catalog, chroma: ChromaAccess | None = None
) -> Iterator[Callable[[int], None]]:
    """Yields set(ef): puts ef_search on every collection of the index, for fresh pipelines
    to load. Restores the recorded value on the way out (or at the next eval after a crash).
    The index is the data dir's embedded one, or on the Chroma server `chroma` (settings.chroma:
    its URL, token and CA file)."""
    info = indexing.current(catalog)
    assert info is not None
    restore_file = data_dir / RESTORE_FILE
    state = {"ef": info.params.ef_search}

    def apply(ef: int, collections: Sequence[str]) -> None:
        store = Store(url=chroma) if chroma else Store(DataDir(data_dir).chroma)
        apply_ef_search(store, collections, ef)

    if restore_file.is_file():  # a previous eval died before restoring
        with contextlib.suppress(OSError, ValueError, KeyError):
            left = json.loads(restore_file.read_text("utf-8"))
            apply(int(left["ef_search"]), left["collections"])
        restore_file.unlink(missing_ok=True)

    def set_ef(ef: int) -> None:
        if ef == state["ef"]:
            return
        if not restore_file.exists():
            restore_file.write_text(
                json.dumps({"ef_search": info.params.ef_search, "collections": info.collections()}),
                "utf-8",
            )
        apply(ef, info.collections())
        state["ef"] = ef

    try:
        yield set_ef
    finally:
        if state["ef"] != info.params.ef_search:
            apply(info.params.ef_search, info.collections())
        restore_file.unlink(missing_ok=True)
