"""`ragcli profile`: figures, budgets, JSON schema, SVG, ablation, sweep, span export."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from ragcli.budget import check, parse_budgets
from ragcli.errors import UsageError
from ragcli.profiling import percentile, summarize
from tests.conftest import Run

Q = "How do I rotate the on-call pager?"
STAT_KEYS = {"p50", "p90", "p95", "p99", "mean", "min", "max", "n"}


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
    ok = ingested("profile", Q, "--runs", "3", "--budget", "ttft_p95=5s,cold_ttft=60s")
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
        "ttft_p95=5s,retrieve_p50=0.001us",
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
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    rows = {r["variant"]: r for r in data["ablation"]}
    assert list(rows)[0] == "all optimisations"
    assert {
        "exact search instead of HNSW",
        "no partition scoping",
        "no query batching",
        "no concurrency",
        "no connection reuse",
        "no embedding cache",
        "no retrieval cache",
        "no answer cache",
    } <= set(rows)
    assert rows["all optimisations"]["requests"] == 3
    assert rows["exact search instead of HNSW"]["baseline"] == "first-time path"
    assert "ttft_p50_change" in rows["no answer cache"]
    # all answers cached vs every answer recomputed: the caches must show up in the figures
    assert rows["no answer cache"]["pre_llm"]["p50"] > rows["all optimisations"]["pre_llm"]["p50"]
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
