"""The three caches through the real pipeline: real SQLite, real Chroma, the real model (and
an OpenAI-compatible server on 127.0.0.1 where embedding requests are counted)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from ragcli.core.config import load_settings
from ragcli.core.db import transaction
from ragcli.embedders import open_embedder
from ragcli.embedders.local import LocalEmbedder
from ragcli.ingest.run import ingest
from ragcli.retrieval.pipeline import DoneEvent, Pipeline, Query, Span, since_timestamp
from tests.conftest import Run, run_ragcli
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig

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


def test_index_rebuild_with_a_new_m_reruns_retrieval(ragcli: Run, home: Path, corpus: Path) -> None:
    """A real rebuild (`index --m 8` builds new collections): the cached retrieval names the
    old index, so the next ask misses it and searches the rebuilt index. The answer cache is
    keyed by the retrieved chunk ids (README, "Three caches"), not by the index: the rebuilt
    index returns the same chunks, so that answer is still the right one and is served."""
    _ingest(home, corpus)
    old = _pipeline(home)
    first, _ = _ask(old, Query(PAGER))
    assert not first.cached and "Hand Over" in first.answer
    before = old._index()
    proc = ragcli("index", "--m", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    built = json.loads(proc.stdout)
    assert built["rebuilt"] is True and built["params"]["m"] == 8
    p = _pipeline(home)
    after, spans = _ask(p, Query(PAGER))
    rebuilt = p._index()
    assert rebuilt.name != before.name and rebuilt.params.m == 8
    assert spans["retrieve"].attrs["cache"] == "miss" and "embed" in spans
    assert p.store is not None and p.store.queries == 2  # the load probe + this question
    assert p.counters()["retrieval"] == {"hits": 0, "misses": 1}
    assert spans["answer_cache"].attrs["cache"] == "exact"  # same chunks: same answer key
    assert after.answer == first.answer and "Hand Over" in after.answer
    # the entry for the old index is never read again: a second ask hits the new one
    _, spans = _ask(p, Query(PAGER))
    assert spans["retrieve"].attrs["cache"] == "hit"
    assert p.retrieval_cache.conn.execute("SELECT count(*) FROM retrievals").fetchone()[0] == 2


def test_ef_search_change_reruns_retrieval_without_a_rebuild(
    ragcli: Run, home: Path, corpus: Path
) -> None:
    """`index --ef-search 32` rebuilds nothing (Chroma takes the new beam width in place), but
    the retrieval key names ef_search: a cached retrieval made with 64 is not served."""
    _ingest(home, corpus)
    old = _pipeline(home)
    first, _ = _ask(old, Query(PAGER))
    before = old._index()
    proc = ragcli("index", "--ef-search", "32", "--json")
    assert proc.returncode == 0, proc.stderr
    tuned = json.loads(proc.stdout)
    assert tuned["rebuilt"] is False and tuned["params"]["ef_search"] == 32
    p = _pipeline(home)
    after, spans = _ask(p, Query(PAGER))
    now = p._index()
    assert now.name == before.name and now.params.ef_search == 32  # the same collections
    assert spans["retrieve"].attrs["cache"] == "miss"
    assert p.store is not None and p.store.queries == 2  # the load probe + this question
    assert spans["answer_cache"].attrs["cache"] == "exact" and after.answer == first.answer


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
    """Expiry is judged without racing the clock: the TTL is an hour, far beyond anything this
    test does however loaded the machine, so an entry just written is fresh; the expired and
    the nearly-expired entries are made by writing their creation time into the past."""
    ttl = 3600
    _ingest(home, corpus)
    p = _pipeline(home, answer_ttl=ttl)
    first, _ = _ask(p, Query(PAGER))
    assert not first.cached
    assert _ask(p, Query(PAGER))[0].cached == "exact"

    def age_answers(seconds: float) -> None:
        with transaction(p.answer_cache.conn) as c:
            assert c.execute("UPDATE answers SET created = ?", (time.time() - seconds,)).rowcount

    age_answers(ttl / 2)  # half an hour old: still fresh
    assert _ask(p, Query(PAGER))[0].cached == "exact"
    age_answers(ttl + 60)  # a minute past its TTL
    again, spans = _ask(p, Query(PAGER))
    assert not again.cached and spans["answer_cache"].attrs["cache"] == "miss"
    assert "prompt" in spans and again.answer == first.answer  # answered anew
    assert p.counters()["answer"] == {"hits": 2, "misses": 2, "semantic_hits": 0}
    assert _ask(p, Query(PAGER))[0].cached == "exact"  # and stored afresh


def test_caches_are_bounded(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    p = _pipeline(home, retrieval_cache_size=2, answer_cache_size=2)
    questions = ("pager rotation", "annual leave", "payroll date", "duty manager")
    for q in questions:
        done, spans = _ask(p, Query(q))
        assert not done.cached and done.answer and spans["retrieve"].attrs["cache"] == "miss"
    rows = p.retrieval_cache.conn.execute("SELECT count(*) FROM retrievals").fetchone()[0]
    answers = p.answer_cache.conn.execute("SELECT count(*) FROM answers").fetchone()[0]
    assert (rows, answers) == (2, 2)
    # the oldest went first: the last two questions are still cached, the first is not
    for q in questions[:1:-1]:
        done, spans = _ask(p, Query(q))
        assert done.cached == "exact" and spans["retrieve"].attrs["cache"] == "hit", q
    done, spans = _ask(p, Query(questions[0]))
    assert not done.cached and spans["retrieve"].attrs["cache"] == "miss"


KEY = "sk-test-caches-0000"


def _remote_settings(home: Path, srv: OpenAICompatibleServer):
    """Questions embedded by an OpenAI-compatible server on 127.0.0.1, which counts the
    requests; answers stay extractive. One request at a time: the embedder then sends each of
    its calls as one request (with more, it spreads a call's inputs over parallel requests)."""
    return _settings(
        home,
        embedder="openai:text-embedding-3-small",
        embed_dimensions=32,
        embed_concurrency=1,
        openai_base_url=srv.base_url,
        openai_api_key=KEY,
        llm="extractive",
    )


def test_batch_embeds_once_and_searches_once(home: Path, corpus: Path, tmp_path: Path) -> None:
    """What `ask --batch` promises (README): every missing query vector in one embedding call,
    and one search per distinct (k, filters), before any question is answered."""
    with OpenAICompatibleServer(ServerConfig()) as srv:
        settings = _remote_settings(home, srv)
        asyncio.run(ingest([corpus], settings, open_embedder(settings)))
        srv.reset()
        p = Pipeline(settings)
        questions = [
            Query("How do I rotate the on-call pager?"),
            Query("How many days of annual leave do I get?"),
            Query("When does payroll run?"),
            Query("Does unused leave carry over?", partitions=("hr",)),
        ]

        async def go() -> tuple[list[Span], int, list[tuple[DoneEvent, dict[str, Span]]]]:
            spans = await p.prefetch(questions)
            assert p.store is not None
            searched = p.store.queries
            answered = []
            for q in questions:
                got: dict[str, Span] = {}
                done = None
                async for ev in p.ask(q):
                    if isinstance(ev, Span):
                        got[ev.name] = ev
                    elif isinstance(ev, DoneEvent):
                        done = ev
                assert done is not None
                answered.append((done, got))
            return spans, searched, answered

        spans, searched, answered = asyncio.run(go())
        # one embeddings request for all four questions, none while answering them
        assert srv.counters.embeddings == 1 and srv.counters.inputs == 4
        assert sorted(srv.counters.texts) == sorted(q.question for q in questions)
        # the index's load probe, then one search for the three unscoped questions and one
        # in the hr partition's collection: none while answering
        assert searched == 3 and p.store.queries == 3
        batch = {s.name: s.attrs for s in spans}
        assert batch["embed.batch"] == {"queries": 4, "cache_hits": 0}
        assert batch["retrieve.batch"] == {"calls": 2}
        for done, got in answered:
            assert got["retrieve"].attrs["cache"] == "hit" and "embed" not in got
            assert done.answer and not done.cached
        assert "PageRelay" in answered[0][0].answer and "25 days" in answered[1][0].answer

        # the command line does the same: a batch of new questions is one embeddings request
        srv.reset()
        batch_file = tmp_path / "batch.txt"
        batch_file.write_text("Who do I call if PageRelay is down?\nWhen is payroll?\n")
        env = {
            "RAGCLI_EMBEDDER": "openai:text-embedding-3-small",
            "RAGCLI_EMBED_DIMENSIONS": "32",
            "RAGCLI_EMBED_CONCURRENCY": "1",
            "OPENAI_BASE_URL": srv.base_url,
            "OPENAI_API_KEY": KEY,
        }
        proc = run_ragcli(
            home, "ask", "--batch", str(batch_file), "--llm", "extractive", "--json", **env
        )
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == 2
        assert srv.counters.embeddings == 1 and srv.counters.inputs == 2


def test_since_and_source_filters(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    p = _pipeline(home)
    done, _ = _ask(p, Query(PAGER, since="2026-01-01"))  # pager.md is dated 2026-03-14
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
