"""eval.judging and eval.corpus in-process, on a real catalogue: a judged id finds its document
by relative path, source, absolute path or (for a staged BEIR corpus) its `_id`; every chunk
of a judged document carries its grade; a query's partitions are those of its relevant
documents; relevant ids the index lacks are reported, and a set that matches nothing fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragcli.core.errors import NotReadyError
from ragcli.core.records import Chunk, Document, FileRef
from ragcli.eval.corpus import CORPORA_DIR, MANIFEST, materialise_corpus
from ragcli.eval.judging import judge
from ragcli.eval.relevance import CorpusDoc, EvalQuery, RelevanceSet
from ragcli.index.catalog import Catalog, chunk_id, text_hash

ROOT = Path("/corpus/handbook")


def _doc(rel: str, partition: str, root: Path = ROOT) -> Document:
    return Document(FileRef(root / rel, root, partition), "", rel, "1970-01-01", 0, rel, 1, 1)


def _chunks(n: int, rel: str) -> list[Chunk]:
    return [Chunk(i, f"{rel} part {i}", 0, 1, 1) for i in range(n)]


def _ids(d: Document, cs: list[Chunk]) -> set[str]:
    return {chunk_id(d.ref.source, c.position, text_hash(c.text)) for c in cs}


def _set(qrels: dict[str, dict[str, int]]) -> RelevanceSet:
    queries = [EvalQuery(qid, f"question {qid}") for qid in qrels]
    return RelevanceSet("toy", "jsonl", Path("toy.jsonl"), queries, qrels)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog(tmp_path / "catalog.db")
    yield c
    c.close()


def test_judged_ids_match_by_relpath_source_or_path(catalog: Catalog, tmp_path: Path) -> None:
    pager, leave = _doc("ops/pager.md", "ops"), _doc("hr/leave.md", "hr")
    cp, cl = _chunks(3, "pager"), _chunks(2, "leave")
    catalog.apply([(pager, cp), (leave, cl)], [], "emb")
    rset = _set(
        {
            "q1": {"ops/pager.md": 2, "handbook/hr/leave.md": 0},  # relpath; source
            "q2": {str(ROOT / "hr/leave.md"): 1, "gone.md": 1},  # absolute path; missing
        }
    )
    judged, missing = judge(catalog, rset, tmp_path)
    assert missing == ["gone.md"]
    q1, q2 = judged["q1"], judged["q2"]
    assert q1.doc_grades == {"handbook/ops/pager.md": 2, "handbook/hr/leave.md": 0}
    assert q1.chunk_grades == {
        **dict.fromkeys(_ids(pager, cp), 2),
        **dict.fromkeys(_ids(leave, cl), 0),
    }
    assert q1.partitions == ("ops",)  # only relevant documents give partitions
    assert q2.doc_grades == {"handbook/hr/leave.md": 1, "missing:gone.md": 1}
    assert q2.chunk_grades == dict.fromkeys(_ids(leave, cl), 1)
    assert q2.partitions == ("hr",)


def test_a_set_that_matches_nothing_is_not_ready(catalog: Catalog, tmp_path: Path) -> None:
    catalog.apply([(_doc("a.md", "p"), _chunks(1, "a"))], [], "emb")
    with pytest.raises(NotReadyError, match="'nowhere.md'"):
        judge(catalog, _set({"q": {"nowhere.md": 1}}), tmp_path)


def test_a_staged_beir_corpus_maps_ids_that_are_not_paths(catalog: Catalog, tmp_path: Path) -> None:
    corpus = [
        CorpusDoc("doc-1", "Pager", "How to rotate the pager."),
        CorpusDoc("notes/leave.md", "", "Annual leave."),
    ]
    rset = _set({"q": {"doc-1": 1, "notes/leave.md": 2}})
    rset.corpus = corpus
    folder = materialise_corpus(rset, tmp_path)
    assert folder == tmp_path / CORPORA_DIR / "eval-toy"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert MANIFEST in files and "notes/leave.md" in files and len(files) == 3
    stem = next(f for f in files if f.startswith("doc-1-"))
    assert (folder / stem).read_text() == "Pager\n\nHow to rotate the pager."  # title kept
    # the corpus as an ingest of `folder` would catalogue it
    docs = [_doc(stem, "eval-toy", folder), _doc("notes/leave.md", "eval-toy", folder)]
    catalog.apply([(d, _chunks(1, d.ref.relpath)) for d in docs], [], "emb")
    judged, missing = judge(catalog, rset, tmp_path)
    assert missing == []
    assert judged["q"].doc_grades == {f"eval-toy/{stem}": 1, "eval-toy/notes/leave.md": 2}
    # a second staging rewrites nothing; a document dropped from the corpus leaves the folder
    before = (folder / stem).stat().st_mtime_ns
    rset.corpus = corpus[:1]
    materialise_corpus(rset, tmp_path)
    assert (folder / stem).stat().st_mtime_ns == before
    assert not (folder / "notes").exists()
