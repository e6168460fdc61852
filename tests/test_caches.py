"""The three caches through the real pipeline: real SQLite, real Chroma, the real model."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import load_settings
from ragcli.embedders.local import LocalEmbedder
from ragcli.ingest import ingest
from ragcli.pipeline import DoneEvent, Pipeline, Query, Span, since_timestamp
from tests.conftest import Run

EMB = LocalEmbedder()
PAGER = "How do I rotate the on-call pager?"


def _settings(home: Path, **kw: Any):
    return load_settings({"data_dir": home, **kw}, environ={})


def _ingest(home: Path, corpus: Path) -> None:
    asyncio.run(ingest([corpus], _settings(home), EMB))


def _ask(pipeline: Pipeline, query: Query) -> tuple[DoneEvent, dict[str, Span]]:
    async def go() -> tuple[DoneEvent, dict[str, Span]]:
        spans: dict[str, Span] = {}
        done = None
        async for ev in pipeline.ask(query):
            if isinstance(ev, Span):
                spans[ev.name] = ev
            elif isinstance(ev, DoneEvent):
                done = ev
        assert done is not None
        return done, spans

    return asyncio.run(go())


def _pipeline(home: Path, **kw: Any) -> Pipeline:
    p = Pipeline(_settings(home, **kw))
    p.embedder = EMB  # share the loaded model across tests (same class, same files)
    return p


def test_second_ask_hits_retrieval_and_answer_caches(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    p = _pipeline(home)
    first, spans = _ask(p, Query(PAGER))
    assert spans["retrieve"].attrs["cache"] == "miss" and not first.cached
    second, spans = _ask(p, Query(PAGER))
    assert spans["retrieve"].attrs["cache"] == "hit"
    assert second.cached == "exact" and second.answer == first.answer
    assert "embed" not in spans and "prompt" not in spans
    assert p.counters()["retrieval"] == {"hits": 1, "misses": 1}
    assert p.counters()["answer"]["hits"] == 1
    # a new process (new pipeline) sees the same entries
    third, _ = _ask(_pipeline(home), Query(PAGER))
    assert third.cached == "exact"


def test_corpus_change_invalidates_retrieval_and_answers(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    before, _ = _ask(_pipeline(home), Query(PAGER))
    pager = corpus / "ops" / "pager.md"
    pager.write_text(
        pager.read_text().replace("before 10:00 UTC on Monday", "after lunch on Friday")
    )
    _ingest(home, corpus)
    after, spans = _ask(_pipeline(home), Query(PAGER))
    assert spans["retrieve"].attrs["cache"] == "miss"
    assert not after.cached
    assert "after lunch on Friday" in after.answer and "10:00 UTC" in before.answer


def test_index_rebuild_invalidates_retrieval(ragcli: Run, home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    _ask(_pipeline(home), Query(PAGER))
    assert ragcli("index", "--ef-search", "32").returncode == 0
    _, spans = _ask(_pipeline(home), Query(PAGER))
    assert spans["retrieve"].attrs["cache"] == "miss"


def test_each_cache_can_be_switched_off(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    _ask(_pipeline(home), Query(PAGER))
    p = _pipeline(home, no_cache="retrieval,answer")
    done, spans = _ask(p, Query(PAGER))
    assert not done.cached and spans["retrieve"].attrs["cache"] == "miss"
    assert spans["embed"].attrs["cache"] == "hit"  # the embedding cache is still on
    p = _pipeline(home, no_cache="all")
    _, spans = _ask(p, Query(PAGER))
    assert spans["embed"].attrs["cache"] == "miss"
    assert p.counters()["embedding"] == {"hits": 0, "misses": 0}


def test_semantic_reuse_stays_within_scope(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    p = _pipeline(home, semantic_threshold=0.85)
    _ask(p, Query(PAGER))
    near = "how can i rotate the on call pager"
    done, _ = _ask(p, Query(near))
    assert done.cached == "semantic"
    # same wording, other partition or other filter: never reuse across scopes
    for q in (
        Query(PAGER, partitions=("hr",)),
        Query(near, partitions=("ops",)),
        Query(near, since="3650d"),
        Query(near, source="*/ops/*"),
    ):
        done, _ = _ask(p, q)
        assert done.cached in ("", "exact") and done.cached != "semantic", q
    far, _ = _ask(p, Query("How many days of annual leave do I get?"))
    assert not far.cached


def test_answer_ttl(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    p = _pipeline(home, answer_ttl=1)
    _ask(p, Query(PAGER))
    assert _ask(p, Query(PAGER))[0].cached == "exact"
    time.sleep(1.1)
    assert not _ask(p, Query(PAGER))[0].cached


def test_caches_are_bounded(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    p = _pipeline(home, retrieval_cache_size=2, answer_cache_size=2)
    for q in ("pager rotation", "annual leave", "payroll date", "duty manager"):
        _ask(p, Query(q))
    rows = p.retrieval_cache.conn.execute("SELECT count(*) FROM retrievals").fetchone()[0]
    answers = p.answer_cache.conn.execute("SELECT count(*) FROM answers").fetchone()[0]
    assert rows == 2 and answers <= 2


def test_batch_embeds_once_and_searches_once(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    p = _pipeline(home)
    calls = {"embed": 0, "query": 0}
    real_embed = EMB.aembed

    async def counting_embed(texts):
        calls["embed"] += 1
        return await real_embed(texts)

    p.embedder = LocalEmbedder()
    p.embedder.aembed = counting_embed  # type: ignore[method-assign]
    questions = [Query(q) for q in ("pager rotation", "annual leave", "payroll date")]

    async def go() -> None:
        await p.prefetch(questions)
        real_query = p.store.query

        def counting_query(*a, **kw):
            calls["query"] += 1
            return real_query(*a, **kw)

        p.store.query = counting_query  # type: ignore[method-assign]
        for q in questions:
            async for _ in p.ask(q):
                pass

    asyncio.run(go())
    assert calls["embed"] == 2  # the warm-up probe + one batch for all three questions
    assert calls["query"] == 0  # answering found every retrieval ready


def test_since_and_source_filters(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    p = _pipeline(home)
    old_enough = int(time.time()) - since_timestamp("2026-01-01")
    done, _ = _ask(p, Query(PAGER, since="2026-01-01"))
    assert "PageRelay" in done.answer and old_enough > 0

    # the leave policy is dated 2025-01-10: a 2026 cut-off excludes it
    async def sources(q: Query) -> set[str]:
        out: set[str] = set()
        async for ev in p.ask(q):
            if hasattr(ev, "sources"):
                out = {s.chunk.relpath for s in ev.sources}
        return out

    recent = asyncio.run(sources(Query("annual leave", since="2026-01-01")))
    assert recent and "hr/leave.md" not in recent  # notes.txt (no front matter) dates by mtime
    assert asyncio.run(sources(Query("annual leave", source="*/hr/*"))) <= {
        "hr/leave.md",
        "hr/notes.txt",
    }


def test_since_parsing() -> None:
    now = 1_790_000_000.0
    day = since_timestamp("1d", now)
    assert day % 86400 == 0 and now - 2 * 86400 < day <= now - 86400
    assert since_timestamp("2026-01-01") == 1767225600
    with pytest.raises(Exception, match="--since"):
        since_timestamp("yesterday")


def test_cache_cli(ragcli: Run, corpus: Path, tmp_path: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    assert ragcli("ask", PAGER).returncode == 0
    stats = json.loads(ragcli("cache", "stats", "--json").stdout)["caches"]
    assert stats["retrieval"]["entries"] == 1 and stats["answer"]["entries"] == 1
    cleared = json.loads(ragcli("cache", "clear", "--only", "answer", "--json").stdout)
    assert cleared["removed"] == {"answer": 1}
    out = json.loads(ragcli("ask", PAGER, "--json").stdout)
    assert out["cached"] is False and out["caches"]["retrieval"]["hits"] == 1
    bad = ragcli("cache", "clear", "--only", "answers")
    assert bad.returncode == 2 and "unknown cache" in bad.stderr
    batch = tmp_path / "q.jsonl"
    batch.write_text(f'{PAGER}\n{{"question": "annual leave", "partition": "hr"}}\n\n')
    lines = ragcli("ask", "--batch", str(batch), "--json").stdout.splitlines()
    assert [json.loads(x)["question"] for x in lines] == [PAGER, "annual leave"]
    assert {s["partition"] for s in json.loads(lines[1])["sources"]} == {"hr"}
    both = ragcli("ask", PAGER, "--batch", str(batch))
    assert both.returncode == 2 and "either a QUESTION or --batch" in both.stderr
