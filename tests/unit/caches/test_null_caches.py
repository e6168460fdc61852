"""Null-object caches (caches.null): what `open_caches` hands out for a cache switched off.
They find nothing, count nothing, keep nothing; the pipeline uses them like the real ones."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ragcli.caches.backends import Caches, open_caches
from ragcli.caches.null import NullAnswerCache, NullEmbeddingCache, NullRetrievalCache
from ragcli.caches.protocols import AnswerCache, EmbeddingCache, RetrievalCache
from ragcli.caches.sqlite import SqliteAnswerCache, SqliteEmbeddingCache, SqliteRetrievalCache
from ragcli.core.config import Settings, load_settings
from ragcli.retrieval.events import DoneEvent, Query, Span
from ragcli.retrieval.pipeline import Pipeline


def _settings(home: Path, **kw: Any) -> Settings:
    return load_settings({"data_dir": home, **kw}, environ={})


def _put_answer(cache: AnswerCache, key: str) -> None:
    cache.put(
        key,
        scope="{}",
        question=key,
        vector=b"\x00\x00\x80\x3f",
        answer="an answer",
        sources=[("c1", 0.5)],
        generator="extractive",
        index_version=1,
    )


def test_null_caches_find_nothing_count_nothing_keep_nothing() -> None:
    embedding: EmbeddingCache = NullEmbeddingCache()
    retrieval: RetrievalCache = NullRetrievalCache()
    answer: AnswerCache = NullAnswerCache()
    embedding.put_many("m", 1, [("e", b"\x00\x00\x80\x3f")])
    retrieval.put("r", [("c1", 0.5)], 1)
    _put_answer(answer, "a")
    assert embedding.get_many(["e", "x"]) == {} and embedding.count() == 0
    assert retrieval.get("r") is None
    assert answer.get("a") is None
    assert answer.nearest("{}", "extractive", 1, b"\x00\x00\x80\x3f", 0.0) is None
    for cache in (embedding, retrieval, answer):
        assert (cache.counters.hits, cache.counters.misses) == (0, 0)
    assert answer.semantic_hits == 0 and answer.enabled is False
    embedding.close()


@pytest.mark.parametrize(
    ("no_cache", "real"),
    [
        ("", {"embedding", "retrieval", "answer"}),
        ("retrieval,answer", {"embedding"}),
        ("embedding", {"retrieval", "answer"}),
        ("all", set()),
    ],
)
def test_open_caches_gives_a_null_cache_for_each_cache_that_is_off(
    home: Path, no_cache: str, real: set[str]
) -> None:
    caches = open_caches(_settings(home, no_cache=no_cache))
    kinds = {
        "embedding": (caches.embedding, SqliteEmbeddingCache, NullEmbeddingCache),
        "retrieval": (caches.retrieval, SqliteRetrievalCache, NullRetrievalCache),
        "answer": (caches.answer, SqliteAnswerCache, NullAnswerCache),
    }
    try:
        for name, (cache, sqlite_cls, null_cls) in kinds.items():
            assert isinstance(cache, sqlite_cls if name in real else null_cls), name
        assert caches.answer.enabled is ("answer" in real)
    finally:
        caches.close()


def test_closing_caches_closes_the_shared_connection_even_when_all_are_null(home: Path) -> None:
    on = open_caches(_settings(home))
    conn = on.retrieval.conn  # type: ignore[attr-defined]
    off = open_caches(_settings(home, no_cache="all"))
    closer = off.closer
    assert isinstance(off, Caches) and closer is not None
    off.close()
    on.close()
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    with pytest.raises(sqlite3.ProgrammingError):
        closer.__self__.execute("SELECT 1")  # type: ignore[attr-defined]


def _ask(p: Pipeline, question: str) -> tuple[DoneEvent, dict[str, Span]]:
    async def go() -> tuple[DoneEvent, dict[str, Span]]:
        spans: dict[str, Span] = {}
        done = None
        try:
            async for ev in p.ask(Query(question)):
                if isinstance(ev, Span):
                    spans[ev.name] = ev
                elif isinstance(ev, DoneEvent):
                    done = ev
        finally:
            p.close()
        assert done is not None
        return done, spans

    return asyncio.run(go())


def test_a_pipeline_with_every_cache_off_has_no_cache_stage(sample_home: Path) -> None:
    """Lexical retrieval with a semantic threshold: were the answer cache consulted, the
    question would be embedded for a semantic match (a model load) and timed as a stage."""
    # relevance off (no abstention, no source floor): it would embed the question to compare
    settings = _settings(
        sample_home,
        no_cache="all",
        retrieval="lexical",
        semantic_threshold=0.9,
        abstain_threshold=0.0,
        source_floor=0.0,
    )
    p = Pipeline(settings)
    done, spans = _ask(p, "How do I rotate the on-call pager?")
    assert done.answer and not done.cached
    assert "answer_cache" not in spans and "embed" not in spans
    assert "load.embedder" not in spans and spans["retrieve"].attrs["cache"] == "miss"
    assert p.counters() == {
        "embedding": {"hits": 0, "misses": 0},
        "retrieval": {"hits": 0, "misses": 0},
        "answer": {"hits": 0, "misses": 0, "semantic_hits": 0},
    }
    again, spans = _ask(Pipeline(settings), "How do I rotate the on-call pager?")
    assert spans["retrieve"].attrs["cache"] == "miss" and not again.cached  # nothing was kept
