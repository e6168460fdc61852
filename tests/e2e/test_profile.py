"""`ragcli profile` as a real process: budgets at the command line, the JSON schema, the SVG
waterfall, ablation and concurrency sweeps, span and OpenTelemetry export, cold processes; and
the index and the embedder loading on two threads at once in a fresh interpreter. In-process
(percentiles, budget parsing, each ablation variant's evidence): tests/unit/profile/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.cli import REPO, Run
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig

Q = "How do I rotate the on-call pager?"
STAT_KEYS = {"p50", "p90", "p95", "p99", "mean", "min", "max", "n"}
KEY = "sk-test-profile-0000"


@pytest.fixture
def ingested(ragcli: Run, corpus: Path) -> Run:
    assert ragcli("ingest", str(corpus)).returncode == 0
    return ragcli


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
