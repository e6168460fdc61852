"""Documents missing on disk, on the catalogue's side (a real SQLite file, real files in a
temporary folder): the scan (index/missing.py) stats each document's file and calls only a
certain absence missing; the marks move the version (and the index's, when it was current)
so that no cached retrieval or answer of the old state is served; the lexical search and
`known_ids` leave marked documents out; a document removed in the window where another takes
over its chunk ids does not take them out of the index."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragcli.core.records import Chunk, Document, FileRef
from ragcli.index import catalog_lexical, missing
from ragcli.index.catalog import Catalog, LexicalFilter
from tests.support.lexical import QUESTIONS, corpus, oracle


def on_disk(root: Path, name: str, text: str = "x") -> Document:
    """A document whose file exists under `root` (its folder's name is the source's)."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return Document(FileRef(path, root, "ops"), text, name, "1970-01-01", 0, f"h-{name}", 1, 1)


def chunks(*texts: str) -> list[Chunk]:
    return [Chunk(i, t, 0, len(t), 3) for i, t in enumerate(texts)]


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog(tmp_path / "catalog.db")
    yield c
    c.close()


def test_the_scan_calls_missing_only_what_is_certainly_gone(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "docs"
    docs = [on_disk(root, f"{n}.md") for n in ("a", "b", "c", "d")]
    catalog.apply([(d, chunks(f"text of {d.title}")) for d in docs], [], "emb")
    (root / "a.md").unlink()  # ENOENT
    (root / "b.md").unlink()
    (root / "b.md").mkdir()  # a folder now: it exists, and is kept
    c_path = str(root / "c.md")
    found = missing.scan(catalog)
    gone = [str(root / "a.md")]
    assert (found.checked, found.missing, found.unmarked, found.back) == (4, gone, gone, [])
    # a file that cannot be stat'ed for another reason may still exist: never missing
    real_stat = os.stat

    def refused(path: str, *a: object, **kw: object) -> os.stat_result:
        if path == c_path:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_stat(path, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(missing.os, "stat", refused)
    assert missing.scan(catalog).missing == gone
    monkeypatch.undo()
    # the folder moved away and a file in its place: every path below fails with ENOTDIR
    root.rename(tmp_path / "elsewhere")
    root.write_text("a file where the folder was")
    assert missing.scan(catalog).missing == sorted(str(root / f"{n}.md") for n in "abcd")
    # documents an ingest handles itself are not stat'ed
    handled = missing.scan(catalog, handled=lambda p: p.endswith(("a.md", "b.md")))
    assert handled.checked == 2


def test_marks_move_both_versions_once_and_only_when_a_mark_changes(
    catalog: Catalog, tmp_path: Path
) -> None:
    docs = [on_disk(tmp_path / "docs", f"{n}.md") for n in "abc"]
    catalog.apply([(d, chunks(f"{d.title} one", f"{d.title} two")) for d in docs], [], "emb", True)
    v = catalog.version
    assert catalog.get_meta("index.version") == str(v)
    a, b = str(docs[0].ref.path), str(docs[1].ref.path)
    assert catalog.mark_missing([a, b], []) is True
    assert catalog.version == v + 1 and catalog.get_meta("index.version") == str(v + 1)
    assert catalog.missing_documents() == [a, b]
    assert catalog.missing_chunks() == {"ops": 4}
    assert catalog.mark_missing([a, b], []) is False  # nothing changed: no new version
    assert catalog.version == v + 1
    assert catalog.mark_missing([], [b]) is True and catalog.missing_documents() == [a]
    # an index that was behind stays behind (the next run repairs it): marks never hide that
    catalog.set_meta("index.version", str(v))
    assert catalog.mark_missing([b], []) is True
    assert catalog.version == v + 3 and catalog.get_meta("index.version") == str(v)
    # a re-ingested document is present again
    catalog.apply([(docs[0], chunks("A one, changed"))], [], "emb")
    assert catalog.missing_documents() == [b]
    marks = dict(catalog.document_marks())
    assert marks == {str(d.ref.path): str(d.ref.path) == b for d in docs}


def test_known_ids_and_partitions_leave_marked_documents_out(
    catalog: Catalog, tmp_path: Path
) -> None:
    a, b = (on_disk(tmp_path / "docs", f"{n}.md") for n in "ab")
    catalog.apply([(a, chunks("alpha")), (b, chunks("beta"))], [], "emb")
    ids = {cid for cid, _ in catalog.chunk_texts()}
    catalog.mark_missing([str(a.ref.path)], [])
    kept = catalog.known_ids(ids)
    assert len(kept) == 1 and catalog.chunks(list(kept))[kept.pop()].text == "beta"
    assert len(catalog.chunk_partitions(sorted(ids))) == 2  # the index's own view: all
    assert len(catalog.chunk_partitions(sorted(ids), retrievable=True)) == 1


@pytest.mark.parametrize("prune_from", [0, catalog_lexical.PRUNE_FROM])
def test_lexical_search_leaves_marked_documents_out_and_still_returns_k(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prune_from: int
) -> None:
    """Against the oracle of tests/support/lexical.py with the marked documents' rows taken
    out before the LIMIT: same ids, scores and order, in every plan of the search."""
    monkeypatch.setattr(catalog_lexical, "PRUNE_FROM", prune_from)
    catalog = Catalog(tmp_path / "catalog.db")
    try:
        docs = corpus()
        catalog.apply(docs, [], "emb-1")
        gone = [str(d.ref.path) for d, _ in docs[::3]]
        catalog.mark_missing(gone, [])
        skipped = {cid for cid, _ in catalog.chunk_texts()} - catalog.known_ids(
            {cid for cid, _ in catalog.chunk_texts()}
        )
        assert len(skipped) == 8 * len(gone)
        compared = 0
        for where in (LexicalFilter(), LexicalFilter(partitions=("p1", "p2"))):
            for question in QUESTIONS:
                every = [h for h in oracle(catalog, question, 10_000, where) if h[0] not in skipped]
                for k in (1, 5, 20):
                    assert catalog.lexical_search(question, k, where) == every[:k], (question, k)
                    compared += len(every[:k])
        assert compared > 100
        catalog.mark_missing([], gone)  # back on disk: the search is the oracle's again
        for question in QUESTIONS[:5]:
            assert catalog.lexical_search(question, 20) == oracle(catalog, question, 20)
    finally:
        catalog.close()


def test_a_document_removed_as_another_takes_its_ids_leaves_them_in_the_index(
    catalog: Catalog, tmp_path: Path
) -> None:
    """A folder of the same name ingested from a new place shows the same sources, so its
    chunks have the old ones' ids: pruning the old place in the same window must not delete
    them from the index (plan), and the catalogue keeps them for the new document."""
    old = on_disk(tmp_path / "a" / "docs", "p.md")
    catalog.apply([(old, chunks("pager one", "pager two"))], [], "emb")
    new = on_disk(tmp_path / "b" / "docs", "p.md")
    added, deleted = catalog.plan([(new, chunks("pager one", "pager two"))], [str(old.ref.path)])
    assert len(added) == 2 and deleted == []
    catalog.apply([(new, chunks("pager one", "pager two"))], [str(old.ref.path)], "emb")
    assert catalog.counts() == {"documents": 1, "chunks": 2}
    assert catalog.known_ids({cid for cid, _ in added}) == {cid for cid, _ in added}
