"""The catalogue's lexical search (ragcli/index/catalog_lexical.py) against a brute reference:
the single JOIN query it replaced, kept here as the oracle, on a real SQLite file. Same ids,
same scores (-bm25, bit for bit), same order, ties included, with and without filters; its
read connections: one per concurrent search, reused, closed with the catalogue, and never
behind a commit."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragcli.core.records import Chunk, Document
from ragcli.index import catalog_lexical
from ragcli.index.catalog import Catalog, LexicalFilter
from tests.support.lexical import QUESTIONS, WORDS, corpus, document, oracle


@pytest.fixture(autouse=True)
def prune_small_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prune whenever the counts allow, however few rows the common words hold (by default
    a small index is searched in one query: cheaper there), so that these small corpora
    take every plan."""
    monkeypatch.setattr(catalog_lexical, "PRUNE_FROM", 0)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog(tmp_path / "catalog.db")
    c.apply(corpus(), [], "emb-1")
    yield c
    c.close()


FILTERS = [
    LexicalFilter(),
    LexicalFilter(partitions=("p1",)),
    LexicalFilter(partitions=("p0", "p3")),
    LexicalFilter(since_ts=1200),
    LexicalFilter(sources=("docs/p2/d002.md", "docs/p1/d005.md", "docs/p1/d009.md")),
    LexicalFilter(
        partitions=("p1", "p2"), since_ts=1150, sources=("docs/p1/d017.md", "docs/p2/d002.md")
    ),
]


@pytest.mark.parametrize("where", FILTERS, ids=repr)
def test_lexical_search_equals_the_join_query_ties_included(
    catalog: Catalog, where: LexicalFilter
) -> None:
    compared = 0
    for question in QUESTIONS:
        for k in (1, 3, 7, 20, 40, 1000):
            expected = oracle(catalog, question, k, where)
            assert catalog.lexical_search(question, k, where) == expected, (question, k)
            compared += len(expected)
    assert compared > 50  # every filter leaves the searches something to rank


def test_the_corpus_has_ties_across_the_cut(catalog: Catalog) -> None:
    """The equality above covers ties: equal scores straddle a top-k boundary."""
    ranked = oracle(catalog, "pager rotation deploy", 1000)
    scores = [s for _, s in ranked]
    assert any(scores[i] == scores[i + 1] for i in range(len(scores) - 1))
    cut = next(i for i in range(1, len(scores)) if scores[i] == scores[i - 1])
    assert catalog.lexical_search("pager rotation deploy", cut) == ranked[:cut]


def test_a_search_sees_what_was_committed_after_its_connection_opened(catalog: Catalog) -> None:
    assert catalog.lexical_search("zebra", 5) == []  # opens (and keeps) a read connection
    d = document(99, "p0", 5000)
    catalog.apply([(d, [Chunk(0, "zebra crossing", 0, 14, 2)])], [], "emb-1")
    found = catalog.lexical_search("zebra", 5)
    assert [catalog.chunks([cid])[cid].source for cid, _ in found] == ["docs/p0/d099.md"]
    assert catalog.readers.opened == 1


def test_concurrent_searches_each_get_a_connection_and_give_it_back(catalog: Catalog) -> None:
    readers = catalog.readers
    with readers.reader() as a, readers.reader() as b:
        assert a.conn is not b.conn  # one per search in flight
    with readers.reader() as c:
        assert c in (a, b)  # reused afterwards
    assert readers.opened == 2


def test_searches_from_many_threads_at_once_answer_as_one_would(catalog: Catalog) -> None:
    expected = {q: oracle(catalog, q, 20) for q in QUESTIONS}
    start = threading.Barrier(4)
    errors: list[BaseException] = []
    got: list[dict[str, list[tuple[str, float]]]] = []

    def worker() -> None:
        try:
            start.wait(timeout=30)
            got.append({q: catalog.lexical_search(q, 20) for q in QUESTIONS * 5})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and got == [expected] * 4
    assert catalog.conn.in_transaction is False


def test_close_closes_the_read_connections(tmp_path: Path) -> None:
    c = Catalog(tmp_path / "catalog.db")
    c.apply(corpus(), [], "emb-1")
    c.lexical_search("pager", 3)
    with c.readers.reader() as reader:
        pass
    c.close()
    with pytest.raises(Exception, match="closed"):
        reader.conn.execute("SELECT 1")


def test_every_plan_is_taken_by_the_equality_tests(catalog: Catalog) -> None:
    """The questions above exercise each way a search can go (catalog_lexical.ranked)."""
    for where in FILTERS:
        for question in QUESTIONS:
            for k in (1, 3, 7, 20, 40, 1000):
                catalog.lexical_search(question, k, where)
    assert set(catalog.readers.plans) == {"one query", "pruned", "two steps", "filtered"}


def test_a_small_index_is_searched_in_one_query(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_lexical, "PRUNE_FROM", 1000)  # the default
    for question in QUESTIONS:
        assert catalog.lexical_search(question, 7) == oracle(catalog, question, 7)
    assert set(catalog.readers.plans) == {"one query"}  # 320 rows: never 1000 to prune


def test_counts_remembered_by_a_connection_follow_commits(tmp_path: Path) -> None:
    """A word common when first searched becomes rare after a delete: a search that kept its
    old count would bound its share too low and prune the row that is now the best."""
    c = Catalog(tmp_path / "catalog.db")
    rng = random.Random(3)

    def one(n: int, partition: str, text: str) -> tuple[Document, list[Chunk]]:
        return document(n, partition, 0), [Chunk(0, text, 0, len(text), len(text.split()))]

    def words() -> str:
        return " ".join(rng.choices(WORDS, k=9))

    docs = [one(i, "p0", f"quokka {words()}") for i in range(40)]
    docs += [one(100 + i, "p1", f"pager {words()}") for i in range(200)]
    docs += [one(400 + i, "p2", f"lemur {'lemur ' * i}pager") for i in range(5)]
    docs[0] = one(0, "p0", "quokka quokka quokka")
    c.apply(docs, [], "emb-1")
    question = "lemur quokka pager"
    try:
        assert c.lexical_search(question, 3) == oracle(c, question, 3)
        assert c.readers.plans["pruned"] == 1  # quokka's rows were left out, rightly
        c.apply([], [str(d.ref.path) for d, _ in docs[1:40]], "emb-1")
        found = c.lexical_search(question, 3)
        assert found == oracle(c, question, 3)
        assert c.chunks([found[0][0]])[found[0][0]].text == "quokka quokka quokka"
        assert c.readers.opened == 1  # the same connection, which had counted quokka's rows
    finally:
        c.close()


def test_a_search_reads_one_snapshot_even_when_a_commit_lands_midway(catalog: Catalog) -> None:
    """A chunk deleted (and committed) between the ranking and the id lookup of a search:
    that search still answers from the state it began with; the next one sees the delete."""
    expected = oracle(catalog, "pager rotation", 10)
    victim = expected[0][0]
    with catalog.readers.reader() as reader:
        pass  # the connection the search will borrow
    fired: list[str] = []

    def commit_midway(sql: str) -> None:
        if sql.startswith("SELECT rowid, id FROM chunks") and not fired:
            fired.append(sql)
            catalog.conn.execute("DELETE FROM chunks WHERE id = ?", (victim,))

    reader.conn.set_trace_callback(commit_midway)
    assert catalog.lexical_search("pager rotation", 10) == expected
    assert fired  # the delete did land in the middle of that search
    reader.conn.set_trace_callback(None)
    assert catalog.lexical_search("pager rotation", 10) == oracle(catalog, "pager rotation", 10)
    assert victim not in [cid for cid, _ in catalog.lexical_search("pager rotation", 10)]


def test_filtered_searches_are_pruned_too(catalog: Catalog) -> None:
    """The equality test's filtered searches take the pruning plans, not only one query."""
    for where in FILTERS[1:]:
        for question in QUESTIONS:
            for k in (1, 3, 7, 20):
                catalog.lexical_search(question, k, where)
    plans = catalog.readers.plans
    assert plans["filtered"] == sum(plans[p] for p in ("one query", "pruned", "two steps"))
    assert plans["pruned"] > 0 and plans["two steps"] > 0


def test_phrase_bounds_follow_fts5_idf_and_never_fail() -> None:
    bound = catalog_lexical.phrase_bound(1000, 10)  # idf = log(990.5 / 10.5) = 4.54683…
    assert 2.2 * 4.54683 < bound < 2.2 * 4.54684
    assert catalog_lexical.phrase_bound(1000, 900) == pytest.approx(2.2e-6)  # idf clamped
    assert catalog_lexical.phrase_bound(5, 9) == pytest.approx(2.2e-6)  # counts out of step
