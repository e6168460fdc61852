"""Ingest against a real SQLite catalogue, a real embedding cache and a real Chroma index."""

import asyncio
import os
from pathlib import Path

import pytest

from ragcli.catalog import Catalog
from ragcli.config import load_settings
from ragcli.datadir import DataDir
from ragcli.embedders.local import LocalEmbedder
from ragcli.errors import UsageError
from ragcli.ingest import ingest
from ragcli.status import collect_status
from ragcli.store import Store

EMB = LocalEmbedder()


def _ingest(home: Path, *paths: Path, **kw):
    settings = load_settings({"data_dir": home}, environ={})
    return asyncio.run(ingest(list(paths), settings, EMB, **kw)), settings


def _index_ids(home: Path) -> set[str]:
    dirs = DataDir(home)
    cat = Catalog(dirs.catalog)
    name = cat.get_meta("index.name")
    cat.close()
    return Store(dirs.chroma).ids(name)


def _catalog_ids(home: Path) -> set[str]:
    cat = Catalog(DataDir(home).catalog)
    try:
        return {cid for cid, _ in cat.chunk_texts()}
    finally:
        cat.close()


def test_rerun_on_unchanged_corpus_embeds_nothing(home: Path, corpus: Path) -> None:
    first, _ = _ingest(home, corpus)
    assert first.new == 3 and first.embedded == first.chunks > 0
    second, _ = _ingest(home, corpus)
    assert (second.new, second.changed, second.unchanged) == (0, 0, 3)
    assert second.embedded == 0 and second.chunks_added == 0
    assert second.index_version == first.index_version
    assert _index_ids(home) == _catalog_ids(home)


def test_changed_file_is_rechunked_and_removed_file_leaves_the_index(
    home: Path, corpus: Path
) -> None:
    _ingest(home, corpus)
    before = _catalog_ids(home)
    pager = corpus / "ops" / "pager.md"
    pager.write_text(pager.read_text() + "\nA new closing sentence about escalation policy.\n")
    (corpus / "hr" / "notes.txt").unlink()
    report, _ = _ingest(home, corpus)
    assert (report.changed, report.removed, report.unchanged) == (1, 1, 1)
    assert report.embedded >= 1 and report.chunks_deleted >= 2
    after = _catalog_ids(home)
    assert after != before
    assert _index_ids(home) == after
    assert report.index_version == 2


def test_touch_without_change_costs_nothing(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    pager = corpus / "ops" / "pager.md"
    os.utime(pager, ns=(pager.stat().st_atime_ns, pager.stat().st_mtime_ns + 10**9))
    report, _ = _ingest(home, corpus)
    assert report.unchanged == 3 and report.embedded == 0 and report.index_version == 1


def test_embedding_cache_is_shared_across_data_changes(home: Path, corpus: Path) -> None:
    """A file that goes away and comes back costs no new embeddings."""
    _ingest(home, corpus)
    leave = corpus / "hr" / "leave.md"
    text = leave.read_text()
    leave.unlink()
    _ingest(home, corpus)
    leave.write_text(text)
    report, _ = _ingest(home, corpus)
    assert report.new == 1 and report.embedded == 0 and report.cache_hits >= 1


def test_digest_is_equal_for_equal_content(tmp_path: Path, corpus: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _, sa = _ingest(a, corpus)
    _, sb = _ingest(b, corpus)
    assert collect_status(sa)["digest"] == collect_status(sb)["digest"]
    assert collect_status(sa)["chunks"] > 0


def test_empty_corpus_is_an_error(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.md").write_text("")
    with pytest.raises(UsageError, match="nothing to ingest"):
        _ingest(home, empty)


def test_two_folders_of_one_name_are_refused_before_anything_is_written(
    home: Path, corpus: Path, tmp_path: Path
) -> None:
    """Both would show as `corpus/…` and share chunk ids: one would overwrite the other."""
    twin = tmp_path / "elsewhere" / "corpus"
    (twin / "ops").mkdir(parents=True)
    (twin / "ops" / "pager.md").write_text((corpus / "ops" / "pager.md").read_text())
    with pytest.raises(UsageError, match="would both be 'corpus/ops/pager.md'"):
        _ingest(home, corpus, twin)  # in one run
    assert not _catalog_ids(home)  # nothing was written
    first, _ = _ingest(home, corpus)
    with pytest.raises(UsageError, match="into another data directory"):
        _ingest(home, twin)  # in a later run, against the catalogue
    assert _catalog_ids(home) == _index_ids(home) and len(_catalog_ids(home)) == first.chunks
    # a moved folder is no clash: the old path no longer exists
    moved = tmp_path / "moved" / "corpus"
    moved.parent.mkdir()
    corpus.rename(moved)
    assert _ingest(home, moved)[0].new == 3


def test_chunk_size_over_model_limit_is_refused(home: Path, corpus: Path) -> None:
    settings = load_settings({"data_dir": home, "chunk_tokens": 400}, environ={})
    with pytest.raises(UsageError, match="exceeds the embedder's input limit"):
        asyncio.run(ingest([corpus], settings, EMB))


def test_metadata_per_chunk(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    cat = Catalog(DataDir(home).catalog)
    try:
        ids = [cid for cid, _ in cat.chunk_texts()]
        records = cat.chunks(ids)
        meta = cat.chunk_metadata(ids)
    finally:
        cat.close()
    pager = [r for r in records.values() if r.relpath == "ops/pager.md"][0]
    assert (pager.partition, pager.date, pager.source) == (
        "ops",
        "2026-03-14",
        "corpus/ops/pager.md",
    )
    assert all({"partition", "source", "date_ts"} <= set(m) for m in meta)


def _collections(home: Path) -> dict[str, set[str]]:
    """partition (or "*" for the global collection) → the ids its collection holds."""
    from ragcli import indexing

    dirs = DataDir(home)
    cat = Catalog(dirs.catalog)
    info = indexing.current(cat)
    cat.close()
    store = Store(dirs.chroma)
    out = {"*": store.ids(info.name)}
    out.update({p: store.ids(name) for p, name in info.partitions.items()})
    return out


def _by_partition(home: Path) -> dict[str, set[str]]:
    cat = Catalog(DataDir(home).catalog)
    try:
        parts = cat.chunk_partitions([cid for cid, _ in cat.chunk_texts()])
    finally:
        cat.close()
    out: dict[str, set[str]] = {"*": set(parts)}
    for cid, p in parts.items():
        out.setdefault(p, set()).add(cid)
    return out


def test_partition_collections_follow_the_catalogue(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    assert _collections(home) == _by_partition(home)
    (corpus / "ops" / "pager.md").unlink()
    (corpus / "new").mkdir()
    (corpus / "new" / "a.md").write_text("A brand new partition about release trains.\n")
    _ingest(home, corpus)
    got, want = _collections(home), _by_partition(home)
    assert {p: ids for p, ids in got.items() if ids} == want  # ops is empty now, new exists
    settings = load_settings({"data_dir": home}, environ={})
    from ragcli.tuning import tune_index

    asyncio.run(tune_index(settings, {"m": 8}, True, 0))  # a rebuild recreates them all
    assert _collections(home) == _by_partition(home)
