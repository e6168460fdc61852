"""Profiling in-process: percentiles, budgets, and each ablation variant switching its
optimisation off. `ragcli profile` as a real process: tests/e2e/test_profile.py."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.core.config import load_settings
from ragcli.core.errors import UsageError
from ragcli.embedders import open_embedder
from ragcli.ingest.run import ingest
from ragcli.profile.ablation import VARIANTS, ablate
from ragcli.profile.budget import check, parse_budgets
from ragcli.profile.runs import run_round
from ragcli.profile.stats import percentile, summarize
from ragcli.retrieval.events import Query
from ragcli.retrieval.pipeline import Pipeline
from tests.support.openai_server import Counters, OpenAICompatibleServer, ServerConfig

Q = "How do I rotate the on-call pager?"
KEY = "sk-test-profile-0000"


def test_percentile_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    values = list(rng.exponential(10, 37))
    for p in (0, 50, 90, 95, 99, 100):
        assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))
    assert summarize([]) == {"n": 0}


def test_budget_parsing() -> None:
    b = parse_budgets("ttft_p95=300ms, retrieve_p50=5ms,cold_ttft=1.5s,itl_p99=800us,e2e_mean=2")
    assert [(x.metric, x.stat, x.limit_ms) for x in b] == [
        ("ttft", "p95", 300.0),
        ("retrieve", "p50", 5.0),
        ("cold_ttft", "", 1500.0),
        ("itl", "p99", 0.8),
        ("e2e", "mean", 2.0),
    ]
    assert parse_budgets("llm.first_token_p90=1s")[0].metric == "llm.first_token"
    for bad in ("ttft=300ms", "ttft_p95", "ttft_p95=fast", "", "ttft_p42=1ms"):
        with pytest.raises(UsageError):
            parse_budgets(bad)


def test_budget_check_against_a_report() -> None:
    report = {"cold": {"ttft_ms": 900.0}, "warm": {"stats": {"ttft": {"p95": 12.0}}}}
    verdicts = check(parse_budgets("ttft_p95=10ms,cold_ttft=1s,retrieve_p50=5ms"), report)
    assert [v.ok for v in verdicts] == [False, True, False]
    assert verdicts[0].line() == "ttft p95 12.000 ms > budget 10 ms"
    assert verdicts[2].line() == "retrieve p50: no such figure in this profile"


def _evidence(pipeline: Pipeline, counters: Counters) -> dict[str, Any]:
    """What one ablation variant did, from its pipeline's cache counters and store and from
    what the provider saw."""
    asked = [b["messages"][1]["content"] for b in counters.bodies if "messages" in b]
    leave = [u for u in asked if u.endswith("Question: annual leave")]
    return {
        **pipeline.counters(),
        "llm": counters.chat,  # answers the LLM made
        "embed_requests": counters.embeddings,
        "embedded": counters.inputs,
        "connections": counters.connections,
        "in_flight": counters.max_in_flight_seen,
        "searches": pipeline.store.queries if pipeline.store is not None else 0,
        "sources": all('<source id="1"' in u for u in asked),
        # whether the hr-scoped question's prompts held only hr documents (None: no prompts)
        "scoped": all(set(re.findall(r'path="[^"]*/(\w+)/[^/"]*"', u)) == {"hr"} for u in leave)
        if leave
        else None,
    }


def test_each_ablation_variant_switches_its_optimisation_off(home: Path, corpus: Path) -> None:
    """`profile --ablate` reports figures per variant; this checks, by what each variant did,
    that each one really ran without its optimisation (and with the others). In process, so
    that each variant's pipeline and the provider's counts for it can be read: the variants
    are made as `ragcli profile --ablate` makes them, and answered by `ablation.ablate`."""
    with OpenAICompatibleServer(ServerConfig()) as srv:
        settings = load_settings(
            {
                "data_dir": home,
                "embedder": "openai:text-embedding-3-small",
                "embed_dimensions": 32,
                "embed_concurrency": 1,  # one request per embedding call
                "openai_base_url": srv.base_url,
                "openai_api_key": KEY,
                # the fake server's vectors carry no meaning: no relevance to measure
                "abstain_threshold": 0.0,
                "source_floor": 0.0,
            },
            environ={},
        )
        asyncio.run(ingest([corpus], settings, open_embedder(settings)))
        queries = [Query(Q), Query("annual leave", partitions=("hr",)), Query("payroll date")]
        made: list[tuple[Pipeline, Counters]] = []

        async def go() -> list[dict[str, Any]]:
            first = Pipeline(settings)  # fills the caches, as `profile` does before ablating
            await run_round(first, queries, batch=True, concurrency=8)
            first.close()

            def variant(overrides: dict[str, Any]) -> Pipeline:  # as in cli.profile
                srv.reset()  # the provider's counts from here on are this variant's
                p = Pipeline(dataclasses.replace(settings, **overrides).validate(), first.embedder)
                made.append((p, srv.counters))
                return p

            # no warm-up round: it runs every variant concurrently, whatever the variant
            return await ablate(variant, queries, rounds=2, warmup=0)

        rows = asyncio.run(go())
    assert [r["variant"] for r in rows] == [v.name.strip() for v in VARIANTS]
    ev = {r["variant"]: _evidence(p, c) for r, (p, c) in zip(rows, made, strict=True)}
    n = 6  # two rounds of three questions
    off = {"hits": 0, "misses": 0}
    # Searches: the index's load probe, then one per batch of the same scope and k: two a
    # round (the unscoped questions together, and the hr partition), or none (cached).
    e = ev["all optimisations"]
    assert e["answer"]["hits"] == n and (e["llm"], e["searches"], e["embed_requests"]) == (0, 0, 0)
    e = ev["no retrieval cache"]
    assert e["retrieval"] == off and e["searches"] == 1 + 2 * 2
    assert e["answer"]["hits"] == n and e["llm"] == 0
    e = ev["no answer cache"]
    assert e["answer"] == {**off, "semantic_hits": 0} and e["llm"] == n and e["searches"] == 0
    first_time = list(ev)[3:]
    assert len(first_time) == 7
    for name in first_time:  # no retrieval or answer cache: every answer from the LLM
        e = ev[name]
        assert e["retrieval"] == off and e["answer"]["hits"] == 0, name
        assert e["llm"] == n and e["sources"], name
    base = ev["first-time path (retrieval+answer caches off)"]
    assert base["embedding"] == {"hits": n, "misses": 0} and base["embed_requests"] == 0
    assert base["searches"] == 1 + 2 * 2 and base["scoped"] is True
    assert base["connections"] >= 3  # a round's three questions were at the LLM at once
    e = ev["no embedding cache"]
    assert e["embedding"] == off and (e["embed_requests"], e["embedded"]) == (2, n)
    e = ev["exact search instead of HNSW"]
    assert e["searches"] == 1  # only the load probe: the answers' sources came from numpy
    e = ev["no partition scoping"]
    assert e["scoped"] is False and e["searches"] == 1 + 2 * 1  # one batch a round
    e = ev["no query batching"]
    assert e["searches"] == 1 + 2 * 3  # each question searched alone
    e = ev["no concurrency"]
    # One request at a time, so one kept-alive connection serves them: fewer than three
    # (three or more: a round's questions were in flight together). Not "== 1": a client drops
    # a connection idle for 5 s, and load could stretch one gap that long.
    assert e["in_flight"] == 1 and e["connections"] < 3
    e = ev["no connection reuse"]
    assert e["connections"] == e["llm"] == n  # a new connection for every answer
