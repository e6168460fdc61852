"""Evaluation in-process (issue 10): metrics checked by hand, the relevance-set readers, sweep
and minimum parsing, the FTS5 query. `ragcli eval` and the lexical index against the vector
index through real processes: tests/e2e/test_eval.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ragcli.eval import metrics
from ragcli.eval.minimums import parse_minimums
from ragcli.eval.relevance import RelevanceError, detect_format, load_set, read_trec_run
from ragcli.eval.sweeps import parse_sweeps
from tests.support.cli import REPO
from tests.support.eval_sets import SHIPPED, TOY_EXPECTED, write_toy


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_toy(tmp_path / "toy")


def test_metrics_match_the_hand_computed_values(toy: Path) -> None:
    rset = load_set(toy / "qrels.txt")
    assert rset.format == "trec" and [q.id for q in rset.queries] == ["q1", "q2", "q3"]
    assert rset.skipped == ["q4"]
    run = read_trec_run(toy / "run.txt")
    assert run["q1"] == ["d3", "d1", "d7", "d2"] and run["q2"][-1] == "d4"
    rows = [
        metrics.query_metrics(run[q.id][:10], rset.qrels[q.id], (1, 3, 5, 10)) for q in rset.queries
    ]
    assert rows[0]["ndcg@10"] == pytest.approx(0.64332, abs=1e-5)
    assert rows[0]["ndcg@3"] == pytest.approx(0.47962, abs=1e-5)
    assert rows[0]["first_relevant"] == 2 and rows[1]["first_relevant"] == 0
    mean = metrics.mean(rows)
    for name, value in TOY_EXPECTED.items():
        assert mean[name] == pytest.approx(value, abs=1e-5), name


def test_chunk_and_document_level_by_hand() -> None:
    # Chunks a1 a2 b1 a3 c1 (letter = document). Document b is relevant (grade 1).
    chunks = ["a1", "a2", "b1", "a3", "c1"]
    docs = metrics.collapse(c[0] for c in chunks)
    assert docs == ["a", "b", "c"]  # each document at its first chunk's rank
    assert metrics.mrr_at(docs, {"b": 1}) == 0.5  # b is 2nd document
    # At chunk level every chunk of b is relevant (b1, and b2 which was not retrieved):
    grades = {"b1": 1, "b2": 1}
    assert metrics.mrr_at(chunks, grades) == pytest.approx(1 / 3)  # b1 is 3rd chunk
    assert metrics.recall_at(chunks, grades, 5) == 0.5  # 1 of 2 relevant chunks
    assert metrics.hit_at(chunks, grades, 2) == 0.0
    # nDCG@10: DCG = 1/log2(4) = 0.5; ideal = 1 + 1/log2(3) = 1.63093 → 0.30657
    assert metrics.ndcg_at(chunks, grades) == pytest.approx(0.30657, abs=1e-5)


# -- readers ---------------------------------------------------------------------------------
def test_readers_for_every_format(tmp_path: Path, toy: Path) -> None:
    beir = load_set(SHIPPED, with_corpus=True)
    assert (beir.format, len(beir.queries), len(beir.corpus or [])) == ("beir", 40, 43)
    assert beir.queries[0].partitions == ("runbooks",)
    assert beir.qrels["q01"] == {"runbooks/rotate-on-call-pager.md": 1}
    assert detect_format(SHIPPED / "qrels" / "test.tsv") == "beir"  # a split by its file
    assert len(load_set(SHIPPED / "qrels" / "test.tsv").queries) == 40
    assert detect_format(toy) == "trec" and len(load_set(toy).queries) == 3

    simple = tmp_path / "set.jsonl"
    simple.write_text(
        '{"question": "How do I rotate the pager?", "sources": ["runbooks/a.md"]}\n'
        '{"id": "x", "question": "Leave?", "sources": {"hr/leave.md": 2, "hr/b.md": 1},'
        ' "partition": "hr"}\n'
    )
    rset = load_set(simple)
    assert rset.format == "jsonl" and [q.id for q in rset.queries] == ["q1", "x"]
    assert rset.qrels["x"] == {"hr/leave.md": 2, "hr/b.md": 1}
    assert rset.queries[1].partitions == ("hr",)
    # The fixture the shipped set is built from reads as a JSONL set as it is.
    fixture = load_set(REPO / "tests" / "fixtures" / "sample_questions.jsonl")
    assert len(fixture.queries) == 40


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.jsonl",
            '{"question": "a", "sources": ["x.md"]}\n{not json\n',
            "bad.jsonl:2: not JSON",
        ),
        ("nosrc.jsonl", '{"question": "a", "sources": []}\n', 'nosrc.jsonl:1: "sources"'),
        ("noq.jsonl", '{"sources": ["x.md"]}\n', 'noq.jsonl:1: missing or empty "question"'),
        ("short.txt", "q1 0 d1\n", "short.txt:1: expected 4 columns"),
        ("grade.txt", "q1 0 d1 high\n", "grade.txt:1: relevance 'high' is not an integer"),
        ("none.txt", "q1 0 d1 0\n", "no query has a relevant document"),
    ],
)
def test_malformed_sets_fail_with_one_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    (tmp_path / "queries.tsv").write_text("q1\tsome question\n")
    with pytest.raises(RelevanceError) as err:
        load_set(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_malformed_beir_and_trec_layouts(tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    shutil.copytree(SHIPPED, beir)
    with (beir / "qrels" / "test.tsv").open("a") as f:
        f.write("q01\tno/such/doc.md\t1\n")
    with pytest.raises(RelevanceError, match="not in corpus.jsonl"):
        load_set(beir, with_corpus=True)
    (beir / "qrels" / "test.tsv").rename(beir / "qrels" / "dev.tsv")
    (beir / "qrels" / "train.tsv").write_text("q01\trunbooks/rotate-on-call-pager.md\t1\n")
    with pytest.raises(RelevanceError, match="several qrels files"):
        load_set(beir)
    (beir / "queries.jsonl").write_text(
        '{"_id": "q01", "text": "a"}\n{"_id": "q01", "text": "b"}\n'
    )
    with pytest.raises(RelevanceError, match="appears twice"):
        load_set(beir / "qrels" / "dev.tsv")
    run = tmp_path / "run.txt"
    run.write_text("q1 Q0 d1 1 x toy\n")
    with pytest.raises(RelevanceError, match="run.txt:1: rank must be an integer"):
        read_trec_run(run)
    lonely = tmp_path / "lonely" / "qrels.txt"
    lonely.parent.mkdir()
    lonely.write_text("q1 0 d1 1\n")
    with pytest.raises(RelevanceError, match="no queries beside it"):
        load_set(lonely)


def test_sweep_and_minimum_parsing() -> None:
    sweeps = parse_sweeps(["ef_search=16,64,16", "retrieval=dense,hybrid", "partitions=on,off"])
    assert sweeps == {
        "ef_search": [16, 64],
        "retrieval": ["dense", "hybrid"],
        "partitions": [True, False],
    }
    mins = parse_minimums("ndcg@10=0.6, chunk.recall@5=0.8")
    assert [(m.level, m.metric, m.value) for m in mins] == [
        ("document", "ndcg@10", 0.6),
        ("chunk", "recall@5", 0.8),
    ]


# -- the lexical index (against the vector index: tests/e2e/test_eval.py) ----------------------
def test_fts_query_drops_stop_words_unless_nothing_else_is_left() -> None:
    from ragcli.index.catalog import fts_query

    assert fts_query("How do I rotate the on-call pager?") == '"rotate" OR "call" OR "pager"'
    assert fts_query("what is it") == '"what" OR "is" OR "it"'  # nothing but stop words
    assert fts_query('"); DROP TABLE chunks; --') == '"drop" OR "table" OR "chunks"'
    assert fts_query("?!") == ""
