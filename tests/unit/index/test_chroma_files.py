"""index.chroma_files reads the collection names of an embedded Chroma directory from Chroma's
own SQLite file, without chromadb (what `ragcli status` checks the index against)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.index.chroma_files import CHROMA_DB, collection_names
from ragcli.index.store import HnswParams, Store, forget_loaded_indexes

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_names_are_those_chroma_holds(tmp_path: Path) -> None:
    store = Store(tmp_path / "chroma")
    try:
        for name in ("ragcli-chunks-1", "ragcli-chunks-1-p-ops-12345678"):
            store.create(name, HnswParams())
        store.drop("ragcli-chunks-1-p-ops-12345678")
        store.create("ragcli-chunks-2", HnswParams())
        assert collection_names(tmp_path / "chroma") == {"ragcli-chunks-1", "ragcli-chunks-2"}
    finally:
        forget_loaded_indexes()


def test_no_directory_or_no_database_is_none(tmp_path: Path) -> None:
    assert collection_names(tmp_path / "nowhere") is None
    (tmp_path / "empty").mkdir()
    assert collection_names(tmp_path / "empty") is None


def test_an_unreadable_database_is_none(tmp_path: Path) -> None:
    (tmp_path / "chroma").mkdir()
    (tmp_path / "chroma" / CHROMA_DB).write_bytes(b"not a database" * 100)
    assert collection_names(tmp_path / "chroma") is None
