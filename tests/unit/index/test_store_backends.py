"""The same retrieval tests on the embedded store and on a real Chroma server (`chroma run`
on 127.0.0.1, started by tests/conftest.py), plus what only a shared server has: several data
dirs on one server. Through ragcli processes (status, a server that is down):
tests/e2e/test_store_backends.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ragcli.core.config import load_settings
from ragcli.core.datadir import DataDir
from ragcli.embedders.local import LocalEmbedder
from ragcli.index import indexing
from ragcli.index.catalog import Catalog
from ragcli.index.store import open_store
from ragcli.index.tuning import tune_index
from ragcli.ingest.run import ingest
from ragcli.retrieval.events import DoneEvent, Query, SourcesEvent
from ragcli.retrieval.pipeline import Pipeline

EMB = LocalEmbedder()
PAGER = "How do I rotate the on-call pager?"
LEAVE = "How many days of annual leave do employees get?"


@pytest.fixture(params=["embedded", "server"])
def chroma_url(request: pytest.FixtureRequest) -> str:
    """'' for the data dir's embedded index, else the session's Chroma server."""
    return request.getfixturevalue("chroma_server").url if request.param == "server" else ""


def _settings(home: Path, chroma_url: str, **kw: Any):
    return load_settings({"data_dir": home, "chroma_url": chroma_url, **kw}, environ={})


def _ingest(home: Path, corpus: Path, chroma_url: str) -> None:
    asyncio.run(ingest([corpus], _settings(home, chroma_url), EMB))


def _ask(home: Path, chroma_url: str, query: Query) -> tuple[list[str], str]:
    """(sources in rank order, answer) with every cache off: the store answers."""

    async def go() -> tuple[list[str], str]:
        p = Pipeline(_settings(home, chroma_url, no_cache="all", retrieval="dense"), EMB)
        sources, answer = [], ""
        try:
            async for ev in p.ask(query):
                if isinstance(ev, SourcesEvent):
                    sources = [s.chunk.source for s in sorted(ev.sources, key=lambda s: s.rank)]
                elif isinstance(ev, DoneEvent):
                    answer = ev.answer
        finally:
            p.close()
        return sources, answer

    return asyncio.run(go())


def _index_matches_catalog(home: Path, chroma_url: str) -> None:
    """Every collection of the index holds exactly the catalogue's chunks."""
    catalog = Catalog(DataDir(home).catalog)
    try:
        info = indexing.current(catalog)
        assert info is not None and not catalog.get_meta(indexing.PENDING)
        want = {cid for cid, _ in catalog.chunk_texts()}
        partition_of = catalog.chunk_partitions(sorted(want))
    finally:
        catalog.close()
    store = open_store(_settings(home, chroma_url))
    assert store.ids(info.name) == want
    for partition, collection in info.partitions.items():
        mine = {cid for cid, p in partition_of.items() if p == partition}
        assert store.ids(collection) == mine, partition


def test_ask_finds_the_right_source(home: Path, corpus: Path, chroma_url: str) -> None:
    _ingest(home, corpus, chroma_url)
    sources, answer = _ask(home, chroma_url, Query(PAGER))
    assert sources[0].endswith("ops/pager.md") and "Hand Over" in answer
    sources, _ = _ask(home, chroma_url, Query(LEAVE, partitions=("hr",)))
    assert sources[0].endswith("hr/leave.md")
    assert all("/hr/" in s for s in sources)  # the partition's own collection
    _index_matches_catalog(home, chroma_url)


def test_reingest_after_change_and_removal_converges(
    home: Path, corpus: Path, chroma_url: str
) -> None:
    _ingest(home, corpus, chroma_url)
    pager = corpus / "ops" / "pager.md"
    pager.write_text(pager.read_text().replace("before 10:00 UTC on Monday", "after lunch"))
    (corpus / "hr" / "notes.txt").unlink()
    _ingest(home, corpus, chroma_url)
    _index_matches_catalog(home, chroma_url)
    sources, answer = _ask(home, chroma_url, Query(PAGER))
    assert "after lunch" in answer and "10:00 UTC" not in answer
    sources, _ = _ask(home, chroma_url, Query("When does payroll run?"))
    assert not any(s.endswith("notes.txt") for s in sources)


def test_rebuild_switches_to_new_collections(home: Path, corpus: Path, chroma_url: str) -> None:
    _ingest(home, corpus, chroma_url)
    settings = _settings(home, chroma_url)
    catalog = Catalog(DataDir(home).catalog)
    before = indexing.current(catalog)
    catalog.close()
    report = asyncio.run(tune_index(settings, {"m": 8}, rebuild=False, recall_queries=5))
    assert report["rebuilt"] and report["params"]["m"] == 8 and report["recall_at_10"] == 1.0
    assert (report["disk_bytes"] is None) == bool(chroma_url)
    catalog = Catalog(DataDir(home).catalog)
    after = indexing.current(catalog)
    catalog.close()
    assert before is not None and after is not None and after.name != before.name
    names = set(open_store(settings).names())
    assert set(after.collections()) <= names
    assert not set(before.collections()) & names  # the old index is gone
    _index_matches_catalog(home, chroma_url)
    assert _ask(home, chroma_url, Query(PAGER))[0][0].endswith("ops/pager.md")


def test_interrupted_ingest_is_reconciled(home: Path, corpus: Path, chroma_url: str) -> None:
    """`index.pending` left set, the index missing chunks: `index` repairs it on either store."""
    _ingest(home, corpus, chroma_url)
    catalog = Catalog(DataDir(home).catalog)
    info = indexing.current(catalog)
    assert info is not None
    catalog.set_meta(indexing.PENDING, "1")
    catalog.close()
    store = open_store(_settings(home, chroma_url))
    gone = sorted(store.ids(info.name))[:2]
    store.delete(info.name, gone)
    asyncio.run(tune_index(_settings(home, chroma_url), {}, rebuild=False, recall_queries=0))
    _index_matches_catalog(home, chroma_url)


def test_two_data_dirs_share_a_server_without_collisions(
    tmp_path: Path, corpus: Path, chroma_server: Any
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _ingest(a, corpus, chroma_server.url)
    _ingest(b, corpus, chroma_server.url)
    asyncio.run(tune_index(_settings(b, chroma_server.url), {}, rebuild=True, recall_queries=0))
    names = {}
    for home in (a, b):
        catalog = Catalog(DataDir(home).catalog)
        names[home] = catalog.get_meta(indexing.NAMESPACE)
        catalog.close()
    assert names[a] and names[b] and names[a] != names[b]
    # b's rebuild dropped its own old collections, never a's
    _index_matches_catalog(a, chroma_server.url)
    assert _ask(a, chroma_server.url, Query(PAGER))[0][0].endswith("ops/pager.md")
