"""The pipelined ingest (issue 17): windows, overlap, phases, progress and memory bounds.

The runs are real (local embedder, SQLite catalogue, embedded Chroma); the window size is
cut down with RAGCLI_INGEST_WINDOW so a small corpus goes through many windows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ragcli.core.config import load_settings
from ragcli.core.records import Document, FileRef
from ragcli.embedders.local import LocalEmbedder
from ragcli.ingest import run
from ragcli.ingest.run import ENV_WINDOW, ingest
from ragcli.status.report import collect_status
from tests.support.cli import run_ragcli

EMB = LocalEmbedder()
PHASES = {"discover", "read", "chunk", "embed", "catalogue", "lexical_index", "vector_index"}


def _corpus(root: Path, files: int = 9) -> Path:
    for i in range(files):
        part = root / ("ops", "hr", "eng")[i % 3]
        part.mkdir(parents=True, exist_ok=True)
        body = " ".join(f"Step {j} of procedure {i} is done by hand." for j in range(40))
        (part / f"doc{i}.md").write_text(f"# Procedure {i}\n\n{body}\n")
    return root


def _ingest(home: Path, corpus: Path, progress=None):
    settings = load_settings({"data_dir": home}, environ={})
    return asyncio.run(ingest([corpus], settings, EMB, progress=progress)), settings


def test_many_windows_give_the_same_index_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _corpus(tmp_path / "docs")
    whole, s_whole = _ingest(tmp_path / "one", corpus)
    monkeypatch.setenv(ENV_WINDOW, "1500")  # about one document per window
    events: list[tuple[str, int, int]] = []
    cut, s_cut = _ingest(tmp_path / "many", corpus, lambda *e: events.append(e))
    assert whole.windows == 1 and cut.windows >= 5
    assert cut.chunks == whole.chunks == cut.chunks_indexed == cut.chunks_read > 0
    a, b = collect_status(s_whole), collect_status(s_cut)
    assert a["digest"] == b["digest"] and a["problems"] == b["problems"] == []
    # progress: files read, chunks embedded and indexed, each counting up to its total
    for phase in ("read", "embed", "index"):
        seen = [(done, total) for p, done, total in events if p == phase]
        assert seen and seen[-1][0] == seen[-1][1], (phase, seen[-3:])
        assert [d for d, _ in seen] == sorted(d for d, _ in seen), phase
    assert events[-1][0] == "index"
    tokens = [e for e in events if e[0] == "tokens"]
    assert tokens[-1][1] == cut.tokens > cut.chunks  # (tokens read, chunks read)


def test_a_window_never_holds_more_than_its_budget(tmp_path: Path) -> None:
    """Memory follows the window: each closes at its budget (growing from the first to the
    largest), except a single document larger than the budget, which is a window alone."""
    ref = FileRef(tmp_path / "x.md", tmp_path, "p")
    sizes = [300, 700, 200, 5000, 100, 900, 900, 900, 50]
    docs = [
        Document(ref, "word " * (n // 5), "t", "", 0, str(i), 0, n) for i, n in enumerate(sizes)
    ]
    settings = load_settings({"data_dir": tmp_path / "home"}, environ={})
    clock = run.PhaseClock()
    windows = list(run._windows(iter(docs), EMB, settings, clock, (500, 2000)))
    held = [sum(len(d.text) for d, _ in w.replaced) for w in windows]
    assert sum(len(w.replaced) for w in windows) == len(docs)
    budgets = [500, 1000, 2000, 2000, 2000, 2000]
    for n, (size, budget) in enumerate(zip(held, budgets, strict=False)):
        docs_in = windows[n].replaced
        assert size < budget + len(docs_in[-1][0].text), (n, held)  # closes once it is reached
    assert max(held) <= 5000 + 1000  # the big document, with what came before it at most


def test_ingest_json_reports_phases_and_peak_memory(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "docs", files=3)
    proc = run_ragcli(tmp_path / "home", "ingest", str(corpus), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report["phases"]) >= PHASES, report["phases"]
    assert all(s >= 0 for s in report["phases"].values())
    assert report["phases"]["embed"] > 0 and report["phases"]["vector_index"] > 0
    assert report["peak_rss_mb"] > 50  # a Python process with the model loaded
    assert report["windows"] == 1 and report["chunks_read"] == report["chunks"]
    text = run_ragcli(tmp_path / "home", "ingest", str(corpus))
    assert text.returncode == 0 and "seconds by phase" in text.stdout
    assert "\x1b[" not in text.stderr  # no progress display in a pipe


def test_a_bad_window_setting_is_one_line(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "docs", files=1)
    proc = run_ragcli(tmp_path / "home", "ingest", str(corpus), RAGCLI_INGEST_WINDOW="lots")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "RAGCLI_INGEST_WINDOW='lots'" in proc.stderr and "Traceback" not in proc.stderr
