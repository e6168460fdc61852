"""The ragcli command as a user runs it: a real subprocess, real files, exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import (
    REPO,
    Run,
    clean_env,
    copy_home,
    ragcli_and_modules,
    read_terminal,
    run_ragcli,
)
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig


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
        "'sqlite_utils', 'tokenizers', 'rich') if m in sys.modules]\n"  # help: TYPER_USE_RICH=0
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


# -- what a process imported, seen from inside it --------------------------------------------
# (which modules an in-process ask imports: pinned off under RAGCLI_TEST_DAEMON=on)
OFF = {"RAGCLI_DAEMON": "off"}


def test_an_answer_cache_hit_on_sqlite_imports_neither_chromadb_onnxruntime_nor_openai(
    sample_home: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    copy_home(sample_home, home)  # asks write to the caches: a private copy
    # numpy too: the relevance of the cited sources is computed from cache.db's vectors
    # without it (≈ 25 ms of a fresh process's import)
    heavy = {"chromadb", "onnxruntime", "openai", "numpy"}
    question = "How long do we keep application logs?"
    with OpenAICompatibleServer(ServerConfig(reply="Thirty days [1].")) as srv:
        llm = {"OPENAI_BASE_URL": srv.base_url, "RAGCLI_LLM_MODEL": "m"}
        # the observer sees them when they are used: a miss embeds, searches and calls the LLM
        miss, imported = ragcli_and_modules(home, "ask", question, "--json", **llm, **OFF)
        assert miss.returncode == 0, miss.stderr
        assert json.loads(miss.stdout)["cached"] is False and srv.counters.chat == 1
        assert heavy <= imported
        # the same question again, in a fresh process: replayed from cache.db alone
        hit, imported = ragcli_and_modules(home, "ask", question, "--json", **llm, **OFF)
        assert hit.returncode == 0, hit.stderr
        answer = json.loads(hit.stdout)
        assert answer["cached"] == "exact" and answer["answer"] == "Thirty days [1]."
        assert srv.counters.chat == 1  # the LLM was not asked again
        assert not heavy & imported, heavy & imported
    # the offline default (extractive) too, and as text rather than --json
    first = run_ragcli(home, "ask", question)
    assert first.returncode == 0, first.stderr
    hit, imported = ragcli_and_modules(home, "ask", question, **OFF)
    assert hit.returncode == 0, hit.stderr
    assert hit.stdout == first.stdout and "logs" in hit.stdout
    assert not heavy & imported, heavy & imported


# -- the progress bar: on a terminal, never in a pipe ---------------------------------------
BAR = "━"  # what rich's BarColumn draws


def _ingest_on(home: Path, corpus: Path, tty: str | None) -> tuple[int, str, str]:
    """`ragcli ingest` with stdout or stderr (or neither: `tty=None`) on a pseudo-terminal and
    the other stream(s) on pipes; (exit code, what the terminal got, what the pipes got)."""
    import threading

    master = slave = None
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    if tty:
        master, slave = os.openpty()
        streams[tty] = slave
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragcli", "ingest", str(corpus)],
        stdin=subprocess.DEVNULL,
        # a terminal type rich would draw on, and rich's switches that force terminal output
        # even into a pipe (a user's CI may set them): the pipe must stay clean all the same
        env=clean_env(home, TERM="xterm-256color", FORCE_COLOR="1", TTY_COMPATIBLE="1"),
        cwd=REPO,
        **streams,
    )
    pipes = [p for p in (proc.stdout, proc.stderr) if p is not None]
    piped: list[bytes] = [b""] * len(pipes)

    def drain(i: int) -> None:
        piped[i] = pipes[i].read()

    readers = [threading.Thread(target=drain, args=(i,)) for i in range(len(pipes))]
    for r in readers:
        r.start()
    seen = bytearray()
    if master is not None:
        os.close(slave)
        seen += read_terminal(master)
    rc = proc.wait(timeout=300)
    for r in readers:
        r.join()
    return rc, seen.decode(errors="replace"), b"".join(piped).decode(errors="replace")


def test_progress_bar_shows_on_a_terminal_and_never_in_a_pipe(home: Path, corpus: Path) -> None:
    def change() -> None:  # something to embed on each run
        with (corpus / "hr" / "notes.txt").open("a") as f:
            f.write("Expense claims are paid with the next payroll run.\n")

    # both streams piped: no bar, no terminal control codes, only the summary lines
    rc, _, piped = _ingest_on(home, corpus, None)
    assert rc == 0, piped
    assert BAR not in piped and "\x1b" not in piped and "\r" not in piped
    assert "3 files: 3 new" in piped
    # stderr on a terminal (stdout piped, as in `ragcli ingest … | tee log`): the bar is
    # drawn on the terminal, and the pipe gets the summary alone
    change()
    rc, terminal, piped = _ingest_on(home, corpus, "stderr")
    assert rc == 0, terminal + piped
    assert BAR in terminal and "embed" in terminal
    assert BAR not in piped and "\x1b" not in piped and "1 changed" in piped
    # stdout on a terminal, stderr (where the bar would go) piped: no bar anywhere
    change()
    rc, terminal, piped = _ingest_on(home, corpus, "stdout")
    assert rc == 0, terminal + piped
    assert "1 changed" in terminal
    assert BAR not in piped + terminal and "\x1b" not in piped and "\r" not in piped
