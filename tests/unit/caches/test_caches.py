"""The three caches through the real pipeline: real SQLite, real Chroma, the real model (and
an OpenAI-compatible server on 127.0.0.1 where embedding requests are counted)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ragcli.core.db import transaction
from ragcli.retrieval.events import Query
from ragcli.retrieval.scope import since_timestamp
from tests.support.pipeline import PAGER, ask_query, ingest_corpus, pipeline_for


def test_second_ask_hits_retrieval_and_answer_caches(home: Path, corpus: Path) -> None:
    ingest_corpus(home, corpus)
    p = pipeline_for(home)
    first, spans = ask_query(p, Query(PAGER))
    assert spans["retrieve"].attrs["cache"] == "miss" and not first.cached
    second, spans = ask_query(p, Query(PAGER))
    assert spans["retrieve"].attrs["cache"] == "hit"
    assert second.cached == "exact" and second.answer == first.answer
    assert "embed" not in spans and "prompt" not in spans
    assert p.counters()["retrieval"] == {"hits": 1, "misses": 1}
    assert p.counters()["answer"]["hits"] == 1
    # a new process (new pipeline) sees the same entries
    third, _ = ask_query(pipeline_for(home), Query(PAGER))
    assert third.cached == "exact"


def test_corpus_change_invalidates_retrieval_and_answers(home: Path, corpus: Path) -> None:
    ingest_corpus(home, corpus)
    before, _ = ask_query(pipeline_for(home), Query(PAGER))
    pager = corpus / "ops" / "pager.md"
    pager.write_text(
        pager.read_text().replace("before 10:00 UTC on Monday", "after lunch on Friday")
    )
    ingest_corpus(home, corpus)
    after, spans = ask_query(pipeline_for(home), Query(PAGER))
    assert spans["retrieve"].attrs["cache"] == "miss"
    assert not after.cached
    assert "after lunch on Friday" in after.answer and "10:00 UTC" in before.answer


def test_each_cache_can_be_switched_off(home: Path, corpus: Path) -> None:
    ingest_corpus(home, corpus)
    ask_query(pipeline_for(home), Query(PAGER))
    p = pipeline_for(home, no_cache="retrieval,answer")
    done, spans = ask_query(p, Query(PAGER))
    assert not done.cached and spans["retrieve"].attrs["cache"] == "miss"
    assert spans["embed"].attrs["cache"] == "hit"  # the embedding cache is still on
    p = pipeline_for(home, no_cache="all")
    _, spans = ask_query(p, Query(PAGER))
    assert spans["embed"].attrs["cache"] == "miss"
    assert p.counters()["embedding"] == {"hits": 0, "misses": 0}


def test_semantic_reuse_stays_within_scope(home: Path, corpus: Path) -> None:
    ingest_corpus(home, corpus)
    p = pipeline_for(home, semantic_threshold=0.85)
    ask_query(p, Query(PAGER))
    near = "how can i rotate the on call pager"
    done, _ = ask_query(p, Query(near))
    assert done.cached == "semantic"
    # same wording, other partition or other filter: never reuse across scopes
    for q in (
        Query(PAGER, partitions=("hr",)),
        Query(near, partitions=("ops",)),
        Query(near, since="3650d"),
        Query(near, source="*/ops/*"),
    ):
        done, _ = ask_query(p, q)
        assert done.cached in ("", "exact") and done.cached != "semantic", q
    far, _ = ask_query(p, Query("How many days of annual leave do I get?"))
    assert not far.cached


def test_answer_ttl(home: Path, corpus: Path) -> None:
    """Expiry is judged without racing the clock: the TTL is an hour, far beyond anything this
    test does however loaded the machine, so an entry just written is fresh; the expired and
    the nearly-expired entries are made by writing their creation time into the past."""
    ttl = 3600
    ingest_corpus(home, corpus)
    p = pipeline_for(home, answer_ttl=ttl)
    first, _ = ask_query(p, Query(PAGER))
    assert not first.cached
    assert ask_query(p, Query(PAGER))[0].cached == "exact"

    def age_answers(seconds: float) -> None:
        with transaction(p.answer_cache.conn) as c:
            assert c.execute("UPDATE answers SET created = ?", (time.time() - seconds,)).rowcount

    age_answers(ttl / 2)  # half an hour old: still fresh
    assert ask_query(p, Query(PAGER))[0].cached == "exact"
    age_answers(ttl + 60)  # a minute past its TTL
    again, spans = ask_query(p, Query(PAGER))
    assert not again.cached and spans["answer_cache"].attrs["cache"] == "miss"
    assert "prompt" in spans and again.answer == first.answer  # answered anew
    assert p.counters()["answer"] == {"hits": 2, "misses": 2, "semantic_hits": 0}
    assert ask_query(p, Query(PAGER))[0].cached == "exact"  # and stored afresh


def test_caches_are_bounded(home: Path, corpus: Path) -> None:
    ingest_corpus(home, corpus)
    # abstaining off: an abstention is never cached, and "duty manager" is one on this corpus
    p = pipeline_for(home, retrieval_cache_size=2, answer_cache_size=2, abstain_threshold=0.0)
    questions = ("pager rotation", "annual leave", "payroll date", "duty manager")
    for q in questions:
        done, spans = ask_query(p, Query(q))
        assert not done.cached and done.answer and spans["retrieve"].attrs["cache"] == "miss"
    rows = p.retrieval_cache.conn.execute("SELECT count(*) FROM retrievals").fetchone()[0]
    answers = p.answer_cache.conn.execute("SELECT count(*) FROM answers").fetchone()[0]
    assert (rows, answers) == (2, 2)
    # the oldest went first: the last two questions are still cached, the first is not
    for q in questions[:1:-1]:
        done, spans = ask_query(p, Query(q))
        assert done.cached == "exact" and spans["retrieve"].attrs["cache"] == "hit", q
    done, spans = ask_query(p, Query(questions[0]))
    assert not done.cached and spans["retrieve"].attrs["cache"] == "miss"


def test_since_and_source_filters(home: Path, corpus: Path) -> None:
    ingest_corpus(home, corpus)
    p = pipeline_for(home)
    done, _ = ask_query(p, Query(PAGER, since="2026-01-01"))  # pager.md is dated 2026-03-14
    assert "PageRelay" in done.answer

    async def sources(q: Query) -> set[str]:
        out: set[str] = set()
        async for ev in p.ask(q):
            if hasattr(ev, "sources"):
                out = {s.chunk.relpath for s in ev.sources}
        return out

    # unfiltered, the question reaches every document (k=5: more than the corpus has chunks)
    assert asyncio.run(sources(Query("annual leave"))) == {
        "ops/pager.md",
        "hr/leave.md",
        "hr/notes.txt",
    }
    # the leave policy is dated 2025-01-10: a 2026 cut-off excludes it
    recent = asyncio.run(sources(Query("annual leave", since="2026-01-01")))
    assert recent and "hr/leave.md" not in recent  # notes.txt (no front matter) dates by mtime
    in_hr = asyncio.run(sources(Query("annual leave", source="*/hr/*")))
    assert in_hr == {"hr/leave.md", "hr/notes.txt"}


def test_since_parsing() -> None:
    now = 1_790_000_000.0
    day = since_timestamp("1d", now)
    assert day % 86400 == 0 and now - 2 * 86400 < day <= now - 86400
    assert since_timestamp("2026-01-01") == 1767225600
    with pytest.raises(Exception, match="--since"):
        since_timestamp("yesterday")
