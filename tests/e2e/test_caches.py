"""The caches seen through the ragcli command (a real process): `index --m` and
`index --ef-search` invalidating cached retrievals, `ask --batch` embedding once, and
`cache stats|clear`; in-process cache tests are in tests/unit/caches/."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from ragcli.embedders import open_embedder
from ragcli.ingest.run import ingest
from ragcli.retrieval.events import DoneEvent, Query, Span
from ragcli.retrieval.pipeline import Pipeline
from tests.support.cli import Run, run_ragcli
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig
from tests.support.pipeline import PAGER, ask_query, ingest_corpus, pipeline_for, settings_for


def test_index_rebuild_with_a_new_m_reruns_retrieval(ragcli: Run, home: Path, corpus: Path) -> None:
    """A real rebuild (`index --m 8` builds new collections): the cached retrieval names the
    old index, so the next ask misses it and searches the rebuilt index. The answer cache is
    keyed by the retrieved chunk ids (README, "Three caches"), not by the index: the rebuilt
    index returns the same chunks, so that answer is still the right one and is served."""
    ingest_corpus(home, corpus)
    old = pipeline_for(home)
    first, _ = ask_query(old, Query(PAGER))
    assert not first.cached and "Hand Over" in first.answer
    before = old._index()
    proc = ragcli("index", "--m", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    built = json.loads(proc.stdout)
    assert built["rebuilt"] is True and built["params"]["m"] == 8
    p = pipeline_for(home)
    after, spans = ask_query(p, Query(PAGER))
    rebuilt = p._index()
    assert rebuilt.name != before.name and rebuilt.params.m == 8
    assert spans["retrieve"].attrs["cache"] == "miss" and "embed" in spans
    assert p.store is not None and p.store.queries == 2  # the load probe + this question
    assert p.counters()["retrieval"] == {"hits": 0, "misses": 1}
    assert spans["answer_cache"].attrs["cache"] == "exact"  # same chunks: same answer key
    assert after.answer == first.answer and "Hand Over" in after.answer
    # the entry for the old index is never read again: a second ask hits the new one
    _, spans = ask_query(p, Query(PAGER))
    assert spans["retrieve"].attrs["cache"] == "hit"
    assert p.retrieval_cache.conn.execute("SELECT count(*) FROM retrievals").fetchone()[0] == 2


def test_ef_search_change_reruns_retrieval_without_a_rebuild(
    ragcli: Run, home: Path, corpus: Path
) -> None:
    """`index --ef-search 32` rebuilds nothing (Chroma takes the new beam width in place), but
    the retrieval key names ef_search: a cached retrieval made with 64 is not served."""
    ingest_corpus(home, corpus)
    old = pipeline_for(home)
    first, _ = ask_query(old, Query(PAGER))
    before = old._index()
    proc = ragcli("index", "--ef-search", "32", "--json")
    assert proc.returncode == 0, proc.stderr
    tuned = json.loads(proc.stdout)
    assert tuned["rebuilt"] is False and tuned["params"]["ef_search"] == 32
    p = pipeline_for(home)
    after, spans = ask_query(p, Query(PAGER))
    now = p._index()
    assert now.name == before.name and now.params.ef_search == 32  # the same collections
    assert spans["retrieve"].attrs["cache"] == "miss"
    assert p.store is not None and p.store.queries == 2  # the load probe + this question
    assert spans["answer_cache"].attrs["cache"] == "exact" and after.answer == first.answer


KEY = "sk-test-caches-0000"


def _remote_settings(home: Path, srv: OpenAICompatibleServer):
    """Questions embedded by an OpenAI-compatible server on 127.0.0.1, which counts the
    requests; answers stay extractive. One request at a time: the embedder then sends each of
    its calls as one request (with more, it spreads a call's inputs over parallel requests)."""
    return settings_for(
        home,
        embedder="openai:text-embedding-3-small",
        embed_dimensions=32,
        embed_concurrency=1,
        openai_base_url=srv.base_url,
        openai_api_key=KEY,
        llm="extractive",
        abstain_threshold=0.0,  # the fake server's vectors carry no meaning to abstain on
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
            "RAGCLI_ABSTAIN_THRESHOLD": "0",
        }
        proc = run_ragcli(
            home, "ask", "--batch", str(batch_file), "--llm", "extractive", "--json", **env
        )
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == 2
        assert srv.counters.embeddings == 1 and srv.counters.inputs == 2


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
