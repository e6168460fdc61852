"""The ragcli command as a user runs it: a real subprocess, real files, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, Run, clean_env


def test_ingest_index_ask_profile_status(ragcli: Run, corpus: Path) -> None:
    first = ragcli("ingest", str(corpus), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["new"] == 3 and report["embedded"] > 0

    again = json.loads(ragcli("ingest", str(corpus), "--json").stdout)
    assert again["embedded"] == 0 and again["unchanged"] == 3

    idx = ragcli("index", "--json")
    assert idx.returncode == 0, idx.stderr
    info = json.loads(idx.stdout)
    assert info["vectors"] == report["chunks"] and info["recall_at_10"] == 1.0
    assert info["params"] == {"m": 16, "ef_construction": 128, "ef_search": 64}

    ans = ragcli("ask", "How do I rotate the on-call pager?")
    assert ans.returncode == 0, ans.stderr
    assert "open PageRelay and click Hand Over" in ans.stdout
    assert "[1] corpus/ops/pager.md" in ans.stdout
    assert "extractive answer" in ans.stderr  # labelled as quotations, not generated text

    # The answer is cached now: a cold process answers without loading the model or Chroma.
    prof = ragcli("profile", "How do I rotate the on-call pager?", "--runs", "3", "--json")
    assert prof.returncode == 0, prof.stderr
    cold = {s["name"]: s for s in json.loads(prof.stdout)["cold"]["spans"]}
    assert cold["retrieve"]["attrs"]["cache"] == "hit"
    assert cold["answer_cache"]["attrs"]["cache"] == "exact"
    assert not {"load.embedder", "load.index", "embed"} & set(cold)

    prof = ragcli(
        "profile",
        "How do I rotate the on-call pager?",
        "--runs",
        "3",
        "--json",
        "--no-cache",
        "all",
    )
    assert prof.returncode == 0, prof.stderr
    data = json.loads(prof.stdout)
    cold = [s["name"] for s in data["cold"]["spans"]]
    assert cold[:2] == ["startup", "load.catalog"]
    assert {"load.embedder", "load.index", "embed", "retrieve", "prompt", "llm.first_token"} <= set(
        cold
    )
    assert data["schema"] == "ragcli.profile/1"
    assert (data["warm"]["runs"], data["warm"]["warmup_runs_excluded"]) == (3, 1)
    assert data["warm"]["stats"]["ttft"]["n"] == 3
    assert data["cold"]["ttft_ms"] > data["warm"]["stats"]["ttft"]["p50"]

    status = json.loads(ragcli("status", "--json").stdout)
    assert status["documents"] == 3 and status["chunks"] == report["chunks"]
    assert status["index"]["in_step"] is True
    assert set(status["partitions"]) == {"ops", "hr"}


def test_index_rebuild_with_new_parameters(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    out = json.loads(ragcli("index", "--m", "8", "--ef-construction", "64", "--json").stdout)
    assert out["rebuilt"] is True and out["params"]["m"] == 8
    out = json.loads(ragcli("index", "--ef-search", "20", "--json").stdout)
    assert out["rebuilt"] is False and out["params"] == {
        "m": 8,
        "ef_construction": 64,
        "ef_search": 20,
    }
    status = json.loads(ragcli("status", "--json").stdout)
    assert status["index"]["params"]["ef_search"] == 20
    assert ragcli("ask", "annual leave days").returncode == 0
    # with the embedding cache emptied, a rebuild takes the vectors from the index it replaces
    assert ragcli("cache", "clear", "--only", "embedding").returncode == 0
    out = json.loads(ragcli("index", "--m", "12", "--json").stdout)
    assert out["rebuilt"] is True and out["embedded"] == 0 and out["recall_at_10"] > 0.9


def test_partition_scoping(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    out = json.loads(
        ragcli("ask", "How do I rotate the pager?", "--partition", "hr", "--json").stdout
    )
    assert out["sources"] and {s["partition"] for s in out["sources"]} == {"hr"}
    bad = ragcli("ask", "pager", "--partition", "nope")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "ragcli: error: unknown partition 'nope' (known: hr, ops)"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ask", "anything"], 3, "nothing ingested"),
        (["ingest", "/definitely/not/here"], 2, "no such file or directory"),
        (["ask", "x", "--k", "0"], 2, "k must be at least 1"),
        (["ask", "x", "--k", "many"], 2, "Invalid value for '--k'"),
        (["ask", "   "], 2, "the question is empty"),
        (["index"], 3, "nothing ingested"),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_errors_are_one_line_without_traceback(
    ragcli: Run, corpus: Path, args: list[str], code: int, message: str
) -> None:
    if args[0] == "ask" and message != "nothing ingested":
        assert ragcli("ingest", str(corpus)).returncode == 0
    proc = ragcli(*args)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_empty_corpus(ragcli: Run, tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.md").write_text("")
    proc = ragcli("ingest", str(tmp_path / "c"))
    assert proc.returncode == 2 and "nothing to ingest" in proc.stderr
    assert "skipped" in proc.stderr or "empty" in proc.stderr or proc.stderr.count("\n") == 1


def test_malformed_config_file(ragcli: Run, tmp_path: Path) -> None:
    cfg = tmp_path / "ragcli.toml"
    cfg.write_text("k = [")
    proc = ragcli("--config", str(cfg), "status")
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_imports_no_heavy_library(home: Path) -> None:
    code = (
        "import sys, runpy; sys.argv = ['ragcli', '--help']\n"
        "try:\n    runpy.run_module('ragcli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('chromadb', 'onnxruntime', 'openai', 'numpy', 'tiktoken', "
        "'sqlite_utils', 'tokenizers') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(home),
        cwd=REPO,
        timeout=60,
    )
    assert "Usage" in proc.stdout
    assert "HEAVY=\n" in proc.stdout or proc.stdout.rstrip().endswith("HEAVY=")


def test_data_dir_flag_beats_environment(ragcli: Run, corpus: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    assert ragcli("--data-dir", str(other), "ingest", str(corpus)).returncode == 0
    assert (other / "catalog.db").is_file()
    status = json.loads(ragcli("status", "--json").stdout)
    assert status["documents"] == 0  # RAGCLI_HOME (the fixture's) was never touched
