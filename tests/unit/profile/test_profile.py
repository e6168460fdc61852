"""`ragcli profile`: figures, budgets, JSON schema, SVG, ablation, sweep, span export."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.core.config import load_settings
from ragcli.core.errors import UsageError
from ragcli.embedders import open_embedder
from ragcli.ingest.run import ingest
from ragcli.profile import profiling
from ragcli.profile.budget import check, parse_budgets
from ragcli.profile.profiling import VARIANTS, percentile, summarize
from ragcli.retrieval.pipeline import Pipeline, Query
from tests.conftest import REPO, Run
from tests.support.openai_server import Counters, OpenAICompatibleServer, ServerConfig

Q = "How do I rotate the on-call pager?"
STAT_KEYS = {"p50", "p90", "p95", "p99", "mean", "min", "max", "n"}
KEY = "sk-test-profile-0000"


@pytest.fixture
def ingested(ragcli: Run, corpus: Path) -> Run:
    assert ragcli("ingest", str(corpus)).returncode == 0
    return ragcli


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


def test_budgets_pass_and_fail_at_the_cli(ingested: Run) -> None:
    # Budgets no machine can miss or meet, whatever its load: 600 s is longer than the
    # command may run (tests/conftest.py), and no retrieval takes a nanosecond.
    ok = ingested("profile", Q, "--runs", "3", "--budget", "ttft_p95=600s,cold_ttft=600s")
    assert ok.returncode == 0, ok.stderr
    assert "budget ok: ttft p95" in ok.stdout
    bad = ingested(
        "profile",
        Q,
        "--runs",
        "3",
        "--no-cache",
        "all",
        "--budget",
        "ttft_p95=600s,retrieve_p50=0.001us",
    )
    assert bad.returncode == 4
    assert bad.stderr.strip().startswith("ragcli: error: over budget: retrieve p50")
    assert "ttft" not in bad.stderr  # only the stage over budget is named
    malformed = ingested("profile", Q, "--budget", "ttft=fast")
    assert malformed.returncode == 2 and "--budget" in malformed.stderr


def test_json_schema_is_stable(ingested: Run) -> None:
    out = ingested("profile", Q, "--runs", "4", "--warmup", "2", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == {
        "schema",
        "questions",
        "generator",
        "settings",
        "cold",
        "warm",
        "ablation",
        "concurrency",
    }
    assert data["schema"] == "ragcli.profile/1"
    assert set(data["cold"]) == {"ttft_ms", "ttft_ms_runs", "cached", "spans"}
    assert set(data["warm"]) == {
        "warmup_runs_excluded",
        "runs",
        "stats",
        "cached_runs",
        "last",
        "prefill",
    }
    assert (data["warm"]["runs"], data["warm"]["warmup_runs_excluded"]) == (4, 2)
    stats = data["warm"]["stats"]
    assert {
        "ttft",
        "e2e",
        "pre_llm",
        "itl",
        "output_per_s",
        "embed",
        "retrieve",
        "answer_cache",
        "prompt",
        "llm.first_token",
        "llm.stream",
    } == set(stats)
    assert set(stats["ttft"]) == STAT_KEYS and stats["ttft"]["n"] == 4
    for span in data["cold"]["spans"]:
        assert {"name", "start_ms", "ms"} <= set(span)
    starts = [s["start_ms"] for s in data["cold"]["spans"]]
    assert starts == sorted(starts) and data["cold"]["spans"][0]["name"] == "startup"
    assert set(data["settings"]) >= {"k", "caches", "search", "llm"}


def test_svg_is_a_picture_of_the_waterfall(ingested: Run, tmp_path: Path) -> None:
    svg = tmp_path / "profile.svg"
    out = ingested("profile", Q, "--runs", "3", "--no-cache", "all", "--svg", str(svg))
    assert out.returncode == 0, out.stderr
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text or "" for t in root.iter(f"{ns}text")]
    assert any(t.startswith("Cold run, from process start") for t in texts)
    assert {"load.index", "retrieve (miss)", "llm.first_token"} <= set(texts)
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(bars) >= 8 and all(float(r.get("width")) > 0 for r in bars)
    if shutil.which("rsvg-convert"):  # rasterise it, as a person would look at it
        png = tmp_path / "profile.png"
        subprocess.run(["rsvg-convert", str(svg), "-o", str(png)], check=True)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ablation_and_concurrency_sweep(ingested: Run, tmp_path: Path) -> None:
    qs = tmp_path / "q.txt"
    qs.write_text(f'{Q}\n{{"question": "annual leave", "partition": "hr"}}\npayroll date\n')
    # Answers come from an OpenAI-compatible server on 127.0.0.1, which counts them.
    with OpenAICompatibleServer(ServerConfig()) as srv:
        out = ingested(
            "profile",
            "--questions",
            str(qs),
            "--runs",
            "2",
            "--ablate",
            "--rounds",
            "1",
            "--concurrency",
            "1,4",
            "--requests",
            "6",
            "--json",
            RAGCLI_OPENAI_BASE_URL=srv.base_url,
            OPENAI_API_KEY=KEY,
        )
        llm_answers = srv.counters.chat
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    rows = {r["variant"]: r for r in data["ablation"]}
    assert list(rows) == [
        "all optimisations",
        "no retrieval cache",
        "no answer cache",
        "first-time path (retrieval+answer caches off)",
        "no embedding cache",
        "exact search instead of HNSW",
        "no partition scoping",
        "no query batching",
        "no concurrency",
        "no connection reuse",
    ]
    # one warm-up round and one measured round of the three questions per variant
    assert all(r["requests"] == 3 for r in rows.values())
    assert rows["exact search instead of HNSW"]["baseline"] == "first-time path"
    assert "ttft_p50_change" in rows["no answer cache"]
    # Which answers the LLM made: the profile's cold run, warm-up and first warm run (the
    # second warm run repeats the first question: cached); then each variant that switches
    # the answer cache off (eight of ten) answers its six questions anew; the sweep is cached.
    assert llm_answers == 3 + 8 * 6
    sweep = data["concurrency"]
    assert [r["concurrency"] for r in sweep] == [1, 4]
    assert all(r["requests"] == 6 and r["requests_per_s"] > 0 for r in sweep)
    assert data["questions"][1] == "annual leave"


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
    are made as `ragcli profile --ablate` makes them, and answered by `profiling.ablate`."""
    with OpenAICompatibleServer(ServerConfig()) as srv:
        settings = load_settings(
            {
                "data_dir": home,
                "embedder": "openai:text-embedding-3-small",
                "embed_dimensions": 32,
                "embed_concurrency": 1,  # one request per embedding call
                "openai_base_url": srv.base_url,
                "openai_api_key": KEY,
            },
            environ={},
        )
        asyncio.run(ingest([corpus], settings, open_embedder(settings)))
        queries = [Query(Q), Query("annual leave", partitions=("hr",)), Query("payroll date")]
        made: list[tuple[Pipeline, Counters]] = []

        async def go() -> list[dict[str, Any]]:
            first = Pipeline(settings)  # fills the caches, as `profile` does before ablating
            await profiling.run_round(first, queries, batch=True, concurrency=8)
            first.close()

            def variant(overrides: dict[str, Any]) -> Pipeline:  # as in cli.profile
                srv.reset()  # the provider's counts from here on are this variant's
                p = Pipeline(dataclasses.replace(settings, **overrides).validate())
                p.embedder = first.embedder
                made.append((p, srv.counters))
                return p

            # no warm-up round: it runs every variant concurrently, whatever the variant
            return await profiling.ablate(variant, queries, rounds=2, warmup=0)

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


def test_span_export_and_cold_processes(ingested: Run, tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    out = ingested("profile", Q, "--runs", "2", "--cold-runs", "2", "--spans", str(spans), "--json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["cold"]["ttft_ms_runs"]) == 2
    rows = [json.loads(line) for line in spans.read_text().splitlines()]
    assert {r["phase"] for r in rows} == {"cold", "warm"}
    assert {r["run"] for r in rows if r["phase"] == "warm"} == {0, 1}
    assert all({"name", "start_ms", "ms", "question"} <= set(r) for r in rows)


def test_profile_needs_a_question(ingested: Run) -> None:
    out = ingested("profile")
    assert out.returncode == 2 and "QUESTION or --questions" in out.stderr
    out = ingested("profile", Q, "--concurrency", "0,4")
    assert out.returncode == 2 and "--concurrency" in out.stderr


def test_otel_export_is_one_trace_per_run(ingested: Run) -> None:
    out = ingested("profile", Q, "--runs", "2", "--json", "--otel")
    assert out.returncode == 0, out.stderr
    spans = json.loads("[" + out.stderr.replace("}\n{", "},\n{") + "]")
    roots = [s for s in spans if s["name"] == "ragcli.ask"]
    assert len(roots) == 3  # the cold run and two warm runs
    assert {r["attributes"]["ragcli.phase"] for r in roots} == {"cold", "warm"}
    root_ids = {r["context"]["span_id"] for r in roots}
    children = [s for s in spans if s["name"] != "ragcli.ask"]
    assert {"startup", "retrieve", "llm.first_token"} <= {s["name"] for s in children}
    assert all(s["parent_id"] in root_ids for s in children)


_LOADS_AT_ONCE = """
import threading
from ragcli.core.native import native_import
start, errors = threading.Barrier(2), []
def run(name):
    start.wait()
    try:
        native_import(name)
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=run, args=(n,)) for n in ("chromadb", "onnxruntime")]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors or "ok")
"""


def test_chromadb_and_onnxruntime_can_load_on_two_threads_at_once() -> None:
    """The request path loads the index (chromadb) and the embedder (onnxruntime) on threads
    at once, through `ragcli.core.native.native_import`. Both import numpy, which numpy 2.x cannot
    do from two threads at a time: with plain imports this fresh process failed 6 times out of
    6 with a partially initialised numpy (and a library user's first `Pipeline.warm()` did)."""
    proc = subprocess.run(
        [sys.executable, "-c", _LOADS_AT_ONCE],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr[-2000:]
