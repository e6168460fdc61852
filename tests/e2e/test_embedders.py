"""The embedders seen from real processes: what importing them loads (a fresh interpreter),
the model files' command line, and the OpenAI embedder through `ragcli ingest|ask|status`
against a real OpenAI-compatible server on 127.0.0.1 (429 storms, a killed ingest, bad keys,
an unreachable provider). The in-process embedder tests are in tests/unit/embedders/."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import REPO, Run, clean_env
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig
from tests.support.reliability import run_home
from tests.support.remote_env import remote_env as shared_remote_env

MODEL = "text-embedding-3-small"


DIMS = 32


KEY = "sk-test-5f3a9c1e"


remote_env = functools.partial(shared_remote_env, key=KEY, dims=DIMS)


@pytest.fixture
def many_chunks(tmp_path: Path) -> Path:
    """Four documents of distinct sentences: ~100 chunks of 40 tokens."""
    root = tmp_path / "docs"
    for f, part in enumerate(("ops", "ops", "hr", "eng")):
        (root / part).mkdir(parents=True, exist_ok=True)
        paragraphs = []
        for p in range(6):
            sentences = [
                f"Document {f} paragraph {p} sentence {s} explains step {s * 3 + p} of "
                f"procedure {f * 11 + s} in plain words."
                for s in range(5)
            ]
            paragraphs.append(" ".join(sentences))
        (root / part / f"doc{f}.md").write_text(f"# Doc {f}\n\n" + "\n\n".join(paragraphs) + "\n")
    return root


def status(run: Run, **env: str) -> dict:
    proc = run("status", "--json", **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- the OpenAI embedder ---------------------------------------------------------------------
def test_importing_the_embedder_loads_nothing_heavy() -> None:
    code = (
        "import sys; from ragcli.embedders.openai_embedder import OpenAIEmbedder; "
        "OpenAIEmbedder('text-embedding-3-small'); "
        "print(sorted(m for m in ('openai', 'numpy', 'tiktoken') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stderr


# -- through the CLI --------------------------------------------------------------------------
def test_429_storm_ingest_equals_a_calm_ingest(
    ragcli: Run, many_chunks: Path, tmp_path: Path
) -> None:
    calm_home = tmp_path / "calm-home"
    with OpenAICompatibleServer(ServerConfig(api_key=KEY)) as srv:
        env = remote_env(srv)
        calm = run_home(calm_home, "ingest", str(many_chunks), "--json", **env)
        assert calm.returncode == 0, calm.stderr
        calm_texts = set(srv.counters.texts)
        calm_digest = json.loads(run_home(calm_home, "status", "--json", **env).stdout)["digest"]
    storm = ServerConfig(
        api_key=KEY, max_in_flight=2, throttle_rate=0.3, retry_after_s=0.1, latency_s=0.01
    )
    with OpenAICompatibleServer(storm) as srv:
        env = remote_env(srv, RAGCLI_EMBED_BATCH_SIZE="4")
        proc = ragcli("ingest", str(many_chunks), "--json", "--concurrency", "8", **env)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert srv.counters.throttled >= 5
        assert set(srv.counters.texts) == calm_texts  # every chunk, nothing else
        assert report["embedded"] == len(calm_texts) == report["chunks"]
        after = status(ragcli, **env)
    assert after["digest"] == calm_digest
    assert after["cache"]["embeddings"] == len(calm_texts)


def test_killed_ingest_resumes_without_reembedding(
    ragcli: Run, home: Path, many_chunks: Path
) -> None:
    cfg = ServerConfig(api_key=KEY, latency_s=0.25)
    with OpenAICompatibleServer(cfg) as srv:
        env = remote_env(srv, RAGCLI_EMBED_BATCH_SIZE="3", RAGCLI_EMBED_CONCURRENCY="2")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ragcli", "ingest", str(many_chunks), "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=clean_env(home, **env),
            cwd=REPO,
        )
        deadline = time.monotonic() + 60
        while srv.counters.inputs < 18 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        srv.wait_idle()  # the dead client's last request: answered to no one, not counted
        cached = status(ragcli, **env)["cache"]["embeddings"]
        first_run = srv.counters.inputs
        srv.reset(latency_s=0.0)
        done = ragcli("ingest", str(many_chunks), "--json", **env)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        total = report["chunks"]
        assert 0 < cached < total and first_run < total  # it really was cut short
        assert srv.counters.inputs == total - cached  # exactly what was missing
        assert report["embedded"] == total - cached and report["cache_hits"] == cached
        assert max(srv.counters.texts.values()) == 1
        resumed = status(ragcli, **env)
    with OpenAICompatibleServer(ServerConfig(api_key=KEY)) as srv:
        clean_home = home.parent / "clean-home"
        env = remote_env(srv)
        assert run_home(clean_home, "ingest", str(many_chunks), **env).returncode == 0
        clean = json.loads(run_home(clean_home, "status", "--json", **env).stdout)
    assert resumed["digest"] == clean["digest"] and resumed["chunks"] == clean["chunks"]


def test_missing_or_wrong_api_key_is_one_line_error(ragcli: Run, corpus: Path) -> None:
    env = {"RAGCLI_EMBEDDER": f"openai:{MODEL}"}
    proc = ragcli("ingest", str(corpus), **env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ragcli: error: no API key")
    with OpenAICompatibleServer(ServerConfig(api_key="sk-right")) as srv:
        wrong = "sk-wrong-3141592653"
        proc = ragcli(
            "ingest",
            str(corpus),
            "--concurrency",
            "1",
            OPENAI_BASE_URL=srv.base_url,
            OPENAI_API_KEY=wrong,
            **env,
        )
        assert srv.counters.unauthorized == 1  # not retried, and nothing new started
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "rejected the API key" in lines[0]
    assert wrong not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_unreachable_provider_fails_after_its_retries(ragcli: Run, corpus: Path) -> None:
    proc = ragcli(
        "ingest",
        str(corpus),
        RAGCLI_EMBEDDER=f"openai:{MODEL}",
        RAGCLI_EMBED_MAX_RETRIES="1",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        OPENAI_API_KEY=KEY,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "lost the connection to the embedding provider at http://127.0.0.1:9/v1" in lines[0]
    assert "gave up" in lines[0] and KEY not in proc.stderr


def test_chunk_size_is_checked_against_the_remote_input_limit(ragcli: Run, corpus: Path) -> None:
    proc = ragcli("ingest", str(corpus), "--chunk-tokens", "9000", "--embedder", f"openai:{MODEL}")
    assert proc.returncode == 2
    assert "exceeds the embedder's input limit (8189 tokens)" in proc.stderr


def test_bad_remote_settings_are_usage_errors(ragcli: Run, corpus: Path) -> None:
    proc = ragcli("ingest", str(corpus), "--embedder", f"openai:{MODEL}", "--concurrency", "0")
    assert proc.returncode == 2 and "embed_concurrency must be between 1 and 256" in proc.stderr
    proc = ragcli("ingest", str(corpus), "--embedder", "openai:my-model")
    assert proc.returncode == 2 and "set embed_dimensions" in proc.stderr


def test_query_embedding_goes_through_the_cache_and_ask_streams(
    ragcli: Run, home: Path, corpus: Path
) -> None:
    cfg = ServerConfig(api_key=KEY, reply="Open PageRelay and click Hand Over now [1].")
    with OpenAICompatibleServer(cfg) as srv:
        env = remote_env(srv, RAGCLI_LLM_MODEL="test-model")
        assert ragcli("ingest", str(corpus), **env).returncode == 0
        ingested = srv.counters.embeddings
        question = "How do I rotate the on-call pager?"
        # The extractive generator chooses quotations by meaning only with an in-process
        # embedder: with a remote one, an answer costs the question's embedding, no more.
        quoted = ragcli(
            "ask",
            question,
            "--json",
            "--llm",
            "extractive",
            "--no-cache",
            "retrieval,answer",
            **env,
        )
        assert quoted.returncode == 0, quoted.stderr
        assert json.loads(quoted.stdout)["generator"] == "extractive"
        assert srv.counters.embeddings == ingested + 1
        # Retrieval and answer caches off: only the embedding cache can spare the request.
        first = ragcli("ask", question, "--json", "--no-cache", "retrieval,answer", **env)
        assert first.returncode == 0, first.stderr
        assert srv.counters.embeddings == ingested + 1
        again = ragcli("ask", question, "--json", "--no-cache", "retrieval,answer", **env)
        assert again.returncode == 0, again.stderr
        assert srv.counters.embeddings == ingested + 1  # the repeated question: no request
        assert json.loads(again.stdout)["answer"] == cfg.reply
        assert srv.counters.chat == 2

        # Streaming: the first words reach stdout long before the last one is generated.
        srv.reset(ttft_s=0.2, token_gap_s=0.25)
        proc = subprocess.Popen(
            [sys.executable, "-m", "ragcli", "ask", question, "--no-cache", "answer"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(home, **env),
            cwd=REPO,
        )
        assert proc.stdout is not None
        first_byte = proc.stdout.read(1)
        first_at = time.monotonic()
        rest = proc.stdout.read()
        proc.wait(timeout=60)
        ended = time.monotonic()
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        assert (first_byte + rest).decode().startswith(cfg.reply)
        assert srv.counters.embeddings == 0  # still the cached query vector
    assert ended - first_at >= 6 * 0.25 * 0.8  # 7 words, 6 gaps after the first


def test_ask_follows_the_embedder_the_index_was_built_with(ragcli: Run, corpus: Path) -> None:
    with OpenAICompatibleServer(ServerConfig(api_key=KEY)) as srv:
        env = {"OPENAI_BASE_URL": srv.base_url, "OPENAI_API_KEY": KEY, "RAGCLI_LLM": "extractive"}
        ingest = ragcli("ingest", str(corpus), **remote_env(srv))
        assert ingest.returncode == 0, ingest.stderr
        before = srv.counters.embeddings
        out = ragcli("ask", "How do I rotate the pager?", "--json", **env)  # no --embedder
        assert out.returncode == 0, out.stderr
        assert srv.counters.embeddings == before + 1  # the question went to the index's model
        assert json.loads(out.stdout)["sources"]


# -- the local embedder ----------------------------------------------------------------------
def test_module_import_is_cheap():
    code = (
        "import sys, ragcli.embedders.local, ragcli.embedders.model_files; "
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'tokenizers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "ragcli.embedders.model_files", "check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
